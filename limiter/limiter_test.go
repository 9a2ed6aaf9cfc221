package limiter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// newTest returns a static Limiter on a fake clock, with pauses ending
// exactly: the tests of the gates themselves.
func newTest(cfg Config) (*Limiter, *fakeClock) {
	clk := newFakeClock()
	cfg.Clock = clk
	cfg.Static = true
	l := New(cfg)
	l.jitter = noJitter
	return l, clk
}

type result struct {
	t   Ticket
	err error
}

// acquireAsync runs Acquire in a goroutine; its result arrives on the
// returned channel.
func acquireAsync(ctx context.Context, l *Limiter) <-chan result {
	ch := make(chan result, 1)
	go func() {
		t, err := l.Acquire(ctx)
		ch <- result{t, err}
	}()
	return ch
}

// poll returns the result if it is there, once everything has settled.
func poll(ch <-chan result) (result, bool) {
	synctest.Wait()
	select {
	case r := <-ch:
		return r, true
	default:
		return result{}, false
	}
}

// drive fires the fake clock's timers one by one until ch yields.
func drive(t *testing.T, clk *fakeClock, ch <-chan result) result {
	t.Helper()
	for {
		if r, ok := poll(ch); ok {
			return r
		}
		if !clk.AdvanceToNext() {
			t.Fatalf("Acquire blocked with no timer pending")
		}
	}
}

// mustAcquire acquires without waiting.
func mustAcquire(t *testing.T, l *Limiter) Ticket {
	t.Helper()
	tk, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: got error %v, want nil", err)
	}
	return tk
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestAcquireUnlimited(t *testing.T) {
	l := New(Config{})
	for i := 1; i <= 100; i++ {
		tk := mustAcquire(t, l)
		if tk.Seq != uint64(i) {
			t.Fatalf("ticket %d: got Seq %d, want %d", i, tk.Seq, i)
		}
		l.Release(tk, Outcome{Status: http.StatusOK})
	}
	s := l.Stats()
	if s.Acquired != 100 || s.Released != 100 || s.InFlight != 0 {
		t.Errorf("got Stats %+v, want 100 acquired, 100 released, 0 in flight", s)
	}
}

func TestRPSSpacing(t *testing.T) {
	tests := []struct {
		name  string
		rps   float64
		burst int
		n     int
	}{
		{"4 rps", 4, 0, 5},
		{"2 rps burst 1", 2, 1, 3},
		{"4 rps burst 8 starts with one token", 4, 8, 6},
		{"0.5 rps", 0.5, 0, 4},
		{"one request", 4, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				l, clk := newTest(Config{RPS: tt.rps, Burst: tt.burst})
				for i := 0; i < tt.n; i++ {
					r := drive(t, clk, acquireAsync(t.Context(), l))
					if r.err != nil {
						t.Fatalf("Acquire %d: got error %v", i, r.err)
					}
					want := t0.Add(time.Duration(float64(i) / tt.rps * float64(time.Second)))
					if !r.t.Sent.Equal(want) {
						t.Errorf("Acquire %d: got Sent %v, want %v", i, r.t.Sent.Sub(t0), want.Sub(t0))
					}
				}
				want := time.Duration(float64(tt.n-1) / tt.rps * float64(time.Second))
				if got := clk.Now().Sub(t0); got != want {
					t.Errorf("%d acquisitions took %v of fake time, want %v", tt.n, got, want)
				}
			})
		})
	}
}

func TestBurstAfterIdle(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{RPS: 4, Burst: 3})
		mustAcquire(t, l)
		clk.Advance(time.Minute) // the bucket fills to Burst
		start := clk.Now()
		for i := 0; i < 3; i++ {
			if tk := mustAcquire(t, l); !tk.Sent.Equal(start) {
				t.Errorf("burst %d: got Sent +%v, want +0", i, tk.Sent.Sub(start))
			}
		}
		r := drive(t, clk, acquireAsync(t.Context(), l))
		if want := start.Add(250 * time.Millisecond); !r.t.Sent.Equal(want) {
			t.Errorf("after the burst: got Sent +%v, want +%v", r.t.Sent.Sub(start), want.Sub(start))
		}
	})
}

func TestConcurrentWaitersAreSpaced(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		const n = 8
		l, clk := newTest(Config{RPS: 4})
		chans := make([]<-chan result, n)
		for i := range chans {
			chans[i] = acquireAsync(t.Context(), l)
		}
		sent := map[time.Duration]int{}
		for _, ch := range chans {
			r := drive(t, clk, ch)
			if r.err != nil {
				t.Fatalf("got error %v", r.err)
			}
			sent[r.t.Sent.Sub(t0)]++
		}
		for i := 0; i < n; i++ {
			at := time.Duration(i) * 250 * time.Millisecond
			if sent[at] != 1 {
				t.Errorf("got %d tickets at +%v, want 1 (all: %v)", sent[at], at, sent)
			}
		}
	})
}

func TestPauseHonouredByAllWorkers(t *testing.T) {
	for _, rps := range []float64{0, 4} {
		t.Run(fmt.Sprint("rps ", rps), func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				const workers = 8
				l, clk := newTest(Config{RPS: rps})
				l.jitter = fullJitter
				first := mustAcquire(t, l)

				// With a ceiling, some workers are already waiting for a
				// token when the 429 comes.
				before := 0
				if rps > 0 {
					before = workers / 2
				}
				chans := make([]<-chan result, 0, workers)
				for i := 0; i < before; i++ {
					chans = append(chans, acquireAsync(t.Context(), l))
				}
				synctest.Wait()
				l.Release(first, Outcome{Status: http.StatusTooManyRequests, Header: hdr("Retry-After", "10")})
				pauseEnd := t0.Add(10 * time.Second)
				jitter := time.Second // min(10% of 10 s, 1 s)
				for len(chans) < workers {
					chans = append(chans, acquireAsync(t.Context(), l))
				}

				// Let every worker settle on its timer before time moves:
				// a worker between reading the clock and arming its timer
				// would otherwise arm it late.
				synctest.Wait()
				clk.Advance(pauseEnd.Sub(clk.Now()) - time.Nanosecond)
				for i, ch := range chans {
					if r, ok := poll(ch); ok {
						t.Fatalf("worker %d: Acquire returned at +%v, before the pause ended at +10s", i, r.t.Sent.Sub(t0))
					}
				}
				for i, ch := range chans {
					r := drive(t, clk, ch)
					if r.err != nil {
						t.Fatalf("worker %d: got error %v", i, r.err)
					}
					if r.t.Sent.Before(pauseEnd) {
						t.Errorf("worker %d: got Sent +%v, want >= +10s", i, r.t.Sent.Sub(t0))
					}
					if rps == 0 && !r.t.Sent.Equal(pauseEnd.Add(jitter)) {
						// fullJitter takes the whole allowance: 10% of 10 s.
						t.Errorf("worker %d: got Sent +%v, want +11s", i, r.t.Sent.Sub(t0))
					}
				}
				if got := l.Stats(); got.Pauses != 1 || got.PauseTime != 10*time.Second || got.RateLimited != 1 {
					t.Errorf("got Stats %+v, want 1 pause of 10s and 1 rate-limited", got)
				}
			})
		})
	}
}

func TestPauseFromOutcome(t *testing.T) {
	date := t0.Format(http.TimeFormat)
	ahead := t0.Add(time.Hour) // a server clock one hour fast
	tests := []struct {
		name     string
		status   int
		header   http.Header
		err      error
		maxPause time.Duration
		want     time.Duration // 0: no pause
		clamped  bool
	}{
		{name: "429 Retry-After seconds", status: 429, header: hdr("Retry-After", "3"), want: 3 * time.Second},
		{name: "429 Retry-After decimal", status: 429, header: hdr("Retry-After", "1.5"), want: 1500 * time.Millisecond},
		{name: "429 Retry-After HTTP date", status: 429,
			header: hdr("Retry-After", t0.Add(7*time.Second).Format(http.TimeFormat), "Date", date), want: 7 * time.Second},
		{name: "429 Retry-After HTTP date, server clock ahead", status: 429,
			header: hdr("Retry-After", ahead.Add(7*time.Second).Format(http.TimeFormat), "Date", ahead.Format(http.TimeFormat)),
			want:   7 * time.Second},
		{name: "429 retry-after-ms", status: 429, header: hdr("Retry-After-Ms", "250"), want: 250 * time.Millisecond},
		{name: "429 retry-after-ms wins", status: 429, header: hdr("Retry-After-Ms", "250", "Retry-After", "3"), want: 250 * time.Millisecond},
		{name: "429 no headers", status: 429, want: DefaultPause},
		{name: "429 reset only", status: 429, header: hdr("X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "4"), want: 4 * time.Second},
		{name: "429 epoch reset", status: 429,
			header: hdr("X-Ratelimit-Reset", strconv.FormatInt(t0.Unix()+12, 10), "Date", date), want: 12 * time.Second},
		{name: "429 Retry-After 0", status: 429, header: hdr("Retry-After", "0"), want: 0},
		{name: "429 Retry-After above MaxPause", status: 429, header: hdr("Retry-After", "600"), want: DefaultMaxPause, clamped: true},
		{name: "429 Retry-After above custom MaxPause", status: 429, header: hdr("Retry-After", "30"),
			maxPause: 10 * time.Second, want: 10 * time.Second, clamped: true},
		{name: "429 absurd Retry-After ignored", status: 429, header: hdr("Retry-After", "7200"), want: DefaultPause},
		{name: "429 negative Retry-After ignored", status: 429, header: hdr("Retry-After", "-5"), want: DefaultPause},
		{name: "503 Retry-After", status: 503, header: hdr("Retry-After", "5"), want: 5 * time.Second},
		{name: "503 without Retry-After", status: 503},
		{name: "200 remaining 0", status: 200, header: hdr("X-Ratelimit-Limit", "50", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "2"),
			want: 2 * time.Second},
		{name: "200 remaining 0 OpenAI", status: 200, header: hdr("X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "1m30s"),
			want: 90 * time.Second},
		{name: "200 IETF r=0", status: 200, header: hdr("Ratelimit-Policy", `"default";q=50;w=60`, "Ratelimit", `"default";r=0;t=9`),
			want: 9 * time.Second},
		{name: "200 remaining 0 above MaxPause", status: 200, header: hdr("X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "3600"),
			want: DefaultMaxPause, clamped: true},
		{name: "200 remaining 3", status: 200, header: hdr("X-Ratelimit-Remaining", "3", "X-Ratelimit-Reset", "2")},
		{name: "200 remaining 0 reset 0", status: 200, header: hdr("X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "0")},
		{name: "200 Retry-After ignored", status: 200, header: hdr("Retry-After", "5")},
		{name: "500", status: 500},
		{name: "transport error", err: errors.New("connection reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				l, clk := newTest(Config{MaxPause: tt.maxPause})
				tk := mustAcquire(t, l)
				l.Release(tk, Outcome{Status: tt.status, Header: tt.header, Err: tt.err})
				s := l.Stats()
				if s.PauseTime != tt.want {
					t.Errorf("got PauseTime %v, want %v", s.PauseTime, tt.want)
				}
				if got := s.ClampedPauses == 1; got != tt.clamped {
					t.Errorf("got ClampedPauses %d, want clamped %v", s.ClampedPauses, tt.clamped)
				}
				if got, want := s.RateLimited, uint64(0); tt.status == 429 {
					if got != 1 {
						t.Errorf("got RateLimited %d, want 1", got)
					}
				} else if got != want {
					t.Errorf("got RateLimited %d, want %d", got, want)
				}
				if tt.err != nil && s.TransportErrors != 1 {
					t.Errorf("got TransportErrors %d, want 1", s.TransportErrors)
				}
				// The next Acquire goes exactly when the pause ends.
				r := drive(t, clk, acquireAsync(t.Context(), l))
				if got := r.t.Sent.Sub(t0); got != tt.want {
					t.Errorf("next Acquire at +%v, want +%v", got, tt.want)
				}
			})
		})
	}
}

func TestPauseOnlyExtends(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{})
		tk := mustAcquire(t, l)
		tk2 := mustAcquire(t, l)
		tk3 := mustAcquire(t, l)
		l.Release(tk, Outcome{Status: 429, Header: hdr("Retry-After", "10")}) // until +10s
		clk.Advance(4 * time.Second)
		l.Release(tk2, Outcome{Status: 429, Header: hdr("Retry-After", "3")})  // +7s: no change
		l.Release(tk3, Outcome{Status: 429, Header: hdr("Retry-After", "10")}) // +14s
		s := l.Stats()
		if s.Pauses != 2 || s.PauseTime != 14*time.Second {
			t.Errorf("got %d pauses of %v in all, want 2 of 14s", s.Pauses, s.PauseTime)
		}
		r := drive(t, clk, acquireAsync(t.Context(), l))
		if got, want := r.t.Sent.Sub(t0), 14*time.Second; got != want {
			t.Errorf("next Acquire at +%v, want +%v", got, want)
		}
	})
}

func TestPauseWhileHeadWaitsForToken(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{RPS: 1})
		first := mustAcquire(t, l)
		ch := acquireAsync(t.Context(), l) // its token is due at +1s
		synctest.Wait()
		l.Release(first, Outcome{Status: 429, Header: hdr("Retry-After", "5")})
		synctest.Wait() // the head moves to the pause gate
		clk.Advance(time.Second)
		if r, ok := poll(ch); ok {
			t.Fatalf("Acquire returned at +%v, inside the pause", r.t.Sent.Sub(t0))
		}
		r := drive(t, clk, ch)
		if got, want := r.t.Sent.Sub(t0), 5*time.Second; got != want {
			t.Errorf("got Sent +%v, want +%v", got, want)
		}
		// Its first reservation was returned: the token after it is due 1 s
		// later, not 2 s.
		r = drive(t, clk, acquireAsync(t.Context(), l))
		if got, want := r.t.Sent.Sub(t0), 6*time.Second; got != want {
			t.Errorf("next: got Sent +%v, want +%v", got, want)
		}
	})
}

func TestCancelReleasesReservation(t *testing.T) {
	tests := []struct {
		name    string
		waiters int // waiting behind the first ticket
		cancel  []int
	}{
		{"the only waiter", 1, []int{0}},
		{"the head of the line", 3, []int{0}},
		{"the middle of the line", 3, []int{1}},
		{"all of the line, head first", 3, []int{0, 1, 2}},
		{"all of the line, tail first", 3, []int{2, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				l, clk := newTest(Config{RPS: 1})
				mustAcquire(t, l)
				cancels := make([]context.CancelFunc, tt.waiters)
				chans := make([]<-chan result, tt.waiters)
				for i := range chans {
					var ctx context.Context
					ctx, cancels[i] = context.WithCancel(t.Context())
					chans[i] = acquireAsync(ctx, l)
					synctest.Wait() // line them up in order
				}
				cancelled := map[int]bool{}
				for _, i := range tt.cancel {
					cancels[i]()
					cancelled[i] = true
					r, ok := poll(chans[i])
					if !ok {
						t.Fatalf("waiter %d: Acquire still blocked after cancel", i)
					}
					if !errors.Is(r.err, context.Canceled) {
						t.Errorf("waiter %d: got error %v, want context.Canceled", i, r.err)
					}
				}
				// The survivors, then a newcomer, get consecutive seconds:
				// no token was lost to a cancelled waiter.
				var rest []<-chan result
				for i, ch := range chans {
					if !cancelled[i] {
						rest = append(rest, ch)
					}
				}
				rest = append(rest, acquireAsync(t.Context(), l))
				for k, ch := range rest {
					r := drive(t, clk, ch)
					if got, want := r.t.Sent.Sub(t0), time.Duration(k+1)*time.Second; got != want {
						t.Errorf("survivor %d: got Sent +%v, want +%v", k, got, want)
					}
				}
				if got := clk.Pending(); got != 0 {
					t.Errorf("got %d timers pending, want 0", got)
				}
				if got := l.Stats().Failed; got != uint64(len(tt.cancel)) {
					t.Errorf("got Failed %d, want %d", got, len(tt.cancel))
				}
				for _, c := range cancels {
					c()
				}
			})
		})
	}
}

func TestCancelWhilePaused(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{MaxInFlight: 2})
		tk := mustAcquire(t, l)
		l.Release(tk, Outcome{Status: 429, Header: hdr("Retry-After", "30")})
		ctx, cancel := context.WithCancel(t.Context())
		ch := acquireAsync(ctx, l)
		if _, ok := poll(ch); ok {
			t.Fatalf("Acquire returned during the pause")
		}
		cancel()
		r, ok := poll(ch)
		if !ok || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("got %v, %v; want context.Canceled", r.err, ok)
		}
		if got := clk.Pending(); got != 0 {
			t.Errorf("got %d timers pending, want 0", got)
		}
		if got := l.Stats().InFlight; got != 0 {
			t.Errorf("got InFlight %d, want 0", got)
		}
		// Both slots are still free after the pause.
		clk.Advance(30 * time.Second)
		mustAcquire(t, l)
		mustAcquire(t, l)
	})
}

func TestDeadlineShorterThanWait(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, l *Limiter)
		timeout time.Duration
		wantErr bool
		wantAt  time.Duration // when a later Acquire gets through
	}{
		{
			name:    "token due after the deadline",
			setup:   func(t *testing.T, l *Limiter) { mustAcquire(t, l) },
			timeout: 500 * time.Millisecond, wantErr: true, wantAt: time.Second,
		},
		{
			name:    "token due before the deadline",
			setup:   func(t *testing.T, l *Limiter) { mustAcquire(t, l) },
			timeout: 5 * time.Second, wantAt: 2 * time.Second,
		},
		{
			name: "pause ends after the deadline",
			setup: func(t *testing.T, l *Limiter) {
				l.Release(mustAcquire(t, l), Outcome{Status: 429, Header: hdr("Retry-After", "10")})
			},
			timeout: time.Second, wantErr: true, wantAt: 10 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				l, clk := newTest(Config{RPS: 1})
				tt.setup(t, l)
				ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
				ch := acquireAsync(ctx, l)
				if tt.wantErr {
					r, ok := poll(ch)
					if !ok {
						t.Fatalf("Acquire waited; want it to fail at once")
					}
					if !errors.Is(r.err, ErrWouldExceedDeadline) || !errors.Is(r.err, context.DeadlineExceeded) {
						t.Errorf("got error %v, want ErrWouldExceedDeadline wrapping context.DeadlineExceeded", r.err)
					}
					if got := clk.Pending(); got != 0 {
						t.Errorf("got %d timers pending, want 0", got)
					}
				} else if r := drive(t, clk, ch); r.err != nil {
					t.Fatalf("got error %v, want nil", r.err)
				}
				r := drive(t, clk, acquireAsync(t.Context(), l))
				if got := r.t.Sent.Sub(t0); got != tt.wantAt {
					t.Errorf("later Acquire at +%v, want +%v (a reservation leaked?)", got, tt.wantAt)
				}
			})
		})
	}
}

func TestDeadlineInLine(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{RPS: 1})
		mustAcquire(t, l)
		head := acquireAsync(t.Context(), l) // due at +1s
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		if r, ok := poll(acquireAsync(ctx, l)); !ok || !errors.Is(r.err, ErrWouldExceedDeadline) {
			t.Errorf("second in line with 1.5s: got %v (returned %v), want ErrWouldExceedDeadline", r.err, ok)
		}
		if r := drive(t, clk, head); r.t.Sent.Sub(t0) != time.Second {
			t.Errorf("head: got Sent +%v, want +1s", r.t.Sent.Sub(t0))
		}
	})
}

func TestCancelledContext(t *testing.T) {
	l := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want context.Canceled", err)
	}
	if s := l.Stats(); s.Failed != 1 || s.Acquired != 0 {
		t.Errorf("got Stats %+v, want 1 failed, 0 acquired", s)
	}
}

func TestMaxInFlight(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, _ := newTest(Config{MaxInFlight: 2})
		a := mustAcquire(t, l)
		b := mustAcquire(t, l)
		c := acquireAsync(t.Context(), l)
		synctest.Wait()
		d := acquireAsync(t.Context(), l)
		if _, ok := poll(c); ok {
			t.Fatalf("third Acquire returned with 2 in flight")
		}
		l.Release(b, Outcome{Status: 200})
		rc, ok := poll(c)
		if !ok {
			t.Fatalf("third Acquire still blocked after a Release")
		}
		if _, ok := poll(d); ok {
			t.Fatalf("fourth Acquire returned before the third (want first come, first served)")
		}
		if got := l.Stats().InFlight; got != 2 {
			t.Errorf("got InFlight %d, want 2", got)
		}
		l.Release(a, Outcome{Err: errors.New("timeout")})
		rd, ok := poll(d)
		if !ok {
			t.Fatalf("fourth Acquire still blocked after a Release")
		}
		l.Release(rc.t, Outcome{Status: 200})
		l.Release(rd.t, Outcome{Status: 200})
		if s := l.Stats(); s.InFlight != 0 || s.Released != 4 {
			t.Errorf("got Stats %+v, want 0 in flight, 4 released", s)
		}
	})
}

func TestCancelWhileWaitingForSlot(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, _ := newTest(Config{MaxInFlight: 1})
		a := mustAcquire(t, l)
		ctx, cancel := context.WithCancel(t.Context())
		b := acquireAsync(ctx, l)
		synctest.Wait()
		c := acquireAsync(t.Context(), l)
		cancel()
		if r, ok := poll(b); !ok || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled waiter: got %v (returned %v), want context.Canceled", r.err, ok)
		}
		if _, ok := poll(c); ok {
			t.Fatalf("Acquire returned while the only slot is taken")
		}
		l.Release(a, Outcome{Status: 200})
		rc, ok := poll(c)
		if !ok {
			t.Fatalf("Acquire still blocked after the slot was released")
		}
		l.Release(rc.t, Outcome{Status: 200})
		if s := l.Stats(); s.InFlight != 0 || s.Failed != 1 {
			t.Errorf("got Stats %+v, want 0 in flight, 1 failed", s)
		}
	})
}

func TestReleaseIgnoresBadTickets(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, _ := newTest(Config{MaxInFlight: 1})
		other := New(Config{})
		a := mustAcquire(t, l)
		l.Release(Ticket{}, Outcome{Status: 429})
		l.Release(mustAcquire(t, other), Outcome{Status: 429})
		l.Release(a, Outcome{Status: 200})
		l.Release(a, Outcome{Status: 429}) // twice
		b := mustAcquire(t, l)
		c := acquireAsync(t.Context(), l)
		if _, ok := poll(c); ok {
			t.Fatalf("a double Release freed a second slot")
		}
		l.Release(b, Outcome{Status: 200})
		rc, _ := poll(c)
		l.Release(rc.t, Outcome{Status: 200})
		if s := l.Stats(); s.Released != 3 || s.RateLimited != 0 || s.Pauses != 0 || s.InFlight != 0 {
			t.Errorf("got Stats %+v, want 3 released, nothing rate-limited or paused", s)
		}
	})
}

func TestGoroutineHygiene(t *testing.T) {
	// Waiters blocked at each gate are cancelled; the bubble fails the
	// test if any goroutine is left, and no timer may stay armed.
	inBubble(t, func(t *testing.T) {
		l, clk := newTest(Config{RPS: 1, MaxInFlight: 6})
		ctx, cancel := context.WithCancel(t.Context())
		held := mustAcquire(t, l)
		var chans []<-chan result
		for i := 0; i < 10; i++ { // 5 wait for tokens, 5 for slots
			chans = append(chans, acquireAsync(ctx, l))
		}
		synctest.Wait()
		l.Release(held, Outcome{Status: 429}) // now they wait for the pause
		for i := 0; i < 3; i++ {
			chans = append(chans, acquireAsync(ctx, l))
		}
		synctest.Wait()
		cancel()
		for i, ch := range chans {
			r, ok := poll(ch)
			if !ok {
				t.Fatalf("waiter %d still blocked after cancel", i)
			}
			if r.err == nil {
				l.Release(r.t, Outcome{Status: 200})
			}
		}
		if got := clk.Pending(); got != 0 {
			t.Errorf("got %d timers pending, want 0", got)
		}
		l.mu.Lock()
		inFlight, line, slotWaiters, turn := l.inFlight, len(l.line), len(l.slotWaiters), l.turnTaken
		l.mu.Unlock()
		if inFlight != 0 || line != 0 || slotWaiters != 0 || turn {
			t.Errorf("got inFlight %d, line %d, slot waiters %d, turn taken %v; want all clear", inFlight, line, slotWaiters, turn)
		}
	})
}

func TestInvalidHeaderLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Log: zerolog.New(&buf)})
	for i := 0; i < 3; i++ {
		l.Release(mustAcquire(t, l), Outcome{Status: 200, Header: hdr("X-Ratelimit-Remaining", "-1", "X-Ratelimit-Limit", "NaN")})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2 (one per bad header):\n%s", len(lines), buf.String())
	}
	for _, want := range []string{`"header":"X-Ratelimit-Remaining"`, `"reason":"negative"`, `"header":"X-Ratelimit-Limit"`, `"reason":"not finite"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestPauseIsLogged(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Log: zerolog.New(&buf)})
	l.Release(mustAcquire(t, l), Outcome{Status: 429, Header: hdr("Retry-After", "300")})
	for _, want := range []string{`"level":"warn"`, `"clamped":true`, `"status":429`, `"cause":"retry-after"`, `limiter: pausing all requests`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestNewSanitizesConfig(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantInf   bool
		wantBurst int
		wantPause time.Duration
	}{
		{"zero", Config{}, true, 1, DefaultMaxPause},
		{"negative", Config{RPS: -1, Burst: -3, MaxPause: -time.Second, MaxInFlight: -1}, true, 1, DefaultMaxPause},
		{"NaN", Config{RPS: math.NaN()}, true, 1, DefaultMaxPause},
		{"+Inf", Config{RPS: math.Inf(1)}, true, 1, DefaultMaxPause},
		{"set", Config{RPS: 5, Burst: 4, MaxPause: time.Minute}, false, 4, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			if got := l.bucket.Limit() == rate.Inf; got != tt.wantInf {
				t.Errorf("got limit %v, want Inf %v", l.bucket.Limit(), tt.wantInf)
			}
			if got := l.bucket.Burst(); got != tt.wantBurst {
				t.Errorf("got burst %d, want %d", got, tt.wantBurst)
			}
			if l.maxPause != tt.wantPause {
				t.Errorf("got MaxPause %v, want %v", l.maxPause, tt.wantPause)
			}
			if l.maxInFlight < 0 {
				t.Errorf("got maxInFlight %d, want >= 0", l.maxInFlight)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	// Real clock, no waiting: exercises the locks under -race.
	l := New(Config{MaxInFlight: 4})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				tk, err := l.Acquire(context.Background())
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				l.Release(tk, Outcome{Status: 200, Header: hdr("X-Ratelimit-Remaining", "10")})
				_ = l.Stats()
			}
		})
	}
	wg.Wait()
	if s := l.Stats(); s.Acquired != 1600 || s.Released != 1600 || s.InFlight != 0 {
		t.Errorf("got Stats %+v, want 1600 acquired and released", s)
	}
}

func TestRandomJitter(t *testing.T) {
	if got := randomJitter(0); got != 0 {
		t.Errorf("randomJitter(0) = %v, want 0", got)
	}
	for i := 0; i < 100; i++ {
		if got := randomJitter(time.Second); got < 0 || got >= time.Second {
			t.Fatalf("randomJitter(1s) = %v, want in [0, 1s)", got)
		}
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Config{MaxInFlight: 64})
	ctx := context.Background()
	out := Outcome{Status: http.StatusOK}
	b.ReportAllocs()
	for b.Loop() {
		tk, err := l.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		l.Release(tk, out)
	}
}

// BenchmarkAcquireReleaseAdaptive measures an adaptive Limiter fed with
// rate-limit headers on every response (the shadow resync and the rate
// estimates), static for comparison; no waiting is involved.
func BenchmarkAcquireReleaseAdaptive(b *testing.B) {
	for _, static := range []bool{false, true} {
		b.Run(fmt.Sprint("static=", static), func(b *testing.B) {
			l := New(Config{MaxInFlight: 64, Static: static})
			ctx := context.Background()
			out := Outcome{Status: http.StatusOK, Latency: time.Millisecond,
				Header: hdr("X-Ratelimit-Limit", "1000000", "X-Ratelimit-Remaining", "999000", "X-Ratelimit-Reset", "1")}
			b.ReportAllocs()
			for b.Loop() {
				tk, err := l.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				l.Release(tk, out)
			}
		})
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	l := New(Config{MaxInFlight: 64})
	out := Outcome{Status: http.StatusOK, Header: hdr("X-Ratelimit-Remaining", "100", "X-Ratelimit-Reset", "1")}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			tk, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release(tk, out)
		}
	})
}
