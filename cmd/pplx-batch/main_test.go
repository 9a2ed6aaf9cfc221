package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testKey = "pplx-secret-test-key-4242"

type result struct {
	code           int
	stdout, stderr string
}

// runMain runs the command in-process with the given environment.
func runMain(t *testing.T, stdin string, envv map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return envv[k] },
	})
	return result{code, out.String(), errb.String()}
}

func startSim(t *testing.T, cfg sim.Config) (*httptest.Server, *sim.Server) {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey
	}
	s := sim.New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s
}

func keyEnv() map[string]string { return map[string]string{"PERPLEXITY_API_KEY": testKey} }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func companies(n int) string {
	var b strings.Builder
	b.WriteString("company_id,company,country\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "C%03d,\"Company %d, Inc.\",DE\n", i, i)
	}
	return b.String()
}

func readJSONL[T any](t *testing.T, data string) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("bad JSONL line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSearchCSVToParquet(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "companies.csv", companies(30))
	out := filepath.Join(t.TempDir(), "out.parquet")
	r := runMain(t, "", keyEnv(), "run", "--mode", "search", "--input", in, "--output", out,
		"--query", "{{.company}} headquarters", "--id", "company_id", "--max-results", "4", "--base-url", ts.URL)
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "30 rows: 30 ok, 0 failed") {
		t.Errorf("summary line missing from stderr:\n%s", r.stderr)
	}
	pf, close := openParquet(t, out)
	defer close()
	var names []string
	for _, c := range pf.Schema().Fields() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"id", "row", "status", "error", "input", "http_status", "attempts", "latency_ms",
		"request_id", "results", "content", "citations", "search_results", "usage"} {
		if !slices.Contains(names, want) {
			t.Errorf("parquet column %q missing; have %v", want, names)
		}
	}
	seen := map[int64]bool{}
	for _, m := range readParquetMaps(t, out) {
		row := m["row"].(int64)
		seen[row] = true
		q := fmt.Sprintf("Company %d, Inc. headquarters", row)
		want := sim.SearchResults(pplx.Query{q}, 4)
		results := m["results"].([]any)
		if m["status"] != "ok" || m["id"] != fmt.Sprintf("C%03d", row) || len(results) != 4 {
			t.Fatalf("row %d: %v", row, m)
		}
		first := results[0].(map[string]any)
		if first["title"] != want[0].Title || first["url"] != want[0].URL {
			t.Errorf("row %d: first result %v, want %+v", row, first, want[0])
		}
		input := m["input"].(map[string]any)
		if input["company"] != fmt.Sprintf("Company %d, Inc.", row) {
			t.Errorf("row %d: input %v", row, input)
		}
	}
	if len(seen) != 30 {
		t.Errorf("got %d distinct rows, want 30", len(seen))
	}
	if got := srv.Stats().Answered; got != 30 {
		t.Errorf("server answered %d requests, want 30", got)
	}
	if _, err := os.Stat(defaultErrorsPath(out)); !os.IsNotExist(err) {
		t.Errorf("a run without failures left an errors file (stat: %v)", err)
	}
}

func TestChatJSONL(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			ts, _ := startSim(t, sim.Config{})
			var in strings.Builder
			for i := 1; i <= 15; i++ {
				fmt.Fprintf(&in, `{"qid":"Q%02d","question":"How tall is tower %d?","n":%d}`+"\n", i, i, i)
			}
			inPath := writeFile(t, "q.jsonl", in.String())
			out := filepath.Join(t.TempDir(), "answers.jsonl")
			args := []string{"run", "--mode", "chat", "--input", inPath, "--output", out, "--id", "qid",
				"--prompt", "{{.question}}", "--model", "sonar-pro", "--base-url", ts.URL}
			if stream {
				args = append(args, "--stream")
			}
			r := runMain(t, "", keyEnv(), args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			rows := readJSONL[sink.Row](t, readFile(t, out))
			if len(rows) != 15 {
				t.Fatalf("got %d rows, want 15", len(rows))
			}
			for _, row := range rows {
				q := fmt.Sprintf("How tall is tower %d?", row.Row)
				want := sim.ChatContent("sonar-pro", []pplx.Message{{Role: "user", Content: q}})
				if row.Content != want || row.ID != fmt.Sprintf("Q%02d", row.Row) {
					t.Errorf("row %d: id %q content %q, want %q", row.Row, row.ID, row.Content, want)
				}
				if len(row.SearchResults) == 0 || row.Usage == nil || row.Usage.CostUSD == nil {
					t.Errorf("row %d: search_results %d usage %+v; want both filled", row.Row, len(row.SearchResults), row.Usage)
				}
			}
		})
	}
}

func TestStdinToStdout(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	stdin := "{\"q\":\"alpha\"}\n\n{\"q\":\"beta\"}\n"
	r := runMain(t, stdin, keyEnv(), "run", "--input", "-", "--input-format", "jsonl", "--output", "-",
		"--query", "{{.q}}", "--base-url", ts.URL, "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, r.stdout)
	if len(rows) != 2 {
		t.Fatalf("got %d rows on stdout, want 2:\n%s", len(rows), r.stdout)
	}
	for _, row := range rows {
		want := map[int64]string{1: "alpha", 2: "beta"}[row.Row]
		if row.Status != "ok" || len(row.Results) == 0 || !strings.Contains(row.Results[0].Title, want) {
			t.Errorf("row %d: %+v", row.Row, row)
		}
	}
	if strings.Contains(r.stdout, "run started") {
		t.Error("logs leaked into stdout")
	}
}

func TestMalformedInputRowsFail(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	in := writeFile(t, "bad.csv", "id,q\n1,alpha\n2,beta,extra\n3,\"gamma\n")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.q}}", "--base-url", ts.URL)
	if r.code != exitRowsFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitRowsFailed, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	slices.SortFunc(rows, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	if len(rows) != 3 || rows[0].Status != "ok" || rows[1].Status != "error" || rows[2].Status != "error" {
		t.Fatalf("rows: %+v", rows)
	}
	if !strings.Contains(rows[1].Error, "bad.csv:3") {
		t.Errorf("row 2 error %q does not name the file and line", rows[1].Error)
	}
	errRows := readJSONL[map[string]any](t, readFile(t, filepath.Join(dir, "out.errors.jsonl")))
	if len(errRows) != 2 {
		t.Fatalf("errors file holds %d rows, want 2", len(errRows))
	}
	for _, k := range []string{"id", "row", "input", "error", "http_status", "attempts", "request_id"} {
		if _, ok := errRows[0][k]; !ok {
			t.Errorf("errors-file row lacks %q: %v", k, errRows[0])
		}
	}
	if !strings.Contains(r.stderr, "failed rows in") {
		t.Errorf("summary does not point at the errors file:\n%s", r.stderr)
	}
}

func TestUsageErrorsCallNothing(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(3))
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	badCfg := writeFile(t, "job.yaml", "mode: search\nquery: '{{.company}}'\ncolour: blue\n")
	typoCfg := writeFile(t, "job.yaml", "concurrency: many\n")
	base := []string{"run", "--base-url", ts.URL}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no input", keyEnv(), []string{"--output", out, "--query", "x"}, "--input is required"},
		{"no output", keyEnv(), []string{"--input", in, "--query", "x"}, "--output is required"},
		{"bad mode", keyEnv(), []string{"--input", in, "--output", out, "--mode", "sonar", "--query", "x"}, "--mode must be search, agent or chat"},
		{"query in agent mode", keyEnv(), []string{"--input", in, "--output", out, "--mode", "agent", "--query", "x", "--prompt", "x"}, "--query does not apply to --mode agent"},
		{"no query", keyEnv(), []string{"--input", in, "--output", out}, "--query is required"},
		{"prompt in search mode", keyEnv(), []string{"--input", in, "--output", out, "--prompt", "x"}, "--prompt does not apply to --mode search"},
		{"bad template", keyEnv(), []string{"--input", in, "--output", out, "--query", "{{.company"}, "--query"},
		{"missing column", keyEnv(), []string{"--input", in, "--output", out, "--query", "{{.name}}"}, "company_id, company, country"},
		{"missing id column", keyEnv(), []string{"--input", in, "--output", out, "--query", "{{.company}}", "--id", "nope"}, `--id "nope"`},
		{"unknown output format", keyEnv(), []string{"--input", in, "--output", filepath.Join(dir, "out.txt"), "--query", "x"}, "cannot tell the format"},
		{"missing input file", keyEnv(), []string{"--input", filepath.Join(dir, "nope.csv"), "--output", out, "--query", "x"}, "nope.csv"},
		{"stdin without format", keyEnv(), []string{"--input", "-", "--output", out, "--query", "x"}, "--input-format"},
		{"parquet to stdout", keyEnv(), []string{"--input", in, "--output", "-", "--output-format", "parquet", "--query", "x"}, "--output-format parquet needs an output file"},
		{"no key", nil, []string{"--input", in, "--output", out, "--query", "x"}, "PERPLEXITY_API_KEY"},
		{"unknown flag", keyEnv(), []string{"--input", in, "--output", out, "--query", "x", "--colour", "blue"}, "colour"},
		{"unknown config key", keyEnv(), []string{"--config", badCfg, "--input", in, "--output", out}, "job.yaml:3: unknown key \"colour\""},
		{"bad config value", keyEnv(), []string{"--config", typoCfg, "--input", in, "--output", out, "--query", "x"}, "job.yaml:1: key concurrency"},
		{"bad timeout", keyEnv(), []string{"--input", in, "--output", out, "--query", "x", "--timeout", "0s"}, "--timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, "", tc.env, append(slices.Clone(base), tc.args...)...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, r.stderr)
			}
		})
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a usage error left an output file (stat: %v)", err)
	}
}

func TestConfigFile(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(4))
	cfg := writeFile(t, "job.yaml", fmt.Sprintf(`# a job file
mode: search
input: %s
output: ${OUT_DIR}/from-config.jsonl
query: "{{.company}} ceo"
max_results: 2
search_domain_filter: [example.com, -spam.com]
base_url: %s
`, in, ts.URL))
	env := keyEnv()
	env["OUT_DIR"] = dir
	// --max-results on the command line wins over the file.
	r := runMain(t, "", env, "run", "--config", cfg, "--max-results", "3")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, filepath.Join(dir, "from-config.jsonl")))
	if len(rows) != 4 {
		t.Fatalf("got %d rows, want 4", len(rows))
	}
	for _, row := range rows {
		if len(row.Results) != 3 || !strings.HasSuffix(row.Results[0].Title, "ceo - result 1") {
			t.Errorf("row %d: %d results, first %+v", row.Row, len(row.Results), row.Results)
		}
	}
}

func TestWrongKeyAbortsWithoutLeakingIt(t *testing.T) {
	// The server expects another key: the run stops after the requests
	// already in flight, exits 3 with the API's message, and the key we
	// sent appears in none of the outputs.
	ts, srv := startSim(t, sim.Config{Key: "the-servers-key"})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(300))
	out := filepath.Join(dir, "out.jsonl")
	summary := filepath.Join(dir, "summary.json")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}", "--concurrency", "4",
		"--base-url", ts.URL, "--summary", summary, "--log-level", "debug", "--log-format", "json")
	if r.code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
	}
	if !strings.Contains(r.stderr, "Invalid API key provided") || !strings.Contains(r.stderr, "resume") {
		t.Errorf("stderr lacks the API's message or the resume hint:\n%s", r.stderr)
	}
	if n := srv.Stats().Requests; n > 4 {
		t.Errorf("the server saw %d requests, want at most the 4 in flight", n)
	}
	files := map[string]string{"stdout": r.stdout, "stderr": r.stderr}
	for _, p := range []string{out, summary, out + ".journal"} {
		files[p] = readFile(t, p)
	}
	for name, content := range files {
		if strings.Contains(content, testKey) {
			t.Errorf("%s contains the API key", name)
		}
	}
}

func TestSummaryJSON(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	dir := t.TempDir()
	in := writeFile(t, "in.jsonl", "{\"q\":\"a\"}\n{\"q\":\"b\"}\nnot json\n")
	sumPath := filepath.Join(dir, "s.json")
	r := runMain(t, "", keyEnv(), "run", "--mode", "chat", "--input", in, "--output", filepath.Join(dir, "o.jsonl"),
		"--prompt", "{{.q}}", "--base-url", ts.URL, "--summary", sumPath)
	if r.code != exitRowsFailed {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var s summary
	if err := json.Unmarshal([]byte(readFile(t, sumPath)), &s); err != nil {
		t.Fatal(err)
	}
	if s.Rows.Total != 3 || s.Rows.OK != 2 || s.Rows.Failed != 1 || s.Requests.Total != 2 || s.ExitCode != exitRowsFailed ||
		s.Tokens.Total == 0 || s.CostUSD <= 0 {
		t.Errorf("summary %+v", s)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(readFile(t, sumPath)), &raw)
	for _, k := range []string{"rows", "requests", "latency_ms", "throughput_rows_per_s", "tokens", "cost_usd", "wall_s", "exit_code"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("summary lacks key %q", k)
		}
	}
}

// TestGoldenSearchOutput compares a whole JSONL output, with the fields
// that vary between runs blanked, with testdata/golden/search.jsonl.
func TestGoldenSearchOutput(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", "../../testdata/input/quoted.csv", "--output", out,
		"--query", `{{index . "company"}}: {{.question}}`, "--max-results", "2", "--base-url", ts.URL)
	if r.code != exitOK && r.code != exitRowsFailed {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	slices.SortFunc(rows, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, row := range rows {
		row.LatencyMS, row.RequestID = 0, ""
		if err := enc.Encode(row); err != nil {
			t.Fatal(err)
		}
	}
	golden := "../../testdata/golden/search.jsonl"
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", golden, b.String(), want)
	}
}

func TestVersionAndHelp(t *testing.T) {
	if r := runMain(t, "", nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "pplx-batch ") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
	r := runMain(t, "", nil, "run", "--help")
	if r.code != 0 {
		t.Errorf("run --help: exit %d", r.code)
	}
	for _, want := range []string{"--input", "--output", "--mode", "--query", "--prompt", "--model", "--stream", "--id",
		"--concurrency", "--rpm", "--rps", "--max-retries", "--timeout", "--base-url", "--errors", "--summary",
		"--api-key-file", "Exit codes", "PERPLEXITY_API_KEY"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("run --help does not mention %s", want)
		}
	}
	if r := runMain(t, "", nil, "frobnicate"); r.code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", r.code, exitUsage)
	}
	if r := runMain(t, "", nil); r.code != exitUsage {
		t.Errorf("no command: exit %d, want %d", r.code, exitUsage)
	}
}

func TestInterruptedRunKeepsFinishedRows(t *testing.T) {
	ts, _ := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(5))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // interrupted before it starts: nothing is lost, the output is valid
	var o, e bytes.Buffer
	code := Main(ctx, []string{"run", "--input", in, "--output", out, "--query", "{{.company}}", "--base-url", ts.URL},
		env{stdin: strings.NewReader(""), stdout: &o, stderr: &e, getenv: func(k string) string { return keyEnv()[k] }})
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, e.String())
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("interrupted run left no valid output: %v", err)
	}
}

// openParquet opens a Parquet file; close closes it.
func openParquet(t *testing.T, path string) (pf *parquet.File, close func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err = parquet.OpenFile(f, fi.Size())
	if err != nil {
		f.Close()
		t.Fatalf("open %s: %v", path, err)
	}
	return pf, func() { f.Close() }
}

// readParquetMaps reads every row of a Parquet file as a map.
func readParquetMaps(t *testing.T, path string) []map[string]any {
	t.Helper()
	pf, close := openParquet(t, path)
	defer close()
	rd := parquet.NewReader(pf)
	defer rd.Close()
	var rows []map[string]any
	for {
		m := map[string]any{}
		err := rd.Read(&m)
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
}
