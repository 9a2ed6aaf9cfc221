package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
	"github.com/pplx-batch/pplx-batch/internal/redistest"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// sharedRuns runs n jobs at once on one key, each over rows rows of its
// own, with --shared-limit url; during runs it calls during (if not nil).
func sharedRuns(t *testing.T, n, rows int, base, url string, during func()) []result {
	t.Helper()
	dir := t.TempDir()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		in := writeFile(t, fmt.Sprintf("in-%d.csv", i), companies(rows))
		wg.Go(func() {
			results[i] = runMain(t, "", keyEnv(), "run", "--input", in, "--output", filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i)),
				"--query", fmt.Sprintf("{{.company}} (job %d)", i), "--max-results", "1", "--base-url", base, "--shared-limit", url)
		})
	}
	if during != nil {
		during()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK {
			t.Errorf("job %d: exit %d, want %d; stderr:\n%s", i, r.code, exitOK, r.stderr)
		}
		if strings.Contains(r.stderr, testKey) {
			t.Errorf("job %d: the API key is in the log", i)
		}
	}
	return results
}

// TestSharedLimitTwoJobs runs two jobs on one key that share their limit
// through Redis: both finish with every row ok, and Redis holds the
// limit's state under a hash of the key, never the key itself.
func TestSharedLimitTwoJobs(t *testing.T) {
	rd := redistest.Start(t)
	ts, srv := startSim(t, sim.Config{RPS: 40, Burst: 10, Latency: 10 * time.Millisecond})
	const rows = 60
	sharedRuns(t, 2, rows, ts.URL, rd.URL(0), nil)
	if got := srv.Stats().Answered; got != 2*rows {
		t.Errorf("the server answered %d requests, want %d (one per row)", got, 2*rows)
	}
	c, err := redisconn.Open(context.Background(), rd.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	limitKeys := 0
	for _, k := range keys {
		if strings.Contains(k, testKey) {
			t.Errorf("Redis key %q holds the API key", k)
		}
		if strings.HasPrefix(k, "pplx-batch:limit:") {
			limitKeys++
		}
	}
	if limitKeys == 0 {
		t.Errorf("no limit state in Redis; keys: %q", keys)
	}
	t.Logf("429s: %d of %d requests", srv.Stats().RateLimited, srv.Stats().Requests)
}

// TestSharedLimitRedisRestart kills Redis while two jobs share their limit
// and starts it again, empty: every row of both ends ok, each answered
// once, and each job warns once that Redis went away and notes that it
// came back.
func TestSharedLimitRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts Redis during a 4-second job")
	}
	rd := redistest.Start(t)
	ts, srv := startSim(t, sim.Config{RPS: 40, Burst: 10, Latency: 10 * time.Millisecond})
	const rows = 80 // 160 rows at 40/s: about 4 s
	results := sharedRuns(t, 2, rows, ts.URL, rd.URL(0), func() {
		time.Sleep(time.Second)
		rd.Kill()
		time.Sleep(1500 * time.Millisecond)
		rd.Restart()
	})
	if got := srv.Stats().Answered; got != 2*rows {
		t.Errorf("the server answered %d requests, want %d (one per row)", got, 2*rows)
	}
	for i, r := range results {
		if n := strings.Count(r.stderr, "shared limit: Redis is unreachable"); n != 1 {
			t.Errorf("job %d warned %d times that Redis is unreachable, want once; stderr:\n%s", i, n, r.stderr)
		}
		if !strings.Contains(r.stderr, "shared limit: Redis is back") {
			t.Errorf("job %d did not note that Redis came back; stderr:\n%s", i, r.stderr)
		}
	}
	t.Logf("429s: %d of %d requests", srv.Stats().RateLimited, srv.Stats().Requests)
}

// TestSharedLimitRows checks the outputs of a shared run row by row.
func TestSharedLimitRows(t *testing.T) {
	rd := redistest.Start(t)
	ts, _ := startSim(t, sim.Config{RPS: 100, Burst: 10})
	in := writeFile(t, "in.csv", companies(20))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}", "--max-results", "1",
		"--base-url", ts.URL, "--shared-limit", rd.URL(0))
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	rows := readJSONL[sink.Row](t, readFile(t, out))
	if len(rows) != 20 {
		t.Fatalf("got %d rows, want 20", len(rows))
	}
	for _, row := range rows {
		if row.Status != "ok" {
			t.Errorf("row %d: status %q", row.Row, row.Status)
		}
	}
}
