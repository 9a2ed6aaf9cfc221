package sim

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderStyle is the dialect of the rate-limit headers a [Server] sends on
// every response to an authenticated request while a rate limit applies.
// In every dialect limit is the bucket capacity (Burst), remaining is the
// whole number of tokens left after the request, and reset is the time
// until the bucket is full again, (Burst-tokens)/RPS, rounded up to the
// millisecond. The zero value means HeadersSeconds.
type HeaderStyle string

// The header dialects.
const (
	// HeadersSeconds sends x-ratelimit-limit, x-ratelimit-remaining and
	// x-ratelimit-reset as seconds in decimal ("0.84").
	HeadersSeconds HeaderStyle = "seconds"
	// HeadersEpoch sends the same names with x-ratelimit-reset as the Unix
	// time in whole seconds, rounded up, at which the bucket is full.
	HeadersEpoch HeaderStyle = "epoch"
	// HeadersDuration sends the same names with x-ratelimit-reset as a Go
	// duration string ("250ms", "1.5s", "6m0s").
	HeadersDuration HeaderStyle = "duration"
	// HeadersOpenAI sends x-ratelimit-limit-requests,
	// x-ratelimit-remaining-requests and x-ratelimit-reset-requests (a Go
	// duration string).
	HeadersOpenAI HeaderStyle = "openai"
	// HeadersIETF sends RateLimit-Policy: "default";q=<limit>;w=<window>
	// with the window Burst/RPS in seconds rounded up (at least 1), and
	// RateLimit: "default";r=<remaining>;t=<seconds until full, rounded up>.
	HeadersIETF HeaderStyle = "ietf"
	// HeadersRFC3339 sends x-ratelimit-limit, x-ratelimit-remaining and
	// x-ratelimit-reset as an RFC 3339 UTC timestamp with millisecond
	// precision.
	HeadersRFC3339 HeaderStyle = "rfc3339"
	// HeadersNone sends no rate-limit headers; a 429 still carries
	// Retry-After and retry-after-ms.
	HeadersNone HeaderStyle = "none"
	// HeadersNoneAtAll sends no rate-limit headers and no Retry-After or
	// retry-after-ms on a 429 either.
	HeadersNoneAtAll HeaderStyle = "none-at-all"
)

var headerStyles = []HeaderStyle{HeadersSeconds, HeadersEpoch, HeadersDuration, HeadersOpenAI,
	HeadersIETF, HeadersRFC3339, HeadersNone, HeadersNoneAtAll}

// Valid reports whether h is one of the named styles or the zero value
// (which means HeadersSeconds). [New] treats an invalid style as
// HeadersSeconds.
func (h HeaderStyle) Valid() bool {
	if h == "" {
		return true
	}
	for _, v := range headerStyles {
		if h == v {
			return true
		}
	}
	return false
}

// ParseHeaderStyle returns the HeaderStyle named s, ignoring case and
// surrounding space; "" is HeadersSeconds. An unknown name is an error
// listing the known ones.
func ParseHeaderStyle(s string) (HeaderStyle, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return HeadersSeconds, nil
	}
	if h := HeaderStyle(s); h.Valid() {
		return h, nil
	}
	names := make([]string, len(headerStyles))
	for i, v := range headerStyles {
		names[i] = string(v)
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return "", fmt.Errorf("sim: unknown header style %q (want one of %s)", s, strings.Join(names, ", "))
}

// eps absorbs floating-point noise in token counts.
const eps = 1e-9

// maxWait caps computed waits, in nanoseconds (about 31 years), so that a
// tiny rate cannot overflow a time.Duration.
const maxWait = float64(1e18)

// segment is one period of constant rate and burst.
type segment struct {
	from  time.Duration
	rps   float64 // <= 0: unlimited
	burst float64
}

func newSegment(from time.Duration, rps float64, burst int) segment {
	if math.IsNaN(rps) || rps < 0 || math.IsInf(rps, 0) {
		rps = 0
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rps)))
	}
	return segment{from: from, rps: rps, burst: float64(burst)}
}

// bucket is one token bucket; tokens is its content at offset last, during
// segment seg.
type bucket struct {
	tokens float64
	last   time.Duration
	seg    int
}

// segAt returns the index of the segment in force at offset off.
func (s *Server) segAt(off time.Duration) int {
	i := 0
	for i+1 < len(s.segs) && s.segs[i+1].from <= off {
		i++
	}
	return i
}

// advance brings b to offset off, crossing schedule changes.
func (s *Server) advance(b *bucket, off time.Duration) {
	if off < b.last {
		off = b.last // the clock went back: no refill
	}
	for b.seg+1 < len(s.segs) && s.segs[b.seg+1].from <= off {
		next := s.segs[b.seg+1]
		wasUnlimited := s.segs[b.seg].rps <= 0
		s.refill(b, next.from)
		b.seg++
		if wasUnlimited || b.tokens > next.burst {
			b.tokens = next.burst
		}
	}
	s.refill(b, off)
}

func (s *Server) refill(b *bucket, t time.Duration) {
	seg := s.segs[b.seg]
	if seg.rps <= 0 {
		b.tokens = seg.burst
	} else if t > b.last {
		b.tokens = min(seg.burst, b.tokens+seg.rps*(t-b.last).Seconds())
	}
	if t > b.last {
		b.last = t
	}
}

// rateState is what the rate-limit headers describe.
type rateState struct {
	limited bool
	limit   float64
	tokens  float64 // after the request
	rps     float64
	at      time.Time
}

type refusal int

const (
	refusedNone refusal = iota
	refusedRate
	refusedConcurrency
	refusedOutage
)

type admission struct {
	rate    rateState
	refused refusal
	wait    time.Duration // until one token is available, when refusedRate
	attempt uint32        // earlier admissions of the same fingerprint
}

// admit decides whether a request may proceed, and if so takes its token
// and counts it in flight.
func (s *Server) admit(apiKey, name string, fp [16]byte) admission {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	off := now.Sub(s.start)
	k := bucketKey{apiKey, name}
	b := s.buckets[k]
	if b == nil {
		i := s.segAt(off)
		b = &bucket{tokens: s.segs[i].burst, last: max(off, 0), seg: i}
		s.buckets[k] = b
	}
	s.advance(b, off)
	seg := s.segs[b.seg]
	if s.isDown(off) {
		s.stats.Status[http.StatusServiceUnavailable]++
		return admission{refused: refusedOutage}
	}
	a := admission{rate: rateState{limited: seg.rps > 0, limit: seg.burst, tokens: b.tokens, rps: seg.rps, at: now}}
	switch {
	case a.rate.limited && b.tokens < 1-eps:
		a.refused = refusedRate
		ns := math.Ceil((1-b.tokens)/seg.rps*1e9 - 1) // round up, absorb noise
		a.wait = time.Duration(min(ns, maxWait))
		if sec := s.second(off); sec != nil {
			sec.RateLimited++
		}
		s.stats.RateLimited++
		s.stats.Status[http.StatusTooManyRequests]++
		return a
	case s.maxInFlight > 0 && s.inFlight[apiKey] >= s.maxInFlight:
		a.refused = refusedConcurrency
		if sec := s.second(off); sec != nil {
			sec.ConcurrencyLimited++
		}
		s.stats.ConcurrencyLimited++
		s.stats.Status[http.StatusTooManyRequests]++
		return a
	}
	if a.rate.limited {
		b.tokens--
		a.rate.tokens = b.tokens
	}
	if sec := s.second(off); sec != nil {
		sec.Admitted++
	}
	s.inFlight[apiKey]++
	s.stats.InFlight++
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.stats.InFlight)
	rc := s.requests[fp]
	if rc == nil {
		rc = &requestCount{}
		s.requests[fp] = rc
	}
	a.attempt = uint32(rc.admitted)
	rc.admitted++
	return a
}

// peek returns the state of a bucket without creating it or taking a token.
func (s *Server) peek(apiKey, name string) rateState {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	off := now.Sub(s.start)
	var seg segment
	tokens := 0.0
	if b := s.buckets[bucketKey{apiKey, name}]; b != nil {
		s.advance(b, off)
		seg, tokens = s.segs[b.seg], b.tokens
	} else {
		seg = s.segs[s.segAt(off)]
		tokens = seg.burst
	}
	return rateState{limited: seg.rps > 0, limit: seg.burst, tokens: tokens, rps: seg.rps, at: now}
}

// setRateHeaders writes the rate-limit headers of st in the configured style.
func (s *Server) setRateHeaders(h http.Header, st rateState) {
	if !st.limited || s.style == HeadersNone || s.style == HeadersNoneAtAll {
		return
	}
	limit := strconv.Itoa(int(math.Round(st.limit)))
	remaining := strconv.Itoa(max(0, int(math.Floor(st.tokens+eps))))
	resetMS := int64(0)
	if missing := st.limit - st.tokens; missing > eps {
		resetMS = int64(min(math.Ceil(missing/st.rps*1000-1e-6), maxWait/1e6))
	}
	reset := time.Duration(resetMS) * time.Millisecond
	switch s.style {
	case HeadersSeconds:
		h.Set("x-ratelimit-limit", limit)
		h.Set("x-ratelimit-remaining", remaining)
		h.Set("x-ratelimit-reset", strconv.FormatFloat(float64(resetMS)/1000, 'f', -1, 64))
	case HeadersEpoch:
		full := st.at.Add(reset)
		sec := full.Unix()
		if full.Nanosecond() > 0 {
			sec++
		}
		h.Set("x-ratelimit-limit", limit)
		h.Set("x-ratelimit-remaining", remaining)
		h.Set("x-ratelimit-reset", strconv.FormatInt(sec, 10))
	case HeadersDuration:
		h.Set("x-ratelimit-limit", limit)
		h.Set("x-ratelimit-remaining", remaining)
		h.Set("x-ratelimit-reset", reset.String())
	case HeadersOpenAI:
		h.Set("x-ratelimit-limit-requests", limit)
		h.Set("x-ratelimit-remaining-requests", remaining)
		h.Set("x-ratelimit-reset-requests", reset.String())
	case HeadersIETF:
		window := max(1, int64(math.Ceil(st.limit/st.rps-eps)))
		h.Set("RateLimit-Policy", fmt.Sprintf(`"default";q=%s;w=%d`, limit, window))
		h.Set("RateLimit", fmt.Sprintf(`"default";r=%s;t=%d`, remaining, (resetMS+999)/1000))
	case HeadersRFC3339:
		full := st.at.Add(reset)
		if t := full.Truncate(time.Millisecond); t.Before(full) {
			full = t.Add(time.Millisecond)
		}
		h.Set("x-ratelimit-limit", limit)
		h.Set("x-ratelimit-remaining", remaining)
		h.Set("x-ratelimit-reset", full.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
}

// writeRefusal writes a 429, or the 503 of an outage (already counted by
// admit).
func (s *Server) writeRefusal(w http.ResponseWriter, a admission) {
	if a.refused == refusedOutage {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "503 Service Temporarily Unavailable\n")
		return
	}
	if s.style != HeadersNoneAtAll {
		h := w.Header()
		switch a.refused {
		case refusedRate:
			ms := max(1, int64(math.Ceil(float64(a.wait)/float64(time.Millisecond))))
			h.Set("Retry-After", strconv.FormatInt(max(1, (ms+999)/1000), 10))
			h.Set("retry-after-ms", strconv.FormatInt(ms, 10))
		case refusedConcurrency:
			h.Set("Retry-After", "1")
		}
	}
	writeEnvelope(w, http.StatusTooManyRequests, "request_rate_limit_exceeded",
		"Rate limit exceeded. Please retry after some time.")
}

// Outage is a period in which the API is down: from At (measured from
// [New]) for For, every request that passes the checks of path, method,
// key and body is answered at once with 503 and a plain-text body, with no
// rate-limit headers and without taking a token.
type Outage struct {
	At, For time.Duration
}

// isDown reports whether offset off falls in one of the outages.
func (s *Server) isDown(off time.Duration) bool {
	for _, o := range s.outages {
		if off >= o.At && off < o.At+o.For {
			return true
		}
	}
	return false
}

// ParseOutages parses a comma-separated list of outages, each
// "<at>+<for>" in Go durations: "4s+8s" is down from 4 s for 8 s. An empty
// string is none.
func ParseOutages(s string) ([]Outage, error) {
	var out []Outage
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		at, dur, ok := strings.Cut(part, "+")
		if !ok {
			return nil, fmt.Errorf("sim: outage %q: want <at>+<for>, e.g. 4s+8s", part)
		}
		a, err := time.ParseDuration(strings.TrimSpace(at))
		if err != nil || a < 0 {
			return nil, fmt.Errorf("sim: outage %q: bad start %q", part, at)
		}
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("sim: outage %q: bad length %q", part, dur)
		}
		out = append(out, Outage{At: a, For: d})
	}
	return out, nil
}
