package limiter

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Defaults for [Config].
const (
	// DefaultMaxPause is the longest pause honoured when Config.MaxPause is 0.
	DefaultMaxPause = 120 * time.Second
	// DefaultPause is the pause after a 429 whose headers give no delay.
	DefaultPause = time.Second
	// maxJitter bounds the random delay added to a pause's end.
	maxJitter = time.Second
)

// ErrWouldExceedDeadline is returned by [Limiter.Acquire] when ctx has a
// deadline that comes before the request could be let through. Acquire
// returns it at once, without waiting and without holding a token.
// errors.Is(ErrWouldExceedDeadline, context.DeadlineExceeded) is true.
var ErrWouldExceedDeadline = fmt.Errorf("limiter: wait would exceed the context deadline: %w", context.DeadlineExceeded)

// Clock tells the time and makes timers. The Limiter uses it for all of
// its waiting, so tests can substitute a fake. Implementations must be
// safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that delivers the time on its channel once,
	// after at least d (at once when d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a [Clock].
type Timer interface {
	// C returns the channel on which the timer delivers the time.
	C() <-chan time.Time
	// Stop prevents the timer from firing and reports whether it did so
	// (false when it had already fired or been stopped).
	Stop() bool
}

// Config configures a [Limiter]. The zero Config is valid: an adaptive
// Limiter with no ceiling of our own, an automatic in-flight limit, pauses
// of at most [DefaultMaxPause], no logging, real time. Fields may be added
// in later versions; their zero values will keep the current behaviour.
type Config struct {
	// RPS is a ceiling of our own on requests per second (--rps, or
	// --rpm/60): a hard one, which the learnt rate never exceeds. Zero, a
	// negative number, NaN or +Inf mean no ceiling (the token bucket is
	// rate.Inf).
	RPS float64

	// Burst is the capacity of the token bucket; 0 or less means 1. The
	// bucket starts with a single token whatever Burst is, so the first
	// request goes alone; it fills to Burst at RPS while idle.
	Burst int

	// MaxInFlight caps the tickets acquired and not yet released (the
	// user's --concurrency); 0 or less means no cap of our own. An
	// adaptive Limiter keeps its automatic limit (rate × latency) below
	// it; a static one uses it as the only limit.
	MaxInFlight int

	// MaxPause is the longest pause honoured; a server asking for more is
	// obeyed for MaxPause only. Zero or less means [DefaultMaxPause].
	MaxPause time.Duration

	// Log receives the pauses (info from one second up, debug below,
	// warn when cut to MaxPause), the changes of pacing mode (info), the
	// rate cuts (debug) and, once per distinct header and reason, the
	// rate-limit headers that were ignored as nonsense. The zero Logger
	// logs nothing (like zerolog.Nop()).
	Log zerolog.Logger

	// Clock is the source of time and timers; nil means real time.
	Clock Clock

	// MaxOutage is how long an outage may last (every answer a server
	// error or none at all) before Acquire gives up with an
	// [*OutageError]. Zero means [DefaultMaxOutage]; a negative value
	// means never.
	MaxOutage time.Duration

	// Static turns learning off: the Limiter then only applies RPS, Burst,
	// MaxInFlight and the pauses that responses ask for (429 or 503 with
	// Retry-After, a reset while no request remains). The zero value, an
	// adaptive Limiter, is what a batch job wants; Static suits tests and
	// servers whose limit is known exactly.
	Static bool

	// Shared, when not nil, is the state of this Limiter's bucket that it
	// shares with the Limiters of other processes on the same API key
	// (see the package documentation, "Sharing a limit"): each request
	// takes its token from it, and every outcome feeds it. While it is
	// unavailable the Limiter paces alone, from its own model. A [Set]
	// made with [WithShared] fills it in for each bucket.
	Shared SharedBucket
}

// Ticket is the permission for one request, returned by [Limiter.Acquire]
// and handed back with the outcome to [Limiter.Release]. The zero Ticket
// holds nothing; releasing it does nothing.
type Ticket struct {
	// Seq numbers the tickets of one Limiter in the order they were
	// granted, from 1. With Config.Shared the numbers come from the
	// sequence that every process sharing the bucket draws from: they
	// still grow, with gaps where other processes' requests went.
	Seq uint64
	// Sent is the Clock time at which the ticket was granted.
	Sent time.Time

	lim *Limiter
}

// Outcome is what happened to the request of a [Ticket].
type Outcome struct {
	// Status is the HTTP status code, or 0 when there was no response.
	Status int
	// Header holds the response headers; nil when there was no response.
	Header http.Header
	// Err is the transport error when there was no response.
	Err error
	// Latency is the time from sending the request to its response headers.
	Latency time.Duration
}

// Stats are a Limiter's counters since it was made.
type Stats struct {
	// Acquired counts the tickets granted by Acquire.
	Acquired uint64
	// Released counts the tickets handed back to Release.
	Released uint64
	// InFlight is the number of tickets granted and not yet released.
	InFlight int
	// Failed counts the Acquire calls that returned an error.
	Failed uint64
	// RateLimited counts the responses with status 429.
	RateLimited uint64
	// TransportErrors counts the outcomes without a response.
	TransportErrors uint64
	// Pauses counts the times a pause was started or extended.
	Pauses uint64
	// PauseTime is the total time covered by pauses, overlaps counted once.
	PauseTime time.Duration
	// ClampedPauses counts the pauses cut to Config.MaxPause.
	ClampedPauses uint64
	// Cuts counts the multiplicative decreases of the rate after 429s.
	Cuts uint64
	// Outages counts the outages: runs of outageAfter failures in a row.
	Outages uint64
	// OutageTime is the time covered by the outages that have ended, from
	// the first failure of each to the first answer after it.
	OutageTime time.Duration
	// Down is true during an outage.
	Down bool

	// Mode is what the Limiter paces by now: [ModeStatic], [ModeStart],
	// [ModeHeaders], [ModeFixedWindow] or [ModeProbe].
	Mode string
	// Rate is the rate the Limiter aims at now, in requests per second:
	// the server's refill rate learnt from headers, or the probing rate;
	// 0 when unknown or static.
	Rate float64
	// InFlightLimit is the current limit on tickets in flight; 0 means
	// none.
	InFlightLimit int
	// Latency is the smoothed latency of the responses; 0 before the first.
	Latency time.Duration
}

// Limiter paces requests: see the package documentation. It is safe for
// concurrent use. Make one with [New]; the zero Limiter is not usable.
type Limiter struct {
	clock    Clock
	log      zerolog.Logger
	maxPause time.Duration
	bucket   *rate.Limiter
	jitter   func(max time.Duration) time.Duration // replaced in tests
	ad       *adapt                                // nil when static
	sh       SharedBucket                          // nil: not shared
	wake     chan struct{}                         // pokes the head of the line; buffered 1

	mu          sync.Mutex
	pauseUntil  time.Time
	pauseJitter time.Duration   // jitter bound of the pause ending at pauseUntil
	changed     chan struct{}   // closed and replaced when the pause moves
	maxInFlight int             // 0 = no cap
	inFlight    int             // slots taken (tickets out and Acquires past the slot gate)
	slotWaiters []chan struct{} // FIFO; a closed channel owns a slot
	turnTaken   bool            // a waiter is at the head of the line
	line        []chan struct{} // FIFO behind the head; a closed channel is the turn
	seq         uint64
	booked      booking             // a token the shared bucket booked for us
	outstanding map[uint64]struct{} // seqs of the tickets out
	down        outage
	maxOutage   time.Duration
	logged      map[string]struct{} // invalid headers already logged
	stats       Stats
}

// New returns a Limiter configured by cfg (see [Config] for the defaults).
func New(cfg Config) *Limiter {
	l := &Limiter{
		clock:       cfg.Clock,
		log:         cfg.Log,
		maxPause:    cfg.MaxPause,
		maxOutage:   cfg.MaxOutage,
		jitter:      randomJitter,
		changed:     make(chan struct{}),
		wake:        make(chan struct{}, 1),
		maxInFlight: max(cfg.MaxInFlight, 0),
		outstanding: make(map[uint64]struct{}),
		sh:          cfg.Shared,
	}
	if l.clock == nil {
		l.clock = realClock{}
	}
	if l.maxPause <= 0 {
		l.maxPause = DefaultMaxPause
	}
	limit := rate.Inf
	if cfg.RPS > 0 && !math.IsInf(cfg.RPS, 1) { // NaN fails RPS > 0
		limit = rate.Limit(cfg.RPS)
	}
	burst := max(cfg.Burst, 1)
	l.bucket = rate.NewLimiter(limit, burst)
	if !cfg.Static {
		ceiling := 0.0
		if limit != rate.Inf {
			ceiling = float64(limit)
		}
		l.ad = newAdapt(ceiling)
	}
	if burst > 1 && limit != rate.Inf {
		// rate.NewLimiter starts full; keep one token so that the first
		// request goes alone and a run does not open with a burst into a
		// server bucket that may already be drained.
		l.bucket.AllowN(l.clock.Now(), burst-1)
	}
	return l
}

// Acquire waits for permission to send one request and returns its Ticket,
// which the caller must hand to [Limiter.Release] exactly once with the
// outcome. Acquire blocks until, in order: a slot is free under the
// in-flight limit (slots go first come, first served); any shared pause has
// ended (each waiter resumes after a small random delay so that the workers
// do not all send in the same millisecond); the token bucket of Config.RPS
// holds a token and, unless Config.Static, the learnt pacing lets the next
// request go (see the package documentation). If a pause begins while it
// waits for the rates, it goes back to wait for the pause. It is safe for
// concurrent use.
//
// If ctx is done first, Acquire returns ctx.Err(). If ctx has a deadline
// (measured with time.Now, as the context package does) that comes before
// the pause ends or the request could go, Acquire returns
// [ErrWouldExceedDeadline] at once. On any error it holds nothing: the
// in-flight slot is given back, and no token was taken.
func (l *Limiter) Acquire(ctx context.Context) (Ticket, error) {
	if err := ctx.Err(); err != nil {
		l.fail()
		return Ticket{}, err
	}
	if err := l.takeSlot(ctx); err != nil {
		l.fail()
		return Ticket{}, err
	}
	t, err := l.wait(ctx)
	if err != nil {
		l.mu.Lock()
		l.putSlotLocked()
		l.stats.Failed++
		l.mu.Unlock()
		return Ticket{}, err
	}
	return t, nil
}

func (l *Limiter) fail() {
	l.mu.Lock()
	l.stats.Failed++
	l.mu.Unlock()
}

// takeSlot takes an in-flight slot, waiting in line if none is free.
func (l *Limiter) takeSlot(ctx context.Context) error {
	l.mu.Lock()
	if len(l.slotWaiters) == 0 && l.slotFreeLocked() {
		l.inFlight++
		l.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	l.slotWaiters = append(l.slotWaiters, ready)
	grow := l.slotGrowLocked()
	l.mu.Unlock()

	for grow > 0 {
		// The limit grows with time (before the first response): look
		// again when it does.
		if fired, err := l.sleep(ctx, grow, ready, nil); fired {
			l.mu.Lock()
			l.grantSlotsLocked()
			grow = l.slotGrowLocked()
			l.mu.Unlock()
			continue
		} else if err != nil {
			break // handled below
		}
		return nil // ready
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-ready: // granted meanwhile: hand it on
			l.putSlotLocked()
		default:
			for i, w := range l.slotWaiters {
				if w == ready {
					l.slotWaiters = append(l.slotWaiters[:i], l.slotWaiters[i+1:]...)
					break
				}
			}
		}
		return ctx.Err()
	}
}

// slotGrowLocked returns how long until the in-flight limit grows by
// itself; 0 when it does not.
func (l *Limiter) slotGrowLocked() time.Duration {
	if l.ad == nil {
		return 0
	}
	return l.ad.blindWait(l.clock.Now())
}

// slotCapLocked returns the in-flight limit now; 0 means none.
func (l *Limiter) slotCapLocked() int {
	c := l.maxInFlight
	if l.ad != nil {
		if a := l.ad.inFlightLimit(l.clock.Now()); c == 0 || a < c {
			c = a
		}
	}
	return c
}

func (l *Limiter) slotFreeLocked() bool {
	c := l.slotCapLocked()
	return c == 0 || l.inFlight < c
}

// putSlotLocked gives back an in-flight slot and lets waiters in.
func (l *Limiter) putSlotLocked() {
	l.inFlight--
	l.grantSlotsLocked()
}

// grantSlotsLocked hands free slots to the waiters, first come first served.
func (l *Limiter) grantSlotsLocked() {
	if len(l.slotWaiters) == 0 {
		return
	}
	c := l.slotCapLocked()
	for len(l.slotWaiters) > 0 && (c == 0 || l.inFlight < c) {
		w := l.slotWaiters[0]
		l.slotWaiters[0] = nil
		l.slotWaiters = l.slotWaiters[1:]
		l.inFlight++
		close(w)
	}
}

// wait passes the pause gate and then the line for the rate gates.
//
// Waiters line up first come, first served, and only the head of the line
// waits for the rates: the token bucket of Config.RPS and, when adaptive,
// the learnt pacing. The head reserves nothing while it sleeps; it computes
// when both gates will let it through, sleeps until then, and checks again
// when it wakes, so that a rate lowered meanwhile is obeyed and a rate
// raised meanwhile (the head is poked through l.wake) is used at once. A
// move of the pause (l.changed) sends every waiter back to the pause gate.
func (l *Limiter) wait(ctx context.Context) (Ticket, error) {
	for {
		l.mu.Lock()
		now := l.clock.Now()

		// The outage gate: one probe at a time, spaced out.
		if d, err := l.outageGateLocked(now); err != nil || d > 0 {
			changed := l.changed
			l.mu.Unlock()
			if err != nil {
				return Ticket{}, err
			}
			if _, err := l.sleep(ctx, d, changed, nil); err != nil {
				return Ticket{}, err
			}
			continue
		}

		// The pause gate: each waiter wakes at the end plus its own jitter.
		if now.Before(l.pauseUntil) {
			d := l.pauseUntil.Sub(now) + l.jitter(l.pauseJitter)
			changed := l.changed
			l.mu.Unlock()
			if beyondDeadline(ctx, d) {
				return Ticket{}, ErrWouldExceedDeadline
			}
			if _, err := l.sleep(ctx, d, changed, nil); err != nil {
				return Ticket{}, err
			}
			continue
		}

		// The line.
		if l.turnTaken {
			// The head takes the next token, each waiter in line one more,
			// and we the one after.
			est := max(l.tokenDelay(now), l.adaptDelayLocked(now)) + l.lineDelay(len(l.line)+1)
			if beyondDeadline(ctx, est) {
				l.mu.Unlock()
				return Ticket{}, ErrWouldExceedDeadline
			}
			ready := make(chan struct{})
			l.line = append(l.line, ready)
			changed := l.changed
			l.mu.Unlock()

			var err error
			select {
			case <-ready:
			case <-changed:
			case <-ctx.Done():
				err = ctx.Err()
			}
			l.mu.Lock()
			select {
			case <-ready: // our turn came, perhaps just now
			default:
				l.leaveLineLocked(ready)
				l.mu.Unlock()
				if err != nil {
					return Ticket{}, err
				}
				continue // the pause moved
			}
			if err != nil {
				l.passTurnLocked()
				l.mu.Unlock()
				return Ticket{}, err
			}
		} else {
			l.turnTaken = true
		}

		// Our turn: wait until every rate gate lets us through.
		for {
			now = l.clock.Now()
			if d, err := l.outageGateLocked(now); now.Before(l.pauseUntil) || d > 0 || err != nil {
				l.passTurnLocked()
				l.mu.Unlock()
				break // back to the outage and pause gates
			}
			var d time.Duration
			alone := true
			if b := l.booked; b.seq != 0 {
				// A token is ours from b.at on: the head of the line uses it.
				alone = false
				d = max(l.tokenDelay(now), b.at.Sub(now))
				if d <= 0 {
					l.bucket.AllowN(now, 1)
					l.booked = booking{}
					t := l.grantLocked(now, b.seq)
					l.mu.Unlock()
					return t, nil
				}
			} else if l.sh != nil {
				// The shared bucket paces; our own gates still hold the
				// ceiling and, when the shared shadow does not pace, the
				// learnt pacing.
				alone = false
				d = max(l.tokenDelay(now), l.sharedAdaptDelayLocked(now))
				if d <= 0 {
					g, err := l.takeLocked(ctx, now)
					switch {
					case err == nil && g.OK && g.Wait > 0:
						// Booked: sleep until it comes, then go.
						l.booked = booking{seq: g.Seq, at: now.Add(g.Wait)}
						d = g.Wait
					case err == nil && g.OK:
						now = l.clock.Now()
						l.bucket.AllowN(now, 1) // the head alone takes these: it holds one
						t := l.grantLocked(now, g.Seq)
						l.mu.Unlock()
						return t, nil
					case err == nil:
						d = g.Wait
					case ctx.Err() != nil:
						l.passTurnLocked()
						l.mu.Unlock()
						return Ticket{}, ctx.Err()
					default:
						alone = true // the store is away: pace by our own model
						now = l.clock.Now()
					}
				}
			}
			if alone {
				d = max(l.tokenDelay(now), l.adaptDelayLocked(now))
				if d <= 0 && l.bucket.AllowN(now, 1) {
					t := l.grantLocked(now, 0)
					l.mu.Unlock()
					return t, nil
				}
			}
			d = max(d, 1)
			if beyondDeadline(ctx, d) {
				l.passTurnLocked()
				l.mu.Unlock()
				return Ticket{}, ErrWouldExceedDeadline
			}
			changed := l.changed
			l.mu.Unlock()
			_, err := l.sleep(ctx, d, changed, l.wake)
			l.mu.Lock()
			if err != nil {
				l.passTurnLocked()
				l.mu.Unlock()
				return Ticket{}, err
			}
		}
	}
}

// booking is a token the shared bucket booked for the Limiter: its
// request goes with number seq once at has come.
type booking struct {
	seq uint64
	at  time.Time
}

// grantLocked grants the head of the line a ticket at now, numbered seq
// when the shared bucket numbered it (else 0), and passes the turn on.
func (l *Limiter) grantLocked(now time.Time, seq uint64) Ticket {
	t := l.issueLocked(now, seq)
	if l.down.down {
		l.down.probeSeq = t.Seq
	}
	if l.ad != nil {
		l.ad.grant(now, t.Seq)
	}
	l.passTurnLocked()
	return t
}

// takeLocked asks the shared bucket for a token. It releases l.mu during
// the call and holds it again on return; the caller is the head of the
// line, so no other waiter takes a token meanwhile.
func (l *Limiter) takeLocked(ctx context.Context, now time.Time) (Grant, error) {
	req := TakeRequest{Now: now, Floor: l.seq}
	if a := l.ad; a != nil {
		req.Pace = a.sharedPaces()
		req.Seed = a.seed(now)
		req.Curve = a.sharedCurve(now, false)
	}
	l.mu.Unlock()
	g, err := l.sh.Take(ctx, req)
	l.mu.Lock()
	if err == nil && g.OK && g.Seq <= l.seq {
		// A store must number above Floor; one that does not is treated
		// as away rather than let two tickets share a number.
		return Grant{}, ErrSharedUnavailable
	}
	return g, err
}

// sharedAdaptDelayLocked returns how long our own learnt pacing holds the
// next request back when the shared bucket is used: nothing when the
// shared shadow paces.
func (l *Limiter) sharedAdaptDelayLocked(now time.Time) time.Duration {
	if l.ad == nil || l.ad.sharedPaces() {
		return 0
	}
	return l.ad.delay(now)
}

// adaptDelayLocked returns how long the learnt pacing holds the next
// request back.
func (l *Limiter) adaptDelayLocked(now time.Time) time.Duration {
	if l.ad == nil {
		return 0
	}
	return l.ad.delay(now)
}

// sleep waits for d to pass on the Clock, for changed to close, for a poke
// on wake (nil: none), or for ctx to be done. It reports whether the timer
// fired, or returns ctx.Err().
func (l *Limiter) sleep(ctx context.Context, d time.Duration, changed <-chan struct{}, wake <-chan struct{}) (bool, error) {
	timer := l.clock.NewTimer(d)
	select {
	case <-timer.C():
		return true, nil
	case <-changed:
		timer.Stop()
		return false, nil
	case <-wake:
		timer.Stop()
		return false, nil
	case <-ctx.Done():
		timer.Stop()
		return false, ctx.Err()
	}
}

// poke wakes the head of the line, if it sleeps, to look at the gates again.
func (l *Limiter) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// passTurnLocked hands the head of the bucket line to the next waiter.
func (l *Limiter) passTurnLocked() {
	if len(l.line) == 0 {
		l.turnTaken = false
		return
	}
	next := l.line[0]
	l.line[0] = nil
	l.line = l.line[1:]
	close(next)
}

// leaveLineLocked removes a waiter that has not got its turn.
func (l *Limiter) leaveLineLocked(ready chan struct{}) {
	for i, w := range l.line {
		if w == ready {
			l.line = append(l.line[:i], l.line[i+1:]...)
			return
		}
	}
}

// lineDelay returns the least time n waiters ahead take at the bucket's rate.
// (The learnt rate is left out: it may rise while they wait.)
func (l *Limiter) lineDelay(n int) time.Duration {
	limit := l.bucket.Limit()
	if n == 0 || limit == rate.Inf {
		return 0
	}
	return durationOf(float64(n) / float64(limit))
}

// tokenDelay returns how long until the bucket holds a token at now.
func (l *Limiter) tokenDelay(now time.Time) time.Duration {
	limit := l.bucket.Limit()
	if limit == rate.Inf {
		return 0
	}
	tokens := l.bucket.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return durationOf((1 - tokens) / float64(limit))
}

// durationOf converts seconds to a Duration, rounding up and saturating.
func durationOf(s float64) time.Duration {
	if s >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// beyondDeadline reports whether ctx's deadline comes within d.
func beyondDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}

// issueLocked grants a ticket at now, numbered seq when that is above the
// last number used, else the next number.
func (l *Limiter) issueLocked(now time.Time, seq uint64) Ticket {
	l.seq = max(l.seq+1, seq)
	l.outstanding[l.seq] = struct{}{}
	l.stats.Acquired++
	return Ticket{Seq: l.seq, Sent: now, lim: l}
}

// Release hands back a ticket from [Limiter.Acquire] with the outcome of
// its request, freeing its in-flight slot. It never blocks for long and is
// safe to call from any goroutine. A zero Ticket, a ticket from another
// Limiter, or one already released is ignored.
//
// Release reads the response headers with [ParseHeaders]; an adaptive
// Limiter learns from them and from the status, as the package
// documentation describes, and a 429 or a 503 with a retry delay sets one
// pause shared by every worker. A static Limiter (Config.Static) sets that
// pause:
//
//   - on 429, and on 503 with a retry delay: for retry-after-ms or
//     Retry-After when present, else on 429 for the reset when the headers
//     give one, else on 429 for [DefaultPause];
//   - on any other response whose headers say that no request remains
//     (Remaining < 1) and the window resets later: until the reset, so
//     that the next request does not earn a 429.
//
// Release also watches for an outage (see the package documentation): the
// returned [Verdict] says whether a failure came during one, so that the
// caller does not spend the request's retry budget on it.
//
// A pause is cut to Config.MaxPause and only ever extends the current one;
// each waiter resumes at its end plus a random delay of up to 10% of the
// pause, at most one second. Header values that make no sense are ignored
// and logged once per header and reason.
func (l *Limiter) Release(t Ticket, o Outcome) Verdict {
	if t.lim != l || t.Seq == 0 {
		return Verdict{}
	}
	now := l.clock.Now()
	var info Info
	if o.Header != nil {
		info = ParseHeaders(o.Header, now)
	}

	l.mu.Lock()
	if _, ok := l.outstanding[t.Seq]; !ok {
		l.mu.Unlock()
		return Verdict{}
	}
	out := len(l.outstanding)
	delete(l.outstanding, t.Seq)
	l.inFlight--
	l.stats.Released++
	switch {
	case o.Status == http.StatusTooManyRequests:
		l.stats.RateLimited++
	case o.Status == 0 && o.Err != nil:
		l.stats.TransportErrors++
	}
	var (
		d   time.Duration
		why string
		ev  event
	)
	if l.ad != nil {
		d, why, ev = l.ad.observe(now, t, o, info, l.seq, out)
	} else {
		d, why = pauseFor(o.Status, info)
	}
	clamped := d > l.maxPause
	if clamped {
		d = l.maxPause
	}
	verdict, downChanged, began, ended := l.noteOutageLocked(now, t, o)
	extended := false
	if d > 0 {
		until := now.Add(d)
		if until.After(l.pauseUntil) {
			l.stats.PauseTime += until.Sub(later(l.pauseUntil, now))
			l.stats.Pauses++
			if clamped {
				l.stats.ClampedPauses++
			}
			l.pauseUntil = until
			l.pauseJitter = min(d/10, maxJitter)
			close(l.changed)
			l.changed = make(chan struct{})
			extended = true
		}
	}
	if downChanged && !extended {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.grantSlotsLocked()
	var rep *Report
	if l.sh != nil {
		rep = &Report{Now: now, Seq: t.Seq, Sent: t.Sent, Kind: reportKind(o, info), Info: info, Pause: d}
		if l.ad != nil {
			rep.Rate = l.ad.rhat
			rep.Curve = l.ad.sharedCurve(now, true)
		}
	}
	var fresh []InvalidHeader
	for _, bad := range info.Invalid {
		key := bad.Name + "\x00" + bad.Reason
		if _, seen := l.logged[key]; seen {
			continue
		}
		if l.logged == nil {
			l.logged = make(map[string]struct{})
		}
		l.logged[key] = struct{}{}
		fresh = append(fresh, bad)
	}
	l.mu.Unlock()
	if rep != nil {
		// Errors are the store's to log (once per outage); the pacing
		// goes on from our own model meanwhile.
		_ = l.sh.Report(context.Background(), *rep)
	}
	if l.ad != nil {
		l.poke()
	}

	for _, bad := range fresh {
		l.log.Warn().Str("header", bad.Name).Str("value", bad.Value).Str("reason", bad.Reason).
			Msg("limiter: ignoring rate-limit header")
	}
	if ev.mode != "" {
		l.log.Info().Str("mode", ev.mode).Float64("rate", round3(ev.rate)).Msg("limiter: pacing mode changed")
	} else if ev.cut {
		l.log.Debug().Float64("rate", round3(ev.rate)).Msg("limiter: rate cut after a 429")
	}
	if extended {
		var e *zerolog.Event
		switch {
		case clamped:
			e = l.log.Warn().Bool("clamped", true)
		case d >= time.Second:
			e = l.log.Info()
		default:
			e = l.log.Debug()
		}
		e.Int("status", o.Status).Str("cause", why).Dur("pause", d).Msg("limiter: pausing all requests")
	}
	switch {
	case began > 0:
		l.log.Warn().Int("failures", outageAfter).Dur("for", began.Round(time.Millisecond)).
			Msg("limiter: the API seems down; probing with one request at a time")
	case ended > 0:
		l.log.Info().Dur("after", ended.Round(time.Millisecond)).Msg("limiter: the API answers again; resuming")
	}
	return verdict
}

// round3 rounds x to three decimals for the log.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// pauseFor returns how long the response tells every worker to wait, and why.
func pauseFor(status int, info Info) (time.Duration, string) {
	switch {
	case status == http.StatusTooManyRequests && info.HasRetryAfter:
		return info.RetryAfter, "retry-after"
	case status == http.StatusTooManyRequests && info.HasReset && info.Reset > 0:
		return info.Reset, "reset"
	case status == http.StatusTooManyRequests:
		return DefaultPause, "default"
	case status == http.StatusServiceUnavailable && info.HasRetryAfter:
		return info.RetryAfter, "retry-after"
	case info.HasRemaining && info.Remaining < 1 && info.HasReset && info.Reset > 0:
		return info.Reset, "remaining-zero"
	}
	return 0, ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Stats returns a snapshot of the Limiter's counters and of what it has
// learnt. It is safe for concurrent use.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.InFlight = len(l.outstanding)
	s.InFlightLimit = l.slotCapLocked()
	s.Down = l.down.down
	s.Mode = ModeStatic
	if a := l.ad; a != nil {
		now := l.clock.Now()
		s.Mode = a.modeName()
		s.Rate = a.rate(now)
		s.Cuts = a.cuts
		s.Latency = time.Duration(a.srtt * float64(time.Second))
	}
	return s
}

// randomJitter returns a uniform random duration in [0, max).
func randomJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(max)))
}

// realClock is the Clock of the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
