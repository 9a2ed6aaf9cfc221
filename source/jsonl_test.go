package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestJSONL(t *testing.T) {
	tests := []struct {
		name  string
		input string
		max   int
		want  []string
	}{
		{
			name:  "simple",
			input: `{"a":1,"b":"x"}` + "\n" + `{"a":2.5e3,"b":null}` + "\n",
			want:  []string{`1@1 {"a":1,"b":"x"}`, `2@2 {"a":2.5e3,"b":null}`},
		},
		{
			name:  "key order kept",
			input: `{"z":1,"a":2,"m":{"y":1,"b":2},"é\u00e9":true}` + "\n",
			want:  []string{`1@1 {"z":1,"a":2,"m":{"y":1,"b":2},"é\u00e9":true}`},
		},
		{
			name:  "escaped keys",
			input: `{"a\"b":1,"\u0041":2,"tab\t":3}`,
			want:  []string{`1@1 {"a\"b":1,"\u0041":2,"tab\t":3}`},
		},
		{
			name:  "duplicate keys: last wins, columns unique",
			input: `{"a":1,"b":2,"a":3}`,
			want:  []string{`1@1 {"a":1,"b":2,"a":3}`},
		},
		{
			name:  "nested values and whitespace",
			input: "  { \"l\" : [1, {\"x\": \"}\"}, \"]\"] , \"e\":{} ,\"s\":\"a,b:c\"}  \t\n",
			want:  []string{`1@1 { "l" : [1, {"x": "}"}, "]"] , "e":{} ,"s":"a,b:c"}`},
		},
		{
			name:  "empty object",
			input: "{}\n",
			want:  []string{`1@1 {}`},
		},
		{
			name:  "blank lines skipped, lines counted",
			input: "\n{\"a\":1}\n   \n\t\r\n{\"a\":2}\n\n",
			want:  []string{`1@2 {"a":1}`, `2@5 {"a":2}`},
		},
		{
			name:  "CRLF and no final newline",
			input: "{\"a\":1}\r\n{\"a\":2}",
			want:  []string{`1@1 {"a":1}`, `2@2 {"a":2}`},
		},
		{
			name:  "BOM",
			input: "\ufeff{\"a\":1}\n",
			want:  []string{`1@1 {"a":1}`},
		},
		{
			name:  "bad line then continue",
			input: "{\"a\":1}\n{\"a\":x}\n{\"a\":3}\n",
			want: []string{
				`1@1 {"a":1}`,
				`2@2 error: source: t.jsonl:2:6: invalid character 'x' looking for beginning of value`,
				`3@3 {"a":3}`,
			},
		},
		{
			name: "non-object lines",
			input: "[1,2]\n\"s\"\n 42\ntrue\nnull\n{\"a\":1} x\n{\"a\":1}{}\n{\"a\":1\n" +
				"{\"a\" 1}\n{'a':1}\n",
			want: []string{
				`1@1 error: source: t.jsonl:1:1: not a JSON object (found array)`,
				`2@2 error: source: t.jsonl:2:1: not a JSON object (found string)`,
				`3@3 error: source: t.jsonl:3:2: not a JSON object (found number)`,
				`4@4 error: source: t.jsonl:4:1: not a JSON object (found boolean)`,
				`5@5 error: source: t.jsonl:5:1: not a JSON object (found null)`,
				`6@6 error: source: t.jsonl:6:9: invalid character 'x' after top-level value`,
				`7@7 error: source: t.jsonl:7:8: invalid character '{' after top-level value`,
				`8@8 error: source: t.jsonl:8:6: unexpected end of JSON input`,
				`9@9 error: source: t.jsonl:9:6: invalid character '1' after object key`,
				`10@10 error: source: t.jsonl:10:2: invalid character '\'' looking for beginning of object key string`,
			},
		},
		{
			name:  "too-long line then continue",
			input: "{\"a\":1}\n{\"long\":\"0123456789\"}\n{\"b\":2}\n",
			max:   12,
			want: []string{
				`1@1 {"a":1}`,
				`2@2 error: source: t.jsonl:2: line too long (limit 12 bytes)`,
				`3@3 {"b":2}`,
			},
		},
		{
			name:  "limit excludes CRLF",
			input: "{\"a\":\"12\"}\r\n{\"a\":\"123\"}\r\n",
			max:   10,
			want: []string{
				`1@1 {"a":"12"}`,
				`2@2 error: source: t.jsonl:2: line too long (limit 10 bytes)`,
			},
		},
		{
			name:  "long blank line is blank",
			input: "{\"a\":1}\n" + strings.Repeat(" ", 100) + "\n{\"b\":2}",
			max:   10,
			want:  []string{`1@1 {"a":1}`, `2@3 {"b":2}`},
		},
		{
			name:  "empty input",
			input: "",
		},
		{
			name:  "only blank lines",
			input: "\n \n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReader(t, tt.input, "t.jsonl", Options{MaxLineBytes: tt.max})
			if r.Columns() != nil {
				t.Errorf("Columns: got %q, want nil for JSONL", r.Columns())
			}
			diffLines(t, readAll(t, r), tt.want)
		})
	}
}

func TestJSONLErrorKinds(t *testing.T) {
	tests := []struct {
		line string
		want error
	}{
		{"[1]", ErrNotObject},
		{"{\"a\":1", nil}, // a *json.SyntaxError, checked below
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r := newTestReader(t, tt.line, "t.jsonl", Options{})
			_, err := r.Read()
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Read: got %v, want *ParseError", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.want)
			}
			var se *json.SyntaxError
			if tt.want == nil && !errors.As(err, &se) {
				t.Errorf("Read: got %v, want a *json.SyntaxError inside", err)
			}
		})
	}
	r := newTestReader(t, "{\"a\":\"0123456789\"}", "t.jsonl", Options{MaxLineBytes: 4})
	if _, err := r.Read(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("Read: got %v, want ErrLineTooLong", err)
	}
}

// TestJSONLHugeLine reads a line well beyond bufio.Scanner's default limit
// and the read buffer, with the default line limit.
func TestJSONLHugeLine(t *testing.T) {
	const size = 17 << 20
	big := bytes.Repeat([]byte("x"), size)
	var in bytes.Buffer
	in.WriteString(`{"id":1,"big":"`)
	in.Write(big)
	in.WriteString("\"}\r\n{\"id\":2}\n")
	line1 := bytes.TrimSuffix(in.Bytes()[:bytes.IndexByte(in.Bytes(), '\n')], []byte("\r"))

	r, err := NewReader(bytes.NewReader(in.Bytes()), "big.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Read()
	if err != nil {
		t.Fatalf("Read: got error %v, want nil", err)
	}
	if s, _ := rec.Values["big"].(string); len(s) != size {
		t.Errorf("big: got %d bytes, want %d", len(s), size)
	}
	if !bytes.Equal(rec.Raw, line1) {
		t.Errorf("Raw: got %d bytes, want the %d-byte line", len(rec.Raw), len(line1))
	}
	if got, want := strings.Join(rec.Columns, ","), "id,big"; got != want {
		t.Errorf("Columns: got %s, want %s", got, want)
	}
	rec, err = r.Read()
	if err != nil || rec.Row != 2 || rec.Line != 2 {
		t.Errorf("second Read: got row %d line %d err %v, want row 2 line 2", rec.Row, rec.Line, err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Errorf("last Read: got %v, want io.EOF", err)
	}
}

// TestJSONLHugeLineTooLong skips a line longer than the limit without
// holding it, and goes on.
func TestJSONLHugeLineTooLong(t *testing.T) {
	var in bytes.Buffer
	in.WriteString(`{"big":"`)
	in.Write(bytes.Repeat([]byte("y"), 3<<20))
	in.WriteString("\"}\n{\"id\":2}\n")
	r, err := NewReader(&in, "big.jsonl", Options{MaxLineBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Read()
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrLineTooLong) || pe.Line != 1 || pe.Row != 1 {
		t.Fatalf("Read: got %v, want a too-long *ParseError on line 1, row 1", err)
	}
	rec, err := r.Read()
	if err != nil || rec.Row != 2 || rec.Line != 2 || string(rec.Raw) != `{"id":2}` {
		t.Errorf("second Read: got %+v, %v; want row 2 on line 2", rec, err)
	}
}

// TestJSONLRawNotAliased checks that Raw survives later reads, which reuse
// the read buffer.
func TestJSONLRawNotAliased(t *testing.T) {
	r := newTestReader(t, "{\"a\":1}\n{\"b\":2}\n", "t.jsonl", Options{})
	first, _ := r.Read()
	r.Read()
	if got := string(first.Raw); got != `{"a":1}` {
		t.Errorf("first Raw after second Read: got %s, want {\"a\":1}", got)
	}
}

func TestJSONLNumbers(t *testing.T) {
	r := newTestReader(t, `{"n":12345678901234567890,"f":1.50}`, "t.jsonl", Options{})
	rec, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rec.Values["n"].(json.Number); !ok || got != "12345678901234567890" {
		t.Errorf("n: got %#v, want json.Number(\"12345678901234567890\")", rec.Values["n"])
	}
	if got := rec.Values["f"]; got != json.Number("1.50") {
		t.Errorf("f: got %#v, want json.Number(\"1.50\")", got)
	}
}

func TestObjectKeysManyDuplicates(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('a'+i%40)) + `":1`)
	}
	b.WriteString("}")
	keys, err := objectKeys([]byte(b.String()), 0)
	if err != nil || len(keys) != 40 {
		t.Errorf("objectKeys: got %d keys, %v; want 40 unique keys", len(keys), err)
	}
}

// TestJSONLLineLimitBoundaries exercises lines around the read buffer's
// size, where a line arrives in several pieces, at and just over the limit.
func TestJSONLLineLimitBoundaries(t *testing.T) {
	for _, size := range []int{bufSize - 1, bufSize, bufSize + 1, 2*bufSize + 5} {
		for _, eol := range []string{"\n", "\r\n", ""} {
			for _, max := range []int{size, size - 1} {
				// A line of exactly size bytes: {"p":"xxx…"}
				line := `{"p":"` + strings.Repeat("x", size-8) + `"}`
				input := line + eol
				if eol != "" {
					input += `{"n":2}`
				}
				name := fmt.Sprintf("size %d eol %q max %d", size, eol, max)
				t.Run(name, func(t *testing.T) {
					r := newTestReader(t, input, "t.jsonl", Options{MaxLineBytes: max})
					rec, err := r.Read()
					if max >= size {
						if err != nil || !bytes.Equal(rec.Raw, []byte(line)) {
							t.Fatalf("Read: got %d-byte Raw, %v; want the %d-byte line", len(rec.Raw), err, size)
						}
					} else if !errors.Is(err, ErrLineTooLong) {
						t.Fatalf("Read: got %v, want ErrLineTooLong", err)
					}
					rec, err = r.Read()
					if eol == "" {
						if err != io.EOF {
							t.Fatalf("second Read: got %v, want io.EOF", err)
						}
						return
					}
					if err != nil || rec.Line != 2 || string(rec.Raw) != `{"n":2}` {
						t.Fatalf("second Read: got line %d %q, %v; want line 2 {\"n\":2}", rec.Line, rec.Raw, err)
					}
				})
			}
		}
	}
}

func TestScanString(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`""`, 2},
		{`"abc",`, 5},
		{`"a\"b"x`, 6},
		{`"a\\"x`, 5},
		{`"a\\\"b"`, 8},
		{`"\\\\"`, 6},
		{`"open`, -1},
		{`"open\"`, -1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := scanString([]byte(tt.in), 0); got != tt.want {
				t.Errorf("scanString(%s): got %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}
