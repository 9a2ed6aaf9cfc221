package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// sampleRows covers every field, nil and empty slices, usage and cost nil
// and set, unicode and empty strings.
func sampleRows() []Row {
	return []Row{
		{
			ID: "acme", Row: 1, Status: StatusOK,
			Input:      json.RawMessage(`{"company":"Acme <&>","n":3,"ok":true,"none":null,"tags":["a","b"],"o":{"k":1}}`),
			HTTPStatus: 200, Attempts: 1, LatencyMS: 41, RequestID: "req-1",
			Results: []SearchResult{
				{Title: "Acme", URL: "https://acme.example/?a=1&b=2", Snippet: "HQ <b>Springfield</b>", Date: "2024-01-02", LastUpdated: "2024-02-03"},
				{Title: "Second", URL: "https://b.example"},
			},
		},
		{
			ID: "2", Row: 2, Status: StatusOK,
			Input:      json.RawMessage(`{"company":"Ünïcødé 日本語 🚀","n":-1.5e3}`),
			HTTPStatus: 200, Attempts: 2, LatencyMS: 1234, RequestID: "req-2",
			Content:       "The answer — with “quotes” and\nnewlines\ttabs.",
			Citations:     []string{"https://c1.example", ""},
			SearchResults: []Source{{ID: 3, Title: "S", URL: "https://s.example", Date: "2025-05-05", Snippet: "snip"}},
			Usage:         &Usage{PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30, CostUSD: ptr(0.0125)},
		},
		{
			ID: "", Row: 3, Status: StatusError, Error: "http 429: rate limited",
			Input:      json.RawMessage(`{"company":"","n":""}`),
			HTTPStatus: 429, Attempts: 5, LatencyMS: 0,
			Results:   []SearchResult{},
			Citations: []string{},
			Usage:     &Usage{PromptTokens: 1, TotalTokens: 1},
		},
		{
			ID: "null-input", Row: 4, Status: StatusError, Error: "bad template",
			Input: json.RawMessage(`null`),
		},
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rows []Row
	}{
		{"no rows", nil},
		{"one row", sampleRows()[:1]},
		{"all fields", sampleRows()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewJSONL[Row](&buf)
			for _, r := range tt.rows {
				if err := w.Write(r); err != nil {
					t.Fatalf("Write: got %v, want nil", err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: got %v, want nil", err)
			}
			got := decodeJSONL(t, buf.Bytes())
			if len(got) != len(tt.rows) {
				t.Fatalf("got %d rows, want %d", len(got), len(tt.rows))
			}
			for i := range got {
				want := tt.rows[i]
				want.Input = compactJSON(t, want.Input)
				got[i].Input = compactJSON(t, got[i].Input)
				if want.Data == nil && string(got[i].Data) == "null" {
					got[i].Data = nil // a nil RawMessage reads back as null
				}
				if !reflect.DeepEqual(got[i], want) {
					t.Errorf("row %d: got %+v, want %+v", i, got[i], want)
				}
			}
		})
	}
}

func decodeJSONL(t *testing.T, data []byte) []Row {
	t.Helper()
	var rows []Row
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var r Row
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatalf("decode row %d: %v", len(rows)+1, err)
		}
		rows = append(rows, r)
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %s: %v", raw, err)
	}
	return b.Bytes()
}

func TestJSONLFormat(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{
			name: "nil slices and usage are null, html is not escaped",
			row:  Row{ID: "a<b>&", Row: 7, Status: StatusOK, Input: json.RawMessage(`{"q": "x & y"}`)},
			want: `{"id":"a<b>&","row":7,"status":"ok","error":"","input":{"q":"x & y"},"http_status":0,"attempts":0,"latency_ms":0,"request_id":"","results":null,"content":"","citations":null,"search_results":null,"usage":null,"model":"","data":null}` + "\n",
		},
		{
			name: "empty slices, usage without cost",
			row:  Row{Results: []SearchResult{}, Citations: []string{}, SearchResults: []Source{}, Usage: &Usage{TotalTokens: 3}},
			want: `{"id":"","row":0,"status":"","error":"","input":null,"http_status":0,"attempts":0,"latency_ms":0,"request_id":"","results":[],"content":"","citations":[],"search_results":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":3,"cost_usd":null},"model":"","data":null}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewJSONL[Row](&buf)
			if err := w.Write(tt.row); err != nil {
				t.Fatalf("Write: got %v, want nil", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: got %v, want nil", err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestJSONLInvalidRowIsNotSticky(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONL[Row](&buf)
	err := w.Write(Row{ID: "bad", Input: json.RawMessage(`{"a":`)})
	if !errors.Is(err, ErrInvalidRow) {
		t.Fatalf("Write of a bad input: got %v, want ErrInvalidRow", err)
	}
	if err := w.Write(Row{ID: "good"}); err != nil {
		t.Fatalf("Write after a bad row: got %v, want nil", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	rows := decodeJSONL(t, buf.Bytes())
	if len(rows) != 1 || rows[0].ID != "good" {
		t.Errorf("got rows %+v, want only the good row", rows)
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct {
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	n := f.n
	f.n = 0
	return n, f.err
}

func TestJSONLStickyError(t *testing.T) {
	errDisk := errors.New("disk full")
	tests := []struct {
		name string
		// op fails on its own or after the writes before it.
		op func(w *JSONL[Row]) error
	}{
		{"flush", func(w *JSONL[Row]) error { return w.Flush() }},
		{"close", func(w *JSONL[Row]) error { return w.Close() }},
		{"big write", func(w *JSONL[Row]) error {
			return w.Write(Row{Content: strings.Repeat("x", 2*jsonlBufferSize)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewJSONL[Row](&failWriter{n: 10, err: errDisk})
			if err := w.Write(Row{ID: "1"}); err != nil {
				t.Fatalf("buffered Write: got %v, want nil", err)
			}
			err := tt.op(w)
			if !errors.Is(err, errDisk) {
				t.Fatalf("got %v, want %v", err, errDisk)
			}
			if tt.name != "close" {
				if err := w.Write(Row{ID: "2"}); !errors.Is(err, errDisk) {
					t.Errorf("Write after the failure: got %v, want %v", err, errDisk)
				}
				if err := w.Flush(); !errors.Is(err, errDisk) {
					t.Errorf("Flush after the failure: got %v, want %v", err, errDisk)
				}
			}
			if err := w.Close(); !errors.Is(err, errDisk) {
				t.Errorf("Close after the failure: got %v, want %v", err, errDisk)
			}
		})
	}
}

func TestJSONLOtherType(t *testing.T) {
	type failure struct {
		Row    int64  `json:"row"`
		Reason string `json:"reason"`
	}
	var buf bytes.Buffer
	w := NewJSONL[failure](&buf)
	for _, f := range []failure{{1, "http 500"}, {9, "timeout <5s>"}} {
		if err := w.Write(f); err != nil {
			t.Fatalf("Write: got %v, want nil", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	want := "{\"row\":1,\"reason\":\"http 500\"}\n{\"row\":9,\"reason\":\"timeout <5s>\"}\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestJSONLFlushReachesFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := CreateJSONL[Row](name)
	if err != nil {
		t.Fatalf("CreateJSONL: %v", err)
	}
	defer w.Abort()
	if err := w.Write(Row{ID: "1", Row: 1}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	tmps := tempFiles(t, name)
	if got := fileSize(t, tmps[0]); got != 0 {
		t.Errorf("before Flush: temp file has %d bytes, want 0", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	data, err := os.ReadFile(tmps[0])
	if err != nil {
		t.Fatal(err)
	}
	if rows := decodeJSONL(t, data); len(rows) != 1 || rows[0].ID != "1" {
		t.Errorf("after Flush: temp file holds %+v, want row 1", rows)
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("before Close: stat %s: got %v, want not exist", name, err)
	}
}

func TestJSONLStdout(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdout
	os.Stdout = f
	w, err := CreateJSONL[Row](Stdout)
	os.Stdout = saved
	if err != nil {
		t.Fatalf("CreateJSONL(-): %v", err)
	}
	if err := w.Write(Row{ID: "1"}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := f.WriteString("still open\n"); err != nil {
		t.Errorf("write to stdout after Close: got %v, want nil (Close must not close stdout)", err)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	var r Row
	if err := json.Unmarshal(first, &r); err != nil || r.ID != "1" {
		t.Errorf("stdout got %q, want row 1 (err %v)", data, err)
	}
}

func TestJSONLAbortWithoutFileDropsBuffer(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONL[Row](&buf)
	if err := w.Write(Row{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: got %v, want nil", err)
	}
	if buf.Len() != 0 {
		t.Errorf("after Abort: got %q written, want nothing", buf.String())
	}
}

func ExampleJSONL() {
	w := NewJSONL[Row](os.Stdout)
	w.Write(Row{
		ID: "acme", Row: 1, Status: StatusOK,
		Input:   json.RawMessage(`{"company": "Acme & Co"}`),
		Results: []SearchResult{{Title: "Acme", URL: "https://acme.example"}},
	})
	w.Write(Row{ID: "2", Row: 2, Status: StatusError, Error: "http 429"})
	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"id":"acme","row":1,"status":"ok","error":"","input":{"company":"Acme & Co"},"http_status":0,"attempts":0,"latency_ms":0,"request_id":"","results":[{"title":"Acme","url":"https://acme.example","snippet":"","date":"","last_updated":""}],"content":"","citations":null,"search_results":null,"usage":null,"model":"","data":null}
	// {"id":"2","row":2,"status":"error","error":"http 429","input":null,"http_status":0,"attempts":0,"latency_ms":0,"request_id":"","results":null,"content":"","citations":null,"search_results":null,"usage":null,"model":"","data":null}
}
