package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/internal/redistest"
	"github.com/pplx-batch/pplx-batch/sim"
)

// TestShardsShareOneBudget runs four shards of one job at once with one
// --max-cost through Redis: together they spend about the budget, never
// more than the budget plus the requests in flight, and every shard stops
// with exit 3.
func TestShardsShareOneBudget(t *testing.T) {
	rd := redistest.Start(t)
	ts, srv := startSim(t, sim.Config{Latency: 20 * time.Millisecond})
	const shards, budget = 4, 0.5
	in := writeFile(t, "in.csv", companies(400)) // $0.005 a search: $2 in all
	dir := t.TempDir()
	results := make([]result, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			results[i] = runMain(t, "", keyEnv(), "run", "--input", in, "--output", filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i)),
				"--query", "{{.company}}", "--max-results", "1", "--base-url", ts.URL, "--concurrency", "4",
				"--shard", fmt.Sprintf("%d/%d", i, shards), "--max-cost", fmt.Sprint(budget), "--shared-limit", rd.URL(0))
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitAborted || !strings.Contains(r.stderr, "budget reached") {
			t.Errorf("shard %d: exit %d, want %d with the budget reached; stderr:\n%s", i, r.code, exitAborted, r.stderr)
		}
	}
	billed := srv.Stats().CostUSD
	const perRequest, inFlight = 0.005, shards * 4
	if billed > budget+inFlight*perRequest || billed < budget/2 {
		t.Errorf("the shards spent $%.4f together for a budget of $%.2f", billed, budget)
	}
	t.Logf("four shards spent $%.4f of a shared $%.2f", billed, budget)
}

// TestSharedLimitUnreachable: an unreachable Redis at start is a
// configuration error that names the address but not the password.
func TestSharedLimitUnreachable(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(3))
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", filepath.Join(t.TempDir(), "o.jsonl"), "--query", "{{.company}}",
		"--base-url", ts.URL, "--shared-limit", "redis://:s3cret@127.0.0.1:1/0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "127.0.0.1:1") || strings.Contains(r.stderr, "s3cret") {
		t.Errorf("exit %d, want %d naming the address without the password; stderr:\n%s", r.code, exitUsage, r.stderr)
	}
	if srv.Stats().Requests != 0 {
		t.Errorf("the server saw %d requests", srv.Stats().Requests)
	}
}
