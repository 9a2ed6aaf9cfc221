package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// outcome describes one Read for comparison in table tests:
// "ROW@LINE RAW" for a record, "ROW@LINE error: MESSAGE" for a row error.
// It also checks that Columns and Values agree with Raw.
func outcome(t *testing.T, rec Record, err error) string {
	t.Helper()
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Read: got fatal error %v, want a *ParseError or a record", err)
		}
		if pe.Row != rec.Row || rec.Row == 0 {
			t.Errorf("ParseError.Row = %d, Record.Row = %d; want equal and non-zero", pe.Row, rec.Row)
		}
		if rec.Values != nil || rec.Columns != nil || rec.Raw != nil {
			t.Errorf("record with error: got Columns %q, Values %v, Raw %q; want all nil", rec.Columns, rec.Values, rec.Raw)
		}
		return fmt.Sprintf("%d@%d error: %v", rec.Row, rec.Line, err)
	}
	cols, vals, derr := decodeOrdered(rec.Raw)
	if derr != nil {
		t.Fatalf("Raw %q is not a JSON object: %v", rec.Raw, derr)
	}
	if !reflect.DeepEqual(rec.Columns, cols) {
		t.Errorf("Columns: got %q, want %q (the keys of Raw in order)", rec.Columns, cols)
	}
	// Compare through JSON: CSV values keep invalid UTF-8 that Raw has
	// replaced with U+FFFD.
	vj, merr := json.Marshal(rec.Values)
	if merr != nil {
		t.Fatalf("Values: %v", merr)
	}
	_, got, _ := decodeOrdered(vj)
	if !reflect.DeepEqual(got, vals) {
		t.Errorf("Values: got %#v, want %#v (Raw decoded)", rec.Values, vals)
	}
	return fmt.Sprintf("%d@%d %s", rec.Row, rec.Line, rec.Raw)
}

// decodeOrdered decodes a JSON object with json.Decoder tokens: its unique
// keys in first-seen order and its values (last wins), numbers as
// json.Number. It is an independent check of the package's own scanner.
func decodeOrdered(raw []byte) ([]string, map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("got %v, want {", tok)
	}
	keys := []string{}
	vals := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		keys = nil
	}
	return keys, vals, nil
}

// readAll reads r to io.EOF and describes every outcome. It fails the test
// on a fatal error or when rows do not go up by one.
func readAll(t *testing.T, r *Reader) []string {
	t.Helper()
	var out []string
	var last int64
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Read: no io.EOF after 1000 calls")
		}
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if rec.Row != last+1 {
			t.Errorf("Row: got %d, want %d", rec.Row, last+1)
		}
		last = rec.Row
		out = append(out, outcome(t, rec, err))
	}
}

// newTestReader is NewReader over a string, failing the test on error.
func newTestReader(t *testing.T, input, name string, opt Options) *Reader {
	t.Helper()
	r, err := NewReader(strings.NewReader(input), name, opt)
	if err != nil {
		t.Fatalf("NewReader: got error %v, want nil", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
