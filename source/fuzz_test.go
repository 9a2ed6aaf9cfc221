package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// compressed reports whether data would be decompressed rather than parsed;
// the fuzz targets leave such input to the decompressors' own fuzzing.
func compressed(data []byte) bool {
	return bytes.HasPrefix(data, gzipMagic) || bytes.HasPrefix(data, zstdMagic)
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n",
		"a,b\r\n\"x\r\ny\",2\r\n",
		"\ufeffa;b\n1;2;3\n",
		"a,b\n1\n\"q\"x,2\n3,4",
		"a,a\n",
		"a,\"b\n",
		"",
		"h\n\"\"\"\"\n\n\xff\n",
	} {
		f.Add([]byte(s), byte(0))
	}
	f.Add([]byte("a;b\n1;2\n"), byte(';'))
	f.Add([]byte("a\tb\n1\t2\n"), byte('\t'))
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		if compressed(data) {
			return
		}
		opt := Options{Format: "csv"}
		switch delim {
		case ';', '\t', '|', ' ':
			opt.Comma = rune(delim)
		}
		r, err := NewReader(bytes.NewReader(data), "f.csv", opt)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Row != 0 {
				t.Fatalf("NewReader: got %v, want a *ParseError on line >= 1, row 0", err)
			}
			return
		}
		defer r.Close()
		header := r.Columns()
		if len(header) == 0 {
			t.Fatal("Columns: got none, want the header")
		}
		var lastRow int64
		lastLine := 1
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("Read: no io.EOF after %d calls on %d bytes", i, len(data))
			}
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if rec.Row != lastRow+1 {
				t.Fatalf("Row: got %d, want %d", rec.Row, lastRow+1)
			}
			lastRow = rec.Row
			if rec.Line <= lastLine {
				t.Fatalf("Line: got %d, want > %d", rec.Line, lastLine)
			}
			lastLine = rec.Line
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line < rec.Line || pe.Row != rec.Row || pe.File != "f.csv" {
					t.Fatalf("Read: got %v (row %d, line %d), want a *ParseError for that row", err, rec.Row, rec.Line)
				}
				if rec.Values != nil || rec.Raw != nil {
					t.Fatal("Read: got values with an error, want none")
				}
				continue
			}
			if len(rec.Values) != len(header) || !reflect.DeepEqual(rec.Columns, header) {
				t.Fatalf("got %d values, columns %q; want %d values and the header %q", len(rec.Values), rec.Columns, len(header), header)
			}
			var raw map[string]string
			if err := json.Unmarshal(rec.Raw, &raw); err != nil {
				t.Fatalf("Raw %q: %v", rec.Raw, err)
			}
			for _, h := range header {
				v := rec.Values[h].(string)
				// encoding/json's view of v (invalid UTF-8 made U+FFFD).
				enc, _ := json.Marshal(v)
				var want string
				json.Unmarshal(enc, &want)
				if raw[h] != want {
					t.Fatalf("Raw[%q]: got %q, want %q", h, raw[h], want)
				}
			}
			keys, _, err := decodeOrdered(rec.Raw)
			if err != nil || !reflect.DeepEqual(keys, header) {
				t.Fatalf("Raw keys: got %q, %v; want the header %q", keys, err, header)
			}
		}
	})
}

// expectedJSONL is what the reader should make of a line: skip it, a
// record with this Raw, or an error.
type expectedJSONL struct {
	line int
	raw  []byte // nil for an error
}

// jsonlOracle works out the rows of data from encoding/json alone.
func jsonlOracle(data []byte, max int) []expectedJSONL {
	data = bytes.TrimPrefix(data, utf8BOM)
	lines := bytes.Split(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	var out []expectedJSONL
	for i, l := range lines {
		l = bytes.TrimSuffix(l, []byte("\r"))
		t := bytes.Trim(l, " \t\r\n")
		switch {
		case len(t) == 0:
			continue
		case len(l) <= max && t[0] == '{' && json.Valid(t):
			out = append(out, expectedJSONL{line: i + 1, raw: t})
		default:
			out = append(out, expectedJSONL{line: i + 1})
		}
	}
	return out
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		"{\"a\":1}\n{\"b\":[1,2,{\"c\":null}]}\n",
		"\n  \n{\"z\":1,\"a\":2,\"z\":3}\r\n",
		"[1]\n\"s\"\n1\n{\"a\":1} x\n{}{}\n",
		"{\"a\\\"b\":\"\\u00e9\",\"\\ud800\":1}",
		"\ufeff{\"x\":\"\xff\"}\n{",
		"{\"long\":\"" + string(bytes.Repeat([]byte("x"), 100)) + "\"}\n{\"short\":1}\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte("{\"a\":\"0123456789\"}\n{\"b\":1}\n"), uint8(10))
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		if compressed(data) {
			return
		}
		max := defaultMaxLineBytes
		if limit > 0 {
			max = int(limit)
		}
		r, err := NewReader(bytes.NewReader(data), "f.jsonl", Options{Format: "jsonl", MaxLineBytes: int(limit)})
		if err != nil {
			t.Fatalf("NewReader: got %v, want nil", err)
		}
		defer r.Close()
		want := jsonlOracle(data, max)
		var lastRow int64
		for i := 0; ; i++ {
			rec, err := r.Read()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("got io.EOF after %d rows, want %d rows", i, len(want))
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("Read: got row %d, want io.EOF after %d rows", rec.Row, len(want))
			}
			w := want[i]
			if rec.Row != lastRow+1 || rec.Line != w.line {
				t.Fatalf("got row %d on line %d, want row %d on line %d", rec.Row, rec.Line, lastRow+1, w.line)
			}
			lastRow = rec.Row
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line != rec.Line || pe.Row != rec.Row || pe.File != "f.jsonl" {
					t.Fatalf("Read: got %v (row %d, line %d), want a *ParseError for that row", err, rec.Row, rec.Line)
				}
				if w.raw != nil {
					t.Fatalf("line %d: got %v, want a record with Raw %q", w.line, err, w.raw)
				}
				if pe.Column < 0 || pe.Column > max+2 {
					t.Fatalf("Column: got %d, want 0..%d", pe.Column, max+2)
				}
				continue
			}
			if w.raw == nil {
				t.Fatalf("line %d: got record %q, want an error", w.line, rec.Raw)
			}
			if !bytes.Equal(rec.Raw, w.raw) {
				t.Fatalf("Raw: got %q, want %q", rec.Raw, w.raw)
			}
			keys, vals, err := decodeOrdered(rec.Raw)
			if err != nil {
				t.Fatalf("Raw %q: %v", rec.Raw, err)
			}
			if !reflect.DeepEqual(rec.Columns, keys) {
				t.Fatalf("Columns: got %q, want %q", rec.Columns, keys)
			}
			if !reflect.DeepEqual(rec.Values, vals) {
				t.Fatalf("Values: got %#v, want %#v", rec.Values, vals)
			}
		}
	})
}
