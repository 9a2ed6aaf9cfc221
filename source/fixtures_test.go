package source

import (
	"path/filepath"
	"testing"
)

// TestFixtures reads the shared fixtures in the repository's
// testdata/input, which the command's tests use too.
func TestFixtures(t *testing.T) {
	dir := filepath.Join("..", "testdata", "input")
	tests := []struct {
		file string
		want []string
	}{
		{"quoted.csv", []string{
			`1@2 {"id":"1","company":"Acme, Inc.","question":"Where is \"Acme\" headquartered?"}`,
			`2@3 {"id":"2","company":"Globex","question":"Multi-line\nquestion"}`,
			`3@5 {"id":"3","company":"Initech","question":"plain"}`,
		}},
		{"ragged.csv", []string{
			`1@2 {"id":"1","company":"Acme","country":"US"}`,
			`2@3 error: source: ragged.csv:3:3: wrong number of fields (got 2, want 3)`,
			`3@4 error: source: ragged.csv:4:14: wrong number of fields (got 4, want 3)`,
			`4@5 {"id":"4","company":"Umbrella \"Corp\"","country":"UK"}`,
			`5@6 error: source: ragged.csv:6:6: bare " in non-quoted-field`,
			`6@7 {"id":"6","company":"Hooli","country":"US"}`,
		}},
		{"bad.jsonl", []string{
			`1@1 {"id":1,"q":"first"}`,
			`2@3 error: source: bad.jsonl:3:22: invalid character '}' looking for beginning of object key string`,
			`3@4 error: source: bad.jsonl:4:1: not a JSON object (found array)`,
			`4@5 error: source: bad.jsonl:5:22: invalid character 't' after top-level value`,
			`5@6 {"id":4,"nested":{"b":1,"a":2},"q":"fourth"}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Chdir(dir) // for short names in the messages
			r, err := Open(tt.file, Options{})
			if err != nil {
				t.Fatalf("Open: got %v, want nil", err)
			}
			defer r.Close()
			diffLines(t, readAll(t, r), tt.want)
		})
	}
}
