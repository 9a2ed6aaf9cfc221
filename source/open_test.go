package source

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const (
	csvData   = "id,q\n1,alpha\n2,\"beta, gamma\"\n"
	jsonlData = "{\"id\":1,\"q\":\"alpha\"}\n\n{\"id\":2,\"q\":\"beta\"}\n"
)

var (
	csvWant   = []string{`1@2 {"id":"1","q":"alpha"}`, `2@3 {"id":"2","q":"beta, gamma"}`}
	jsonlWant = []string{`1@1 {"id":1,"q":"alpha"}`, `2@3 {"id":2,"q":"beta"}`}
)

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen(t *testing.T) {
	tests := []struct {
		file   string
		data   []byte
		format string
		want   []string
	}{
		{"data.csv", []byte(csvData), "", csvWant},
		{"DATA.CSV", []byte(csvData), "", csvWant},
		{"data.jsonl", []byte(jsonlData), "", jsonlWant},
		{"data.ndjson", []byte(jsonlData), "", jsonlWant},
		{"data.csv.gz", gzipped(t, csvData), "", csvWant},
		{"data.jsonl.gz", gzipped(t, jsonlData), "", jsonlWant},
		{"data.csv.zst", zstded(t, csvData), "", csvWant},
		{"data.ndjson.ZST", zstded(t, jsonlData), "", jsonlWant},
		{"data.txt", []byte(csvData), "csv", csvWant},
		{"data.csv", []byte(jsonlData), "JSONL", jsonlWant},
		{"data.log", []byte(jsonlData), "ndjson", jsonlWant},
		{"data.txt.gz", gzipped(t, csvData), "csv", csvWant},
		{"sniffed-gzip.csv", gzipped(t, csvData), "", csvWant},
		{"sniffed-zstd.jsonl", zstded(t, jsonlData), "", jsonlWant},
		{"bom.csv.gz", gzipped(t, "\ufeff"+csvData), "", csvWant},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.format, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.data)
			r, err := Open(path, Options{Format: tt.format})
			if err != nil {
				t.Fatalf("Open: got error %v, want nil", err)
			}
			if r.Name() != path {
				t.Errorf("Name: got %q, want %q", r.Name(), path)
			}
			got := readAll(t, r)
			diffLines(t, got, tt.want)
			if err := r.Close(); err != nil {
				t.Errorf("Close: got %v, want nil", err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: got %v, want nil", err)
			}
			if _, err := r.Read(); err == nil {
				t.Error("Read after Close: got nil error, want one")
			}
		})
	}
}

func TestOpenUnknownFormat(t *testing.T) {
	tests := []struct {
		name   string
		format string
		want   string // in the message besides the accepted extensions
	}{
		{"data.txt", "", "data.txt"},
		{"data.json", "", "data.json"},
		{"data", "", "data"},
		{"data.gz", "", "data.gz"},
		{"data.csv.bz2", "", "data.csv.bz2"},
		{"-", "", "stdin"},
		{"data.csv", "xml", `"xml"`},
		{"-", "parquet", "stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.format, func(t *testing.T) {
			// The file does not exist: the format is checked first.
			name := tt.name
			if name != "-" {
				name = filepath.Join(t.TempDir(), name)
			}
			r, err := Open(name, Options{Format: tt.format})
			if err == nil {
				r.Close()
				t.Fatal("Open: got nil error, want ErrUnknownFormat")
			}
			if !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("Open: got %v, want ErrUnknownFormat", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q: want it to contain %q", msg, tt.want)
			}
			if tt.format == "" && !strings.Contains(msg, ".csv, .jsonl or .ndjson, optionally followed by .gz or .zst") {
				t.Errorf("message %q: want the accepted extensions listed", msg)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notGzip := filepath.Join(dir, "fake.csv.gz")
	if err := os.WriteFile(notGzip, []byte(csvData), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyGzip := filepath.Join(dir, "empty.jsonl.gz")
	if err := os.WriteFile(emptyGzip, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badZstd := filepath.Join(dir, "bad.csv.zst")
	if err := os.WriteFile(badZstd, []byte("not zstd at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opt  Options
		is   error  // wanted in the chain, if not nil
		want string // in the message
	}{
		{"missing file", filepath.Join(dir, "nope.csv"), Options{}, fs.ErrNotExist, "source: open "},
		{"not gzip", notGzip, Options{}, gzip.ErrHeader, "fake.csv.gz: gzip: invalid header"},
		{"empty gzip", emptyGzip, Options{}, io.ErrUnexpectedEOF, "empty.jsonl.gz: gzip: unexpected EOF"},
		{"bad zstd", badZstd, Options{}, nil, "bad.csv.zst: zstd: "},
		{"quote delimiter", filepath.Join(dir, "x.csv"), Options{Comma: '"'}, nil, "invalid CSV delimiter"},
		{"newline delimiter", filepath.Join(dir, "x.csv"), Options{Comma: '\n'}, nil, "invalid CSV delimiter"},
		{"negative line limit", filepath.Join(dir, "x.jsonl"), Options{MaxLineBytes: -1}, nil, "invalid JSONL line limit -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.path, tt.opt)
			if err == nil {
				// A bad zstd frame may only show on the first Read.
				_, err = r.Read()
				r.Close()
			}
			if err == nil || err == io.EOF {
				t.Fatalf("got %v, want an error", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want one wrapping %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "source: ") {
				t.Errorf("message %q: want the prefix \"source: \" and %q", err, tt.want)
			}
			var pe *ParseError
			if errors.As(err, &pe) {
				t.Errorf("got a *ParseError %v, want another error", err)
			}
		})
	}
}

func TestNewReaderStdin(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		format string
		want   []string
	}{
		{"plain csv", []byte(csvData), "csv", csvWant},
		{"plain jsonl", []byte(jsonlData), "jsonl", jsonlWant},
		{"gzip csv", gzipped(t, csvData), "csv", csvWant},
		{"zstd jsonl", zstded(t, jsonlData), "jsonl", jsonlWant},
		{"gzip jsonl with BOM", gzipped(t, "\ufeff"+jsonlData), "jsonl", jsonlWant},
		{"empty jsonl", nil, "jsonl", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.data), "-", Options{Format: tt.format})
			if err != nil {
				t.Fatalf("NewReader: got error %v, want nil", err)
			}
			defer r.Close()
			if r.Name() != "stdin" {
				t.Errorf("Name: got %q, want %q", r.Name(), "stdin")
			}
			diffLines(t, readAll(t, r), tt.want)
		})
	}
	if _, err := NewReader(strings.NewReader(csvData), "-", Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("NewReader(\"-\") without a format: got %v, want ErrUnknownFormat", err)
	}
	r, err := NewReader(strings.NewReader(csvData), "upload.csv.gz", Options{})
	if err != nil {
		t.Fatalf("NewReader by extension: got %v, want nil", err)
	}
	if diffLines(t, readAll(t, r), csvWant); r.Name() != "upload.csv.gz" {
		t.Errorf("Name: got %q, want upload.csv.gz", r.Name())
	}
}

// TestOpenStdin reads os.Stdin through Open("-") and checks that Close
// leaves it open.
func TestOpenStdin(t *testing.T) {
	path := writeFile(t, "in", gzipped(t, csvData))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()

	r, err := Open("-", Options{Format: "csv"})
	if err != nil {
		t.Fatalf("Open(\"-\"): got %v, want nil", err)
	}
	diffLines(t, readAll(t, r), csvWant)
	if err := r.Close(); err != nil {
		t.Errorf("Close: got %v, want nil", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Errorf("stdin after Close: got %v, want it still open", err)
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestFatalErrorSticky(t *testing.T) {
	boom := errors.New("disk on fire")
	truncated := gzipped(t, strings.Repeat("{\"a\":1}\n", 1000))
	truncated = truncated[:len(truncated)-10]
	var rows strings.Builder
	rows.WriteString("a,b\n")
	for i := range uint64(30000) {
		fmt.Fprintf(&rows, "%d,%x\n", i, i*i*2654435761)
	}
	truncatedZstd := zstded(t, rows.String())
	truncatedZstd = truncatedZstd[:len(truncatedZstd)/2]
	tests := []struct {
		name string
		src  io.Reader
		fmt  string
		is   error
	}{
		{"csv", &failingReader{[]byte("a,b\n1,2\n"), boom}, "csv", boom},
		{"csv mid-record", &failingReader{[]byte("a,b\n1,2\n3,\"x"), boom}, "csv", boom},
		{"jsonl", &failingReader{[]byte("{\"a\":1}\n"), boom}, "jsonl", boom},
		{"jsonl mid-line", &failingReader{[]byte("{\"a\":1}\n{\"a\""), boom}, "jsonl", boom},
		{"truncated gzip", bytes.NewReader(truncated), "jsonl", io.ErrUnexpectedEOF},
		{"truncated zstd", bytes.NewReader(truncatedZstd), "csv", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(tt.src, "in."+tt.fmt, Options{})
			if err != nil {
				t.Fatalf("NewReader: got %v, want nil", err)
			}
			defer r.Close()
			var first error
			for i := 0; i < 1_000_000 && first == nil; i++ {
				_, first = r.Read()
			}
			if first == nil || first == io.EOF || (tt.is != nil && !errors.Is(first, tt.is)) {
				t.Fatalf("Read: got %v, want an error wrapping %v", first, tt.is)
			}
			var pe *ParseError
			if errors.As(first, &pe) {
				t.Errorf("Read: got *ParseError %v, want a fatal error", first)
			}
			if !strings.HasPrefix(first.Error(), "source: in."+tt.fmt+": ") {
				t.Errorf("message %q: want the prefix %q", first, "source: in."+tt.fmt+": ")
			}
			if _, again := r.Read(); again != first {
				t.Errorf("Read after fatal error: got %v, want the same error %v", again, first)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  ParseError
		want string
	}{
		{ParseError{File: "data.csv", Line: 17, Column: 5, Row: 16, Err: cause}, "source: data.csv:17:5: boom"},
		{ParseError{File: "data.jsonl", Line: 3, Row: 2, Err: cause}, "source: data.jsonl:3: boom"},
		{ParseError{File: "stdin", Line: 1}, "source: stdin:1: parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error: got %q, want %q", got, tt.want)
			}
			if got := errors.Unwrap(&tt.err); got != tt.err.Err {
				t.Errorf("Unwrap: got %v, want %v", got, tt.err.Err)
			}
		})
	}
}
