// Package sim is a simulated Perplexity API: an [http.Handler] that serves
// POST /search, POST /chat/completions (alias POST /v1/sonar) and the
// Agent API with deterministic answers, a server-side token bucket per API
// key and bucket, rate-limit headers in several dialects, a concurrency
// limit and injected faults. Tests, the offline demo and the benchmarks
// run against it.
//
// The Agent API endpoints (see [AgentConfig]) are:
//
//	POST /v1/agent, POST /v1/responses            create a run: plain JSON,
//	                                              server-sent events, or background
//	GET  /v1/agent/{id}, GET /v1/responses/{id}   the snapshot of a background run
//	POST /v1/agent/{id}/cancel (and /v1/responses/{id}/cancel)
//
// With [Config.RetireChat], POST /chat/completions and POST /v1/sonar
// answer 403 chat_completions_not_available, as the real API does since
// Sonar chat was retired.
//
// Answers are pure functions of the request ([SearchResults], [ChatContent],
// [ChatSearchResults], [AgentContent], [AgentSearchResults]), so a test can
// tell which input produced an output. Response shapes follow the real
// API: the JSON error envelope {"error":{"message":...,"type":...,"code":...}},
// usage with cost on chat and agent answers, server-sent events ending in
// "data: [DONE]" for chat and in one terminal event for the Agent API.
//
// The order of checks for one request is: path (404), method (405), API key
// (401), body size (413), body (400), rate limit and concurrency limit (429),
// fault injection, latency, answer. Responses to authenticated requests carry
// the rate-limit headers of the request's bucket in the configured
// [HeaderStyle]; only admitted requests take a token. Buckets are kept per
// API key and bucket name: "search" for /search, "chat:<model>" for each
// chat model and "agent" for every Agent API model (the real limit is per
// organization across models). Only creating an agent run takes a token;
// polls and cancels show the "agent" bucket without taking one.
//
// GET /_sim/stats ([StatsPath]) answers, without authentication, with the
// counters and a per-second timeline of the rate-limit decisions, so that a
// benchmark can measure the rate a client achieved against the limit.
package sim

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBodyBytes is the largest request body the server reads; a larger body
// is answered 413.
const MaxBodyBytes = 1 << 20

// Config configures a [Server]. The zero value is a server that accepts any
// non-empty key, has no rate limit, no latency and no faults.
type Config struct {
	// Key is the bearer key accepted. "" accepts any non-empty key.
	Key string
	// RPS is the refill rate of each token bucket in tokens per second.
	// 0 (or a negative or NaN value) means unlimited: no bucket applies and
	// no rate-limit headers are sent.
	RPS float64
	// Burst is the capacity of each bucket. 0 (or negative) means
	// max(1, ceil(RPS)).
	Burst int
	// Latency is the base delay before the response headers of an admitted
	// request are sent; the wait ends, with no response, when the request's
	// context is done. Refusals (401, 400, 413, 429) are answered at once.
	// A streamed agent run, like the real API's, sends its headers,
	// response.created and response.in_progress at once and the rest after
	// the delay; a client gone by then leaves the run going, billed and
	// shown by GET /v1/agent/{id}.
	Latency time.Duration
	// Jitter adds a uniform delay in [0, Jitter) to Latency, drawn from an
	// RNG seeded by Seed.
	Jitter time.Duration
	// Headers is the rate-limit header dialect. The zero value, and any
	// unknown value, means HeadersSeconds.
	Headers HeaderStyle
	// Schedule changes the rate and burst at given offsets from New. The
	// changes are applied in order of At (negative At counts as 0); see
	// [Change].
	Schedule []Change
	// MaxInFlight is the most admitted requests one key may have in progress
	// at once; one more is answered 429 without consuming a token. 0 means
	// no limit.
	MaxInFlight int
	// Faults sets the probabilities of injected faults. The zero value
	// injects none.
	Faults Faults
	// Outages are periods in which every request is answered 503 at once
	// (see [Outage]).
	Outages []Outage
	// Seed seeds every pseudo-random choice: jitter, faults and response
	// ids. Jitter and faults are drawn per request from the seed, the
	// request's [Fingerprint] and how many times that fingerprint was
	// admitted before, so the n-th attempt of a request meets the same fate
	// however concurrent requests interleave. Ids come from the seed and a
	// counter of requests received.
	Seed int64
	// Now is the clock of the token buckets, the rate-limit headers, the
	// Date header, the created fields and background agent runs. nil
	// means time.Now.
	Now func() time.Time
	// Agent configures the Agent API: failure statuses, background runs
	// and stream quirks.
	Agent AgentConfig
	// RetireChat answers every authenticated POST /chat/completions and
	// /v1/sonar with 403 chat_completions_not_available and the message
	// [ChatRetiredMessage], taking no token.
	RetireChat bool
}

// Change is one entry of [Config.Schedule]: from At on (measured from the
// call to [New]) buckets refill at RPS tokens per second and hold at most
// Burst tokens. RPS 0 means unlimited; Burst 0 means max(1, ceil(RPS)).
// When a change takes effect, the content of every bucket is clamped to the
// new Burst; a bucket that comes under a limit after an unlimited period
// starts full.
type Change struct {
	At    time.Duration
	RPS   float64
	Burst int
}

// Faults sets the probability of each injected fault, per admitted request.
// A fault is decided after authentication and rate limiting, so a faulted
// request has consumed its token. One uniform draw in [0, 1) is compared
// with the cumulative probabilities in field order, so at most one fault
// applies and the sum is effectively capped at 1. Values outside [0, 1]
// are clamped; NaN counts as 0. PReset and PCut take over the connection,
// which needs HTTP/1.x; elsewhere (HTTP/2, an httptest.ResponseRecorder)
// the handler aborts with panic(http.ErrAbortHandler), which net/http turns
// into a stream reset.
type Faults struct {
	// P500 answers 500 with the JSON envelope, type "internal_error".
	P500 float64
	// P503 answers 503 with a plain-text body.
	P503 float64
	// PReset closes the connection without a response (with SO_LINGER 0,
	// so the client sees a reset where the platform allows).
	PReset float64
	// PCut sends the status, headers and part of the body, then closes the
	// connection: half of the body of a JSON answer, or part of the frames
	// of a stream with no "[DONE]" (an Agent API stream is cut before its
	// terminal event, after response.created: its run goes on, is billed
	// once it settles, and GET shows it, unless store is false). A cut
	// background submit creates no run.
	PCut float64
	// PGarbage answers 200 with a body that is not valid JSON (for a chat
	// stream, a frame whose data is not valid JSON, then "[DONE]"; for an
	// Agent API stream, two events, such a frame and the end of the
	// stream). Faults apply to polls of background runs too, drawn per
	// run and poll.
	PGarbage float64
}

// Server is the simulated API. It implements [http.Handler]; create it with
// [New]. All methods are safe for concurrent use.
type Server struct {
	key         string
	segs        []segment
	style       HeaderStyle
	latency     time.Duration
	jitter      time.Duration
	maxInFlight int
	faults      [5]float64 // cumulative thresholds, in the order of Faults
	outages     []Outage
	seed        uint64
	now         func() time.Time
	start       time.Time
	// sleep waits d or until ctx is done; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error

	seq atomic.Uint64 // response id counter

	retireChat bool

	mu       sync.Mutex
	buckets  map[bucketKey]*bucket
	inFlight map[string]int
	requests map[[16]byte]*requestCount
	stats    Stats
	timeline []Second
	micros   int64 // cost billed, in millionths of a USD
	agent    *agentState
}

type bucketKey struct {
	apiKey, bucket string
}

type requestCount struct {
	admitted int32
	answered int32
}

// New returns a Server configured by cfg. It never fails: out-of-range
// values are treated as documented on [Config]. The clock is read once to
// anchor cfg.Schedule.
func New(cfg Config) *Server {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		key:         cfg.Key,
		style:       cfg.Headers,
		latency:     max(cfg.Latency, 0),
		jitter:      max(cfg.Jitter, 0),
		maxInFlight: max(cfg.MaxInFlight, 0),
		seed:        uint64(cfg.Seed),
		outages:     append([]Outage(nil), cfg.Outages...),
		now:         now,
		start:       now(),
		sleep:       sleepCtx,
		buckets:     make(map[bucketKey]*bucket),
		inFlight:    make(map[string]int),
		requests:    make(map[[16]byte]*requestCount),
		stats:       Stats{Status: make(map[int]int64), Agent: AgentStats{Status: make(map[string]int64)}},
		agent:       newAgentState(cfg.Agent),
		retireChat:  cfg.RetireChat,
	}
	if s.style == "" || !s.style.Valid() {
		s.style = HeadersSeconds
	}
	s.segs = segments(cfg.RPS, cfg.Burst, cfg.Schedule)
	cumulative(s.faults[:], cfg.Faults.P500, cfg.Faults.P503, cfg.Faults.PReset, cfg.Faults.PCut, cfg.Faults.PGarbage)
	return s
}

func segments(rps float64, burst int, sched []Change) []segment {
	out := []segment{newSegment(0, rps, burst)}
	changes := append([]Change(nil), sched...)
	sort.SliceStable(changes, func(i, j int) bool { return max(changes[i].At, 0) < max(changes[j].At, 0) })
	for _, c := range changes {
		out = append(out, newSegment(max(c.At, 0), c.RPS, c.Burst))
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type endpoint int

const (
	epNone endpoint = iota
	epSearch
	epChat
)

func (e endpoint) String() string {
	switch e {
	case epSearch:
		return "search"
	case epChat:
		return "chat"
	}
	return ""
}

func endpointFor(path string) endpoint {
	switch path {
	case "/search":
		return epSearch
	case "/chat/completions", "/v1/sonar":
		return epChat
	}
	return epNone
}

// ServeHTTP answers one request as described in the package comment, or
// GET [StatsPath] with a [StatsReport]. It blocks for the configured latency (returning early, without a response,
// when the request's context is done) and is safe for concurrent use.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatsPath {
		s.serveStats(w, r)
		return
	}
	id := s.newID()
	h := w.Header()
	h.Set("x-request-id", id)
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	if isAgentPath(r.URL.Path) {
		s.serveAgent(w, r, id)
		return
	}

	ep := endpointFor(r.URL.Path)
	s.begin(ep)
	apiKey, ok := s.admitPath(w, r, ep != epNone, http.MethodPost)
	if !ok {
		return
	}
	if ep == epChat && s.retireChat {
		s.writeChatRetired(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		s.setRateHeaders(h, s.peek(apiKey, defaultBucket(ep)))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "Request body too large")
			return
		}
		s.writeError(w, http.StatusBadRequest, "bad_request", "Could not read the request body")
		return
	}
	c, bad := parseCall(ep, body)
	if bad != nil {
		s.setRateHeaders(h, s.peek(apiKey, bad.bucket))
		s.writeError(w, http.StatusBadRequest, bad.typ, bad.msg)
		return
	}

	adm := s.admit(apiKey, c.bucket, c.fp)
	s.setRateHeaders(h, adm.rate)
	if adm.refused != refusedNone {
		s.writeRefusal(w, adm)
		return
	}
	defer s.release(apiKey)

	fault := s.fault(c.fp, adm.attempt)
	if !s.wait(r.Context(), s.delay(c.fp, adm.attempt)) {
		return
	}
	if s.hardFault(w, fault) {
		return
	}
	s.answer(w, id, c, fault)
}

// cumulative stores in dst the running sums of probabilities ps, each
// clamped to [0, 1] (NaN counts as 0).
func cumulative(dst []float64, ps ...float64) {
	p := 0.0
	for i, v := range ps {
		if math.IsNaN(v) || v < 0 {
			v = 0
		}
		p += min(v, 1)
		dst[i] = p
	}
}

// wait waits d (the latency of an admitted request) and reports whether
// it ended before the request's context; a request that went away is
// counted as Canceled.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if err := s.sleep(ctx, d); err != nil {
		s.mu.Lock()
		s.stats.Canceled++
		s.mu.Unlock()
		return false
	}
	return true
}

// hard reports whether f is answered by hardFault, before any answer.
func (f fault) hard() bool { return f == fault500 || f == fault503 || f == faultReset }

// hardFault answers a 500, 503 or reset fault and reports whether f was
// one of them.
func (s *Server) hardFault(w http.ResponseWriter, f fault) bool {
	switch f {
	case fault500:
		s.writeError(w, http.StatusInternalServerError, "internal_error", "Internal server error")
	case fault503:
		s.respond(http.StatusServiceUnavailable)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "503 Service Temporarily Unavailable\n")
	case faultReset:
		s.mu.Lock()
		s.stats.Resets++
		s.mu.Unlock()
		reset(w)
	default:
		return false
	}
	return true
}

// admitPath answers 404 when the path is not found, 405 when the method
// is not method and 401 when the request has no valid key; otherwise it
// returns the key.
func (s *Server) admitPath(w http.ResponseWriter, r *http.Request, found bool, method string) (string, bool) {
	if !found {
		s.writeError(w, http.StatusNotFound, "not_found", "Not Found")
		return "", false
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		s.writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed")
		return "", false
	}
	apiKey, ok := s.authorize(r.Header.Get("Authorization"))
	if !ok {
		s.writeError(w, http.StatusUnauthorized, "invalid_api_key",
			"Invalid API key provided. Ensure your API key is correct and active.")
		return "", false
	}
	return apiKey, true
}

// authorize checks an Authorization header and returns the key it carries.
func (s *Server) authorize(header string) (string, bool) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return "", false
	}
	if s.key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.key)) != 1 {
		return "", false
	}
	return key, true
}

func defaultBucket(ep endpoint) string {
	if ep == epSearch {
		return "search"
	}
	return "chat:"
}

func (s *Server) begin(ep endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	switch ep {
	case epSearch:
		s.stats.Search++
	case epChat:
		s.stats.Chat++
	}
}

// respond counts a response status; call it before writing the header.
func (s *Server) respond(status int) {
	s.mu.Lock()
	s.stats.Status[status]++
	s.mu.Unlock()
}

func (s *Server) release(apiKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[apiKey]--; s.inFlight[apiKey] <= 0 {
		delete(s.inFlight, apiKey)
	}
	s.stats.InFlight--
}

// newID returns a UUID-shaped id derived from the seed and a counter.
func (s *Server) newID() string {
	n := s.seq.Add(1)
	hi := mix(s.seed ^ mix(n))
	lo := mix(hi ^ n)
	var b [16]byte
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[v>>4], hexdigits[v&0x0f])
	}
	return string(out)
}

// mix is the SplitMix64 finalizer: a cheap, well-spread 64-bit hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
