package limiter

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// scenario is one run of the real Limiter against the server model, on the
// fake time of a synctest bubble: workers loop Acquire → the request
// travels to the model (a random transit time, so that requests may arrive
// out of order) → the model admits or refuses at once → an admitted request
// takes its latency → the answer travels back → Release, as the pipeline
// does (a 429 is retried at once; the backlog never ends).
type scenario struct {
	style    string     // header style of the model
	segs     []modelSeg // the server's rate over time
	window   time.Duration
	latency  time.Duration
	jitter   time.Duration // uniform extra latency in [0, jitter)
	workers  int           // the pipeline's errgroup limit
	cfg      Config
	duration time.Duration
	drained  bool // the server's bucket starts with 3 tokens, not full
}

// scenarioResult is what a run measured.
type scenarioResult struct {
	model    *serverModel
	accepted int
	refused  int
	stats    Stats
	maxOut   int // most tickets out at once, as seen by the workers
}

// mix64 is the SplitMix64 finalizer: deterministic pseudo-random bits.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit returns a uniform number in [0, 1) from a seed.
func unit(seed uint64) float64 { return float64(mix64(seed)>>11) / (1 << 53) }

func runScenario(t *testing.T, sc scenario) scenarioResult {
	t.Helper()
	var res scenarioResult
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		m := newServerModel(sc.style, sc.segs, sc.window, start)
		if sc.drained {
			m.tokens = 3
		}
		lim := New(sc.cfg)
		lim.jitter = deterministicJitter()
		ctx, cancel := context.WithTimeout(context.Background(), sc.duration)
		defer cancel()
		var (
			wg     sync.WaitGroup
			out    atomic.Int64
			maxOut atomic.Int64
		)
		for range sc.workers {
			wg.Go(func() {
				for {
					tk, err := lim.Acquire(ctx)
					if err != nil {
						return
					}
					if n := out.Add(1); n > maxOut.Load() {
						maxOut.Store(n)
					}
					// The request travels to the server, which may see
					// requests in another order than they were sent.
					up := time.Duration(unit(tk.Seq^0x7a11) * float64(transit))
					time.Sleep(up)
					status, h := m.handle(time.Now())
					lat := up + time.Duration(unit(tk.Seq^0xd0e5)*float64(transit))
					if status == http.StatusOK {
						lat += sc.latency
						if sc.jitter > 0 {
							lat += time.Duration(unit(tk.Seq^0x5eed) * float64(sc.jitter))
						}
					}
					time.Sleep(lat - up)
					out.Add(-1)
					lim.Release(tk, Outcome{Status: status, Header: h, Latency: lat})
				}
			})
		}
		wg.Wait()
		res = scenarioResult{model: m, accepted: len(m.accepts), refused: len(m.refused),
			stats: lim.Stats(), maxOut: int(maxOut.Load())}
	})
	return res
}

// ratio returns the admitted requests in [from, to) over what the server
// allowed in that span (its rate; the bucket's initial content excluded).
func (r scenarioResult) ratio(from, to time.Duration) float64 {
	allowed := 0.0
	segs := r.model.segs
	for i, s := range segs {
		end := to
		if i+1 < len(segs) {
			end = min(end, segs[i+1].from)
		}
		if lo := max(from, s.from); end > lo {
			if r.model.window > 0 {
				allowed += s.burst / r.model.window.Seconds() * (end - lo).Seconds()
			} else {
				allowed += s.rps * (end - lo).Seconds()
			}
		}
	}
	return float64(r.model.acceptedIn(from, to)) / allowed
}

// share429 returns the 429s over all requests.
func (r scenarioResult) share429() float64 {
	return float64(r.refused) / float64(r.accepted+r.refused)
}

// follow returns how long after at the achieved rate, averaged over any
// 2 s window, enters ±5% of rps and stays there until end.
func (r scenarioResult) follow(at, end time.Duration, rps float64) time.Duration {
	const (
		step = 100 * time.Millisecond
		span = 2 * time.Second
	)
	last := time.Duration(-1)
	for x := at; x+span <= end; x += step {
		got := float64(r.model.acceptedIn(x, x+span)) / span.Seconds()
		if math.Abs(got-rps) > 0.05*rps {
			last = x
		}
	}
	if last < 0 {
		return 0
	}
	return last + step - at
}

const (
	simLatency = 50 * time.Millisecond
	simJitter  = 50 * time.Millisecond
	simRun     = 60 * time.Second
	warmUp     = 5 * time.Second
	workers    = 256 // an errgroup limit well above what the rate needs
	transit    = 2 * time.Millisecond
)

func steady(rps float64) []modelSeg { return []modelSeg{{0, rps, rps}} }

// The bars of issue 3 (DESIGN.md §3).
const (
	barHeaders      = 0.98
	barHeaders429   = 0.005
	barNoHeaders    = 0.90
	barNoHeaders429 = 0.03
	barFollow       = 0.05
	barLatencyBound = 0.95
)

func TestScenarioHeaderStyles(t *testing.T) {
	for _, style := range []string{"seconds", "epoch", "duration", "openai", "ietf", "rfc3339"} {
		for _, jitter := range []time.Duration{0, simJitter} {
			name := style
			if jitter > 0 {
				name += " jittered"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sc := scenario{style: style, segs: steady(50), latency: simLatency, jitter: jitter,
					workers: workers, duration: simRun}
				r := runScenario(t, sc)
				ratio, share := r.ratio(warmUp, simRun), r.share429()
				t.Logf("%s: ratio %.4f (whole run %.4f), 429s %d of %d (%.3f%%), in flight ≤ %d, stats %+v", t.Name(),
					ratio, r.ratio(0, simRun), r.refused, r.accepted+r.refused, 100*share, r.maxOut, r.stats)
				checkBars(t, ratio, barHeaders, share, barHeaders429)
				if r.stats.Mode != ModeHeaders {
					t.Errorf("got mode %q, want %q", r.stats.Mode, ModeHeaders)
				}
			})
		}
	}
}

func TestScenarioNoHeaders(t *testing.T) {
	for _, style := range []string{"none", "none-at-all"} {
		for _, rps := range []float64{20, 50} {
			t.Run(fmt.Sprintf("%s %g per s", style, rps), func(t *testing.T) {
				t.Parallel()
				sc := scenario{style: style, segs: steady(rps), latency: simLatency, jitter: simJitter,
					workers: workers, duration: simRun}
				r := runScenario(t, sc)
				ratio, share := r.ratio(warmUp, simRun), r.share429()
				t.Logf("%s: ratio %.4f (whole run %.4f), 429s %d of %d (%.3f%%), stats %+v", t.Name(),
					ratio, r.ratio(0, simRun), r.refused, r.accepted+r.refused, 100*share, r.stats)
				checkBars(t, ratio, barNoHeaders, share, barNoHeaders429)
			})
		}
	}
}

func TestScenarioLimitChange(t *testing.T) {
	const change = 30 * time.Second
	window := time.Second // the bucket holds one second of requests
	tests := []struct {
		name     string
		from, to float64
	}{
		{"halved", 40, 20},
		{"doubled", 20, 40},
	}
	for _, tt := range tests {
		for _, style := range []string{"seconds", "epoch", "openai", "ietf", "rfc3339"} {
			t.Run(tt.name+" "+style, func(t *testing.T) {
				t.Parallel()
				sc := scenario{style: style, latency: simLatency, jitter: simJitter, workers: workers,
					duration: simRun, segs: []modelSeg{{0, tt.from, tt.from}, {change, tt.to, tt.to}}}
				r := runScenario(t, sc)
				after := r.ratio(change+window, change+window+5*time.Second)
				follow := r.follow(change, simRun-time.Second, tt.to)
				share := r.share429()
				t.Logf("%s: after one window: %.4f of the new rate; follows within %v; before: %.4f; 429s %d (%.3f%%); stats %+v", t.Name(),
					after, follow, r.ratio(warmUp, change), r.refused, 100*share, r.stats)
				if math.Abs(after-1) > barFollow {
					t.Errorf("one window after the change: got %.4f of the new rate, want within ±%.0f%%", after, 100*barFollow)
				}
				if share >= barHeaders429 {
					t.Errorf("got %.3f%% 429s, want < %.1f%%", 100*share, 100*barHeaders429)
				}
				if got := r.ratio(change+window, simRun); got < barHeaders {
					t.Errorf("after the change: got %.4f of the allowed rate, want >= %.2f", got, barHeaders)
				}
			})
		}
	}
}

func TestScenarioLatencyBound(t *testing.T) {
	for _, style := range []string{"seconds", "ietf"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			sc := scenario{style: style, segs: steady(50), latency: time.Second, workers: 512, duration: simRun}
			r := runScenario(t, sc)
			ratio := r.ratio(warmUp, simRun)
			t.Logf("%s: ratio %.4f (whole run %.4f), 429s %d, in flight ≤ %d, stats %+v", t.Name(),
				ratio, r.ratio(0, simRun), r.refused, r.maxOut, r.stats)
			if ratio < barLatencyBound {
				t.Errorf("got %.4f of the allowed rate, want >= %.2f", ratio, barLatencyBound)
			}
			if r.maxOut < 50 {
				t.Errorf("got at most %d in flight, want >= 50 (rate × latency)", r.maxOut)
			}
		})
	}
}

func TestScenarioFixedWindow(t *testing.T) {
	t.Parallel()
	// 100 requests per 10 s window, reset = seconds until the window ends.
	sc := scenario{style: "seconds", window: 10 * time.Second, segs: []modelSeg{{0, 10, 100}},
		latency: simLatency, jitter: simJitter, workers: workers, duration: simRun}
	r := runScenario(t, sc)
	ratio, share := r.ratio(10*time.Second, simRun), r.share429()
	t.Logf("%s: ratio %.4f, 429s %d (%.3f%%), stats %+v", t.Name(), ratio, r.refused, 100*share, r.stats)
	checkBars(t, ratio, 0.95, share, barHeaders429)
	if r.stats.Mode != ModeFixedWindow {
		t.Errorf("got mode %q, want %q", r.stats.Mode, ModeFixedWindow)
	}
}

func TestScenarioCeilings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		rps     float64 // the rate the ceiling allows
		maxOut  int
		latency time.Duration
	}{
		{"rps below the server's rate", Config{RPS: 20}, 20, 0, simLatency},
		{"concurrency below what the rate needs", Config{MaxInFlight: 4}, 4 / 0.2, 4, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := scenario{style: "seconds", segs: steady(50), latency: tt.latency, workers: workers,
				cfg: tt.cfg, duration: 30 * time.Second}
			r := runScenario(t, sc)
			got := float64(r.model.acceptedIn(warmUp, sc.duration)) / (sc.duration - warmUp).Seconds()
			t.Logf("%s: rate %.2f, 429s %d, in flight ≤ %d, stats %+v", t.Name(), got, r.refused, r.maxOut, r.stats)
			if got > tt.rps*1.001 || got < tt.rps*0.98 {
				t.Errorf("got %.2f requests/s, want the ceiling's %.2f", got, tt.rps)
			}
			if r.refused != 0 {
				t.Errorf("got %d 429s under a ceiling below the server's rate, want 0", r.refused)
			}
			if tt.maxOut > 0 && r.maxOut > tt.maxOut {
				t.Errorf("got %d in flight, want at most %d", r.maxOut, tt.maxOut)
			}
		})
	}
}

func TestScenarioHard(t *testing.T) {
	rpm := func(n float64) float64 { return n / 60 }
	tests := []struct {
		name        string
		sc          scenario
		ratio, r429 float64
		from        time.Duration // steady state from
	}{
		{
			name: "per-minute bucket, 50 RPM burst 50, 2 s answers",
			sc: scenario{style: "epoch", segs: []modelSeg{{0, rpm(50), 50}}, latency: 2 * time.Second,
				jitter: time.Second, duration: 10 * time.Minute},
			ratio: barHeaders, r429: barHeaders429, from: time.Minute,
		},
		{
			name: "per-minute bucket of one, 50 RPM",
			sc: scenario{style: "seconds", segs: []modelSeg{{0, rpm(50), 1}}, latency: 2 * time.Second,
				jitter: time.Second, duration: 10 * time.Minute},
			ratio: barHeaders, r429: barHeaders429, from: time.Minute,
		},
		{
			name: "small bucket, 50/s burst 5",
			sc: scenario{style: "openai", segs: []modelSeg{{0, 50, 5}}, latency: simLatency, jitter: simJitter,
				duration: simRun},
			ratio: barHeaders, r429: barHeaders429, from: warmUp,
		},
		{
			name: "bucket drained by an earlier run",
			sc: scenario{style: "seconds", segs: steady(50), latency: simLatency, jitter: simJitter,
				duration: simRun, drained: true},
			ratio: barHeaders, r429: barHeaders429, from: warmUp,
		},
		{
			name: "heavy-tailed latency, 0.2-3 s",
			sc: scenario{style: "duration", segs: steady(50), latency: 200 * time.Millisecond,
				jitter: 2800 * time.Millisecond, duration: simRun},
			ratio: barHeaders, r429: barHeaders429, from: warmUp,
		},
		{
			name: "nonsense headers",
			sc: scenario{style: "garbage", segs: steady(50), latency: simLatency, jitter: simJitter,
				duration: simRun},
			ratio: barNoHeaders, r429: barNoHeaders429, from: warmUp,
		},
		{
			name:  "no headers, latency-bound 1 s",
			sc:    scenario{style: "none", segs: steady(50), latency: time.Second, duration: 2 * simRun},
			ratio: barNoHeaders, r429: barNoHeaders429, from: 20 * time.Second,
		},
		{
			name: "no headers, limit halved",
			sc: scenario{style: "none", segs: []modelSeg{{0, 40, 40}, {30 * time.Second, 20, 20}},
				latency: simLatency, jitter: simJitter, duration: simRun},
			ratio: barNoHeaders, r429: barNoHeaders429, from: warmUp,
		},
		{
			name: "no headers, limit doubled",
			sc: scenario{style: "none", segs: []modelSeg{{0, 20, 20}, {30 * time.Second, 40, 40}},
				latency: simLatency, jitter: simJitter, duration: 2 * simRun},
			ratio: barNoHeaders, r429: barNoHeaders429, from: warmUp,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.sc.workers = workers
			r := runScenario(t, tt.sc)
			ratio, share := r.ratio(tt.from, tt.sc.duration), r.share429()
			t.Logf("%s: ratio %.4f (whole run %.4f), 429s %d of %d (%.3f%%), in flight ≤ %d, stats %+v", t.Name(),
				ratio, r.ratio(0, tt.sc.duration), r.refused, r.accepted+r.refused, 100*share, r.maxOut, r.stats)
			checkBars(t, ratio, tt.ratio, share, tt.r429)
		})
	}
}

// TestScenarioSmallBurst is issue 9 item 1: a bucket that holds less than
// a second of requests (40/s, burst 10, 20 or 40), 20 ms answers, in every
// header dialect. Absolute resets (epoch seconds, IETF t=, an RFC 3339
// time read against a Date of one-second resolution) say nothing about a
// bucket that fills in a quarter of a second, so the rate must come from
// the remaining counts.
func TestScenarioSmallBurst(t *testing.T) {
	const (
		rps = 40
		run = 20 * time.Second
	)
	styles := []struct {
		name         string
		ratio, share float64
	}{
		{"seconds", barHeaders, barHeaders429},
		{"epoch", barHeaders, barHeaders429},
		{"duration", barHeaders, barHeaders429},
		{"openai", barHeaders, barHeaders429},
		{"ietf", barHeaders, barHeaders429},
		{"rfc3339", barHeaders, barHeaders429},
		{"none", barNoHeaders, barNoHeaders429},
		{"none-at-all", barNoHeaders, barNoHeaders429},
	}
	for _, st := range styles {
		for _, burst := range []float64{10, 20, 40} {
			for _, jitter := range []time.Duration{0, simJitter} {
				name := fmt.Sprintf("%s burst %g", st.name, burst)
				if jitter > 0 {
					name += " jittered"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					sc := scenario{style: st.name, segs: []modelSeg{{0, rps, burst}}, latency: 20 * time.Millisecond,
						jitter: jitter, workers: workers, duration: run}
					if st.ratio < barHeaders {
						sc.duration = simRun // probing needs a few cycles
					}
					r := runScenario(t, sc)
					from := 2 * time.Second
					if st.ratio < barHeaders {
						from = warmUp
					}
					ratio, share := r.ratio(from, sc.duration), r.share429()
					t.Logf("%s: ratio %.4f from %v (first second %d admitted), 429s %d of %d (%.3f%%), stats %+v", t.Name(),
						ratio, from, r.model.acceptedIn(0, time.Second), r.refused, r.accepted+r.refused, 100*share, r.stats)
					checkBars(t, ratio, st.ratio, share, st.share)
				})
			}
		}
	}
}

// TestScenarioRamp is issue 9 item 2: 1-second answers, 30/s, burst 5,
// 600 rows. The rate over the job, counted up to the last answer less one
// latency (here: to the 600th admission), must reach barLatencyBound: the
// first answer's headers set the rate and so the in-flight limit at once,
// and the first second is not left empty while the first answer comes.
func TestScenarioRamp(t *testing.T) {
	const (
		rps  = 30
		rows = 600
	)
	for _, style := range []string{"seconds", "duration", "openai", "rfc3339"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			sc := scenario{style: style, segs: []modelSeg{{0, rps, 5}}, latency: time.Second, workers: rows,
				duration: 30 * time.Second}
			r := runScenario(t, sc)
			if len(r.model.accepts) < rows {
				t.Fatalf("got %d admitted in %v, want %d", len(r.model.accepts), sc.duration, rows)
			}
			end := r.model.accepts[rows-1]
			ratio := rows / (rps * end.Seconds())
			t.Logf("%s: %d rows admitted by %v: %.4f of the rate; first seconds %d %d %d; 429s %d; in flight ≤ %d; stats %+v",
				t.Name(), rows, end, ratio, r.model.acceptedIn(0, time.Second), r.model.acceptedIn(time.Second, 2*time.Second),
				r.model.acceptedIn(2*time.Second, 3*time.Second), r.refused, r.maxOut, r.stats)
			if ratio < barLatencyBound {
				t.Errorf("got %.4f of the rate over the job, want >= %.2f", ratio, barLatencyBound)
			}
			if share := r.share429(); share >= barHeaders429 {
				t.Errorf("got %.3f%% 429s, want < %.1f%%", 100*share, 100*barHeaders429)
			}
		})
	}
}

// deterministicJitter returns a jitter function for a Limiter under test:
// the same sequence of draws in every run.
func deterministicJitter() func(max time.Duration) time.Duration {
	var draws atomic.Uint64
	return func(max time.Duration) time.Duration {
		if max <= 0 {
			return 0
		}
		return time.Duration(unit(draws.Add(1)) * float64(max))
	}
}

// checkBars fails t when ratio, the share of the allowed rate reached, is
// below minRatio, or share, the share of requests answered 429, is
// maxShare or more.
func checkBars(t *testing.T, ratio, minRatio, share, maxShare float64) {
	t.Helper()
	if ratio < minRatio {
		t.Errorf("got %.4f of the allowed rate, want >= %.2f", ratio, minRatio)
	}
	if share >= maxShare {
		t.Errorf("got %.3f%% 429s, want < %.1f%%", 100*share, 100*maxShare)
	}
}
