package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
	t.Logf("%d of %d rows failed with --schema-retries 1", failed, n)
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

// runStructured runs an agent job with structuredSchema over n companies
// into the output file name (its extension picks the format) and returns
// its path.
func runStructured(t *testing.T, n int, name string) string {
	t.Helper()
	ts, _ := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(n))
	schema := writeFile(t, "company.json", structuredSchema)
	out := filepath.Join(t.TempDir(), name)
	r := runMain(t, "", keyEnv(), "run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.company}}",
		"--schema", schema, "--concurrency", "8", "--base-url", ts.URL)
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	return out
}

// decodeJSON decodes s into plain Go values (numbers as float64).
func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// TestStructuredParquet checks the typed data column of a 300-row agent
// job: its layout, and every row's value equal to the server's answer, as
// parquet-go reads it and, with PPLX_DUCKDB_NODE_DIR, as DuckDB does.
func TestStructuredParquet(t *testing.T) {
	const n = 300
	out := runStructured(t, n, "out.parquet")
	rows := readParquetMaps(t, out)
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	for _, m := range rows {
		row := m["row"].(int64)
		want := decodeJSON(t, sim.AgentJSONContent([]byte(structuredSchema), fmt.Sprintf("Company %d, Inc.", row))).(map[string]any)
		data, ok := m["data"].(map[string]any)
		if !ok {
			t.Fatalf("row %d: data %#v", row, m["data"])
		}
		// parquet-go gives INT64 as int64 and DATE as days since 1970.
		got := map[string]any{}
		for k, v := range data {
			switch v := v.(type) {
			case int64:
				got[k] = float64(v)
			case int32:
				got[k] = time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly)
			default:
				got[k] = v
			}
		}
		if _, ok := want["listed_on"]; !ok {
			want["listed_on"] = nil
		}
		if hq := want["hq"].(map[string]any); hq["country"] == nil {
			hq["country"] = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row %d: data\n got %#v\nwant %#v", row, got, want)
		}
	}

	if os.Getenv("PPLX_DUCKDB_NODE_DIR") == "" {
		return
	}
	desc := duckdbQuery(t, out, "SELECT column_type FROM (DESCRIBE SELECT data FROM FILE)")
	const wantType = `STRUCT(ceo VARCHAR, founded BIGINT, revenue DOUBLE, public BOOLEAN, size VARCHAR, ` +
		`sources VARCHAR[], hq STRUCT(city VARCHAR, country VARCHAR), listed_on DATE)`
	if len(desc) != 1 || desc[0]["column_type"] != wantType {
		t.Errorf("DESCRIBE data: %v\nwant %s", desc, wantType)
	}
	typed := duckdbQuery(t, out, `SELECT input.company, data.ceo, data.founded, typeof(data.founded) AS t FROM FILE WHERE "row" = 7`)
	want := decodeJSON(t, sim.AgentJSONContent([]byte(structuredSchema), "Company 7, Inc.")).(map[string]any)
	if len(typed) != 1 || typed[0]["company"] != "Company 7, Inc." || typed[0]["ceo"] != want["ceo"] ||
		fmt.Sprint(typed[0]["founded"]) != fmt.Sprint(want["founded"]) || typed[0]["t"] != "BIGINT" {
		t.Errorf("SELECT input.company, data.ceo, data.founded: %v; want ceo %v founded %v", typed, want["ceo"], want["founded"])
	}
	all := duckdbQuery(t, out, `SELECT "row", to_json(data)::VARCHAR AS d FROM FILE ORDER BY "row"`)
	if len(all) != n {
		t.Fatalf("duckdb: %d rows, want %d", len(all), n)
	}
	for _, r := range all {
		row := fmt.Sprint(r["row"])
		want := decodeJSON(t, sim.AgentJSONContent([]byte(structuredSchema), "Company "+row+", Inc.")).(map[string]any)
		got := decodeJSON(t, r["d"].(string)).(map[string]any)
		if got["listed_on"] == nil {
			delete(got, "listed_on")
		}
		if hq := got["hq"].(map[string]any); hq["country"] == nil {
			delete(hq, "country")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("duckdb row %s: data\n got %v\nwant %v", row, got, want)
		}
	}
}

// TestStructuredCSV checks the answer columns of a CSV output with a
// schema: one per top-level property, strings as they are, the rest as
// JSON text.
func TestStructuredCSV(t *testing.T) {
	const n = 30
	out := runStructured(t, n, "out.csv")
	got, err := csv.NewReader(strings.NewReader(readFile(t, out))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	props := []string{"ceo", "founded", "revenue", "public", "size", "sources", "hq", "listed_on"}
	wantHeader := slices.Concat([]string{"company_id", "company", "country", "status", "error"}, props)
	if !slices.Equal(got[0], wantHeader) {
		t.Fatalf("header %q, want %q", got[0], wantHeader)
	}
	if len(got) != n+1 {
		t.Fatalf("%d rows, want %d", len(got)-1, n)
	}
	for i, rec := range got[1:] {
		company := fmt.Sprintf("Company %d, Inc.", i+1)
		if !slices.Equal(rec[:5], []string{fmt.Sprintf("C%03d", i+1), company, "DE", "ok", ""}) {
			t.Errorf("row %d: %q", i+1, rec[:5])
		}
		var answer map[string]json.RawMessage
		if err := json.Unmarshal([]byte(sim.AgentJSONContent([]byte(structuredSchema), company)), &answer); err != nil {
			t.Fatal(err)
		}
		for j, p := range props {
			want := ""
			if v, ok := answer[p]; ok {
				want = compactString(t, string(v))
				var s string
				if json.Unmarshal(v, &s) == nil {
					want = s
				}
			}
			if rec[5+j] != want {
				t.Errorf("row %d %s: %q, want %q", i+1, p, rec[5+j], want)
			}
		}
	}
}

// TestStructuredOutputsResumed fails a share of the rows (invalid answers,
// no asking again), then resumes against a server that answers well: the
// Parquet and CSV outputs, written from the journal, hold every row's
// data.
func TestStructuredOutputsResumed(t *testing.T) {
	const n = 20
	bad, _ := startSim(t, sim.Config{Seed: 3, Agent: sim.AgentConfig{PInvalid: 0.5}})
	good, _ := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(n))
	schema := writeFile(t, "company.json", structuredSchema)
	dir := t.TempDir()
	for _, name := range []string{"out.parquet", "out.csv"} {
		out := filepath.Join(dir, name)
		run := func(base string) result {
			return runMain(t, "", keyEnv(), "run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.company}}",
				"--schema", schema, "--schema-retries", "0", "--base-url", base)
		}
		if r := run(bad.URL); r.code != exitRowsFailed {
			t.Fatalf("%s: exit %d, want some rows failed; stderr:\n%s", name, r.code, r.stderr)
		}
		if r := run(good.URL); r.code != exitOK {
			t.Fatalf("%s: resume: exit %d; stderr:\n%s", name, r.code, r.stderr)
		}
		var ceos []string
		if name == "out.parquet" {
			rows := readParquetMaps(t, out)
			slices.SortFunc(rows, func(a, b map[string]any) int { return int(a["row"].(int64) - b["row"].(int64)) })
			for _, m := range rows {
				data, _ := m["data"].(map[string]any)
				ceo, _ := data["ceo"].(string)
				ceos = append(ceos, ceo)
			}
		} else {
			recs, err := csv.NewReader(strings.NewReader(readFile(t, out))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs[1:] {
				ceos = append(ceos, rec[5])
			}
		}
		if len(ceos) != n {
			t.Fatalf("%s: %d rows, want %d", name, len(ceos), n)
		}
		for i, ceo := range ceos {
			company := fmt.Sprintf("Company %d, Inc.", i+1)
			var want struct{ CEO string }
			if err := json.Unmarshal([]byte(sim.AgentJSONContent([]byte(structuredSchema), company)), &want); err != nil {
				t.Fatal(err)
			}
			if ceo != want.CEO {
				t.Errorf("%s row %d: ceo %q, want %q", name, i+1, ceo, want.CEO)
			}
		}
	}
}

// TestInlineSchemaKeepsOrder gives the schema inline in a YAML job file,
// its properties out of alphabetical order: the data columns come in the
// file's order, as with a schema file.
func TestInlineSchemaKeepsOrder(t *testing.T) {
	in := writeFile(t, "in.csv", companies(3))
	cfg := writeFile(t, "job.yaml", `mode: agent
prompt: "{{.company}}"
schema:
  type: object
  required: [ceo]
  properties:
    name_: {type: string}
    ceo: {type: string}
    zip: &num {type: integer}
    founded: *num
    address:
      type: object
      properties: {street: {type: string}, city: {type: string}}
`)
	r := runMain(t, "", nil, "plan", "--config", cfg, "--input", in, "--output", filepath.Join(t.TempDir(), "o.parquet"))
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var at []int
	for _, col := range []string{"data.name_ STRING", "data.ceo STRING NOT NULL", "data.zip INT64", "data.founded INT64",
		"data.address.street STRING", "data.address.city STRING"} {
		i := strings.Index(r.stdout, col)
		if i < 0 {
			t.Fatalf("plan does not show %q:\n%s", col, r.stdout)
		}
		at = append(at, i)
	}
	if !slices.IsSorted(at) {
		t.Errorf("the data columns are not in the job file's order:\n%s", r.stdout)
	}
	bad := writeFile(t, "bad.yaml", "schema:\n  type: object\n  properties: {a: {type: string}, a: {type: integer}}\n")
	r = runMain(t, "", nil, "plan", "--config", bad, "--mode", "agent", "--prompt", "{{.company}}", "--input", in, "--output", filepath.Join(t.TempDir(), "o.parquet"))
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad.yaml") {
		t.Errorf("a key given twice: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
