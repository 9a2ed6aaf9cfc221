//go:build profile

package main

import (
	"context"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
)

// TestProfileRun runs the command in-process with the arguments in
// PPLX_BATCH_ARGS (space-separated) and writes a CPU profile to
// PPLX_BATCH_CPUPROFILE (default cpu.pprof) and a heap profile taken at the
// end to PPLX_BATCH_MEMPROFILE when set. It is a harness for `go tool
// pprof`, not a test:
//
//	PERPLEXITY_API_KEY=k PPLX_BATCH_ARGS='run --input in.csv --output out.parquet --query {{.company}} --base-url http://127.0.0.1:18777' \
//	  go test -tags profile -run TestProfileRun -count 1 ./cmd/pplx-batch
func TestProfileRun(t *testing.T) {
	args := strings.Fields(os.Getenv("PPLX_BATCH_ARGS"))
	if len(args) == 0 {
		t.Skip("PPLX_BATCH_ARGS is not set")
	}
	name := os.Getenv("PPLX_BATCH_CPUPROFILE")
	if name == "" {
		name = "cpu.pprof"
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	code := Main(context.Background(), args, env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	pprof.StopCPUProfile()
	if mem := os.Getenv("PPLX_BATCH_MEMPROFILE"); mem != "" {
		m, err := os.Create(mem)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := pprof.WriteHeapProfile(m); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("exit code %d; CPU profile in %s", code, name)
}
