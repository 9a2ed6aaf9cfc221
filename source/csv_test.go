package source

import (
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestCSV(t *testing.T) {
	tests := []struct {
		name  string
		input string
		comma rune
		cols  []string
		want  []string
	}{
		{
			name:  "simple",
			input: "a,b\n1,2\n3,4\n",
			cols:  []string{"a", "b"},
			want:  []string{`1@2 {"a":"1","b":"2"}`, `2@3 {"a":"3","b":"4"}`},
		},
		{
			name:  "no final newline",
			input: "a,b\n1,2",
			cols:  []string{"a", "b"},
			want:  []string{`1@2 {"a":"1","b":"2"}`},
		},
		{
			name:  "quoted",
			input: "name,quote\n\"Smith, J.\",\"she said \"\"hi\"\"\"\n",
			cols:  []string{"name", "quote"},
			want:  []string{`1@2 {"name":"Smith, J.","quote":"she said \"hi\""}`},
		},
		{
			name:  "multi-line field",
			input: "id,text\n1,\"line one\nline two\"\n2,x\n",
			cols:  []string{"id", "text"},
			want:  []string{`1@2 {"id":"1","text":"line one\nline two"}`, `2@4 {"id":"2","text":"x"}`},
		},
		{
			name:  "BOM",
			input: "\ufeffid,name\n1,Ann\n",
			cols:  []string{"id", "name"},
			want:  []string{`1@2 {"id":"1","name":"Ann"}`},
		},
		{
			name:  "CRLF",
			input: "a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n",
			cols:  []string{"a", "b"},
			want:  []string{`1@2 {"a":"1","b":"2"}`, `2@3 {"a":"3","b":"x\ny"}`},
		},
		{
			name:  "blank lines skipped, lines counted",
			input: "a\n\n1\n\n\n2\n",
			cols:  []string{"a"},
			want:  []string{`1@3 {"a":"1"}`, `2@6 {"a":"2"}`},
		},
		{
			name:  "header only",
			input: "a,b\n",
			cols:  []string{"a", "b"},
		},
		{
			name:  "ragged rows then continue",
			input: "a,b,c,d\n1,2,3,4\n1,2,3\n1,2,3,4,5\n5,6,7,8\n",
			cols:  []string{"a", "b", "c", "d"},
			want: []string{
				`1@2 {"a":"1","b":"2","c":"3","d":"4"}`,
				`2@3 error: source: t.csv:3:5: wrong number of fields (got 3, want 4)`,
				`3@4 error: source: t.csv:4:9: wrong number of fields (got 5, want 4)`,
				`4@5 {"a":"5","b":"6","c":"7","d":"8"}`,
			},
		},
		{
			name:  "bare quote then continue",
			input: "a,b\n1,x\"y\n2,3\n",
			cols:  []string{"a", "b"},
			want: []string{
				`1@2 error: source: t.csv:2:4: bare " in non-quoted-field`,
				`2@3 {"a":"2","b":"3"}`,
			},
		},
		{
			name:  "extraneous quote then continue",
			input: "a,b\n1,\"x\"y\n2,3\n",
			cols:  []string{"a", "b"},
			want: []string{
				`1@2 error: source: t.csv:2:5: extraneous or missing " in quoted-field`,
				`2@3 {"a":"2","b":"3"}`,
			},
		},
		{
			name:  "unterminated quote at end",
			input: "a,b\n1,2\n3,\"open\n",
			cols:  []string{"a", "b"},
			want: []string{
				`1@2 {"a":"1","b":"2"}`,
				`2@3 error: source: t.csv:3:9: extraneous or missing " in quoted-field`,
			},
		},
		{
			name:  "semicolon delimiter",
			input: "a;b\n1,5;2\n",
			comma: ';',
			cols:  []string{"a", "b"},
			want:  []string{`1@2 {"a":"1,5","b":"2"}`},
		},
		{
			name:  "escaping in Raw",
			input: "key,v\n\"tab\there\",\"\x01\xff\u2028<&>\\\"\n",
			cols:  []string{"key", "v"},
			want:  []string{`1@2 {"key":"tab\there","v":"\u0001\ufffd\u2028<&>\\"}`},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(t, tt.input, "t.csv", Options{Comma: tt.comma})
			if got := r.Columns(); !reflect.DeepEqual(got, tt.cols) {
				t.Errorf("Columns: got %q, want %q", got, tt.cols)
			}
			diffLines(t, readAll(t, r), tt.want)
		})
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string
		wantErr error
	}{
		{"empty file", "", "source: h.csv:1: missing CSV header row (empty input)", ErrNoHeader},
		{"only blank lines", "\n\r\n\n", "source: h.csv:1: missing CSV header row (empty input)", ErrNoHeader},
		{"only BOM", "\ufeff", "source: h.csv:1: missing CSV header row (empty input)", ErrNoHeader},
		{"duplicate", "id,name,id\n1,2,3\n", `source: h.csv:1:9: bad CSV header: duplicate column name "id" (fields 1 and 3)`, ErrBadHeader},
		{"empty name", "id,,x\n", "source: h.csv:1:4: bad CSV header: empty column name (field 2)", ErrBadHeader},
		{"blank name", "id, \n", "source: h.csv:1:4: bad CSV header: empty column name (field 2)", ErrBadHeader},
		{"quoted empty name", "\"\"\n", "source: h.csv:1:1: bad CSV header: empty column name (field 1)", ErrBadHeader},
		{"invalid UTF-8 name", "ok,caf\xe9\n", `source: h.csv:1:4: bad CSV header: column name "caf\xe9" is not valid UTF-8 (field 2); convert the file to UTF-8`, ErrBadHeader},
		{"bare quote", "a,b\"\n", `source: h.csv:1:4: bare " in non-quoted-field`, csv.ErrBareQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.input), "h.csv", Options{})
			if err == nil {
				r.Close()
				t.Fatal("NewReader: got nil error, want one")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error: got %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 1 || pe.Row != 0 {
				t.Errorf("got %#v, want a *ParseError on line 1, row 0", err)
			}
		})
	}
}

func TestCSVRaggedErrorIs(t *testing.T) {
	r := newTestReader(t, "a,b\n1\n2,3\n", "t.csv", Options{})
	rec, err := r.Read()
	if !errors.Is(err, csv.ErrFieldCount) {
		t.Fatalf("Read: got error %v, want one wrapping csv.ErrFieldCount", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Read: got %T, want *ParseError", err)
	}
	want := ParseError{File: "t.csv", Line: 2, Column: 1, Row: 1}
	if pe.File != want.File || pe.Line != want.Line || pe.Column != want.Column || pe.Row != want.Row {
		t.Errorf("got %+v, want %+v", *pe, want)
	}
	if rec.Row != 1 || rec.Line != 2 || rec.Values != nil {
		t.Errorf("record: got Row %d Line %d Values %v, want 1, 2, nil", rec.Row, rec.Line, rec.Values)
	}
	rec, err = r.Read()
	if err != nil || rec.Row != 2 || rec.Values["b"] != "3" {
		t.Errorf("next Read: got %+v, %v; want row 2 with b=3", rec, err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Errorf("last Read: got %v, want io.EOF", err)
	}
}

func TestCSVColumnsShared(t *testing.T) {
	r := newTestReader(t, "x,y\n1,2\n3,4\n", "t.csv", Options{})
	a, _ := r.Read()
	b, _ := r.Read()
	if &a.Columns[0] != &b.Columns[0] || &a.Columns[0] != &r.Columns()[0] {
		t.Error("Columns: got distinct slices, want the header shared by all records")
	}
}
