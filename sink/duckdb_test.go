package sink

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDuckDBReadsParquet checks that DuckDB reads a file of this package
// with the contract's column names, types and values. It needs node and a
// directory with node_modules/@duckdb/node-api, named by the environment
// variable PPLX_DUCKDB_NODE_DIR:
//
//	mkdir -p /tmp/duckdb && cd /tmp/duckdb && npm install --no-save @duckdb/node-api
//	PPLX_DUCKDB_NODE_DIR=/tmp/duckdb go test -run DuckDB ./sink/
func TestDuckDBReadsParquet(t *testing.T) {
	rows := sampleRows()
	rows[0].Input = json.RawMessage(`{"company":"Acme","n":3,"a,b":"comma","a.b":"dot","name":null,"o":{"k":[1,2]}}`)
	rows[1].Input = json.RawMessage(`{"company":"Ünïcødé 日本語","extra":"x","n":1.5}`)
	rows[2].Input = json.RawMessage(`{"a.b":"only dot"}`)
	rows[3].Input = json.RawMessage(`null`)
	name := createParquetFile(t, ParquetOptions{RowGroupRows: 3}, rows)

	got := duckdbRun(t, name,
		`SELECT input."a,b" AS ab, input."a.b" AS adotb, results[1].url AS url, usage.cost_usd AS cost, len(citations) AS n FROM FILE ORDER BY "row"`)

	wantDescribe := []struct{ Name, Type string }{
		{"id", "VARCHAR"},
		{"row", "BIGINT"},
		{"status", "VARCHAR"},
		{"error", "VARCHAR"},
		{"input", "STRUCT(...)"},
		{"input_extra", "VARCHAR"},
		{"http_status", "BIGINT"},
		{"attempts", "BIGINT"},
		{"latency_ms", "BIGINT"},
		{"request_id", "VARCHAR"},
		{"results", "STRUCT(title VARCHAR, url VARCHAR, snippet VARCHAR, date VARCHAR, last_updated VARCHAR)[]"},
		{"content", "VARCHAR"},
		{"citations", "VARCHAR[]"},
		{"search_results", "STRUCT(id BIGINT, title VARCHAR, url VARCHAR, date VARCHAR, snippet VARCHAR)[]"},
		{"usage", "STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, total_tokens BIGINT, cost_usd DOUBLE)"},
		{"model", "VARCHAR"},
	}
	if len(got.Describe) != len(wantDescribe) {
		t.Fatalf("DESCRIBE: got %d columns %v, want %d", len(got.Describe), got.Describe, len(wantDescribe))
	}
	for i, w := range wantDescribe {
		g := got.Describe[i]
		if w.Name == "input" {
			// DuckDB quotes field names by its own rules; the names and
			// their order are checked on the values below.
			if g.Name != "input" || !strings.HasPrefix(g.Type, "STRUCT(") || strings.Count(g.Type, "VARCHAR") != 6 {
				t.Errorf("column %d: got %s %s, want input STRUCT of 6 VARCHAR", i, g.Name, g.Type)
			}
			continue
		}
		if g != w {
			t.Errorf("column %d: got %s %s, want %s %s", i, g.Name, g.Type, w.Name, w.Type)
		}
	}

	if len(got.Rows) != len(rows) {
		t.Fatalf("got %d rows, want %d", len(got.Rows), len(rows))
	}
	wantInputs := [][]refMember{
		{{"company", []byte(`"Acme"`)}, {"n", []byte(`"3"`)}, {"a,b", []byte(`"comma"`)}, {"a.b", []byte(`"dot"`)}, {"name", []byte(`null`)}, {"o", []byte(`"{\"k\":[1,2]}"`)}},
		{{"company", []byte(`"Ünïcødé 日本語"`)}, {"n", []byte(`"1.5"`)}, {"a,b", []byte(`null`)}, {"a.b", []byte(`null`)}, {"name", []byte(`null`)}, {"o", []byte(`null`)}},
		{{"company", []byte(`null`)}, {"n", []byte(`null`)}, {"a,b", []byte(`null`)}, {"a.b", []byte(`"only dot"`)}, {"name", []byte(`null`)}, {"o", []byte(`null`)}},
		{{"company", []byte(`null`)}, {"n", []byte(`null`)}, {"a,b", []byte(`null`)}, {"a.b", []byte(`null`)}, {"name", []byte(`null`)}, {"o", []byte(`null`)}},
	}
	wantExtras := []any{nil, `{"extra":"x"}`, nil, nil}
	for i, raw := range got.Rows {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		inputRaw, err := json.Marshal(m["input"])
		if err != nil {
			t.Fatal(err)
		}
		// The key order of input as DuckDB returns it.
		var ordered struct {
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &ordered); err != nil {
			t.Fatal(err)
		}
		gotInput := refMembers(t, ordered.Input)
		if len(gotInput) != len(wantInputs[i]) {
			t.Errorf("row %d: input: got %s, want %d keys", i, inputRaw, len(wantInputs[i]))
		} else {
			for j, w := range wantInputs[i] {
				if gotInput[j].key != w.key || string(gotInput[j].value) != string(w.value) {
					t.Errorf("row %d: input member %d: got %q: %s, want %q: %s", i, j, gotInput[j].key, gotInput[j].value, w.key, w.value)
				}
			}
		}
		if m["input_extra"] != wantExtras[i] {
			t.Errorf("row %d: input_extra: got %#v, want %#v", i, m["input_extra"], wantExtras[i])
		}
		delete(m, "input")
		delete(m, "input_extra")
		want := duckJSON(wantParquet(rows[i]))
		if !reflect.DeepEqual(m, want) {
			t.Errorf("row %d:\n got %#v\nwant %#v", i, m, want)
		}
	}

	wantQuery := []map[string]any{
		{"ab": "comma", "adotb": "dot", "url": "https://acme.example/?a=1&b=2", "cost": nil, "n": nil},
		{"ab": nil, "adotb": nil, "url": nil, "cost": 0.0125, "n": "2"},
		{"ab": nil, "adotb": "only dot", "url": nil, "cost": nil, "n": "0"},
		{"ab": nil, "adotb": nil, "url": nil, "cost": nil, "n": nil},
	}
	if len(got.Queries) != 1 || !reflect.DeepEqual(got.Queries[0], wantQuery) {
		t.Errorf("query:\n got %#v\nwant %#v", got.Queries, wantQuery)
	}
}

// duckJSON converts a row as wantParquet builds it to what DuckDB's
// getRowObjectsJson prints, decoded by encoding/json: BIGINT as strings.
func duckJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = duckJSON(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = duckJSON(x)
		}
		return l
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return v
	}
}

// TestDuckDBReadsParquetData checks DuckDB's reading of the data column:
// its types, and the values of dataRowCases (the same values parquet-go
// reads back in TestParquetDataValues), so that two readers agree on the
// levels of nested lists, structs and nulls.
func TestDuckDBReadsParquetData(t *testing.T) {
	d, cases, rows := dataTestRows(t)
	name := createParquetFile(t, ParquetOptions{Data: d, RowGroupRows: 4}, rows)
	got := duckdbRun(t, name, `SELECT data FROM FILE ORDER BY "row"`,
		`SELECT data.name, data.n, data.day, data.people[1].who AS who, data.hq.geo.lat AS lat FROM FILE WHERE "row" = 1`)

	var dataType string
	for _, c := range got.Describe {
		if c.Name == "data" {
			dataType = c.Type
		}
	}
	const wantType = "STRUCT(\"name\" VARCHAR, n BIGINT, score DOUBLE, ok BOOLEAN, size VARCHAR, tags VARCHAR[], " +
		"people STRUCT(who VARCHAR, age BIGINT, roles VARCHAR[])[], grid BIGINT[][], \"day\" DATE, \"at\" TIMESTAMP WITH TIME ZONE, " +
		"hq STRUCT(city VARCHAR, geo STRUCT(lat DOUBLE, lon DOUBLE)), extra VARCHAR)"
	if dataType != wantType {
		t.Errorf("DESCRIBE data:\n got %s\nwant %s", dataType, wantType)
	}
	for i, tc := range cases {
		want := duckData(tc.want, "")
		if g := got.Queries[0][i]["data"]; !reflect.DeepEqual(g, want) {
			t.Errorf("%s: data\n got %#v\nwant %#v", tc.name, g, want)
		}
	}
	wantQuery := []map[string]any{{"name": "Acme ünï <&>", "n": "-42", "day": "2024-02-29", "who": "Ann", "lat": 48.85}}
	if !reflect.DeepEqual(got.Queries[1], wantQuery) {
		t.Errorf("query:\n got %#v\nwant %#v", got.Queries[1], wantQuery)
	}
}

// createParquetFile writes rows to the file out.parquet in a temporary
// folder and returns its name.
func createParquetFile(t *testing.T, opt ParquetOptions, rows []Row) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "out.parquet")
	w, err := CreateParquet(name, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// duckdbOutput is what testdata/duckdb_describe.mjs prints.
type duckdbOutput struct {
	Describe []struct{ Name, Type string }
	Rows     []json.RawMessage
	Queries  [][]map[string]any
}

// duckdbRun runs testdata/duckdb_describe.mjs on the file with the
// queries, in the time zone UTC; it skips the test when
// PPLX_DUCKDB_NODE_DIR is not set.
func duckdbRun(t *testing.T, file string, queries ...string) duckdbOutput {
	t.Helper()
	nodeDir := os.Getenv("PPLX_DUCKDB_NODE_DIR")
	if nodeDir == "" {
		t.Skip("PPLX_DUCKDB_NODE_DIR is not set")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("PPLX_DUCKDB_NODE_DIR is set but node is missing: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "duckdb_describe.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, append([]string{script, nodeDir, file}, queries...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var got duckdbOutput
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return got
}

// duckData converts a data value as parquet-go reads it back (see
// dataRowCases) to what DuckDB prints: BIGINT as a string, the DATE of
// the field day as YYYY-MM-DD, the TIMESTAMP of the field at as
// "YYYY-MM-DD hh:mm:ss[.ffffff]+00".
func duckData(v any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = duckData(x, k)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = duckData(x, key)
		}
		return l
	case int32:
		return time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly)
	case int64:
		if key == "at" {
			return time.UnixMicro(v).UTC().Format("2006-01-02 15:04:05.999999") + "+00"
		}
		return strconv.FormatInt(v, 10)
	}
	return v
}
