package limiter

import (
	"math"
	"net/http"
	"time"
)

// Constants of the adaptive algorithm. The package documentation explains
// each one and why it has its value.
const (
	// beta is the multiplicative decrease of a cut (CUBIC's β, as the AWS
	// SDKs use it).
	beta = 0.7
	// cubicKMin and cubicKLatencies set K, the time the CUBIC curve takes
	// to climb back to the rate of the last loss: the larger of cubicKMin
	// and cubicKLatencies high latencies.
	cubicKMin       = 2 * time.Second
	cubicKLatencies = 4
	// headroom multiplies rate × latency for the in-flight limit, and
	// inFlightSpare is added to it (Little's law with room for jitter).
	headroom      = 1.5
	inFlightSpare = 2
	// maxAutoInFlight bounds the automatic in-flight limit.
	maxAutoInFlight = 1024
	// blindGap and blindMax: until the first response comes back, the
	// in-flight limit grows by one every blindGap, up to blindMax.
	blindGap = 50 * time.Millisecond
	blindMax = 32
	// reserveMin, reserveTime and reserveBoost make the reserve k: tokens
	// left in the server's bucket as a margin (reserveMin, plus
	// reserveTime seconds of refill, plus reserveBoost per recent 429,
	// which fades by one token per boostFade).
	reserveMin   = 2.0
	reserveTime  = 0.02
	reserveBoost = 2.0
	boostFade    = 10 * time.Second
	maxBoost     = 16.0
	// minRate is the lowest rate ever assumed, in requests per second, so
	// that a model never stops sending for good.
	minRate = 0.5
	// estSpan and estMinSpan bound the span of the empirical refill-rate
	// estimate; anchors older than anchorKeep are dropped and anchors are
	// kept at least anchorGap apart.
	estSpan    = 2 * time.Second
	estMinSpan = time.Second
	anchorKeep = 3 * time.Second
	anchorGap  = 20 * time.Millisecond
	maxAnchors = 256
	// boundKeep is how long a lower bound on the rate read from one
	// response's reset is kept.
	boundKeep = 2 * time.Second
	// headerlessAfter is how many responses in a row without rate-limit
	// headers make a Limiter stop pacing from headers.
	headerlessAfter = 5
	// fixedVotes is the evidence needed to treat the server as a fixed
	// window; fixedGuard is waited past the end of a window.
	fixedVotes = 3
	maxVotes   = 8
	voteGap    = 250 * time.Millisecond
	fixedGuard = 100 * time.Millisecond
	// pacerBurst is how many seconds of the CUBIC rate the pacing bucket
	// may save up, so that a late wake-up does not lose a slot.
	pacerBurst = 0.1
	// surplusHorizon is the time over which tokens above the reserve are
	// spent, on top of the refill rate: a surplus goes out paced, not as a
	// burst whose requests would reach the server out of order.
	surplusHorizon = 0.5
	// fullHorizon is the horizon while the freshest response found the
	// bucket full, for a rate at most twice the send rate.
	fullHorizon = 0.1
	// rateBin is the bin of the measured send rate.
	rateBin = 500 * time.Millisecond
	// lossSpan is the least time between two losses for the rate between
	// them to count as a measurement of the server's rate.
	lossSpan = 500 * time.Millisecond
	// noHintMin and noHintMax bound the pause after a 429 that gives no
	// delay; it doubles while such 429s continue.
	noHintMin = 10 * time.Millisecond
	noHintMax = 8 * DefaultPause
	// maxRejected bounds the log of recent 429s, and maxSends the log of
	// recent sends.
	maxRejected = 1024
	maxSends    = 2048
)

// mode is what an adaptive Limiter paces by.
type mode int8

const (
	// modeStart: nothing learnt yet; no pacing, in-flight slow start.
	modeStart mode = iota
	// modeHeaders: a shadow of the server's bucket kept from headers.
	modeHeaders
	// modeProbe: no headers; the CUBIC curve after the last 429.
	modeProbe
)

// Modes reported in [Stats.Mode].
const (
	// ModeStatic: Config.Static; only the ceiling, the cap and the pauses.
	ModeStatic = "static"
	// ModeStart: nothing learnt yet (no headers, no 429 so far).
	ModeStart = "start"
	// ModeHeaders: pacing from the rate-limit headers, continuous refill.
	ModeHeaders = "headers"
	// ModeFixedWindow: pacing from the rate-limit headers of a server that
	// refills its whole quota at the end of each window.
	ModeFixedWindow = "fixed-window"
	// ModeProbe: no rate-limit headers; the rate is probed from 429s.
	ModeProbe = "probe"
)

// sendRec is one request granted: its ticket and when.
type sendRec struct {
	seq  uint64
	sent time.Time
}

// rateBound is a lower bound on the refill rate, learnt at a time.
type rateBound struct {
	at time.Time
	r  float64
}

// anchor is a response kept for the empirical refill-rate estimate.
type anchor struct {
	seq  uint64
	sent time.Time
	rem  float64
}

// adapt is the adaptive part of a Limiter: it learns the server's limit
// from the outcomes and decides when the next request may go and how many
// may be in flight. Its methods run with the Limiter's mutex held, take
// the time as an argument and never block.
type adapt struct {
	mode    mode
	ceiling float64 // Config.RPS; 0 = none

	// Latency of the responses: TCP's smoothed mean and mean deviation,
	// in seconds; srtt 0 means no sample yet.
	srtt, rttvar float64

	// In-flight limit: the slow-start window of modeStart, and the cap
	// learnt from 429s that came while requests remained.
	cwnd    float64
	concCap float64 // 0 = none
	concSeq uint64  // newest ticket when concCap was last cut

	// Header model: a shadow of the server's bucket.
	limit     float64 // bucket capacity (the limit header); 0 = unknown
	hasLimit  bool    // limit came from a limit header
	rhat      float64 // estimated refill rate, requests/s; 0 = unknown
	rEmp      float64 // empirical refill rate; 0 = none yet
	est       float64 // the server's tokens at estAt, by our estimate
	estAt     time.Time
	syncSent  time.Time // send time of the response est was synced from
	boost     float64   // extra reserve after 429s, at boostAt
	boostAt   time.Time
	noHeader  int // responses in a row without rate-limit headers
	anchors   []anchor
	bounds    []rateBound // recent lower bounds on the rate, a monotone queue
	votes     int         // > 0 favours a fixed window
	votedAt   time.Time
	fixed     bool
	window    time.Duration // fixed-window length, from w= or the largest reset
	windowEnd time.Time
	fixedNext time.Time // fixed window: no grant before this
	spend     pace      // paces the spending of a surplus
	sends     []sendRec // recent grants, in order of seq

	// Loss control: the CUBIC curve since the last cut.
	capOn     bool // the curve paces (always in modeProbe after a loss)
	wmax      float64
	cutAt     time.Time
	cubicK    float64 // seconds
	cutSeq    uint64  // newest ticket when the rate was last cut
	lossSeq   uint64  // the ticket whose 429 made the last cut
	lossSent  time.Time
	curvePace pace // paces the CUBIC rate
	cuts      uint64
	rejected  []uint64 // seqs of recent 429s (which took no token)

	// Pauses for 429s without any hint.
	noHintN    int
	noHintFrom time.Time

	// Measured send rate (grants per second), smoothed as the AWS SDKs do.
	binStart time.Time
	firstAt  time.Time // the first grant
	heard    bool      // a response has come back
	full     bool      // the freshest response found the bucket full
	binCount int
	sendRate float64
}

func newAdapt(ceiling float64) *adapt {
	return &adapt{cwnd: 1, ceiling: ceiling}
}

// event is what observe has to log once the mutex is released.
type event struct {
	mode string  // non-empty: the mode changed to this
	cut  bool    // the rate was cut
	rate float64 // the rate after the change
}

// modeName returns the mode for Stats.
func (a *adapt) modeName() string {
	switch a.mode {
	case modeHeaders:
		if a.fixed {
			return ModeFixedWindow
		}
		return ModeHeaders
	case modeProbe:
		return ModeProbe
	}
	return ModeStart
}

// rate returns the rate the Limiter currently aims at, 0 when unknown.
func (a *adapt) rate(now time.Time) float64 {
	var r float64
	switch a.mode {
	case modeHeaders:
		r = a.rhat
		if a.capOn {
			r = min(r, a.curve(now))
		}
	case modeProbe:
		r = a.curve(now)
	}
	if a.ceiling > 0 && r > a.ceiling {
		r = a.ceiling
	}
	return r
}

// latencyHigh returns a high estimate of the latency in seconds.
func (a *adapt) latencyHigh() float64 { return a.srtt + 2*a.rttvar }

func (a *adapt) observeLatency(d time.Duration) {
	s := d.Seconds()
	if s <= 0 || math.IsNaN(s) {
		return
	}
	if a.srtt == 0 {
		a.srtt, a.rttvar = s, s/2
		return
	}
	a.rttvar = 0.75*a.rttvar + 0.25*math.Abs(a.srtt-s)
	a.srtt = 0.875*a.srtt + 0.125*s
}

// inFlightLimit returns how many tickets may be out at once.
func (a *adapt) inFlightLimit(now time.Time) int {
	var c float64
	switch {
	case a.mode == modeStart || a.srtt == 0:
		c = max(a.cwnd, float64(a.blindSlots(now)))
	default:
		r := a.rate(now)
		if a.mode == modeHeaders {
			// rhat errs low; what we send is a rate the server took.
			r = max(r, a.sendRate)
			if a.ceiling > 0 {
				r = min(r, a.ceiling)
			}
		}
		c = math.Ceil(r*a.latencyHigh()*headroom) + inFlightSpare
	}
	if a.concCap > 0 {
		c = min(c, a.concCap)
	}
	if !(c >= 1) { // also NaN
		return 1
	}
	return int(min(c, maxAutoInFlight))
}

// blindSlots returns the in-flight limit while no response has come back:
// one more request every blindGap since the first went, up to blindMax.
// (A 429 comes back at once, so a bucket that an earlier run drained
// costs about one; an answer that takes seconds no longer leaves them
// empty.) It returns 0 once a response has come back.
func (a *adapt) blindSlots(now time.Time) int {
	if a.heard || a.firstAt.IsZero() {
		return 0
	}
	return min(1+int(now.Sub(a.firstAt)/blindGap), blindMax)
}

// blindWait returns how long until blindSlots grows; 0 when it no longer
// does.
func (a *adapt) blindWait(now time.Time) time.Duration {
	n := a.blindSlots(now)
	if n == 0 || n >= blindMax {
		return 0
	}
	return max(a.firstAt.Add(time.Duration(n)*blindGap).Sub(now), 1)
}

// countSend measures the send rate.
func (a *adapt) countSend(now time.Time) {
	if a.binStart.IsZero() {
		a.binStart, a.firstAt = now, now
	}
	if el := now.Sub(a.binStart); el >= rateBin {
		r := float64(a.binCount) / el.Seconds()
		a.sendRate = 0.8*r + 0.2*a.sendRate
		a.binStart, a.binCount = now, 0
	}
	a.binCount++
}

// delay returns how long until the next request may go (0: now).
func (a *adapt) delay(now time.Time) time.Duration {
	var d time.Duration
	if a.mode == modeHeaders {
		d = a.shadowDelay(now)
	}
	if a.capOn {
		d = max(d, a.pacerDelay(now))
	}
	return d
}

// grant books request seq, sent at now.
func (a *adapt) grant(now time.Time, seq uint64) {
	a.countSend(now)
	if len(a.sends) >= maxSends {
		a.sends = append(a.sends[:0], a.sends[maxSends/2:]...)
	}
	a.sends = append(a.sends, sendRec{seq, now})
	if a.mode == modeHeaders {
		a.shadowTokens(now)
		if a.limit > 0 {
			a.est = min(a.est, a.limit) // the margin was time, not tokens
		}
		a.est--
		if a.fixed && a.windowEnd.After(now) {
			left := a.est - a.reserve(now)
			gap := float64(a.windowEnd.Sub(now)) / max(left, 1)
			a.fixedNext = now.Add(time.Duration(gap))
		}
	}
	// (With a shared bucket these pacers may not have been asked: they
	// never owe more than one token.)
	if a.mode == modeHeaders && !a.fixed && a.rhat > 0 {
		a.spend.tokens = max(a.spend.tokens-1, -1)
	}
	if a.capOn {
		a.curvePace.tokens = max(a.curvePace.tokens-1, -1)
	}
}

// sharedPaces reports whether a shared bucket paces the requests: its
// shadow when the headers give a bucket that refills continuously, its
// CUBIC curve when there are no headers (ModeProbe), or whatever it has
// when nothing is known yet. A fixed window paces by this model.
func (a *adapt) sharedPaces() bool {
	return a.mode == modeStart || a.mode == modeProbe || (a.mode == modeHeaders && !a.fixed)
}

// sharedCurve returns the curve for a shared bucket: without headers
// (ModeProbe) the curve's rate at now for Take (rate false) or the rate of
// the last loss for a Report (rate true), and K; else the zero Curve.
func (a *adapt) sharedCurve(now time.Time, last bool) Curve {
	if a.mode != modeProbe || a.cubicK <= 0 {
		return Curve{}
	}
	r := a.curve(now)
	if last {
		r = a.wmax
	}
	return Curve{Rate: r, K: time.Duration(a.cubicK * float64(time.Second))}
}

// seed returns the shadow at now for a shared bucket that has none; the
// zero Seed when the model has no shadow to give.
func (a *adapt) seed(now time.Time) Seed {
	if a.mode != modeHeaders || a.fixed || a.rhat <= 0 || a.limit <= 0 {
		return Seed{}
	}
	return Seed{Limit: a.limit, Rate: a.rhat, Tokens: a.shadowTokens(now)}
}

// --- the shadow of the server's bucket ---

// refillRate is the rate at which the shadow refills.
func (a *adapt) refillRate() float64 { return max(a.rhat, minRate) }

// shadowTokens brings the shadow to now and returns its tokens.
func (a *adapt) shadowTokens(now time.Time) float64 {
	if a.fixed {
		if !a.windowEnd.IsZero() && !now.Before(a.windowEnd.Add(fixedGuard)) {
			// The window has rolled over: a full quota until the next
			// response says more.
			a.est, a.estAt = a.limit, now
			w := max(a.window, time.Second)
			a.windowEnd = a.windowEnd.Add(w)
			if !a.windowEnd.After(now) {
				a.windowEnd = now.Add(w)
			}
			a.fixedNext = time.Time{}
		}
		return a.est
	}
	if dt := now.Sub(a.estAt).Seconds(); dt > 0 {
		a.est += a.refillRate() * dt
		a.estAt = now
	}
	if c := a.shadowCap(); a.est > c {
		a.est = c
	}
	return a.est
}

// shadowCap is the most the shadow holds: the limit, plus the time margin
// of a bucket of one; +Inf when the limit is unknown.
func (a *adapt) shadowCap() float64 {
	if a.limit <= 0 {
		return math.Inf(1)
	}
	return a.limit + a.margin()
}

// margin is the reserve of a bucket too small to hold one in tokens: the
// shadow may fill reserveTime beyond full before a request goes, so that
// the request reaches a server whose bucket is surely full.
func (a *adapt) margin() float64 {
	if a.limit > 0 && a.limit < 2 {
		return a.rhat * reserveTime
	}
	return 0
}

// horizon is the time over which a surplus is spent: surplusHorizon, or
// half the time the bucket takes to fill when that is shorter, so that a
// small bucket does not overflow while its surplus goes out.
func (a *adapt) horizon() float64 {
	h := surplusHorizon
	if a.limit > 0 && a.rhat > 0 {
		h = min(h, a.limit/a.rhat/2)
	}
	return max(h, 0.01)
}

// reserve returns k, the tokens kept in the server's bucket.
func (a *adapt) reserve(now time.Time) float64 {
	if a.fixed {
		return min(1, math.Floor(a.limit/2))
	}
	k := reserveMin + a.rhat*reserveTime + a.boostAt0(now)
	if a.limit > 0 {
		// Keep room above the reserve: a full bucket wastes its refill.
		k = min(k, max(0, (a.limit-1)/2))
	}
	return k + a.margin()
}

// boostAt0 returns the faded boost at now.
func (a *adapt) boostAt0(now time.Time) float64 {
	if a.boost <= 0 {
		return 0
	}
	return max(0, a.boost-now.Sub(a.boostAt).Seconds()/boostFade.Seconds())
}

func (a *adapt) shadowDelay(now time.Time) time.Duration {
	tok := a.shadowTokens(now)
	need := 1 + a.reserve(now)
	if a.fixed {
		if tok < need {
			if a.windowEnd.IsZero() {
				return durationOf(1 / minRate)
			}
			return max(a.windowEnd.Add(fixedGuard).Sub(now), 1)
		}
		if now.Before(a.fixedNext) {
			return a.fixedNext.Sub(now)
		}
		return 0
	}
	if tok < need {
		return max(durationOf((need-tok)/a.refillRate()), 1)
	}
	if a.rhat <= 0 {
		return 0 // no rate to pace against: the server says these remain
	}
	// Spend what is above the reserve over the horizon, on top of the
	// refill.
	r := a.rhat + (tok-need+1)/a.horizon()
	if a.full {
		// The freshest response found the bucket full: its refill is
		// being wasted, and R̂ errs low. Spend faster, over fullHorizon,
		// but at most at twice the rate we send at: growing fast, never a
		// burst whose requests would reach the server out of order.
		r = max(r, min(a.rhat+(tok-need+1)/fullHorizon, 2*max(a.sendRate, a.rhat)))
	}
	return a.spend.delay(now, r)
}

// sync updates the model from the rate-limit headers of ticket t's
// response, received at now; last is the newest ticket granted.
func (a *adapt) sync(now time.Time, t Ticket, info Info, is429 bool, last uint64) {
	rem := info.Remaining
	switch {
	case info.HasLimit:
		if a.hasLimit && math.Abs(info.Limit-a.limit) >= 1 {
			// The limit changed. Intervals across the change say nothing,
			// and a bucket's window (limit/rate) rarely changes: until new
			// intervals measure it, the rate scales with the limit.
			f := info.Limit / a.limit
			a.anchors, a.votes, a.bounds = a.anchors[:0], 0, a.bounds[:0]
			a.rEmp *= f
			a.rhat *= f
		}
		a.limit, a.hasLimit = info.Limit, true
	case !a.hasLimit && rem+1 > a.limit:
		a.limit = rem + 1
	}
	if info.Window > 0 {
		a.window = info.Window
	} else if info.HasReset && info.Reset > a.window && info.Reset <= MaxWindow {
		a.window = info.Reset
	}

	// Rate estimates. Both err low: remaining is rounded down, resets are
	// rounded up, and the empirical one subtracts a token.
	var rInst float64
	if info.HasLimit && info.HasReset && info.Reset > 0 {
		switch {
		case a.limit-rem >= 2:
			rInst = (a.limit - rem - 1) / info.Reset.Seconds()
		case a.limit-rem >= 1 && !is429:
			// remaining = limit − 1: the bucket was full before this
			// request took its token, so exactly one token is missing
			// and the reset is the time one token takes.
			rInst = 1 / info.Reset.Seconds()
		}
	}
	if info.Window > 0 && a.limit > 0 {
		rInst = max(rInst, a.limit/info.Window.Seconds())
	}
	// Each of these is a lower bound on the rate: the largest of the
	// recent ones is the best. (The fraction of a token that remaining
	// rounds away varies from one response to the next; the response
	// where it is smallest bounds the rate most tightly.)
	rInst = a.bound(now, rInst)
	if rInst == 0 && info.HasLimit && info.HasReset && info.Reset > 0 && a.limit-rem >= 1 &&
		(a.rhat == 0 || (a.limit < 2 && !is429)) {
		// A bucket that was probably full before this request took its
		// token: a first guess; and for a bucket of one, which must have
		// been full to admit it, the rate itself.
		rInst = (a.limit - rem) / info.Reset.Seconds()
	}
	if !is429 {
		a.empirical(t, rem)
	}
	if a.fixed {
		if a.window > 0 {
			a.rhat = a.limit / a.window.Seconds()
		}
	} else if r := max(rInst, a.rEmp); r > 0 {
		a.rhat = r
	}
	if math.IsInf(a.rhat, 0) || math.IsNaN(a.rhat) {
		a.rhat = 0
	}

	// The shadow follows the freshest response only.
	if t.Sent.Before(a.syncSent) {
		return
	}
	a.syncSent = t.Sent
	a.full = !is429 && a.limit >= 2 && rem >= a.limit-1
	after := float64(last-t.Seq) - float64(a.rejectedIn(t.Seq, last))
	if a.fixed {
		a.est, a.estAt = rem-after, now
		if info.HasReset {
			a.windowEnd = now.Add(info.Reset)
		}
		return
	}
	a.est = min(a.replay(t, rem, after, now, last), a.shadowCap())
	a.estAt = now
}

// bound notes r, a lower bound on the refill rate learnt at now (0: none),
// and returns the largest lower bound of the last boundKeep.
func (a *adapt) bound(now time.Time, r float64) float64 {
	for len(a.bounds) > 0 && now.Sub(a.bounds[0].at) > boundKeep {
		a.bounds = a.bounds[1:]
	}
	if r > 0 && !math.IsInf(r, 0) {
		// A monotone queue: a bound older and no larger than r can never
		// be the largest again.
		n := len(a.bounds)
		for n > 0 && a.bounds[n-1].r <= r {
			n--
		}
		a.bounds = append(a.bounds[:n], rateBound{at: now, r: r})
	}
	if len(a.bounds) == 0 {
		return 0
	}
	return a.bounds[0].r
}

// replay returns the server's tokens at now: rem when t was sent, then
// the refill at R̂, capped at the limit, and a token for each request we
// sent since (those refused took none). Without the sends logged it
// assumes the bucket was never full in between.
func (a *adapt) replay(t Ticket, rem, after float64, now time.Time, last uint64) float64 {
	r, c := a.refillRate(), math.Inf(1)
	if a.limit > 0 {
		c = a.limit
	}
	n := len(a.sends)
	if n == 0 || a.sends[0].seq > t.Seq+1 || a.sends[n-1].seq != last || last <= t.Seq ||
		a.sends[n-1].seq-a.sends[0].seq != uint64(n-1) { // numbers of a shared bucket have gaps

		return min(rem+r*max(now.Sub(t.Sent).Seconds(), 0)-after, c)
	}
	var refused map[uint64]bool
	for _, s := range a.rejected {
		if s > t.Seq && s <= last {
			if refused == nil {
				refused = make(map[uint64]bool)
			}
			refused[s] = true
		}
	}
	level, at := rem, t.Sent
	for _, s := range a.sends[t.Seq+1-a.sends[0].seq:] {
		if dt := s.sent.Sub(at).Seconds(); dt > 0 {
			level, at = min(level+r*dt, c), s.sent
		}
		if !refused[s.seq] {
			level--
		}
	}
	if dt := now.Sub(at).Seconds(); dt > 0 {
		level = min(level+r*dt, c)
	}
	return level
}

// empirical measures the refill rate between an earlier response and this
// one: the tokens that appeared, over the time between their sends.
func (a *adapt) empirical(t Ticket, rem float64) {
	var base *anchor
	for i := len(a.anchors) - 1; i >= 0; i-- {
		age := t.Sent.Sub(a.anchors[i].sent)
		if age >= estMinSpan && base == nil {
			base = &a.anchors[i]
		}
		if age >= estSpan {
			base = &a.anchors[i]
			break
		}
	}
	if base != nil && base.seq < t.Seq {
		admitted := float64(t.Seq-base.seq) - float64(a.rejectedIn(base.seq, t.Seq))
		appeared := rem - base.rem + admitted
		span := t.Sent.Sub(base.sent).Seconds()
		full := a.hasLimit && (rem >= a.limit-1 || base.rem >= a.limit-1)
		if r := max(0, (appeared-1)/span); !full {
			a.rEmp = r
		} else {
			a.rEmp = max(a.rEmp, r)
		}
		// A fixed window shows no refill within the window and a big one
		// across its end. Votes are spaced out so that each window casts
		// many of the first kind and few of the second.
		if t.Sent.Sub(a.votedAt) >= voteGap {
			switch {
			case admitted >= 2 && appeared <= 0.5:
				a.votes = min(a.votes+1, maxVotes)
				a.votedAt = t.Sent
			case appeared >= 2:
				a.votes = max(a.votes-1, -maxVotes)
				a.votedAt = t.Sent
			}
		}
		switch {
		case !a.fixed && a.votes >= fixedVotes:
			a.fixed, a.fixedNext = true, time.Time{}
		case a.fixed && a.votes < 0:
			a.fixed = false
		}
	}
	if n := len(a.anchors); n == 0 || t.Sent.Sub(a.anchors[n-1].sent) >= anchorGap {
		a.anchors = append(a.anchors, anchor{seq: t.Seq, sent: t.Sent, rem: rem})
	}
	drop := 0
	for drop < len(a.anchors)-1 && (t.Sent.Sub(a.anchors[drop].sent) > anchorKeep || len(a.anchors)-drop > maxAnchors) {
		drop++
	}
	if drop > 0 {
		a.anchors = append(a.anchors[:0], a.anchors[drop:]...)
	}
}

// --- losses and the CUBIC curve ---

// curve returns the CUBIC rate at now: β·wmax just after the cut, wmax
// from K to 2K, then growing, but never above twice the measured send
// rate.
func (a *adapt) curve(now time.Time) float64 {
	k := a.cubicK
	t := now.Sub(a.cutAt).Seconds()
	if t > k {
		// Hold at wmax for another K before probing above it: the rate
		// of the last loss is where the edge was.
		t = max(k, t-k)
	}
	x := (t - k) / k
	r := a.wmax * (1 + (1-beta)*x*x*x)
	if a.sendRate > 0 {
		r = min(r, max(2*a.sendRate, a.wmax))
	}
	if !(r >= minRate) { // also NaN
		r = minRate
	}
	return r
}

func (a *adapt) pacerDelay(now time.Time) time.Duration {
	return a.curvePace.delay(now, a.curve(now))
}

// pace is a small token bucket whose rate may change at every call; it
// saves up at most pacerBurst seconds of its rate (and at least 1 token).
type pace struct {
	tokens float64
	at     time.Time
}

// delay refills p at rate r up to now and returns how long until it holds
// a token.
func (p *pace) delay(now time.Time, r float64) time.Duration {
	if dt := now.Sub(p.at).Seconds(); dt > 0 {
		p.tokens = min(p.tokens+r*dt, max(1, r*pacerBurst))
		p.at = now
	}
	if p.tokens >= 1 {
		return 0
	}
	return max(durationOf((1-p.tokens)/r), 1)
}

// reset empties p at now.
func (p *pace) reset(now time.Time) { p.tokens, p.at = 0, now }

// startCurve starts the CUBIC curve at now with wmax w, at its low point.
func (a *adapt) startCurve(now time.Time, w float64) {
	a.wmax = max(w, minRate)
	a.cubicK = max(cubicKMin.Seconds(), cubicKLatencies*a.latencyHigh())
	a.cutAt = now
	a.capOn = true
	a.curvePace.reset(now)
}

func (a *adapt) noteRejected(seq uint64) {
	if len(a.rejected) >= maxRejected {
		a.rejected = append(a.rejected[:0], a.rejected[maxRejected/2:]...)
	}
	a.rejected = append(a.rejected, seq)
}

// rejectedIn counts the 429s of tickets lo < seq <= hi.
func (a *adapt) rejectedIn(lo, hi uint64) int {
	n := 0
	for _, s := range a.rejected {
		if s > lo && s <= hi {
			n++
		}
	}
	return n
}

// observe feeds the outcome of ticket t, released at now, into the model.
// last is the newest ticket granted and out the tickets out before this
// release. It returns the pause to set (0 for none), its cause for the log,
// and what changed.
func (a *adapt) observe(now time.Time, t Ticket, o Outcome, info Info, last uint64, out int) (time.Duration, string, event) {
	var ev event
	if o.Status == 0 {
		return 0, "", ev // no response: nothing learnt
	}
	a.heard = true
	was := a.modeName()
	is429 := o.Status == http.StatusTooManyRequests
	if !is429 && o.Status < 500 {
		a.observeLatency(o.Latency)
	}
	switch {
	case info.HasRemaining:
		a.noHeader = 0
		if a.mode != modeHeaders {
			a.mode, a.capOn = modeHeaders, false
		}
		a.sync(now, t, info, is429, last)
	case !is429 && o.Status < 500:
		a.noHeader++
		if a.mode == modeHeaders && a.noHeader >= headerlessAfter {
			// The headers stopped: keep the rate they taught, and probe.
			w := max(a.rhat, a.sendRate)
			if w > 0 {
				a.mode = modeProbe
				a.startCurve(now, w)
				a.cutAt = now.Add(-time.Duration(a.cubicK * float64(time.Second)))
			} else {
				a.mode, a.capOn = modeStart, false
			}
		}
	}
	if a.capOn && a.mode == modeHeaders && now.Sub(a.cutAt).Seconds() > 2*a.cubicK && a.curve(now) >= 2*a.rhat {
		a.capOn = false // the curve no longer binds
	}

	var (
		pause time.Duration
		cause string
	)
	switch {
	case is429 && info.HasRemaining && info.Remaining >= 1:
		// Refused while requests remain: a concurrency limit (or another
		// dimension). Shrink the in-flight cap, not the rate.
		a.noteRejected(t.Seq)
		if t.Seq > a.concSeq {
			a.concCap = max(1, math.Floor(beta*float64(out)))
			a.concSeq = last
		}
		if info.HasRetryAfter {
			pause, cause = info.RetryAfter, "retry-after"
		}
	case is429:
		a.noteRejected(t.Seq)
		if t.Seq > a.cutSeq {
			a.cut(now, t, last)
			ev.cut = true
		}
		pause, cause = a.lossPause(now, t, info)
	case o.Status < 500:
		a.noHintN = 0
		if (a.mode == modeStart || a.srtt == 0) && float64(out) >= a.cwnd && a.cwnd < maxAutoInFlight {
			a.cwnd++ // slow start: the window was full, so grow it
		}
		if a.concCap > 0 {
			if a.concCap += 1 / a.concCap; a.concCap >= maxAutoInFlight {
				a.concCap = 0
			}
		}
	case o.Status == http.StatusServiceUnavailable && info.HasRetryAfter:
		pause, cause = info.RetryAfter, "retry-after"
	}
	if m := a.modeName(); m != was {
		ev.mode = m
	}
	if ev.mode != "" || ev.cut {
		ev.rate = a.rate(now)
	}
	return pause, cause, ev
}

// cut makes the one multiplicative decrease of a feedback delay.
func (a *adapt) cut(now time.Time, t Ticket, last uint64) {
	a.cuts++
	switch a.mode {
	case modeHeaders:
		// Our shadow was wrong: rhat too high, or a limit dropped
		// unannounced. Cap the rate for a while and keep a larger reserve.
		w := a.rhat
		if w <= 0 {
			w = a.sendRate
		}
		a.startCurve(now, w)
		a.boost = min(a.boostAt0(now)+reserveBoost, maxBoost)
		a.boostAt = now
	default:
		// No headers: the server's rate is what it admitted between this
		// loss and the last one (its bucket was empty at both), when they
		// are far enough apart; else the rate we were sending at.
		var w float64
		if a.lossSeq > 0 && t.Sent.Sub(a.lossSent) >= lossSpan && t.Seq > a.lossSeq {
			admitted := float64(t.Seq-a.lossSeq) - float64(a.rejectedIn(a.lossSeq, t.Seq))
			w = admitted / t.Sent.Sub(a.lossSent).Seconds()
		}
		if w <= 0 {
			if a.mode == modeProbe {
				w = a.curve(now)
			} else if el := t.Sent.Sub(a.firstAt).Seconds(); el > 0 {
				// The first loss: what the server admitted so far. Its
				// initial burst makes this too high, so the next loss
				// comes soon and measures the rate between the two.
				w = max(a.sendRate, float64(t.Seq-1-uint64(a.rejectedIn(0, t.Seq-1)))/el)
			}
		}
		if w <= 0 {
			w = minRate
		}
		a.mode = modeProbe
		a.startCurve(now, w)
	}
	a.cutSeq = last
	a.lossSeq, a.lossSent = t.Seq, t.Sent
}

// lossPause returns the pause after a rate 429 and its cause.
func (a *adapt) lossPause(now time.Time, t Ticket, info Info) (time.Duration, string) {
	switch {
	case info.HasRetryAfter:
		return info.RetryAfter, "retry-after"
	case a.mode == modeHeaders && info.HasRemaining:
		if a.fixed && info.HasReset {
			return info.Reset, "reset"
		}
		return 0, "" // the shadow, now empty, waits for the refill
	}
	// No hint at all: about two requests' time at the new rate, doubled
	// for each further 429 of a request sent after this pause began.
	if t.Sent.After(a.noHintFrom) || a.noHintN == 0 {
		a.noHintN++
	}
	a.noHintFrom = now
	d := time.Duration(float64(time.Second) * 2 / a.curve(now))
	d = min(max(d, noHintMin), DefaultPause)
	for i := 1; i < a.noHintN && d < noHintMax; i++ {
		d *= 2
	}
	return min(d, noHintMax), "backoff"
}
