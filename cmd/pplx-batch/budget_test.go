package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

func TestMaxCostAbortsAndResumes(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(100))
	out := filepath.Join(dir, "out.jsonl")
	sum := filepath.Join(dir, "summary.json")
	args := []string{"run", "--mode", "chat", "--input", in, "--output", out, "--prompt", "{{.company}}",
		"--concurrency", "4", "--base-url", ts.URL, "--summary", sum}
	r := runMain(t, "", keyEnv(), append(args, "--max-cost", "0.10")...)
	if r.code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
	}
	if !strings.Contains(r.stderr, "budget reached") || !strings.Contains(r.stderr, "resume") {
		t.Errorf("stderr lacks the budget message or the resume hint:\n%s", r.stderr)
	}
	billed := srv.Stats().CostUSD
	// Each answer costs about $0.005; 4 may be in flight when the budget
	// is reached.
	if billed > 0.10+4*0.0051 {
		t.Errorf("the server billed $%.4f for a budget of $0.10", billed)
	}
	var s summary
	if err := json.Unmarshal([]byte(readFile(t, sum)), &s); err != nil {
		t.Fatal(err)
	}
	if s.ExitCode != exitAborted || s.CostUSD < billed*0.999 || s.CostUSD > billed*1.001 {
		t.Errorf("summary %+v; want exit 3 and the billed $%.4f", s, billed)
	}
	// A larger budget resumes the run without asking again.
	r = runMain(t, "", keyEnv(), append(args, "--max-cost", "5")...)
	if r.code != exitOK {
		t.Fatalf("resume: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := len(readJSONL[sink.Row](t, readFile(t, out))); n != 100 {
		t.Errorf("got %d rows, want 100", n)
	}
	if a := srv.Stats().Answered; a != 100 {
		t.Errorf("the server answered %d requests for 100 rows", a)
	}
}

func TestMaxFailuresAbortsABrokenJob(t *testing.T) {
	tests := []struct {
		limit   string
		maxRows int
	}{
		{"0", 1 + 4},
		{"5", 6 + 4},
		{"2%", 20 + 4},
	}
	for _, tc := range tests {
		t.Run(tc.limit, func(t *testing.T) {
			ts, srv := startSim(t, sim.Config{})
			dir := t.TempDir()
			in := writeFile(t, "in.csv", companies(300))
			out := filepath.Join(dir, "out.jsonl")
			// A model that does not exist: every row fails with 400.
			r := runMain(t, "", keyEnv(), "run", "--mode", "chat", "--model", "sonar-typo", "--input", in, "--output", out,
				"--prompt", "{{.company}}", "--concurrency", "4", "--base-url", ts.URL, "--max-failures", tc.limit)
			if r.code != exitAborted {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
			}
			if !strings.Contains(r.stderr, "too many failed rows") {
				t.Errorf("stderr:\n%s", r.stderr)
			}
			if n := srv.Stats().Requests; n > int64(tc.maxRows) {
				t.Errorf("the server saw %d requests, want at most %d", n, tc.maxRows)
			}
			if _, err := os.Stat(filepath.Join(dir, "out.errors.jsonl")); err != nil {
				t.Errorf("no errors file: %v", err)
			}
		})
	}
}

func TestBadMaxFailures(t *testing.T) {
	for _, v := range []string{"x", "-1", "0%", "101%", "2.5"} {
		r := runMain(t, "", keyEnv(), "run", "--input", "x.csv", "--output", "o.jsonl", "--query", "q", "--max-failures", v)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--max-failures") {
			t.Errorf("--max-failures %s: exit %d, stderr %s", v, r.code, r.stderr)
		}
	}
}

// TestSummaryAgreesWithTheOutputs checks every count of the summary
// against the output file, the errors file and the server.
func TestSummaryAgreesWithTheOutputs(t *testing.T) {
	ts, srv := startSim(t, sim.Config{Seed: 4, Faults: sim.Faults{P500: 0.2}})
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("q\n")
	for i := 0; i < 80; i++ {
		b.WriteString("question " + strings.Repeat("x", i%7) + "\n")
	}
	b.WriteString("\"unterminated\n") // a malformed last row
	in := writeFile(t, "in.csv", b.String())
	out := filepath.Join(dir, "out.jsonl")
	sum := filepath.Join(dir, "s.json")
	r := runMain(t, "", keyEnv(), "run", "--mode", "chat", "--input", in, "--output", out, "--prompt", "{{.q}}",
		"--max-retries", "1", "--base-url", ts.URL, "--summary", sum, "--log-level", "debug")
	if r.code != exitRowsFailed {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var s summary
	if err := json.Unmarshal([]byte(readFile(t, sum)), &s); err != nil {
		t.Fatal(err)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	errRows := readJSONL[map[string]any](t, readFile(t, filepath.Join(dir, "out.errors.jsonl")))
	var ok, failed, attempts, prompt, completion int64
	for _, row := range rows {
		attempts += int64(row.Attempts)
		if row.Status == sink.StatusOK {
			ok++
			prompt += row.Usage.PromptTokens
			completion += row.Usage.CompletionTokens
		} else {
			failed++
		}
	}
	st := srv.Stats()
	checks := []struct {
		name      string
		got, want int64
	}{
		{"rows.total", s.Rows.Total, 81},
		{"rows.ok", s.Rows.OK, ok},
		{"rows.failed", s.Rows.Failed, failed},
		{"rows.failed vs errors file", s.Rows.Failed, int64(len(errRows))},
		{"rows.ok + failed", s.Rows.OK + s.Rows.Failed, int64(len(rows))},
		{"requests.total", s.Requests.Total, attempts},
		{"requests.total vs server", s.Requests.Total, st.Requests},
		{"requests.retries", s.Requests.Retries, attempts - int64(len(rows)) + 1}, // the malformed row made no request
		{"tokens.prompt", s.Tokens.Prompt, prompt},
		{"tokens.completion", s.Tokens.Completion, completion},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if s.CostUSD < st.CostUSD*0.999 || s.CostUSD > st.CostUSD*1.001 {
		t.Errorf("cost_usd = %g, the server billed %g", s.CostUSD, st.CostUSD)
	}
	if s.LatencyMS.P50 > s.LatencyMS.P95 || s.LatencyMS.P95 > s.LatencyMS.P99 || s.WallS <= 0 || s.Throughput <= 0 {
		t.Errorf("latency/wall/throughput out of order: %+v", s)
	}
	if strings.Contains(r.stderr, testKey) || strings.Contains(readFile(t, sum), testKey) {
		t.Error("the API key leaked into the logs or the summary")
	}
}

// TestMaxCostSpendsTheBudget checks that a budget stops a job with
// automatic concurrency only once what was spent plus the next request
// would pass it: rows waiting for the rate limiter or for requests in
// flight do not use the budget up before anything is sent.
func TestMaxCostSpendsTheBudget(t *testing.T) {
	for _, mode := range []string{"chat", "agent"} {
		t.Run(mode, func(t *testing.T) {
			ts, srv := startSim(t, sim.Config{Latency: 100 * time.Millisecond})
			dir := t.TempDir()
			in := writeFile(t, "in.csv", companies(200))
			const budget = 0.25
			r := runMain(t, "", keyEnv(), "run", "--mode", mode, "--input", in, "--output", filepath.Join(dir, "out.jsonl"),
				"--prompt", "{{.company}}", "--base-url", ts.URL, "--max-cost", fmt.Sprint(budget))
			if r.code != exitAborted {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
			}
			st := srv.Stats()
			perRequest := st.CostUSD / float64(st.Answered)
			if st.CostUSD < budget/2 {
				t.Errorf("the job stopped after spending $%.4f (%d answers) of a $%.2f budget; want at least half of it", st.CostUSD, st.Answered, budget)
			}
			if limit := budget + float64(st.MaxInFlight)*perRequest*1.5; st.CostUSD > limit {
				t.Errorf("the server billed $%.4f: more than the budget plus the %d requests in flight ($%.4f)", st.CostUSD, st.MaxInFlight, limit)
			}
			t.Logf("billed $%.4f in %d answers (at most %d in flight) for a budget of $%.2f", st.CostUSD, st.Answered, st.MaxInFlight, budget)
		})
	}
}
