package limiter

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// serverModel is an in-process model of a rate-limited API, with the
// semantics of the simulator (sim/limit.go): a token bucket per server whose
// capacity is the limit header, remaining is the whole number of tokens left
// after the request, and reset is the time until the bucket is full again;
// or, with window > 0, a fixed window of limit requests. It reads the time
// from time.Now, so inside a synctest bubble it runs on the fake clock.
type serverModel struct {
	style  string
	window time.Duration // > 0: a fixed window of burst requests
	start  time.Time

	mu      sync.Mutex
	segs    []modelSeg
	seg     int
	tokens  float64
	last    time.Time
	winIdx  int64
	used    float64
	accepts []time.Duration // offsets of the requests admitted
	refused []time.Duration // offsets of the 429s
}

// modelSeg is a period of constant rate: from from on, refill rps tokens
// per second into a bucket of burst tokens.
type modelSeg struct {
	from  time.Duration
	rps   float64
	burst float64
}

func newServerModel(style string, segs []modelSeg, window time.Duration, start time.Time) *serverModel {
	return &serverModel{style: style, segs: segs, window: window, start: start,
		tokens: segs[0].burst, last: start}
}

// advance brings the bucket to now, crossing rate changes; a change clamps
// the tokens to the new burst, as the simulator does.
func (m *serverModel) advance(now time.Time) {
	for m.seg+1 < len(m.segs) && !m.start.Add(m.segs[m.seg+1].from).After(now) {
		at := m.start.Add(m.segs[m.seg+1].from)
		m.refill(at)
		m.seg++
		m.tokens = min(m.tokens, m.segs[m.seg].burst)
	}
	m.refill(now)
}

func (m *serverModel) refill(t time.Time) {
	if dt := t.Sub(m.last).Seconds(); dt > 0 {
		s := m.segs[m.seg]
		m.tokens = min(s.burst, m.tokens+s.rps*dt)
		m.last = t
	}
}

// handle answers one request arriving at now: the status and headers.
func (m *serverModel) handle(now time.Time) (int, http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := http.Header{}
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	off := now.Sub(m.start)
	if m.window > 0 {
		return m.handleWindow(now, off, h)
	}
	m.advance(now)
	s := m.segs[m.seg]
	if m.tokens < 1-1e-9 {
		m.refused = append(m.refused, off)
		m.rateHeaders(h, now, s)
		if m.style != "none-at-all" && m.style != "garbage" {
			wait := (1 - m.tokens) / s.rps
			ms := max(1, int64(math.Ceil(wait*1000-1e-6)))
			h.Set("Retry-After", strconv.FormatInt(max(1, (ms+999)/1000), 10))
			h.Set("Retry-After-Ms", strconv.FormatInt(ms, 10))
		}
		return http.StatusTooManyRequests, h
	}
	m.tokens--
	m.accepts = append(m.accepts, off)
	m.rateHeaders(h, now, s)
	return http.StatusOK, h
}

// rateHeaders writes the headers of the bucket in the model's style.
func (m *serverModel) rateHeaders(h http.Header, now time.Time, s modelSeg) {
	switch m.style {
	case "none", "none-at-all":
		return
	case "garbage": // values no parser may trust (ratelimit.md §4 hygiene)
		h.Set("X-Ratelimit-Limit", "-1")
		h.Set("X-Ratelimit-Remaining", "many")
		h.Set("X-Ratelimit-Reset", "-5")
		return
	}
	limit := strconv.Itoa(int(math.Round(s.burst)))
	remaining := strconv.Itoa(max(0, int(math.Floor(m.tokens+1e-9))))
	var resetMS int64
	if missing := s.burst - m.tokens; missing > 1e-9 {
		resetMS = int64(math.Ceil(missing/s.rps*1000 - 1e-6))
	}
	reset := time.Duration(resetMS) * time.Millisecond
	switch m.style {
	case "seconds":
		h.Set("X-Ratelimit-Limit", limit)
		h.Set("X-Ratelimit-Remaining", remaining)
		h.Set("X-Ratelimit-Reset", strconv.FormatFloat(float64(resetMS)/1000, 'f', -1, 64))
	case "epoch":
		full := now.Add(reset)
		sec := full.Unix()
		if full.Nanosecond() > 0 {
			sec++
		}
		h.Set("X-Ratelimit-Limit", limit)
		h.Set("X-Ratelimit-Remaining", remaining)
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(sec, 10))
	case "duration":
		h.Set("X-Ratelimit-Limit", limit)
		h.Set("X-Ratelimit-Remaining", remaining)
		h.Set("X-Ratelimit-Reset", reset.String())
	case "openai":
		h.Set("X-Ratelimit-Limit-Requests", limit)
		h.Set("X-Ratelimit-Remaining-Requests", remaining)
		h.Set("X-Ratelimit-Reset-Requests", reset.String())
	case "ietf":
		w := max(1, int64(math.Ceil(s.burst/s.rps-1e-9)))
		h.Set("Ratelimit-Policy", fmt.Sprintf(`"default";q=%s;w=%d`, limit, w))
		h.Set("Ratelimit", fmt.Sprintf(`"default";r=%s;t=%d`, remaining, (resetMS+999)/1000))
	case "rfc3339":
		full := now.Add(reset)
		if t := full.Truncate(time.Millisecond); t.Before(full) {
			full = t.Add(time.Millisecond)
		}
		h.Set("X-Ratelimit-Limit", limit)
		h.Set("X-Ratelimit-Remaining", remaining)
		h.Set("X-Ratelimit-Reset", full.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	default:
		panic("unknown style " + m.style)
	}
}

// handleWindow answers as a fixed-window server: burst requests per window,
// reset = seconds until the window ends (decimal), Retry-After on 429.
func (m *serverModel) handleWindow(now time.Time, off time.Duration, h http.Header) (int, http.Header) {
	idx := int64(off / m.window)
	if idx != m.winIdx {
		m.winIdx, m.used = idx, 0
	}
	q := m.segs[0].burst
	end := time.Duration(idx+1) * m.window
	left := end - off
	set := func() {
		h.Set("X-Ratelimit-Limit", strconv.Itoa(int(q)))
		h.Set("X-Ratelimit-Remaining", strconv.Itoa(int(q-m.used)))
		h.Set("X-Ratelimit-Reset", strconv.FormatFloat(math.Ceil(left.Seconds()*1000)/1000, 'f', -1, 64))
	}
	if m.used >= q {
		m.refused = append(m.refused, off)
		set()
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(left.Seconds())), 10))
		return http.StatusTooManyRequests, h
	}
	m.used++
	m.accepts = append(m.accepts, off)
	set()
	return http.StatusOK, h
}

// acceptedIn counts the requests admitted in [from, to).
func (m *serverModel) acceptedIn(from, to time.Duration) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range m.accepts {
		if a >= from && a < to {
			n++
		}
	}
	return n
}
