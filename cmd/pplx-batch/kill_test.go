package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// buildBinary builds the command into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pplx-batch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// TestKillAndResume kills the real binary with SIGKILL at random moments,
// resumes it each time, and checks that the final output holds every input
// row exactly once and that the server answered each request at most once
// more than needed for the rows in flight at each kill.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	ts, srv := startSim(t, sim.Config{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Seed: 5})
	const (
		rows        = 400
		concurrency = 8
		wantKills   = 4
	)
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(rows))
	out := filepath.Join(dir, "out.parquet")
	rng := rand.New(rand.NewPCG(1, 2))

	kills := 0
	for run := 1; ; run++ {
		if run > 20 {
			t.Fatal("the job did not finish in 20 runs")
		}
		cmd := exec.Command(bin, "run", "--input", in, "--output", out, "--query", "{{.company}}",
			"--max-results", "1", "--concurrency", fmt.Sprint(concurrency), "--base-url", ts.URL, "--log-format", "json")
		cmd.Env = append(os.Environ(), "PERPLEXITY_API_KEY="+testKey)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if kills < wantKills {
			// Kill once the server has answered a few more requests, at a
			// random moment in the flow.
			target := srv.Stats().Answered + int64(10+rng.IntN(60))
			deadline := time.Now().Add(20 * time.Second)
			for srv.Stats().Answered < target && time.Now().Before(deadline) {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
			}
			_ = cmd.Process.Kill()
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) && !ee.Exited() {
				kills++
				t.Logf("run %d: killed after %d answers", run, srv.Stats().Answered)
				continue
			}
			if err != nil {
				t.Fatalf("run %d: %v\n%s", run, err, stderr.String())
			}
			t.Logf("run %d: finished before the kill", run)
			break
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, stderr.String())
		}
		break
	}
	if kills == 0 {
		t.Fatal("no run was killed")
	}

	// Every input row exactly once, each answering its own query.
	checkRowsOnce(t, readParquetRows(t, out), rows)

	// Each request was answered at most once per kill more than needed,
	// and all the extra answers together are at most the rows in flight at
	// the kills.
	extra := 0
	for i := 1; i <= rows; i++ {
		q := fmt.Sprintf("Company %d, Inc.", i)
		n := srv.Answered(sim.Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{q}}))
		if n < 1 || n > 1+kills {
			t.Errorf("row %d was answered %d times, want 1 to %d", i, n, 1+kills)
		}
		extra += n - 1
	}
	if extra > kills*concurrency {
		t.Errorf("%d answers paid twice, want at most %d (%d kills × %d in flight)", extra, kills*concurrency, kills, concurrency)
	}
	t.Logf("%d kills, %d answers paid twice (bound %d)", kills, extra, kills*concurrency)
	for _, p := range []string{out + ".journal", out + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (stat: %v)", p, err)
		}
	}
	if tmp, _ := sink.TempFiles(out); len(tmp) > 0 {
		t.Errorf("temporary files of killed runs left behind: %v", tmp)
	}
}
