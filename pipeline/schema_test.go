package pipeline

import (
	"errors"
	"strings"
	"testing"
)

const testSchema = `{"type":"object","required":["name","n"],"additionalProperties":false,
 "properties":{"name":{"type":"string"},"n":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
 "when":{"type":"string","format":"date"},"o":{"type":"object","properties":{"k":{"enum":["a","b"]}}}}}`

func TestSchemaValidate(t *testing.T) {
	s, err := CompileSchema("dir/company.schema.json", []byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "company" {
		t.Errorf("name %q, want company", s.Name)
	}
	tests := []struct {
		name, answer     string
		want             string // compact JSON, when valid
		pointer, because string
	}{
		{"valid", `{"name": "Acme", "n": 3}`, `{"name":"Acme","n":3}`, "", ""},
		{"in a code fence", "```json\n{\"name\":\"Acme\",\"n\":3,\"tags\":[\"x\"]}\n```", `{"name":"Acme","n":3,"tags":["x"]}`, "", ""},
		{"wrong type", `{"name": 42, "n": 3}`, "", "/name", "want string"},
		{"missing required", `{"name": "x"}`, "", "", "missing property 'n'"},
		{"extra property", `{"name": "x", "n": 1, "z": 2}`, "", "", "additional properties 'z'"},
		{"nested enum", `{"name": "x", "n": 1, "o": {"k": "c"}}`, "", "/o/k", "must be one of"},
		{"array item", `{"name": "x", "n": 1, "tags": ["a", 2]}`, "", "/tags/1", "want string"},
		{"bad date", `{"name": "x", "n": 1, "when": "yesterday"}`, "", "/when", "date"},
		{"not JSON", `The CEO is Jane.`, "", "", "not JSON"},
		{"two values", `{"name":"x","n":1} {}`, "", "", "not JSON"},
		{"not an object", `[1]`, "", "", "want object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Validate(tc.answer)
			if tc.want != "" {
				if err != nil || string(got) != tc.want {
					t.Fatalf("got %s, %v; want %s", got, err, tc.want)
				}
				return
			}
			se, ok := errors.AsType[*SchemaError](err)
			if !ok {
				t.Fatalf("got %s, %v; want a *SchemaError", got, err)
			}
			if se.Pointer != tc.pointer || !strings.Contains(se.Reason, tc.because) {
				t.Errorf("got pointer %q reason %q; want %q and %q", se.Pointer, se.Reason, tc.pointer, tc.because)
			}
			if !strings.HasPrefix(se.Error(), "answer does not match the schema: ") {
				t.Errorf("error %q", se.Error())
			}
		})
	}
}

func TestCompileSchemaErrors(t *testing.T) {
	tests := []struct {
		name, schema string
		want         string
	}{
		{"not JSON", "{\n \"type\": \"object\",\n x}", "s.json:3:2: not JSON"},
		{"two values", `{"type":"object"} {}`, "more than one JSON value"},
		{"array root", `[]`, "must be a JSON object"},
		{"root type", `{"type":"string"}`, `s.json: /type: the root must be an object schema`},
		{"no root type", `{"properties":{}}`, `/type: the root must be an object schema`},
		{"unknown type", `{"type":"object","properties":{"a":{"type":"text"}}}`, "s.json: /properties/a/type: value must be one of"},
		{"bad minimum", `{"type":"object","properties":{"a":{"type":"integer","minimum":"1"}}}`, "/properties/a/minimum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileSchema("s.json", []byte(tc.schema))
			if _, ok := errors.AsType[*SchemaDefError](err); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want a *SchemaDefError saying %q", err, tc.want)
			}
		})
	}
}

// FuzzSchemaValidate feeds answers to a schema's validator: it never
// panics, and what it accepts is compact JSON that it accepts again.
func FuzzSchemaValidate(f *testing.F) {
	s, err := CompileSchema("s.json", []byte(testSchema))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`{"name":"a","n":1}`, "```json\n{\"name\":\"a\",\"n\":1}\n```", `{"name":1}`, `nope`, `{"name":"a","n":1e400}`, "\xff", `{"name":"a","n":1,"when":"2026-02-30"}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		got, err := s.Validate(answer)
		if err != nil {
			if _, ok := errors.AsType[*SchemaError](err); !ok {
				t.Fatalf("error %v is not a *SchemaError", err)
			}
			return
		}
		again, err := s.Validate(string(got))
		if err != nil || string(again) != string(got) {
			t.Fatalf("accepted %q as %s, then %s, %v", answer, got, again, err)
		}
	})
}
