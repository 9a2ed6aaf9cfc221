package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults and constants of outage handling (see the package
// documentation, "Outages").
const (
	// DefaultMaxOutage is how long an outage lasts before Acquire gives up
	// when Config.MaxOutage is 0.
	DefaultMaxOutage = 15 * time.Minute
	// outageAfter is how many failures in a row (server errors or no
	// response, nothing else between them) make an outage.
	outageAfter = 10
	// probeMin and probeMax bound the time between two probes; it grows
	// by probeGrowth after each failed probe. Each wait is drawn in
	// [w/2, w) so that several clients do not probe in step.
	probeMin    = time.Second
	probeMax    = time.Minute
	probeGrowth = 1.5
)

// OutageError is returned by [Limiter.Acquire] when the API has answered
// nothing but server errors (5xx), or not at all, for longer than
// Config.MaxOutage. The job should stop: the rows not done can be asked
// again later.
type OutageError struct {
	// Since is when the first failure of the outage was sent.
	Since time.Time
	// Duration is how long the API has been unavailable.
	Duration time.Duration
}

func (e *OutageError) Error() string {
	return fmt.Sprintf("limiter: the API has been unavailable for %v (only server errors or no answer since %s): giving up",
		e.Duration.Round(time.Second), e.Since.Format(time.RFC3339))
}

// Verdict is what [Limiter.Release] made of an outcome.
type Verdict struct {
	// Outage is true when the outcome was a failure (a server error or
	// no response) during an outage of the whole API: the caller should
	// not count it against the request's retry budget, since Acquire now
	// holds every request and lets one probe through at a time until the
	// API answers again.
	Outage bool
}

// outage is the Limiter's outage state; guarded by Limiter.mu.
type outage struct {
	down     bool
	run      int       // failures in a row
	since    time.Time // send time of the first failure of the run
	probeSeq uint64    // the probe out; 0: none
	probeAt  time.Time // no probe before this
	wait     time.Duration
}

// isFailure reports whether o says the API is unavailable: a server
// error, or no response for another reason than the caller's cancelling.
func isFailure(o Outcome) bool {
	if o.Status >= 500 {
		return true
	}
	return o.Status == 0 && o.Err != nil && !errors.Is(o.Err, context.Canceled)
}

// noteOutageLocked feeds the outcome of ticket t, released at now, into the
// outage state. It reports the verdict and whether the state changed (the
// waiters must look again), and what to log.
func (l *Limiter) noteOutageLocked(now time.Time, t Ticket, o Outcome) (v Verdict, changed bool, began, ended time.Duration) {
	g := &l.down
	switch {
	case isFailure(o):
		if g.run == 0 {
			g.since = t.Sent
		}
		g.run++
		if !g.down && g.run >= outageAfter {
			g.down, g.probeSeq, g.wait = true, 0, probeMin
			g.probeAt = now.Add(l.probeDelay(g.wait))
			l.stats.Outages++
			changed, began = true, now.Sub(g.since)
		}
		if g.down {
			v.Outage = true
			if t.Seq == g.probeSeq {
				g.probeSeq = 0
				g.wait = min(time.Duration(float64(g.wait)*probeGrowth), probeMax)
				g.probeAt = now.Add(l.probeDelay(g.wait))
				changed = true
			}
		}
	case o.Status != 0:
		g.run = 0
		if g.down {
			ended = now.Sub(g.since)
			l.stats.OutageTime += ended
			g.down, g.probeSeq = false, 0
			changed = true
		}
	}
	return v, changed, began, ended
}

// probeDelay draws the wait before the next probe from [w/2, w).
func (l *Limiter) probeDelay(w time.Duration) time.Duration {
	return w/2 + l.jitter(w/2)
}

// maxOutage returns the limit on an outage; 0: none.
func (l *Limiter) maxOutageOrZero() time.Duration {
	switch {
	case l.maxOutage < 0:
		return 0
	case l.maxOutage == 0:
		return DefaultMaxOutage
	}
	return l.maxOutage
}

// outageGateLocked returns how long a request must wait at now because of
// an outage (0: it may go, as the probe when one is on), or the error when
// the outage has lasted too long.
func (l *Limiter) outageGateLocked(now time.Time) (time.Duration, error) {
	g := &l.down
	if !g.down {
		return 0, nil
	}
	limit := l.maxOutageOrZero()
	if limit > 0 && now.Sub(g.since) >= limit {
		return 0, &OutageError{Since: g.since, Duration: now.Sub(g.since)}
	}
	var d time.Duration
	switch {
	case g.probeSeq != 0:
		d = time.Duration(1<<63 - 1) // until the probe comes back
	case now.Before(g.probeAt):
		d = g.probeAt.Sub(now)
	default:
		return 0, nil
	}
	if limit > 0 {
		d = min(d, g.since.Add(limit).Sub(now))
	}
	return max(d, 1), nil
}
