package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestParseInput(t *testing.T) {
	type kv struct{ key, value string }
	tests := []struct {
		name    string
		in      string
		want    []kv
		wantErr error
	}{
		{"empty", ``, nil, nil},
		{"space", " \n\t", nil, nil},
		{"null", ` null `, nil, nil},
		{"empty object", `{}`, nil, nil},
		{"spaced object", " { \"a\" :\t\"b\" ,\n\"c\" : 1 } ", []kv{{"a", `"b"`}, {"c", "1"}}, nil},
		{"all kinds", `{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"a":[1,{"b":"]"}],"o":{"c":"}","d":[]}}`,
			[]kv{{"s", `"x"`}, {"n", "-1.5e+3"}, {"t", "true"}, {"f", "false"}, {"z", "null"}, {"a", `[1,{"b":"]"}]`}, {"o", `{"c":"}","d":[]}`}}, nil},
		{"escaped key", `{"a\"b\\c\u00e9":"v"}`, []kv{{"a\"b\\cé", `"v"`}}, nil},
		{"escaped quotes in values", `{"a":"x\"}","b":["\"]"]}`, []kv{{"a", `"x\"}"`}, {"b", `["\"]"]`}}, nil},
		{"repeated key", `{"a":1,"a":2}`, []kv{{"a", "1"}, {"a", "2"}}, nil},
		{"empty key", `{"":""}`, []kv{{"", `""`}}, nil},
		{"array", `[{"a":1}]`, nil, errInputObject},
		{"string", `"{}"`, nil, errInputObject},
		{"number", `1`, nil, errInputObject},
		{"truncated", `{"a":1`, nil, errInputJSON},
		{"two values", `{} {}`, nil, errInputJSON},
		{"bare word", `{a:1}`, nil, errInputJSON},
		{"trailing comma", `{"a":1,}`, nil, errInputJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInput([]byte(tt.in), nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			var kvs []kv
			for _, m := range got {
				kvs = append(kvs, kv{string(m.key), string(m.value)})
			}
			if !reflect.DeepEqual(kvs, tt.want) {
				t.Errorf("got %q, want %q", kvs, tt.want)
			}
		})
	}
}

func TestInputValue(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{`"plain"`, "plain", true},
		{`""`, "", true},
		{`"a\nb\u0041"`, "a\nbA", true},
		{`null`, "", false},
		{`12.0`, "12.0", true},
		{`[1, 2]`, "[1, 2]", true},
		{`{"a":null}`, `{"a":null}`, true},
		{"\"\xff\"", "\uFFFD", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, ok := inputValue([]byte(tt.raw))
			if string(got) != tt.want || ok != tt.wantOK {
				t.Errorf("got %q, %v, want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// refMember is a member of a JSON object as encoding/json sees it.
type refMember struct {
	key   string
	value []byte
}

// refMembers decodes the members of the valid JSON object data with
// encoding/json.
func refMembers(t *testing.T, data []byte) []refMember {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("reference: got %v, %v, want {", tok, err)
	}
	var ms []refMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference: key: %v", err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("reference: value: %v", err)
		}
		ms = append(ms, refMember{key: tok.(string), value: raw})
	}
	if _, err := dec.Token(); err != nil {
		t.Fatalf("reference: end: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("reference: got %v after the object, want EOF", err)
	}
	return ms
}

func FuzzParseInput(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `{"a":"b"}`, ` {"a" : [1, {"b": "}"}], "c\"": null } `,
		`{"a":1,"a":2}`, `[1]`, `"x"`, `{"a":`, `{"\u00e9":"\ud83d\ude80"}`, "{\"\xff\":\"\xfe\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseInput(data, nil)
		trimmed := bytes.TrimSpace(data)
		isEmpty := len(trimmed) == 0 || string(trimmed) == "null"
		isObject := json.Valid(trimmed) && len(trimmed) > 0 && trimmed[0] == '{'
		switch {
		case isEmpty:
			if err != nil || len(got) != 0 {
				t.Fatalf("empty input: got %v, %v, want no members", got, err)
			}
			return
		case !isObject:
			if err == nil {
				t.Fatalf("got no error for %q, want one", data)
			}
			return
		case err != nil:
			t.Fatalf("got %v for the valid object %q", err, data)
		}
		want := refMembers(t, trimmed)
		if len(got) != len(want) {
			t.Fatalf("got %d members, want %d", len(got), len(want))
		}
		for i, m := range got {
			if string(m.key) != want[i].key {
				t.Errorf("member %d: got key %q, want %q", i, m.key, want[i].key)
			}
			var k string
			if err := json.Unmarshal(m.rawKey, &k); err != nil || k != want[i].key {
				t.Errorf("member %d: raw key %q decodes to %q, %v, want %q", i, m.rawKey, k, err, want[i].key)
			}
			if !bytes.Equal(m.value, want[i].value) {
				t.Errorf("member %d: got value %q, want %q", i, m.value, want[i].value)
			}
		}
	})
}

// FuzzParquetInput writes a row with a fixed input and one with the fuzzed
// input and checks what reads back: values of the schema's keys, the other
// keys in input_extra, or ErrInvalidRow, and never a panic.
func FuzzParquetInput(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","b":2}`, `{"c":[1,2],"a":null,"c":{"d":1}}`, `{}`, `null`, `[]`, `{"a":`,
		`{"":"","a,b":"c","a.b":"d"}`, `{"b":"\u00e9","z":"\ud83d\ude80"}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		w, err := NewParquet(&buf, ParquetOptions{Compression: "none"})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(Row{Row: 1, Input: json.RawMessage(`{"a":"1","b":"2"}`)}); err != nil {
			t.Fatal(err)
		}
		werr := w.Write(Row{Row: 2, Input: json.RawMessage(data)})
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rows := readParquet(t, buf.Bytes()).rows
		if werr != nil {
			if !errors.Is(werr, ErrInvalidRow) {
				t.Fatalf("Write: got %v, want nil or ErrInvalidRow", werr)
			}
			if len(rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(rows))
			}
			return
		}
		if len(rows) != 2 {
			t.Fatalf("got %d rows, want 2", len(rows))
		}
		input, extra := splitInput(rows[1])
		for k, v := range input {
			if s, ok := v.(string); ok && !utf8.ValidString(s) {
				t.Errorf("input %q: invalid UTF-8 %q", k, s)
			}
		}
		if s, ok := extra.(string); ok && (!utf8.ValidString(s) || !json.Valid([]byte(s))) {
			t.Errorf("input_extra %q: want valid UTF-8 JSON", s)
		}
		if !utf8.Valid(data) {
			return // the replacement of invalid UTF-8 is not compared
		}

		// What the row should hold, from encoding/json.
		wantInput := map[string]any{"a": nil, "b": nil}
		var wantExtra []refMember
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) > 0 && string(trimmed) != "null" {
			for _, m := range refMembers(t, trimmed) {
				if _, ok := wantInput[m.key]; ok {
					wantInput[m.key] = nil
					if string(m.value) != "null" {
						var s string
						if json.Unmarshal(m.value, &s) != nil {
							s = string(m.value)
						}
						wantInput[m.key] = s
					}
					continue
				}
				found := false
				for i := range wantExtra {
					if wantExtra[i].key == m.key {
						wantExtra[i].value, found = m.value, true
					}
				}
				if !found {
					wantExtra = append(wantExtra, m)
				}
			}
		}
		if !reflect.DeepEqual(input, wantInput) {
			t.Errorf("input: got %#v, want %#v", input, wantInput)
		}
		if len(wantExtra) == 0 {
			if extra != nil {
				t.Errorf("input_extra: got %#v, want nil", extra)
			}
			return
		}
		s, _ := extra.(string)
		if s == "" {
			t.Fatalf("input_extra: got %#v, want %d keys", extra, len(wantExtra))
		}
		gotExtra := refMembers(t, []byte(s))
		if len(gotExtra) != len(wantExtra) {
			t.Fatalf("input_extra: got %d keys, want %d", len(gotExtra), len(wantExtra))
		}
		for i := range gotExtra {
			if gotExtra[i].key != wantExtra[i].key || !bytes.Equal(gotExtra[i].value, wantExtra[i].value) {
				t.Errorf("input_extra member %d: got %q: %s, want %q: %s", i, gotExtra[i].key, gotExtra[i].value, wantExtra[i].key, wantExtra[i].value)
			}
		}
	})
}
