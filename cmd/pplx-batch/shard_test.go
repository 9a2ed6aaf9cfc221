package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// TestShards runs an input as four shards, each with its own output, and
// checks that together they answer every row exactly once, each shard its
// own rows; and that plan counts a shard's rows.
func TestShards(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	const rows, shards = 103, 4
	in := writeFile(t, "in.csv", companies(rows))
	dir := t.TempDir()
	var all []sink.Row
	for i := range shards {
		out := filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i))
		args := []string{"run", "--input", in, "--output", out, "--query", "{{.company}}", "--max-results", "1",
			"--base-url", ts.URL, "--shard", fmt.Sprintf("%d/%d", i, shards)}
		r := runMain(t, "", keyEnv(), args...)
		if r.code != exitOK {
			t.Fatalf("shard %d: exit %d, stderr:\n%s", i, r.code, r.stderr)
		}
		got := readJSONL[sink.Row](t, readFile(t, out))
		want := 0
		for row := 1; row <= rows; row++ {
			if row%shards == i {
				want++
			}
		}
		if len(got) != want {
			t.Errorf("shard %d wrote %d rows, want %d", i, len(got), want)
		}
		for _, r := range got {
			if r.Row%shards != int64(i) {
				t.Errorf("shard %d wrote row %d", i, r.Row)
			}
		}
		all = append(all, got...)
		// Run again: a finished shard removed its journal, so a rerun (the
		// next night's) answers its own rows afresh, and no others.
		before := srv.Stats().Answered
		if r := runMain(t, "", keyEnv(), args...); r.code != exitOK {
			t.Fatalf("shard %d again: exit %d, stderr:\n%s", i, r.code, r.stderr)
		}
		if srv.Stats().Answered != before+int64(want) {
			t.Errorf("shard %d again: the server answered %d requests, want %d", i, srv.Stats().Answered-before, want)
		}
	}
	checkRowsOnce(t, all, rows)

	r := runMain(t, "", nil, "plan", "--input", in, "--output", filepath.Join(dir, "p.jsonl"), "--query", "{{.company}}", "--shard", "1/4")
	if r.code != exitOK || !strings.Contains(r.stdout, "26 in shard 1/4: 26 requests") {
		t.Errorf("plan --shard 1/4: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range []string{"4/4", "-1/4", "1", "a/b", "0/0"} {
		r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", filepath.Join(dir, "x.jsonl"), "--query", "x", "--shard", bad)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--shard") {
			t.Errorf("--shard %s: exit %d, stderr:\n%s", bad, r.code, r.stderr)
		}
	}
}
