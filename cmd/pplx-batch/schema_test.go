package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// structuredSchema has a string, an integer, a number, a boolean, an enum,
// an array of strings, a nested object and a date.
const structuredSchema = `{
  "type": "object",
  "required": ["ceo", "founded", "revenue", "public", "size", "sources", "hq"],
  "properties": {
    "ceo": {"type": "string"},
    "founded": {"type": "integer", "minimum": 1600, "maximum": 2026},
    "revenue": {"type": "number"},
    "public": {"type": "boolean"},
    "size": {"type": "string", "enum": ["small", "large"]},
    "sources": {"type": "array", "items": {"type": "string"}},
    "hq": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}, "country": {"type": "string"}}},
    "listed_on": {"type": "string", "format": "date"}
  }
}`

// structuredJob runs an agent job with the schema over n companies and
// returns the rows by row number and the errors file's lines.
func structuredJob(t *testing.T, n int, cfg sim.Config, extra ...string) ([]sink.Row, string) {
	t.Helper()
	ts, _ := startSim(t, cfg)
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(n))
	schema := writeFile(t, "company.json", structuredSchema)
	out := filepath.Join(dir, "out.jsonl")
	args := append([]string{"run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.company}}",
		"--schema", schema, "--base-url", ts.URL}, extra...)
	r := runMain(t, "", keyEnv(), args...)
	if r.code != exitOK && r.code != exitRowsFailed {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	slices.SortFunc(rows, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	errs, _ := readFileIfExists(filepath.Join(dir, "out.errors.jsonl"))
	return rows, errs
}

func compactString(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b.String()
}

func TestStructuredAnswers(t *testing.T) {
	const n = 300
	rows, _ := structuredJob(t, n, sim.Config{})
	if len(rows) != n {
		t.Fatalf("got %d rows, want %d", len(rows), n)
	}
	for _, r := range rows {
		want := sim.AgentJSONContent([]byte(structuredSchema), fmt.Sprintf("Company %d, Inc.", r.Row))
		if r.Status != sink.StatusOK || string(r.Data) != compactString(t, want) {
			t.Errorf("row %d: %s %s: data %s, want %s", r.Row, r.Status, r.Error, r.Data, want)
		}
	}
}

func TestStructuredAnswersAskedAgain(t *testing.T) {
	const n = 300
	cfg := sim.Config{Seed: 7, Agent: sim.AgentConfig{PInvalid: 0.1}}
	rows, errs := structuredJob(t, n, cfg, "--schema-retries", "1")
	var failed int
	for _, r := range rows {
		if r.Status == sink.StatusOK {
			continue
		}
		failed++
		input := fmt.Sprintf("Company %d, Inc.", r.Row)
		if !strings.HasPrefix(r.Error, "answer does not match the schema: ") {
			t.Errorf("row %d: error %q", r.Row, r.Error)
		}
		if r.Content != sim.AgentInvalidJSONContent([]byte(structuredSchema), input) || r.Data != nil && string(r.Data) != "null" {
			t.Errorf("row %d: content %q data %s; want the raw invalid answer and no data", r.Row, r.Content, r.Data)
		}
		if r.Attempts != 2 {
			t.Errorf("row %d: %d attempts, want 2 (one more ask)", r.Row, r.Attempts)
		}
	}
	// 10% invalid twice in a row: about 1% of the rows.
	if failed < 1 || failed > 9 {
		t.Errorf("%d of %d rows failed with --schema-retries 1; want about 1%%", failed, n)
	}
	if got := strings.Count(errs, "answer does not match the schema"); got != failed {
		t.Errorf("the errors file has %d schema failures, want %d", got, failed)
	}
	// The wrong type of the first property names it by its JSON pointer.
	if !strings.Contains(errs, `schema: /ceo: `) && !strings.Contains(errs, `schema: (root): not JSON`) {
		t.Errorf("no JSON pointer or parse failure in the errors file:\n%s", errs)
	}

	rows, _ = structuredJob(t, n, cfg, "--schema-retries", "3")
	for _, r := range rows {
		if r.Status != sink.StatusOK {
			t.Errorf("with --schema-retries 3, row %d failed: %s", r.Row, r.Error)
		}
	}
}

func TestSchemaErrorsCallNothing(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(3))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	tests := []struct {
		name, schema string
		want         []string
	}{
		{"root not an object", `{"type": "array", "items": {"type": "string"}}`, []string{"bad.json", "/type", "root must be an object"}},
		{"not JSON", "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}", []string{"bad.json:3:", "not JSON"}},
		{"unknown type", `{"type": "object", "properties": {"a": {"type": "text"}}}`, []string{"bad.json", "/properties/a/type", "must be one of"}},
		{"bad keyword", `{"type": "object", "required": "a"}`, []string{"bad.json", "/required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			schema := filepath.Join(t.TempDir(), "bad.json")
			writeFileAt(t, schema, tc.schema)
			r := runMain(t, "", keyEnv(), "run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.company}}",
				"--schema", schema, "--base-url", ts.URL)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}", "--schema", "x.json", "--base-url", ts.URL)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--schema does not apply to --mode search") {
		t.Errorf("search with --schema: exit %d:\n%s", r.code, r.stderr)
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}

func writeFileAt(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFileIfExists returns the file's content, or "" when it does not
// exist.
func readFileIfExists(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// TestPlanShowsDataColumns: plan prints the typed columns a schema makes,
// the response_format of the first request, and says which values are
// kept as JSON text.
func TestPlanShowsDataColumns(t *testing.T) {
	in := writeFile(t, "in.csv", companies(3))
	schema := writeFile(t, "s.json", `{"type":"object","required":["ceo"],"properties":{"ceo":{"type":"string"},
		"founded":{"type":"integer"},"on":{"type":"string","format":"date"},"x":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}`)
	r := runMain(t, "", nil, "plan", "--mode", "agent", "--input", in, "--output", filepath.Join(t.TempDir(), "o.parquet"),
		"--prompt", "{{.company}}", "--schema", schema)
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{`"response_format": {`, `"type": "json_schema"`, `"name": "s"`, "data.ceo STRING NOT NULL",
		"data.founded INT64", "data.on DATE", "data.x STRING (JSON text)", "warning: --schema: data.x has no column type"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, r.stdout)
		}
	}
}
