package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// TestOutagePausesTheJob takes the API down for 4 s in the middle of a
// job whose rows may retry twice (backoff well under the outage): the job
// pauses and probes instead of spending the rows' retries, so every row
// ends ok, with few requests sent into the outage.
func TestOutagePausesTheJob(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4-second outage")
	}
	ts, srv := startSim(t, sim.Config{RPS: 100, Burst: 10, Latency: 5 * time.Millisecond,
		Outages: []sim.Outage{{At: 500 * time.Millisecond, For: 4 * time.Second}}})
	const n = 300
	in := writeFile(t, "in.csv", companies(n))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}", "--max-results", "1",
		"--max-retries", "2", "--base-url", ts.URL)
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	if len(rows) != n {
		t.Fatalf("got %d rows, want %d", len(rows), n)
	}
	sent := srv.Stats().Status[503]
	if sent == 0 {
		t.Fatal("no request met the outage: the test tests nothing")
	}
	// Ten failures in a row make an outage, the requests then in flight
	// fail too, and then one probe goes at a time, 1 s apart and more.
	if sent > 40 {
		t.Errorf("%d requests were sent into a 4-second outage; want at most 40", sent)
	}
	t.Logf("%d requests met the outage", sent)
}

// TestOutageGivesUp keeps the API down for longer than --max-outage: the
// job stops with exit 3 and says how long the API was unavailable.
func TestOutageGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for --max-outage")
	}
	ts, _ := startSim(t, sim.Config{RPS: 100, Outages: []sim.Outage{{At: 0, For: time.Hour}}})
	in := writeFile(t, "in.csv", companies(50))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}",
		"--max-outage", "3s", "--base-url", ts.URL)
	if r.code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitAborted, r.stderr)
	}
	if !strings.Contains(r.stderr, "unavailable for") || !strings.Contains(r.stderr, "resume") {
		t.Errorf("stderr does not say how long the API was unavailable, or how to resume:\n%s", r.stderr)
	}
}
