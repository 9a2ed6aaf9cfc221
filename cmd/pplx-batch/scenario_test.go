//go:build scenario

// The real-time rate-limit scenarios of issue 3: `make bench-limiter`, or
//
//	go test -tags scenario -run '^TestScenarios$' -v ./cmd/pplx-batch/
//
// Each scenario starts `pplx-batch sim` with a token bucket, a header style
// and maybe a limit change, runs `pplx-batch run --mode search` over a
// generated CSV against it in real time, reads the simulator's per-second
// timeline from GET /_sim/stats, and prints a table of the allowed and
// achieved rate, the share of 429s, the retries and the time taken to follow
// a limit change, each next to its bar. The test fails when a bar is missed.
// PPLX_BATCH_BIN names the binary (else it is built); SCENARIOS=a,b runs a
// subset by name; SCENARIO_MATRIX=full adds the whole matrix of issue 9
// (burst 20 in every dialect, burst 10 without headers); SCENARIO_LOG sets
// the runs' log level (default warn) and SCENARIO_DIR keeps each run's files
// and logs in a folder of that name. The "outage 8s" scenario needs
// `pplx-batch sim --outage at+for` (sim.ParseOutages).
//
// The scenarios "alone N" and "shared N" (issue 11) start N processes on
// one key at once against one sim (40/s, burst 10, seconds headers), each
// over its share of the rows; "shared N" starts a redis-server (see
// internal/redistest) and gives every process --shared-limit. They report
// the combined rate from the sim's timeline, the share of 429s and the
// processes' wall times, and fail when the longest wall is more than 15%
// above the shortest. "alone N" measures the "before".

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/pplx-batch/pplx-batch/internal/redistest"
	"github.com/pplx-batch/pplx-batch/sim"
)

// scenCase is one real-time scenario.
type scenCase struct {
	name    string
	headers string  // sim --headers
	rps     float64 // the server's rate (and burst) before any change
	burst   int     // the server's burst; 0: the rate
	change  time.Duration
	to      float64 // the rate from change on; 0: no change
	latency time.Duration
	jitter  time.Duration
	span    time.Duration // how long the rows take at the allowed rate
	args    []string      // extra `run` flags
	stream  bool          // --mode agent --stream instead of --mode search

	ratioBar float64 // least achieved/allowed in steady state
	share429 float64 // 429s must stay below this share of requests
	jobBar   float64 // least rows/(rate × (wall − latency)) over the job; 0: none

	outageAt, outage time.Duration // sim --outage at+for; 0: none
	maxDuring        int64         // most requests during the outage

	procs   int     // > 0: this many processes on one key at once, each with rows()/procs rows
	shared  bool    // the processes share their limit through a Redis started for the run
	wallBar float64 // the longest wall over the shortest, less 1, must stay below this
	extra   bool    // run only when named in SCENARIOS or with SCENARIO_MATRIX=full
}

const (
	scenWarm     = 3 * time.Second // left out of the steady state
	scenWindow   = time.Second     // the bucket's reset window: burst = rate
	scenKey      = "scenario-key"
	scenFollowed = 0.05 // within 5% of the new rate one window after a change
)

func scenCases() []scenCase {
	const (
		r    = 40.0
		lat  = 50 * time.Millisecond
		jit  = 50 * time.Millisecond
		span = 18 * time.Second
	)
	var cs []scenCase
	for _, h := range []string{"seconds", "epoch", "duration", "openai", "ietf", "rfc3339"} {
		cs = append(cs, scenCase{name: "headers " + h, headers: h, rps: r, latency: lat, jitter: jit, span: span,
			ratioBar: 0.98, share429: 0.005})
	}
	for _, h := range []string{"none", "none-at-all"} {
		cs = append(cs, scenCase{name: "no headers (" + h + ")", headers: h, rps: r, latency: lat, jitter: jit,
			span: 24 * time.Second, ratioBar: 0.90, share429: 0.03})
	}
	for _, h := range []string{"seconds", "epoch"} {
		cs = append(cs,
			scenCase{name: "halved " + h, headers: h, rps: 40, change: 10 * time.Second, to: 20, latency: lat, jitter: jit,
				span: 22 * time.Second, ratioBar: 0.98, share429: 0.005},
			scenCase{name: "doubled " + h, headers: h, rps: 20, change: 10 * time.Second, to: 40, latency: lat, jitter: jit,
				span: 20 * time.Second, ratioBar: 0.98, share429: 0.005})
	}
	// Issue 9 item 1: a bucket that holds a quarter of a second, in every
	// dialect (burst 40 is the "headers" rows above; SCENARIO_MATRIX=full
	// adds burst 20 and the header-less styles).
	bursts := []int{10}
	if os.Getenv("SCENARIO_MATRIX") == "full" {
		bursts = append(bursts, 20)
	}
	for _, b := range bursts {
		for _, h := range []string{"seconds", "epoch", "duration", "openai", "ietf", "rfc3339"} {
			cs = append(cs, scenCase{name: fmt.Sprintf("burst %d %s", b, h), headers: h, rps: r, burst: b,
				latency: 20 * time.Millisecond, span: 12 * time.Second, ratioBar: 0.98, share429: 0.005})
		}
		if os.Getenv("SCENARIO_MATRIX") == "full" {
			for _, h := range []string{"none", "none-at-all"} {
				cs = append(cs, scenCase{name: fmt.Sprintf("burst %d %s", b, h), headers: h, rps: r, burst: b,
					latency: 20 * time.Millisecond, span: 24 * time.Second, ratioBar: 0.90, share429: 0.03})
			}
		}
	}
	cs = append(cs,
		// Issue 9 item 2: 1-second answers into a bucket of 5 at 30/s, 600
		// rows, no --concurrency.
		scenCase{name: "ramp 1s 30/s burst 5", headers: "seconds", rps: 30, burst: 5, latency: time.Second,
			span: 20 * time.Second, ratioBar: 0.95, share429: 0.005, jobBar: 0.95},
		// Issue 9 item 6: the API down (503 at once) from 4 s for 8 s,
		// 600 rows at 40/s burst 10: at most 40 requests while it is down,
		// every row ok, the wall within the ideal + the outage + 5 s.
		scenCase{name: "outage 8s", headers: "seconds", rps: r, burst: 10, latency: 20 * time.Millisecond,
			span: 15 * time.Second, share429: 0.005, outageAt: 4 * time.Second, outage: 8 * time.Second,
			maxDuring: 40},
		scenCase{name: "latency-bound 1s", headers: "seconds", rps: r, latency: time.Second, span: span,
			ratioBar: 0.95, share429: 0.005},
		scenCase{name: "latency-bound 1s --concurrency 100", headers: "seconds", rps: r, latency: time.Second, span: span,
			args: []string{"--concurrency", "100"}, ratioBar: 0.95, share429: 0.005})
	// Streamed agent answers that take 2 s after their headers (the sim
	// sends the headers and response.created at once): a stream is paced
	// until its headers only. (Held until its last event, 1.6 rows/s of
	// 20.) Epoch resets are the real Agent API's; the full matrix adds
	// the other dialects.
	streamDialects := []string{"epoch"}
	if os.Getenv("SCENARIO_MATRIX") == "full" {
		streamDialects = []string{"seconds", "epoch", "duration", "openai", "ietf", "rfc3339"}
	}
	for _, h := range streamDialects {
		cs = append(cs, scenCase{name: "stream 2s " + h, headers: h, rps: r, burst: 10, latency: 2 * time.Second,
			span: 15 * time.Second, stream: true, ratioBar: 0.98, share429: 0.005, jobBar: 0.95})
	}
	if os.Getenv("SCENARIO_MATRIX") == "full" {
		// Without headers, 5% of 429s: a stream's ticket comes back with
		// its headers, in a millisecond, so the slow start (one more
		// request in flight per answer) climbs far above the rate before
		// the first 429 comes back. Measured: 24 of the 28 429s of a run
		// came in its first second; 2.6–4.8% over three runs.
		for _, h := range []string{"none", "none-at-all"} {
			cs = append(cs, scenCase{name: "stream 2s " + h, headers: h, rps: r, burst: 10, latency: 2 * time.Second,
				span: 24 * time.Second, stream: true, ratioBar: 0.90, share429: 0.05})
		}
	}
	// Issue 11: N processes on one key started together, alone (the
	// "before") and sharing the limit through Redis.
	for _, n := range []int{4, 8} {
		c := scenCase{headers: "seconds", rps: r, burst: 10, latency: 20 * time.Millisecond, span: 20 * time.Second, procs: n}
		// Alone: the "before", measured without bars.
		alone := c
		alone.name, alone.share429, alone.extra = fmt.Sprintf("alone %d", n), 1, true
		shared := c
		shared.name, shared.shared = fmt.Sprintf("shared %d", n), true
		shared.ratioBar, shared.share429, shared.wallBar = 0.95, 0.01, 0.15
		cs = append(cs, alone, shared)
	}
	if os.Getenv("SCENARIO_MATRIX") == "full" {
		// The shared limit in the other header dialects.
		for _, h := range []string{"epoch", "duration", "openai", "ietf", "rfc3339"} {
			cs = append(cs, scenCase{name: "shared 4 " + h, headers: h, rps: r, burst: 10, latency: 20 * time.Millisecond,
				span: 20 * time.Second, procs: 4, shared: true, ratioBar: 0.95, share429: 0.01, wallBar: 0.15})
		}
		// Without rate-limit headers the store paces every process by one
		// CUBIC curve, cut at a rate 429 and measured from the requests
		// of them all (before it, each process learnt alone: 0.93 of the
		// rate, 21% 429s, walls 55% apart). The bars of one process
		// without headers, but 5% of 429s: four processes start unpaced
		// and most of their 429s come in the first second, before the
		// first loss.
		for _, h := range []string{"none", "none-at-all"} {
			cs = append(cs, scenCase{name: "shared 4 " + h, headers: h, rps: r, burst: 10, latency: 20 * time.Millisecond,
				span: 24 * time.Second, procs: 4, shared: true, ratioBar: 0.90, share429: 0.05, wallBar: 0.15})
		}
	}
	return cs
}

// rows returns how many input rows take c.span at the allowed rate.
func (c scenCase) rows() int {
	if c.to == 0 {
		return int(c.rps * c.span.Seconds())
	}
	before := c.rps * c.change.Seconds()
	return int(before + c.to*(c.span-c.change).Seconds())
}

// allowedAt returns the server's rate during second s.
func (c scenCase) allowedAt(s int) float64 {
	if c.to > 0 && time.Duration(s)*time.Second >= c.change {
		return c.to
	}
	return c.rps
}

// scenResult is what one scenario measured.
type scenResult struct {
	c                 scenCase
	allowed, achieved float64 // steady state, requests/s
	requests, limited int64   // from the simulator
	retries           int64   // from the run summary
	follow            time.Duration
	afterChange       float64 // achieved/new rate one window after the change
	exitCode          int
	wall              time.Duration // of the run; the longest of several processes
	minWall           time.Duration // the shortest wall of several processes; 0 for one
	during            int64         // requests answered 503 (during the outage)
	job               float64       // rows/(rate × (wall − latency))
	failures          []string
	timeline          []sim.Second
}

func TestScenarios(t *testing.T) {
	bin := os.Getenv("PPLX_BATCH_BIN")
	if bin == "" {
		bin = buildBinary(t)
	}
	only := map[string]bool{}
	for _, n := range splitList(os.Getenv("SCENARIOS")) {
		only[n] = true
	}
	var results []scenResult
	for _, c := range scenCases() {
		if len(only) > 0 && !only[c.name] {
			continue
		}
		if c.extra && len(only) == 0 && os.Getenv("SCENARIO_MATRIX") != "full" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			r := scenRun(t, bin, c)
			results = append(results, r)
			for _, f := range r.failures {
				t.Error(f)
			}
		})
	}
	scenTable(os.Stdout, results)
}

func scenRun(t *testing.T, bin string, c scenCase) scenResult {
	dir := t.TempDir()
	if keep := os.Getenv("SCENARIO_DIR"); keep != "" { // keep the logs
		dir = filepath.Join(keep, strings.NewReplacer(" ", "_", "/", "_").Replace(c.name))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res := scenResult{c: c}
	base := scenSim(t, bin, c, dir)
	if c.procs > 0 {
		scenProcs(t, bin, c, dir, base, &res)
		return res
	}

	// The input.
	input := filepath.Join(dir, "in.csv")
	var b strings.Builder
	b.WriteString("q\n")
	for i := range c.rows() {
		fmt.Fprintf(&b, "scenario query %d\n", i+1)
	}
	if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The run, bounded in time.
	summary := filepath.Join(dir, "summary.json")
	mode := []string{"--mode", "search", "--query", "{{.q}}"}
	if c.stream {
		mode = []string{"--mode", "agent", "--stream", "--prompt", "{{.q}}"}
	}
	args := append([]string{"run", "--input", input, "--output", filepath.Join(dir, "out.jsonl"),
		"--base-url", base, "--summary", summary, "--log-level", scenLogLevel(), "--log-format", "json"}, mode...)
	args = append(args, c.args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*c.span+30*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, bin, args...)
	run.Env = append(scenEnv(), "PERPLEXITY_API_KEY="+scenKey)
	runLog, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer runLog.Close()
	run.Stderr, run.Stdout = runLog, runLog
	start := time.Now()
	err = run.Run()
	res.wall = time.Since(start)
	res.exitCode = run.ProcessState.ExitCode()
	t.Logf("run took %v, exit code %d, log %s", time.Since(start).Round(time.Millisecond), res.exitCode, runLog.Name())
	if err != nil {
		res.failures = append(res.failures, fmt.Sprintf("run: %v (log in %s)", err, runLog.Name()))
		if ctx.Err() != nil {
			return res
		}
	}

	// What the run and the server saw.
	sum, err := scenSummary(summary)
	if err != nil {
		res.failures = append(res.failures, err.Error())
	}
	res.retries = sum.Requests.Retries
	if sum.Rows.OK != int64(c.rows()) {
		res.failures = append(res.failures, fmt.Sprintf("got %d ok rows, want %d", sum.Rows.OK, c.rows()))
	}
	scenServer(t, base, &res)
	return res
}

// scenSim starts `pplx-batch sim` for c, stopped when the test ends, and
// returns its URL.
func scenSim(t *testing.T, bin string, c scenCase, dir string) string {
	simArgs := []string{"sim", "--rps", fmtFloat(c.rps), "--latency", c.latency.String(),
		"--jitter", c.jitter.String(), "--headers", c.headers, "--key", scenKey}
	if c.burst > 0 {
		simArgs = append(simArgs, "--burst", strconv.Itoa(c.burst))
	}
	if c.outage > 0 {
		simArgs = append(simArgs, "--outage", fmt.Sprintf("%s+%s", c.outageAt, c.outage))
	}
	if c.to > 0 {
		simArgs = append(simArgs, "--schedule", fmt.Sprintf("%s=%s", c.change, fmtFloat(c.to)))
	}
	simCmd := exec.Command(bin, simArgs...)
	simErr, err := os.Create(filepath.Join(dir, "sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simErr.Close() })
	simCmd.Stderr = simErr
	stdout, err := simCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := simCmd.Start(); err != nil {
		t.Fatalf("start sim: %v", err)
	}
	t.Cleanup(func() {
		_ = simCmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { simCmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = simCmd.Process.Kill()
			<-done
		}
	})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			urlc <- strings.TrimSpace(sc.Text())
		}
		close(urlc)
		for sc.Scan() {
		}
	}()
	var base string
	select {
	case base = <-urlc:
	case <-time.After(10 * time.Second):
	}
	if !strings.HasPrefix(base, "http://") {
		t.Fatalf("the simulator printed no URL (got %q)", base)
	}
	return base
}

// scenRunSummary is what the scenarios read of a run's --summary.
type scenRunSummary struct {
	Rows     struct{ Total, OK, Failed int64 }
	Requests struct {
		Total       int64 `json:"total"`
		RateLimited int64 `json:"rate_limited"`
		Retries     int64 `json:"retries"`
	}
}

func scenSummary(path string) (scenRunSummary, error) {
	var sum scenRunSummary
	raw, err := os.ReadFile(path)
	if err != nil {
		return sum, fmt.Errorf("summary: %w", err)
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		return sum, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}

// scenProcs runs c.procs processes at once against the simulator at base,
// each over its own c.rows()/c.procs rows, sharing a Redis when c.shared,
// and checks every row of every process and their wall times.
func scenProcs(t *testing.T, bin string, c scenCase, dir, base string, res *scenResult) {
	var shared []string
	if c.shared {
		rd := redistest.Start(t)
		shared = []string{"--shared-limit", rd.URL(0)}
	}
	per := c.rows() / c.procs
	type procRun struct {
		cmd     *exec.Cmd
		summary string
		log     *os.File
		wall    time.Duration
		err     error
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*c.span+30*time.Second)
	defer cancel()
	runs := make([]*procRun, c.procs)
	for i := range runs {
		input := filepath.Join(dir, fmt.Sprintf("in-%d.csv", i))
		var b strings.Builder
		b.WriteString("q\n")
		for j := range per {
			fmt.Fprintf(&b, "scenario query %d of process %d\n", j+1, i)
		}
		if err := os.WriteFile(input, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		pr := &procRun{summary: filepath.Join(dir, fmt.Sprintf("summary-%d.json", i))}
		args := append([]string{"run", "--mode", "search", "--input", input, "--output", filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i)),
			"--query", "{{.q}}", "--base-url", base, "--summary", pr.summary, "--log-level", scenLogLevel(), "--log-format", "json"},
			append(shared, c.args...)...)
		pr.cmd = exec.CommandContext(ctx, bin, args...)
		pr.cmd.Env = append(scenEnv(), "PERPLEXITY_API_KEY="+scenKey)
		var err error
		if pr.log, err = os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", i))); err != nil {
			t.Fatal(err)
		}
		defer pr.log.Close()
		pr.cmd.Stderr, pr.cmd.Stdout = pr.log, pr.log
		runs[i] = pr
	}
	// Start them together.
	var wg sync.WaitGroup
	for _, pr := range runs {
		start := time.Now()
		if err := pr.cmd.Start(); err != nil {
			t.Fatalf("start a run: %v", err)
		}
		wg.Go(func() {
			pr.err = pr.cmd.Wait()
			pr.wall = time.Since(start)
		})
	}
	wg.Wait()
	minWall, maxWall := time.Duration(math.MaxInt64), time.Duration(0)
	var walls []string
	for i, pr := range runs {
		walls = append(walls, pr.wall.Round(10*time.Millisecond).String())
		minWall, maxWall = min(minWall, pr.wall), max(maxWall, pr.wall)
		if pr.err != nil {
			res.failures = append(res.failures, fmt.Sprintf("process %d: %v (log in %s)", i, pr.err, pr.log.Name()))
			continue
		}
		sum, err := scenSummary(pr.summary)
		if err != nil {
			res.failures = append(res.failures, fmt.Sprintf("process %d: %v", i, err))
			continue
		}
		res.retries += sum.Requests.Retries
		if sum.Rows.OK != int64(per) {
			res.failures = append(res.failures, fmt.Sprintf("process %d: got %d ok rows, want %d", i, sum.Rows.OK, per))
		}
	}
	res.wall, res.minWall = maxWall, minWall
	t.Logf("walls of the %d processes: %s", c.procs, strings.Join(walls, " "))
	if spread := res.wallSpread(); c.wallBar > 0 && spread > c.wallBar {
		res.failures = append(res.failures, fmt.Sprintf("the longest wall is %.1f%% above the shortest, want at most %.0f%%",
			100*spread, 100*c.wallBar))
	}
	scenServer(t, base, res)
}

// scenServer reads what the simulator saw into res and measures it.
func scenServer(t *testing.T, base string, res *scenResult) {
	rep, err := scenStats(base)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	res.timeline = rep.Timeline
	var tl strings.Builder
	for _, s := range rep.Timeline {
		fmt.Fprintf(&tl, " %d", s.Admitted)
		if n := s.RateLimited + s.ConcurrencyLimited; n > 0 {
			fmt.Fprintf(&tl, "(+%d 429)", n)
		}
	}
	t.Logf("admitted per second:%s", tl.String())
	res.requests = rep.Requests
	res.limited = rep.RateLimited + rep.ConcurrencyLimited
	res.during = rep.Status[http.StatusServiceUnavailable]
	scenMeasure(res)
}

// wallSpread returns the longest wall over the shortest, less 1, of a
// run of several processes; 0 for one.
func (r scenResult) wallSpread() float64 {
	if r.minWall <= 0 {
		return 0
	}
	return r.wall.Seconds()/r.minWall.Seconds() - 1
}

// scenLogLevel is the run's log level: SCENARIO_LOG, else warn. The log
// of each run is kept in its test's temporary directory.
func scenLogLevel() string {
	if l := os.Getenv("SCENARIO_LOG"); l != "" {
		return l
	}
	return "warn"
}

// scenEnv is the environment of the run without any Perplexity settings
// of the caller.
func scenEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PERPLEXITY_") && !strings.HasPrefix(kv, "PPLX_API_KEY=") {
			out = append(out, kv)
		}
	}
	return out
}

func scenStats(base string) (sim.StatsReport, error) {
	var rep sim.StatsReport
	resp, err := http.Get(base + sim.StatsPath)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("GET %s: %s", sim.StatsPath, resp.Status)
	}
	return rep, json.NewDecoder(resp.Body).Decode(&rep)
}

// scenMeasure computes the figures from the timeline and checks the bars.
func scenMeasure(r *scenResult) {
	c, tl := r.c, r.timeline
	first, last := -1, -1
	for i, s := range tl {
		if s.Admitted > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		r.failures = append(r.failures, "the server admitted nothing")
		return
	}
	// Steady state: after the warm-up, without the last two seconds (the
	// last rows drain and the final second is partial).
	from, to := first+int(scenWarm/time.Second), last-1
	if to-from < 5 {
		r.failures = append(r.failures, fmt.Sprintf("only %d seconds of steady state", to-from))
		return
	}
	if c.outage > 0 {
		// The steady state has a hole: check the outage's own bars.
		ideal := time.Duration(float64(c.rows()-c.burst) / c.rps * float64(time.Second))
		if r.during > c.maxDuring {
			r.failures = append(r.failures, fmt.Sprintf("got %d requests during the outage, want at most %d", r.during, c.maxDuring))
		}
		if bound := ideal + c.outage + 5*time.Second; r.wall > bound {
			r.failures = append(r.failures, fmt.Sprintf("the run took %v, want at most %v (ideal + outage + 5 s)",
				r.wall.Round(10*time.Millisecond), bound))
		}
		if share := r.share(); share >= c.share429 {
			r.failures = append(r.failures, fmt.Sprintf("got %.2f%% 429s, want < %.1f%%", 100*share, 100*c.share429))
		}
		r.achieved, r.allowed = float64(c.rows())/r.wall.Seconds(), c.rps // over the whole run
		return
	}
	if c.to == 0 && r.wall > c.latency {
		r.job = float64(c.rows()) / (c.rps * (r.wall - c.latency).Seconds())
	}
	if c.jobBar > 0 && r.job < c.jobBar {
		r.failures = append(r.failures, fmt.Sprintf("got %.3f of the rate over the job (to the last answer less one latency), want >= %.2f",
			r.job, c.jobBar))
	}
	var got, allowed float64
	for s := from; s < to; s++ {
		got += float64(tl[s].Admitted)
		allowed += c.allowedAt(s)
	}
	n := float64(to - from)
	r.achieved, r.allowed = got/n, allowed/n
	if ratio := got / allowed; ratio < c.ratioBar {
		r.failures = append(r.failures, fmt.Sprintf("got %.3f of the allowed rate, want >= %.2f", ratio, c.ratioBar))
	}
	if share := r.share(); share >= c.share429 {
		r.failures = append(r.failures, fmt.Sprintf("got %.2f%% 429s, want < %.1f%%", 100*share, 100*c.share429))
	}
	if c.to == 0 {
		return
	}
	// The change: the mean of the 5 s from one window after it, and when
	// every 2 s mean from then on stays within 5% of the new rate.
	at := int(c.change / time.Second)
	w := at + int(scenWindow/time.Second)
	if w+5 > to {
		r.failures = append(r.failures, "the run ended too soon after the change")
		return
	}
	var sum float64
	for s := w; s < w+5; s++ {
		sum += float64(tl[s].Admitted)
	}
	r.afterChange = sum / 5 / c.to
	if math.Abs(r.afterChange-1) > scenFollowed {
		r.failures = append(r.failures, fmt.Sprintf("one window after the change: got %.3f of the new rate, want within ±%.0f%%",
			r.afterChange, 100*scenFollowed))
	}
	follow := at
	for s := at; s+2 <= to; s++ {
		mean := float64(tl[s].Admitted+tl[s+1].Admitted) / 2
		if math.Abs(mean-c.to) > scenFollowed*c.to {
			follow = s + 1
		}
	}
	r.follow = time.Duration(follow-at) * time.Second
}

func (r scenResult) share() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.limited) / float64(r.requests)
}

// scenTable prints the results with their bars.
func scenTable(w *os.File, rs []scenResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "scenario\tallowed/s\tachieved/s\tratio (bar)\t429s (bar)\tretries\tjob ratio\tfollow change (bar: ±5% after 1 window)\tresult\t")
	for _, r := range rs {
		c := r.c
		ratio := 0.0
		if r.allowed > 0 {
			ratio = r.achieved / r.allowed
		}
		follow := "-"
		if c.outage > 0 {
			follow = fmt.Sprintf("%d requests while down %v (≤%d), wall %v", r.during, c.outage, c.maxDuring, r.wall.Round(10*time.Millisecond))
		}
		if c.to > 0 {
			follow = fmt.Sprintf("%s→%s: %.3f after 1s, ±5%% within %v", fmtFloat(c.rps), fmtFloat(c.to), r.afterChange, r.follow)
		}
		if c.procs > 0 {
			follow = fmt.Sprintf("%d processes, walls %v to %v: +%.1f%%", c.procs, r.minWall.Round(10*time.Millisecond),
				r.wall.Round(10*time.Millisecond), 100*r.wallSpread())
			if c.wallBar > 0 {
				follow += fmt.Sprintf(" (≤%.0f%%)", 100*c.wallBar)
			}
		}
		verdict := "ok"
		if len(r.failures) > 0 {
			verdict = "FAIL"
		}
		job := "-"
		if r.job > 0 {
			job = fmt.Sprintf("%.3f", r.job)
			if c.jobBar > 0 {
				job += fmt.Sprintf(" (≥%.2f)", c.jobBar)
			}
		}
		ratioBar, shareBar := fmt.Sprintf(" (≥%.2f)", c.ratioBar), fmt.Sprintf(" (<%.1f%%)", 100*c.share429)
		if c.ratioBar == 0 {
			ratioBar = "" // no bar: a "before" figure
		}
		if c.share429 >= 1 {
			shareBar = ""
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.3f%s\t%.2f%%%s\t%d\t%s\t%s\t%s\t\n",
			c.name, r.allowed, r.achieved, ratio, ratioBar, 100*r.share(), shareBar, r.retries, job, follow, verdict)
	}
	tw.Flush()
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
