package limiter

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// outageRun is a job of rows against the server model, on fake time, with
// the API down (503 at once, no token taken) during [from, from+span): the
// pipeline's loop, where a failure costs a retry unless the Limiter says it
// came during an outage.
type outageRun struct {
	rows, retries int
	rps, burst    float64
	from, span    time.Duration
	cfg           Config
}

type outageResult struct {
	ok, failed  int
	during      int // requests sent while the API was down
	end         time.Duration
	err         error // the first Acquire error other than ctx's
	stats       Stats
	accepted429 int
}

func runOutage(t *testing.T, o outageRun) outageResult {
	t.Helper()
	var res outageResult
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		m := newServerModel("seconds", []modelSeg{{0, o.rps, o.burst}}, 0, start)
		lim := New(o.cfg)
		lim.jitter = deterministicJitter()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			mu       sync.Mutex
			next     int
			wg       sync.WaitGroup
			ok, fail atomic.Int64
			during   atomic.Int64
			lastDone atomic.Int64
			firstErr error
		)
		for range workers {
			wg.Go(func() {
				for {
					mu.Lock()
					if next >= o.rows {
						mu.Unlock()
						return
					}
					next++
					mu.Unlock()
					for n := 0; ; {
						tk, err := lim.Acquire(ctx)
						if err != nil {
							mu.Lock()
							if firstErr == nil && !errors.Is(err, context.Canceled) {
								firstErr = err
								cancel()
							}
							mu.Unlock()
							return
						}
						time.Sleep(transit)
						off := time.Since(start)
						var (
							status int
							h      http.Header
							lat    = 2 * transit
						)
						if off >= o.from && off < o.from+o.span {
							status = http.StatusServiceUnavailable
							during.Add(1)
						} else {
							status, h = m.handle(time.Now())
							if status == http.StatusOK {
								lat += 20 * time.Millisecond
							}
						}
						time.Sleep(lat - transit)
						v := lim.Release(tk, Outcome{Status: status, Header: h, Latency: lat})
						if status == http.StatusOK {
							ok.Add(1)
							lastDone.Store(int64(time.Since(start)))
							break
						}
						if status == http.StatusTooManyRequests || v.Outage {
							continue // a 429 or an outage costs no retry
						}
						if n++; n > o.retries {
							fail.Add(1)
							break
						}
						time.Sleep(time.Duration(500<<min(n-1, 4)) * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		res = outageResult{ok: int(ok.Load()), failed: int(fail.Load()), during: int(during.Load()),
			end: time.Duration(lastDone.Load()), err: firstErr, stats: lim.Stats(), accepted429: len(m.refused)}
	})
	return res
}

func TestOutage(t *testing.T) {
	tests := []struct {
		name       string
		span       time.Duration
		maxDuring  int
		maxOutage  time.Duration
		late       time.Duration // the last answer by ideal + outage + late
		wantGiveUp bool
	}{
		// The bars of issue 9 item 6.
		{"8 s", 8 * time.Second, 40, 0, 5 * time.Second, false},
		// A long outage: no row fails; the resume may wait for one probe
		// gap, at most probeMax.
		{"2 min", 2 * time.Minute, 60, 0, probeMax, false},
		{"longer than MaxOutage", 10 * time.Minute, 60, time.Minute, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := outageRun{rows: 600, retries: 5, rps: 40, burst: 10, from: 4 * time.Second, span: tt.span,
				cfg: Config{MaxOutage: tt.maxOutage}}
			r := runOutage(t, o)
			ideal := time.Duration(float64(o.rows-int(o.burst)) / o.rps * float64(time.Second))
			t.Logf("%s: %d ok, %d failed, %d requests during the outage, last answer at %v (ideal %v + outage %v), err %v, 429s %d, stats %+v",
				t.Name(), r.ok, r.failed, r.during, r.end, ideal, tt.span, r.err, r.accepted429, r.stats)
			if tt.wantGiveUp {
				oe, ok := errors.AsType[*OutageError](r.err)
				if !ok {
					t.Fatalf("got error %v, want an *OutageError", r.err)
				}
				if oe.Duration < tt.maxOutage || oe.Duration > tt.maxOutage+time.Second {
					t.Errorf("got an outage of %v, want about %v", oe.Duration, tt.maxOutage)
				}
				if r.failed != 0 {
					t.Errorf("got %d rows failed, want 0 (their retries are kept)", r.failed)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("got error %v", r.err)
			}
			if r.ok != o.rows || r.failed != 0 {
				t.Errorf("got %d ok and %d failed rows, want %d ok", r.ok, r.failed, o.rows)
			}
			if r.during > tt.maxDuring {
				t.Errorf("got %d requests during the outage, want at most %d", r.during, tt.maxDuring)
			}
			if bound := ideal + tt.span + tt.late; r.end > bound {
				t.Errorf("the last answer came at %v, want by %v (ideal + outage + %v)", r.end, bound, tt.late)
			}
			if r.stats.Outages != 1 || r.stats.Down {
				t.Errorf("got %d outages, down %v; want 1, over", r.stats.Outages, r.stats.Down)
			}
			if share := float64(r.accepted429) / float64(o.rows); share >= barHeaders429 {
				t.Errorf("got %d 429s (%.2f%%), want < %.1f%%", r.accepted429, 100*share, 100*barHeaders429)
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	tests := []struct {
		name string
		o    Outcome
		want bool
	}{
		{"200", Outcome{Status: 200}, false},
		{"429", Outcome{Status: 429}, false},
		{"500", Outcome{Status: 500}, true},
		{"503", Outcome{Status: 503}, true},
		{"connection refused", Outcome{Err: errors.New("dial tcp: connection refused")}, true},
		{"timeout", Outcome{Err: context.DeadlineExceeded}, true},
		{"cancelled by the caller", Outcome{Err: context.Canceled}, false},
		{"nothing", Outcome{}, false},
	}
	for _, tt := range tests {
		if got := isFailure(tt.o); got != tt.want {
			t.Errorf("%s: isFailure = %v, want %v", tt.name, got, tt.want)
		}
	}
}
