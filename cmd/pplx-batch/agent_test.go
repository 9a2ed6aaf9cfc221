package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// questions returns a JSONL input of n questions, {"q": "Question i?"}.
func questions(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"q":"Question %d about tower %d?"}`+"\n", i, i)
	}
	return b.String()
}

func question(row int64) string { return fmt.Sprintf("Question %d about tower %d?", row, row) }

// checkAgentRows checks that rows holds rows 1..n once each, every one ok
// and answering its own question as the simulator's model answers it, and
// returns the summed cost_usd.
func checkAgentRows(t *testing.T, rows []sink.Row, n int) float64 {
	t.Helper()
	seen := map[int64]int{}
	var cost float64
	for _, r := range rows {
		seen[r.Row]++
		if r.Status != sink.StatusOK {
			t.Errorf("row %d: %s: %s", r.Row, r.Status, r.Error)
			continue
		}
		q := question(r.Row)
		results := sim.AgentSearchResults(q, 0)
		if want := sim.AgentContent(pipeline.DefaultAgentModel, q, len(results)); r.Content != want {
			t.Errorf("row %d: content %q, want %q", r.Row, r.Content, want)
		}
		if r.Model != pipeline.DefaultAgentModel {
			t.Errorf("row %d: model %q, want %q", r.Row, r.Model, pipeline.DefaultAgentModel)
		}
		if len(r.SearchResults) != len(results) || len(r.Citations) != len(results) {
			t.Errorf("row %d: %d search results and %d citations, want %d", r.Row, len(r.SearchResults), len(r.Citations), len(results))
		} else {
			for i, s := range r.SearchResults {
				if s.ID != int64(results[i].ID) || s.URL != results[i].URL || r.Citations[i] != results[i].URL {
					t.Errorf("row %d: search result %d is %+v (citation %q), want id %d url %s", r.Row, i, s, r.Citations[i], results[i].ID, results[i].URL)
				}
			}
		}
		if r.Usage == nil || r.Usage.CostUSD == nil || *r.Usage.CostUSD <= 0 || r.Usage.TotalTokens == 0 {
			t.Errorf("row %d: usage %+v, want tokens and a cost", r.Row, r.Usage)
			continue
		}
		if !strings.HasPrefix(r.RequestID, "resp_") {
			t.Errorf("row %d: request_id %q, want the response id", r.Row, r.RequestID)
		}
		cost += *r.Usage.CostUSD
	}
	for i := int64(1); i <= int64(n); i++ {
		if seen[i] != 1 {
			t.Errorf("row %d appears %d times, want once", i, seen[i])
		}
	}
	return cost
}

func TestAgentJob(t *testing.T) {
	tests := []struct {
		name   string
		output string
		args   []string
		faults sim.Faults
		agent  sim.AgentConfig
	}{
		{"jsonl", "out.jsonl", nil, sim.Faults{}, sim.AgentConfig{}},
		{"parquet", "out.parquet", nil, sim.Faults{}, sim.AgentConfig{}},
		{"stream", "out.parquet", []string{"--stream"}, sim.Faults{}, sim.AgentConfig{}},
		{"stream, 2% cut", "out.jsonl", []string{"--stream", "--max-retries", "5"}, sim.Faults{PCut: 0.02}, sim.AgentConfig{}},
		{"2% cut", "out.jsonl", []string{"--max-retries", "5"}, sim.Faults{PCut: 0.02}, sim.AgentConfig{}},
		// Cut streams whose runs failed: collected as failed, so asked
		// again.
		{"stream, 5% cut, 20% failed", "out.jsonl", []string{"--stream", "--max-retries", "10"}, sim.Faults{PCut: 0.05}, sim.AgentConfig{PFailed: 0.2}},
	}
	const n = 120
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, srv := startSim(t, sim.Config{Faults: tc.faults, Agent: tc.agent, Seed: 3, Headers: sim.HeadersEpoch, RPS: 500})
			in := writeFile(t, "q.jsonl", questions(n))
			out := filepath.Join(t.TempDir(), tc.output)
			sum := filepath.Join(t.TempDir(), "summary.json")
			args := append([]string{"run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.q}}",
				"--base-url", ts.URL, "--summary", sum}, tc.args...)
			r := runMain(t, "", keyEnv(), args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			var rows []sink.Row
			if strings.HasSuffix(out, ".parquet") {
				rows = readParquetRows(t, out)
			} else {
				rows = readJSONL[sink.Row](t, readFile(t, out))
			}
			cost := checkAgentRows(t, rows, n)
			st := srv.Stats()
			if strings.HasSuffix(out, ".parquet") {
				checkAgentDuckDB(t, out, n, st.Agent.CostUSD)
			}
			if math.Abs(cost-st.Agent.CostUSD) > 1e-9 {
				t.Errorf("the rows' cost_usd add up to %.6f; the server billed %.6f", cost, st.Agent.CostUSD)
			}
			if tc.faults.PCut > 0 && st.Cuts == 0 {
				t.Errorf("no stream or answer was cut: the test tests nothing (stats %+v)", st)
			}
			// A stream cut after its run began is collected by the run's
			// id, not paid for again: every row was paid for once.
			if slices.Contains(tc.args, "--stream") && tc.agent.PFailed == 0 && st.Agent.Answered+st.Agent.CutRuns != n {
				t.Errorf("the server answered %d streams and kept %d cut runs, want %d in all: one paid run per row",
					st.Agent.Answered, st.Agent.CutRuns, n)
			}
			var summary struct {
				CostUSD float64 `json:"cost_usd"`
			}
			if err := json.Unmarshal([]byte(readFile(t, sum)), &summary); err != nil {
				t.Fatal(err)
			}
			if math.Abs(summary.CostUSD-st.Agent.CostUSD) > 1e-6 {
				t.Errorf("the summary's cost_usd is %v; the server billed %v", summary.CostUSD, st.Agent.CostUSD)
			}
		})
	}
}

// checkAgentDuckDB reads an agent job's Parquet output with DuckDB (when
// it is installed, as in CI): content, search_results, usage.cost_usd and
// model.
func checkAgentDuckDB(t *testing.T, path string, n int, billed float64) {
	t.Helper()
	rows := duckdbQuery(t, path, `SELECT count(*) AS n, sum(usage.cost_usd) AS cost, min(model) AS model, max(model) AS model2,
		min(len(search_results)) AS sources, min(search_results[1].id) AS first_id, min(length(content)) AS chars FROM FILE`)
	if rows == nil {
		t.Log("DuckDB is not installed (PPLX_DUCKDB_NODE_DIR): Parquet not checked with it")
		return
	}
	r := rows[0]
	num := func(k string) float64 { // BIGINTs come as strings
		f, _ := strconv.ParseFloat(fmt.Sprint(r[k]), 64)
		return f
	}
	if int(num("n")) != n || math.Abs(num("cost")-billed) > 1e-9 || r["model"] != pipeline.DefaultAgentModel ||
		r["model2"] != pipeline.DefaultAgentModel || num("sources") < 1 || num("first_id") != 1 || num("chars") < 10 {
		t.Errorf("DuckDB reads %v; want %d rows costing %v, model %s, sources with ids from 1, content", r, n, billed, pipeline.DefaultAgentModel)
	}
}

// TestAgentStatuses runs against a server that fails and truncates some
// runs: failed runs are retried, incomplete rows fail with their partial
// text and the reason.
func TestAgentStatuses(t *testing.T) {
	ts, srv := startSim(t, sim.Config{Seed: 11, Agent: sim.AgentConfig{PFailed: 0.15, PIncomplete: 0.1, PError: 0.05}})
	const n = 80
	in := writeFile(t, "q.jsonl", questions(n))
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	for _, stream := range []bool{false, true} {
		args := []string{"run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.q}}",
			"--base-url", ts.URL, "--max-retries", "6", "--restart"}
		if stream {
			args = append(args, "--stream")
		}
		r := runMain(t, "", keyEnv(), args...)
		if r.code != exitRowsFailed {
			t.Fatalf("stream=%v: exit %d, want %d (some rows incomplete); stderr:\n%s", stream, r.code, exitRowsFailed, r.stderr)
		}
		rows := readJSONL[sink.Row](t, readFile(t, out))
		errRows := readJSONL[pipeline.ErrorRow](t, readFile(t, filepath.Join(dir, "out.errors.jsonl")))
		var ok, incomplete int
		for _, row := range rows {
			q := question(row.Row)
			full := sim.AgentContent(pipeline.DefaultAgentModel, q, len(sim.AgentSearchResults(q, 0)))
			switch row.Status {
			case sink.StatusOK:
				ok++
				if row.Content != full {
					t.Errorf("stream=%v row %d: content %q, want %q", stream, row.Row, row.Content, full)
				}
			default:
				incomplete++
				if !strings.Contains(row.Error, "incomplete") || !strings.Contains(row.Error, "max_output_tokens") {
					t.Errorf("stream=%v row %d: error %q, want an incomplete run cut by max_output_tokens", stream, row.Row, row.Error)
				}
				if row.Content == "" || !strings.HasPrefix(full, row.Content) || row.Content == full {
					t.Errorf("stream=%v row %d: partial content %q is not a proper prefix of %q", stream, row.Row, row.Content, full)
				}
			}
		}
		if ok+incomplete != n || incomplete == 0 || len(errRows) != incomplete {
			t.Errorf("stream=%v: %d ok + %d incomplete of %d rows, %d in the errors file", stream, ok, incomplete, n, len(errRows))
		}
	}
	st := srv.Stats().Agent
	if st.Status["failed"] == 0 || st.Status["incomplete"] == 0 || st.Status["error"] == 0 {
		t.Errorf("server statuses %v: want failed, incomplete and error runs", st.Status)
	}
}

func TestAgentUsageErrorsCallNothing(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "q.jsonl", questions(3))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	base := []string{"run", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.q}}", "--base-url", ts.URL}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"sonar", []string{"--model", "sonar"}, "maps sonar to --model perplexity/sonar"},
		{"sonar-pro", []string{"--model", "sonar-pro"}, "maps sonar-pro to --preset low"},
		{"sonar-deep-research in a list", []string{"--models", "perplexity/sonar,sonar-deep-research"}, "--preset medium"},
		{"not provider/name", []string{"--model", "gpt-6"}, "provider/name"},
		{"a preset as a model", []string{"--model", "fast"}, "--preset fast"},
		{"model and preset", []string{"--model", "perplexity/sonar", "--preset", "fast"}, "one of --model, --preset and --models"},
		{"unknown preset", []string{"--preset", "turbo"}, "--preset must be one of fast, low, medium, high, xhigh"},
		{"six models", []string{"--models", "a/1,a/2,a/3,a/4,a/5,a/6"}, "at most 5"},
		{"anthropic without max output", []string{"--model", "anthropic/claude-opus-5-5"}, "--max-output-tokens"},
		{"mixed domains", []string{"--search-domains", "a.com,-b.com"}, "mixes domains"},
		{"domain with scheme", []string{"--search-domains", "https://a.com"}, "not a domain name"},
		{"21 domains", []string{"--search-domains", strings.Repeat("a.com,", 20) + "b.com"}, "at most 20"},
		{"ISO date", []string{"--search-after", "2026-03-01"}, "MM/DD/YYYY"},
		{"recency and date", []string{"--search-recency", "week", "--search-before", "03/01/2026"}, "cannot be combined"},
		{"bad recency", []string{"--search-recency", "fortnight"}, "--search-recency must be"},
		{"after not before before", []string{"--search-after", "03/01/2026", "--search-before", "02/01/2026"}, "is not before"},
		{"no search with filters", []string{"--no-search", "--search-domains", "a.com"}, "--no-search"},
		{"no search with a preset", []string{"--no-search", "--preset", "fast"}, "needs --model"},
		{"stream and background", []string{"--stream", "--background"}, "do not go together"},
		{"bad effort", []string{"--reasoning-effort", "max"}, "--reasoning-effort"},
		{"too many results", []string{"--max-search-results", "51"}, "between 1 and 50"},
		{"max tokens is chat", []string{"--max-tokens", "5"}, "--max-output-tokens"},
		{"search flag", []string{"--max-results", "5"}, "--max-results does not apply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, "", keyEnv(), append(slices.Clone(base), tc.args...)...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, r.stderr)
			}
		})
	}
	for _, flag := range [][]string{{"--preset", "fast"}, {"--background"}, {"--no-search"}} {
		r := runMain(t, "", keyEnv(), append([]string{"run", "--mode", "search", "--input", in, "--output", out, "--query", "{{.q}}", "--base-url", ts.URL}, flag...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, flag[0]+" does not apply to --mode search") {
			t.Errorf("search mode with %v: exit %d, stderr:\n%s", flag, r.code, r.stderr)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}

// TestRetiredChatAborts runs a chat job against a server that answers
// Sonar chat with the retirement 403.
func TestRetiredChatAborts(t *testing.T) {
	ts, srv := startSim(t, sim.Config{RetireChat: true})
	in := writeFile(t, "q.jsonl", questions(200))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--mode", "chat", "--model", "sonar-pro", "--input", in, "--output", out,
		"--prompt", "{{.q}}", "--base-url", ts.URL, "--concurrency", "4")
	if r.code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
	}
	for _, want := range []string{"retired Sonar chat completions", "pplx-batch run --mode agent --preset low", "--prompt '{{.q}}'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if n := srv.Stats().Requests; n > 8 {
		t.Errorf("the server saw %d requests after the first 403; want a few", n)
	}
}

// TestPlanAgent checks that plan renders an agent request with its
// defaults, estimates its cost and warns about chat on Perplexity.
func TestPlanAgent(t *testing.T) {
	in := writeFile(t, "q.jsonl", questions(10))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", nil, "plan", "--mode", "agent", "--input", in, "--output", out, "--prompt", "{{.q}}")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"/v1/agent", `"model": "perplexity/sonar"`, `"tool_choice": {`, `"type": "web_search"`, "perplexity/sonar: $0.25 in / $2.5 out per 1M tokens"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, r.stdout)
		}
	}
	r = runMain(t, "", nil, "plan", "--mode", "chat", "--input", in, "--output", out, "--prompt", "{{.q}}")
	if r.code != exitOK || !strings.Contains(r.stdout+r.stderr, "retired Sonar chat completions") {
		t.Errorf("plan of a chat job on Perplexity: exit %d, no retirement warning:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestBackgroundKillAndResume submits background runs with the real
// binary, kills it with SIGKILL while runs are pending, and runs the same
// command again: every row ends ok, and the server created exactly one
// run per row.
func TestBackgroundKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	ts, srv := startSim(t, sim.Config{Agent: sim.AgentConfig{BackgroundDuration: 3 * time.Second}})
	const n = 30
	in := writeFile(t, "q.jsonl", questions(n))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	args := []string{"run", "--mode", "agent", "--background", "--input", in, "--output", out, "--prompt", "{{.q}}",
		"--base-url", ts.URL, "--log-format", "json"}
	// Kill once every run has been polled: the client records a run
	// before its first poll, so every run is in the journal. (A run the
	// server created whose answer had not reached the client at a kill
	// cannot be found again, since the API has no idempotency key and no
	// list of runs: that row is submitted again, like any request in
	// flight at a crash. Killing on the server's count of runs alone
	// measured exactly that, 32 runs for 30 rows on a slow machine.)
	killAndResume(t, bin, args, func() bool {
		st := srv.Stats().Agent
		return st.Runs >= n && st.PolledRuns >= n
	}, func() {
		// Every row was submitted, and (3-second runs) most are still
		// pending: a slow machine may see the first ones end before the
		// kill.
		if st := srv.Stats().Agent; st.Runs != n || st.Status["completed"] >= n {
			t.Fatalf("at the kill the server had %d runs (%v); want %d, some of them pending", st.Runs, st.Status, n)
		}
	})
	checkAgentRows(t, readJSONL[sink.Row](t, readFile(t, out)), n)
	st := srv.Stats().Agent
	if st.Runs != n || st.MaxRunsPerRequest != 1 {
		t.Errorf("the server created %d runs (at most %d for one row); want exactly one per row (%d)", st.Runs, st.MaxRunsPerRequest, n)
	}
}

// TestStreamKillAndResume kills a streamed agent job while its streams
// wait for their answers: each run was recorded at its response.created,
// so the resumed job collects the runs (which went on without their
// streams) by polling, and no row is paid for twice.
func TestStreamKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	// The answers take 8 s after response.created: the kill comes as soon
	// as every stream started, long before. (Polls take the latency too.)
	ts, srv := startSim(t, sim.Config{Latency: 8 * time.Second})
	const n = 20
	in := writeFile(t, "q.jsonl", questions(n))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	args := []string{"run", "--mode", "agent", "--stream", "--input", in, "--output", out, "--prompt", "{{.q}}",
		"--base-url", ts.URL, "--log-format", "json"}
	killAndResume(t, bin, args, func() bool {
		// Kill once every stream has started and the journal holds every
		// run.
		return srv.Stats().Agent.StreamRuns >= n && pendingRunsOfCopy(t, out+".journal") >= n
	}, func() {
		if st := srv.Stats().Agent; st.StreamRuns != n || st.Answered >= n {
			t.Fatalf("at the kill the server had started %d streams and answered %d; want %d started, some unanswered", st.StreamRuns, st.Answered, n)
		}
	})
	rows := readJSONL[sink.Row](t, readFile(t, out))
	checkAgentRows(t, rows, n)
	st := srv.Stats().Agent
	if st.StreamRuns != n || st.MaxStreamRunsPerRequest != 1 || st.Runs != 0 {
		t.Errorf("the server started %d streamed runs (at most %d for one row) and %d background runs; want one stream per row (%d)",
			st.StreamRuns, st.MaxStreamRunsPerRequest, st.Runs, n)
	}
	if st.CutRuns == 0 {
		t.Error("no run went on after its stream was lost: the kill came too late to test anything")
	}
}

// pendingRunsOfCopy counts the pending runs of the journal at path, read
// from a copy (the job is writing it). A journal not written yet has none.
func pendingRunsOfCopy(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	cp := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return len(pendingRuns(cp))
}

// killAndResume runs the binary with args, kills it once ready says so
// (within a minute), runs atKill, then runs the binary again with the same
// args to its end.
func killAndResume(t *testing.T, bin string, args []string, ready func() bool, atKill func()) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PERPLEXITY_API_KEY="+testKey)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	err := cmd.Wait()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Exited() {
		t.Fatalf("the first run was not killed (%v); stderr:\n%s", err, stderr.String())
	}
	atKill()
	cmd = exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PERPLEXITY_API_KEY="+testKey)
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v; stderr:\n%s", err, stderr.String())
	}
}

// TestBackgroundStopThenRestart stops a background job gracefully while
// runs are pending (they go on), then starts over with --restart, which
// cancels them first.
func TestBackgroundStopThenRestart(t *testing.T) {
	ts, srv := startSim(t, sim.Config{Agent: sim.AgentConfig{BackgroundDuration: time.Hour}})
	const n = 12
	in := writeFile(t, "q.jsonl", questions(n))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	args := []string{"run", "--mode", "agent", "--background", "--input", in, "--output", out, "--prompt", "{{.q}}", "--base-url", ts.URL}
	sigs := make(chan os.Signal, 1)
	go func() {
		for srv.Stats().Agent.Runs < n {
			time.Sleep(5 * time.Millisecond)
		}
		sigs <- os.Interrupt
	}()
	r := runWithSignals(t, sigs, args...)
	if r.code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitInterrupted, r.stderr)
	}
	jr, err := pipeline.OpenJournal(out + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	pending := len(jr.PendingRuns())
	jr.Close()
	if pending != n || srv.Stats().Agent.Cancels != 0 {
		t.Fatalf("after the stop: %d pending runs in the journal, %d cancelled; want %d pending, none cancelled", pending, srv.Stats().Agent.Cancels, n)
	}
	if want := fmt.Sprintf("%d agent runs are still going on the server", n); !strings.Contains(r.stderr, want) {
		t.Errorf("the stop did not say %q; stderr:\n%s", want, r.stderr)
	}
	// --restart cancels the pending runs; the new runs would take an hour,
	// so stop again.
	go func() {
		for srv.Stats().Agent.Runs < 2*n {
			time.Sleep(5 * time.Millisecond)
		}
		sigs <- os.Interrupt
	}()
	r = runWithSignals(t, sigs, append(args, "--restart")...)
	if r.code != exitInterrupted {
		t.Fatalf("restart: exit %d, want %d; stderr:\n%s", r.code, exitInterrupted, r.stderr)
	}
	if c := srv.Stats().Agent.Cancels; c != n {
		t.Errorf("--restart cancelled %d runs, want %d", c, n)
	}
}
