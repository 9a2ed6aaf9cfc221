package limiter

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// newAdaptive returns an adaptive Limiter on a fake clock, with pauses
// ending exactly.
func newAdaptive(cfg Config) (*Limiter, *fakeClock) {
	clk := newFakeClock()
	cfg.Clock = clk
	l := New(cfg)
	l.jitter = noJitter
	return l, clk
}

// secondsHeader is a response of a token bucket in the "seconds" style.
func secondsHeader(limit, remaining int, reset time.Duration) http.Header {
	return hdr("X-Ratelimit-Limit", strconv.Itoa(limit), "X-Ratelimit-Remaining", strconv.Itoa(remaining),
		"X-Ratelimit-Reset", strconv.FormatFloat(reset.Seconds(), 'f', -1, 64))
}

func ok(h http.Header) Outcome {
	return Outcome{Status: http.StatusOK, Header: h, Latency: 50 * time.Millisecond}
}

func TestAdaptiveFirstRequestGoesAlone(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, _ := newAdaptive(Config{})
		first := mustAcquire(t, l)
		second := acquireAsync(t.Context(), l)
		if _, ok := poll(second); ok {
			t.Fatalf("second Acquire returned before the first response, want it held (nothing is known yet)")
		}
		l.Release(first, ok(nil))
		r, done := poll(second)
		if !done || r.err != nil {
			t.Fatalf("second Acquire after the first response: got %v (returned %v), want a ticket", r.err, done)
		}
		// The window was full and a response came: it grew.
		third := acquireAsync(t.Context(), l)
		if _, done := poll(third); !done {
			t.Errorf("third Acquire held with one ticket out, want the window grown to 2")
		}
		if s := l.Stats(); s.Mode != ModeStart {
			t.Errorf("got mode %q, want %q", s.Mode, ModeStart)
		}
	})
}

func TestAdaptivePacesFromHeadersInsteadOfPausing(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		tk := mustAcquire(t, l)
		// No request remains; the bucket is full again in 1 s, so it refills
		// about 9 a second. A static Limiter would pause for the whole second.
		l.Release(tk, ok(secondsHeader(10, 0, time.Second)))
		s := l.Stats()
		if s.Mode != ModeHeaders || s.Pauses != 0 {
			t.Fatalf("got mode %q and %d pauses, want %q and none", s.Mode, s.Pauses, ModeHeaders)
		}
		if s.Rate < 8 || s.Rate > 10 {
			t.Errorf("got rate %v, want about 9 (an estimate that errs low)", s.Rate)
		}
		a := drive(t, clk, acquireAsync(t.Context(), l))
		b := drive(t, clk, acquireAsync(t.Context(), l))
		wait := a.t.Sent.Sub(t0)
		if wait <= 0 || wait >= time.Second {
			t.Errorf("first request after remaining 0 went at +%v, want after the refill of a few tokens, well before +1s", wait)
		}
		if gap, want := b.t.Sent.Sub(a.t.Sent), time.Second/time.Duration(s.Rate); gap < want-time.Millisecond || gap > want+time.Millisecond {
			t.Errorf("got %v between the next two requests, want one refill interval %v", gap, want)
		}
	})
}

func TestAdaptiveCorrectsRemainingForLaterSends(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, _ := newAdaptive(Config{})
		first := mustAcquire(t, l)
		// The bucket holds 20 and the first response says 19 remain; the
		// window opens (the first response also gives the in-flight room).
		l.Release(first, ok(secondsHeader(20, 19, 50*time.Millisecond)))
		var out []Ticket
		for {
			r, done := poll(acquireAsync(t.Context(), l))
			if !done {
				break
			}
			out = append(out, r.t)
			if len(out) > 20 {
				t.Fatalf("more than 20 tickets at once from a bucket of 20")
			}
		}
		// A late response to the second request says 18 remain; the
		// tickets granted after it must still count.
		before := len(out)
		l.Release(out[0], ok(secondsHeader(20, 18, 100*time.Millisecond)))
		if r, done := poll(acquireAsync(t.Context(), l)); done {
			t.Errorf("got a ticket (seq %d) after %d sends into a bucket reported at 18 when the first of them was sent", r.t.Seq, before)
		}
	})
}

func TestAdaptiveOneCutPerFeedbackDelay(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		// Learn a rate: ten requests in flight at once.
		l.Release(mustAcquire(t, l), ok(secondsHeader(50, 49, 20*time.Millisecond)))
		var out []Ticket
		for len(out) < 6 {
			out = append(out, drive(t, clk, acquireAsync(t.Context(), l)).t)
		}
		refuse := func(tk Ticket) {
			l.Release(tk, Outcome{Status: 429, Header: secondsHeader(50, 0, time.Second)})
		}
		refuse(out[0])
		refuse(out[1]) // sent before the cut: the same loss
		refuse(out[2])
		if got := l.Stats().Cuts; got != 1 {
			t.Fatalf("got %d cuts for three 429s of requests sent together, want 1", got)
		}
		later := drive(t, clk, acquireAsync(t.Context(), l)).t
		refuse(later) // sent after the cut: a new loss
		if got := l.Stats().Cuts; got != 2 {
			t.Errorf("got %d cuts after a 429 of a request sent after the cut, want 2", got)
		}
		for _, tk := range out[3:] {
			l.Release(tk, ok(nil))
		}
	})
}

func TestAdaptiveRateRiseWakesTheHead(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(secondsHeader(10, 9, 100*time.Millisecond)))
		first := drive(t, clk, acquireAsync(t.Context(), l)).t
		second := drive(t, clk, acquireAsync(t.Context(), l)).t
		// The bucket is empty and refills at about one a second.
		l.Release(first, ok(secondsHeader(10, 0, 10*time.Second)))
		head := acquireAsync(t.Context(), l)
		if _, done := poll(head); done {
			t.Fatalf("Acquire returned with the bucket empty")
		}
		// A newer response shows the bucket nearly full: the head must go
		// soon, not in seconds as it planned.
		asked := clk.Now()
		l.Release(second, ok(secondsHeader(10, 9, 100*time.Millisecond)))
		r := drive(t, clk, head)
		if wait := r.t.Sent.Sub(asked); wait > 200*time.Millisecond {
			t.Errorf("the head went %v after the bucket was reported full, want within 200ms", wait)
		}
	})
}

func TestAdaptiveRateDropRespacesTheHead(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(secondsHeader(100, 99, 10*time.Millisecond)))
		held := mustAcquire(t, l)
		var out []Ticket
		for {
			r, done := poll(acquireAsync(t.Context(), l))
			if !done {
				break
			}
			out = append(out, r.t)
		}
		head := acquireAsync(t.Context(), l)
		synctest.Wait()
		// A response sent before all of them says the bucket is empty and
		// refills at one a second: the head must not go at the old pace.
		l.Release(held, ok(secondsHeader(10, 0, 10*time.Second)))
		clk.Advance(500 * time.Millisecond)
		if r, done := poll(head); done {
			t.Errorf("got a ticket at +%v after the bucket was reported empty, want a wait", r.t.Sent.Sub(t0))
		}
		for _, tk := range out {
			l.Release(tk, ok(nil))
		}
	})
}

func TestAdaptiveConcurrency429ShrinksInFlight(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(secondsHeader(1000, 999, 10*time.Millisecond)))
		var out []Ticket
		for len(out) < 8 {
			r := drive(t, clk, acquireAsync(t.Context(), l))
			out = append(out, r.t)
			l.Release(r.t, ok(secondsHeader(1000, 990, 10*time.Millisecond)))
		}
		var held []Ticket
		for {
			r, done := poll(acquireAsync(t.Context(), l))
			if !done {
				break
			}
			held = append(held, r.t)
		}
		before := l.Stats()
		// Refused although requests remain: too many in flight.
		l.Release(held[0], Outcome{Status: 429, Header: secondsHeader(1000, 900, 100*time.Millisecond)})
		after := l.Stats()
		if after.Cuts != 0 {
			t.Errorf("got %d rate cuts for a concurrency 429, want 0", after.Cuts)
		}
		if want := int(math.Floor(beta * float64(len(held)))); after.InFlightLimit != want {
			t.Errorf("got in-flight limit %d (was %d with %d out), want %d", after.InFlightLimit, before.InFlightLimit, len(held), want)
		}
		for _, tk := range held[1:] {
			l.Release(tk, ok(nil))
		}
	})
}

func TestAdaptiveHeadersStopping(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(secondsHeader(50, 49, 20*time.Millisecond)))
		if got := l.Stats().Mode; got != ModeHeaders {
			t.Fatalf("got mode %q, want %q", got, ModeHeaders)
		}
		for i := 0; i < headerlessAfter; i++ {
			r := drive(t, clk, acquireAsync(t.Context(), l))
			l.Release(r.t, ok(nil))
		}
		s := l.Stats()
		if s.Mode != ModeProbe {
			t.Errorf("got mode %q after %d responses without headers, want %q", s.Mode, headerlessAfter, ModeProbe)
		}
		if s.Rate < 40 || s.Rate > 50 {
			t.Errorf("got rate %v, want the one the headers taught (about 49)", s.Rate)
		}
	})
}

func TestAdaptiveNoHintBackoff(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(nil))
		var pauses []time.Duration
		for range 4 {
			r := drive(t, clk, acquireAsync(t.Context(), l))
			before := l.Stats().PauseTime
			l.Release(r.t, Outcome{Status: 429}) // no headers, no Retry-After
			pauses = append(pauses, l.Stats().PauseTime-before)
		}
		for i, p := range pauses {
			if p < noHintMin || p > noHintMax {
				t.Errorf("pause %d: got %v, want within [%v, %v]", i, p, noHintMin, noHintMax)
			}
			if i > 0 && p < pauses[i-1] {
				t.Errorf("pause %d: got %v after %v, want it to grow while 429s continue", i, p, pauses[i-1])
			}
		}
		if pauses[3] <= pauses[0] {
			t.Errorf("got pauses %v, want them to back off", pauses)
		}
		if got := l.Stats().Mode; got != ModeProbe {
			t.Errorf("got mode %q, want %q", got, ModeProbe)
		}
	})
}

func TestAdaptiveInFlightFollowsLittlesLaw(t *testing.T) {
	tests := []struct {
		name        string
		maxInFlight int
		rps         float64
		latency     time.Duration
		want        func(got int) bool
	}{
		{"rate × latency", 0, 0, time.Second, func(got int) bool { return got >= 50 && got <= 2*50*headroom+inFlightSpare }},
		{"bounded by MaxInFlight", 12, 0, time.Second, func(got int) bool { return got == 12 }},
		{"bounded by the RPS ceiling", 0, 5, time.Second, func(got int) bool { return got >= 5 && got <= 2*5*headroom+inFlightSpare }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				l, _ := newAdaptive(Config{MaxInFlight: tt.maxInFlight, RPS: tt.rps})
				// A bucket of 50 refilling at 50/s; answers take 1 s.
				tk := mustAcquire(t, l)
				l.Release(tk, Outcome{Status: 200, Header: secondsHeader(50, 40, 200*time.Millisecond), Latency: tt.latency})
				if got := l.Stats().InFlightLimit; !tt.want(got) {
					t.Errorf("got in-flight limit %d", got)
				}
			})
		})
	}
}

func TestAdaptiveStatsAndStatic(t *testing.T) {
	if got := New(Config{Static: true}).Stats(); got.Mode != ModeStatic || got.InFlightLimit != 0 || got.Rate != 0 {
		t.Errorf("static: got %+v, want mode %q, no in-flight limit, rate 0", got, ModeStatic)
	}
	if got := New(Config{}).Stats(); got.Mode != ModeStart || got.InFlightLimit != 1 {
		t.Errorf("adaptive: got %+v, want mode %q and an in-flight limit of 1", got, ModeStart)
	}
}

func TestAdaptiveCancelLeavesNothingBehind(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		l, clk := newAdaptive(Config{})
		l.Release(mustAcquire(t, l), ok(secondsHeader(10, 0, 10*time.Second)))
		ctx, cancel := context.WithCancel(t.Context())
		var chans []<-chan result
		for range 5 {
			chans = append(chans, acquireAsync(ctx, l))
		}
		synctest.Wait()
		cancel()
		for i, ch := range chans {
			if r, done := poll(ch); !done || r.err == nil {
				t.Fatalf("waiter %d: got %v (returned %v), want an error after cancel", i, r.err, done)
			}
		}
		if got := clk.Pending(); got != 0 {
			t.Errorf("got %d timers pending, want 0", got)
		}
		if s := l.Stats(); s.InFlight != 0 {
			t.Errorf("got %d in flight, want 0", s.InFlight)
		}
	})
}
