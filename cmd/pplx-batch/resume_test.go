package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// runWithSignals runs the command in-process; signals it receives come
// from sigs.
func runWithSignals(t *testing.T, sigs chan os.Signal, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return keyEnv()[k] }, signals: sigs,
	})
	return result{code, out.String(), errb.String()}
}

// checkRowsOnce reads a JSONL output and checks it holds rows 1..n exactly
// once each, every one ok and answering its own company.
func checkRowsOnce(t *testing.T, rows []sink.Row, n int) {
	t.Helper()
	seen := map[int64]int{}
	for _, r := range rows {
		seen[r.Row]++
		if r.Status != sink.StatusOK {
			t.Errorf("row %d: status %q: %s", r.Row, r.Status, r.Error)
			continue
		}
		q := fmt.Sprintf("Company %d, Inc.", r.Row)
		if len(r.Results) == 0 || r.Results[0].Title != sim.SearchResults(pplx.Query{q}, 1)[0].Title {
			t.Errorf("row %d does not answer its own query %q: %+v", r.Row, q, r.Results)
		}
	}
	for i := int64(1); i <= int64(n); i++ {
		if seen[i] != 1 {
			t.Errorf("row %d appears %d times, want once", i, seen[i])
		}
	}
	if len(seen) != n {
		t.Errorf("got %d distinct rows, want %d", len(seen), n)
	}
}

func TestGracefulStopThenResume(t *testing.T) {
	ts, srv := startSim(t, sim.Config{Latency: 5 * time.Millisecond})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(200))
	out := filepath.Join(dir, "out.parquet")
	args := []string{"run", "--input", in, "--output", out, "--query", "{{.company}}", "--concurrency", "4",
		"--base-url", ts.URL, "--max-results", "1"}

	sigs := make(chan os.Signal, 1)
	go func() {
		for srv.Stats().Answered < 30 {
			time.Sleep(time.Millisecond)
		}
		sigs <- syscall.SIGTERM
	}()
	r := runWithSignals(t, sigs, args...)
	if r.code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitInterrupted, r.stderr)
	}
	if !strings.Contains(r.stderr, "run the same command again to resume") {
		t.Errorf("no resume hint:\n%s", r.stderr)
	}
	// The interrupted run left a complete Parquet file with what it
	// finished, and every answered request is in it.
	first := readParquetRows(t, out)
	answered := int(srv.Stats().Answered)
	if len(first) != answered || len(first) < 30 || len(first) >= 200 {
		t.Fatalf("interrupted output holds %d rows, the server answered %d; want equal, 30..199", len(first), answered)
	}
	if n := duckdbCount(t, out); n != -1 && n != len(first) {
		t.Errorf("DuckDB reads %d rows of the interrupted output, want %d", n, len(first))
	}
	if _, err := os.Stat(out + ".journal"); err != nil {
		t.Fatalf("no journal after an interrupted run: %v", err)
	}

	r = runWithSignals(t, nil, args...)
	if r.code != exitOK {
		t.Fatalf("resume: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("(%d answered by an earlier run)", len(first))) {
		t.Errorf("resume summary does not count the skipped rows:\n%s", r.stderr)
	}
	checkRowsOnce(t, readParquetRows(t, out), 200)
	if a := srv.Stats().Answered; a != 200 {
		t.Errorf("the server answered %d requests for 200 rows: a graceful stop and resume must not pay twice", a)
	}
	if _, err := os.Stat(out + ".journal"); !os.IsNotExist(err) {
		t.Errorf("a complete run left its journal (stat: %v)", err)
	}
	if _, err := os.Stat(out + ".lock"); !os.IsNotExist(err) {
		t.Errorf("the run left its lock file (stat: %v)", err)
	}

	// A complete run leaves no journal: the same command starts afresh.
	r = runWithSignals(t, nil, args...)
	if r.code != exitOK || srv.Stats().Answered != 400 {
		t.Errorf("rerun after a complete run: exit %d, answered %d; want 0 and 400", r.code, srv.Stats().Answered)
	}
}

func TestResumeRetriesFailedRowsAndRerunsChangedRequests(t *testing.T) {
	broken, _ := startSim(t, sim.Config{Faults: sim.Faults{P500: 1}})
	healthy, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	// Fewer rows than the failures in a row that make an outage (when the
	// job would pause and probe the broken server instead of failing rows).
	const n = 8
	in := writeFile(t, "in.csv", companies(n))
	out := filepath.Join(dir, "out.jsonl")
	errPath := filepath.Join(dir, "out.errors.jsonl")
	args := func(base, query string, extra ...string) []string {
		return append([]string{"run", "--input", in, "--output", out, "--query", query, "--max-retries", "0",
			"--base-url", base}, extra...)
	}

	// Every row fails against the broken server: exit 1, errors file.
	r := runWithSignals(t, nil, args(broken.URL, "{{.company}}")...)
	if r.code != exitRowsFailed {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if got := len(readJSONL[map[string]any](t, readFile(t, errPath))); got != n {
		t.Fatalf("errors file holds %d rows, want %d", got, n)
	}
	// The same command against a healthy server tries the failed rows again.
	r = runWithSignals(t, nil, args(healthy.URL, "{{.company}}")...)
	if r.code != exitOK {
		t.Fatalf("resume: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	checkRowsOnce(t, readJSONL[sink.Row](t, readFile(t, out)), n)
	if _, err := os.Stat(errPath); !os.IsNotExist(err) {
		t.Errorf("the errors file of the failed run is still there (stat: %v)", err)
	}
	if got := srv.Stats().Requests; got != n {
		t.Errorf("healthy server saw %d requests, want %d", got, n)
	}

	// Leave a journal behind again (a failing run), then change the
	// template: every row's request changed, so every row runs again.
	runWithSignals(t, nil, args(broken.URL, "{{.company}} ceo")...)
	before := srv.Stats().Requests
	r = runWithSignals(t, nil, args(healthy.URL, "{{.company}} headquarters")...)
	if r.code != exitOK || srv.Stats().Requests-before != n {
		t.Errorf("changed template: exit %d, %d requests; want 0 and %d", r.code, srv.Stats().Requests-before, n)
	}

	// --restart forgets an unfinished run.
	runWithSignals(t, nil, args(broken.URL, "{{.company}}")...)
	before = srv.Stats().Requests
	r = runWithSignals(t, nil, args(healthy.URL, "{{.company}}", "--restart")...)
	if r.code != exitOK || srv.Stats().Requests-before != n {
		t.Errorf("--restart: exit %d, %d requests; want 0 and %d", r.code, srv.Stats().Requests-before, n)
	}
}

func TestSecondRunOnTheSameOutputIsRefused(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	held, err := lockFile(out + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer held.unlock()
	in := writeFile(t, "in.csv", companies(3))
	r := runWithSignals(t, nil, "run", "--input", in, "--output", out, "--query", "{{.company}}", "--base-url", ts.URL)
	if r.code != exitUsage || !strings.Contains(r.stderr, "another pplx-batch run is writing this output") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if srv.Stats().Requests != 0 {
		t.Error("the refused run sent requests")
	}
}

func TestFaultsEndAsOneRowEach(t *testing.T) {
	for _, retries := range []string{"0", "2"} {
		t.Run("max-retries="+retries, func(t *testing.T) { faultRun(t, retries) })
	}
}

func faultRun(t *testing.T, retries string) {
	// 5% 500/503, 2% connection resets, 2% cut streams, 1% garbage bodies.
	ts, _ := startSim(t, sim.Config{Seed: 11, Faults: sim.Faults{P500: 0.025, P503: 0.025, PReset: 0.02, PCut: 0.02, PGarbage: 0.01}})
	dir := t.TempDir()
	const n = 300
	var in strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "{\"q\":\"question %d\"}\n", i)
	}
	inPath := writeFile(t, "in.jsonl", in.String())
	out := filepath.Join(dir, "out.jsonl")
	r := runWithSignals(t, nil, "run", "--mode", "chat", "--stream", "--input", inPath, "--output", out,
		"--prompt", "{{.q}}", "--max-retries", retries, "--concurrency", "8", "--base-url", ts.URL)
	if r.code != exitOK && r.code != exitRowsFailed {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	var errRows []map[string]any
	if b, err := os.ReadFile(filepath.Join(dir, "out.errors.jsonl")); err == nil {
		errRows = readJSONL[map[string]any](t, string(b))
	}
	ok := 0
	for _, row := range rows {
		if row.Status != sink.StatusOK {
			continue
		}
		ok++
		want := sim.ChatContent("sonar", []pplx.Message{{Role: "user", Content: fmt.Sprintf("question %d", row.Row)}})
		if row.Content != want {
			t.Errorf("row %d: content %q, want %q", row.Row, row.Content, want)
		}
	}
	if ok+len(errRows) != n || len(rows) != n {
		t.Errorf("%d ok rows + %d errors-file rows (output has %d rows); want %d", ok, len(errRows), len(rows), n)
	}
	rowsSeen := map[int64]bool{}
	for _, row := range rows {
		rowsSeen[row.Row] = true
	}
	if len(rowsSeen) != n {
		t.Errorf("output holds %d distinct rows, want %d", len(rowsSeen), n)
	}
	t.Logf("%d ok, %d failed after retries", ok, len(errRows))
}

func readParquetRows(t *testing.T, path string) []sink.Row {
	t.Helper()
	rows := readParquetMaps(t, path)
	out := make([]sink.Row, 0, len(rows))
	for _, m := range rows {
		r := sink.Row{Row: m["row"].(int64), Status: m["status"].(string), ID: m["id"].(string)}
		if e, ok := m["error"].(string); ok {
			r.Error = e
		}
		if rs, ok := m["results"].([]any); ok {
			for _, x := range rs {
				mm := x.(map[string]any)
				r.Results = append(r.Results, sink.SearchResult{Title: mm["title"].(string), URL: mm["url"].(string)})
			}
		}
		r.Content, _ = m["content"].(string)
		r.Model, _ = m["model"].(string)
		r.RequestID, _ = m["request_id"].(string)
		if cs, ok := m["citations"].([]any); ok {
			for _, c := range cs {
				r.Citations = append(r.Citations, c.(string))
			}
		}
		if ss, ok := m["search_results"].([]any); ok {
			for _, x := range ss {
				mm := x.(map[string]any)
				r.SearchResults = append(r.SearchResults, sink.Source{ID: mm["id"].(int64), Title: mm["title"].(string), URL: mm["url"].(string)})
			}
		}
		if u, ok := m["usage"].(map[string]any); ok {
			r.Usage = &sink.Usage{PromptTokens: u["prompt_tokens"].(int64), CompletionTokens: u["completion_tokens"].(int64), TotalTokens: u["total_tokens"].(int64)}
			if c, ok := u["cost_usd"].(float64); ok {
				r.Usage.CostUSD = &c
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	return out
}

// duckdbCount opens a Parquet file with DuckDB and returns its row count,
// when PPLX_DUCKDB_NODE_DIR names a folder with @duckdb/node-api (as
// .ci/run installs); otherwise it returns -1.
func duckdbCount(t *testing.T, path string) int {
	t.Helper()
	rows := duckdbQuery(t, path, "SELECT count(*) AS n FROM FILE")
	if rows == nil {
		return -1
	}
	if len(rows) != 1 {
		t.Fatalf("duckdb count: %v", rows)
	}
	n, _ := strconv.Atoi(fmt.Sprint(rows[0]["n"])) // a BIGINT comes as a string
	return n
}

// duckdbQuery runs one query on a Parquet file (FILE in the query) with
// DuckDB, when PPLX_DUCKDB_NODE_DIR names a folder with @duckdb/node-api,
// and returns its rows (numbers as json.Number); nil without DuckDB.
func duckdbQuery(t *testing.T, path, query string) []map[string]any {
	t.Helper()
	dir := os.Getenv("PPLX_DUCKDB_NODE_DIR")
	if dir == "" {
		return nil
	}
	cmd := exec.CommandContext(t.Context(), "node", "../../sink/testdata/duckdb_describe.mjs", dir, path, query)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb on %s: %v", path, err)
	}
	var out struct {
		Queries [][]map[string]any `json:"queries"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil || len(out.Queries) != 1 {
		t.Fatalf("duckdb output %s: %v", b, err)
	}
	return out.Queries[0]
}

func TestSecondSignalOrGraceCancelsRequestsInFlight(t *testing.T) {
	tests := []struct {
		name    string
		signals int
		grace   string
	}{
		{"second signal", 2, "1h"},
		{"grace period over", 1, "20ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Answers take an hour: only a cancellation ends the run.
			ts, srv := startSim(t, sim.Config{Latency: time.Hour})
			out := filepath.Join(t.TempDir(), "out.jsonl")
			in := writeFile(t, "in.csv", companies(50))
			sigs := make(chan os.Signal, 2)
			go func() {
				for srv.Stats().InFlight < 1 {
					time.Sleep(time.Millisecond)
				}
				for range tc.signals {
					sigs <- syscall.SIGINT
				}
			}()
			r := runWithSignals(t, sigs, "run", "--input", in, "--output", out, "--query", "{{.company}}",
				"--concurrency", "4", "--grace", tc.grace, "--base-url", ts.URL)
			if r.code != exitInterrupted {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitInterrupted, r.stderr)
			}
			if rows := readJSONL[sink.Row](t, readFile(t, out)); len(rows) != 0 {
				t.Errorf("got %d rows, want none: no request was answered", len(rows))
			}
			if !strings.Contains(r.stderr, " rows: 0 ok, 0 failed") || !strings.Contains(r.stderr, "not finished") {
				t.Errorf("summary:\n%s", r.stderr)
			}
		})
	}
}

func TestResumeHintAfterRestart(t *testing.T) {
	// A job file that always starts over (restart: true) must not tell the
	// user to run the same command, which would throw the journal away.
	ts, _ := startSim(t, sim.Config{Key: "another-key"})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(5))
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", filepath.Join(dir, "o.jsonl"), "--query", "{{.company}}",
		"--restart", "--base-url", ts.URL)
	if r.code != exitAborted || !strings.Contains(r.stderr, "--restart=false to resume") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
