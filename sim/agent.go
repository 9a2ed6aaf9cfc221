package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// AgentConfig configures the simulated Agent API of a [Server] (the
// Agent field of [Config]). The zero value answers every admitted run
// completed, runs background runs for DefaultBackgroundDuration, shows a
// cancellation at once and closes a stream after its terminal event.
type AgentConfig struct {
	// PFailed, PIncomplete and PError are the shares of admitted runs
	// whose fate is not completion. They are drawn like [Faults], per
	// request fingerprint and attempt from [Config.Seed], so the n-th
	// attempt of a request meets the same fate; one draw is compared with
	// the cumulative shares in field order (values clamped to [0, 1]).
	// A failed run is answered 200 with status "failed", an error object
	// and null usage, and is not billed. An incomplete run is answered 200
	// with status "incomplete", incomplete_details.reason
	// "max_output_tokens" and the first half of the answer's words, and is
	// billed. PError ends a streamed run with a bare "error" event instead
	// of response.failed; a run not streamed fails as with PFailed.
	PFailed, PIncomplete, PError float64
	// PInvalid is the share of completed runs with a json_schema
	// response_format whose answer does not match the schema (drawn with
	// the same draw, after the three above): every other time a value of
	// the wrong type for the schema's first property, else text that is
	// not JSON ([AgentInvalidJSONContent]). Runs without a schema are
	// not affected.
	PInvalid float64
	// BackgroundDuration is how long a background run takes from submit
	// to its end on the server's clock: queued for a fifth of it (at most
	// a second), then in_progress, with its search results in the
	// snapshot from half of it on. 0 (or negative) means
	// DefaultBackgroundDuration.
	BackgroundDuration time.Duration
	// CancelDelay is how long after a cancel a run's snapshots still show
	// it queued or in_progress before it shows cancelled (the real API
	// takes a few polls). 0 shows it cancelled at once.
	CancelDelay time.Duration
	// TailOpen keeps a stream's connection open this long after its
	// terminal event (the "tail-open" quirk), or until the client goes
	// away; a client must stop reading at the terminal event. The request
	// no longer counts in flight meanwhile.
	TailOpen time.Duration
}

// DefaultBackgroundDuration is the duration of a background run when
// AgentConfig.BackgroundDuration is 0: about what the fast preset took
// in real captures.
const DefaultBackgroundDuration = 4 * time.Second

// agentBucket is the rate-limit bucket of every Agent API request: the
// real request limit is per organization across all models.
const agentBucket = "agent"

// ChatRetiredMessage is the message of the 403 that POST
// /chat/completions and POST /v1/sonar answer when Config.RetireChat is
// set, with type "chat_completions_not_available", as the real API has
// since Sonar chat was retired on 2026-09-27.
const ChatRetiredMessage = "Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar. Migrate here: https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview"

// drawAgentFate is the purpose of the per-request draw of a run's fate.
const drawAgentFate = 3

// agentState is the Agent API part of a Server; guarded by Server.mu.
type agentState struct {
	fates       [4]float64 // cumulative: failed, incomplete, error, invalid
	duration    time.Duration
	cancelDelay time.Duration
	tailOpen    time.Duration

	runs      map[string]*agentRun
	pending   []*agentRun // runs not yet settled
	runsPerFP map[[16]byte]int
	streamsFP map[[16]byte]int // streamed runs created per request
	costByKey map[string]int64 // micro-USD by API key
	micros    int64
}

func newAgentState(cfg AgentConfig) *agentState {
	a := &agentState{
		duration:    cfg.BackgroundDuration,
		cancelDelay: max(cfg.CancelDelay, 0),
		tailOpen:    max(cfg.TailOpen, 0),
		runs:        make(map[string]*agentRun),
		runsPerFP:   make(map[[16]byte]int),
		streamsFP:   make(map[[16]byte]int),
		costByKey:   make(map[string]int64),
	}
	if a.duration <= 0 {
		a.duration = DefaultBackgroundDuration
	}
	cumulative(a.fates[:], cfg.PFailed, cfg.PIncomplete, cfg.PError, cfg.PInvalid)
	return a
}

// KeyID returns the name under which [AgentStats.CostByKey] reports the
// cost billed to apiKey: "key-" and the first 12 hex digits of its
// SHA-256, so that the statistics never show a key.
func KeyID(apiKey string) string {
	h := sha256.Sum256([]byte(apiKey))
	return "key-" + hex.EncodeToString(h[:6])
}

// isAgentPath reports whether path belongs to the Agent API.
func isAgentPath(path string) bool {
	return path == pplx.AgentPath || path == pplx.ResponsesPath ||
		strings.HasPrefix(path, pplx.AgentPath+"/") || strings.HasPrefix(path, pplx.ResponsesPath+"/")
}

type agentOp int

const (
	opNone agentOp = iota
	opCreate
	opGet
	opCancel
)

// agentRoute returns the operation and run id of an Agent API path.
func agentRoute(path string) (agentOp, string) {
	rest, ok := strings.CutPrefix(path, pplx.AgentPath)
	if !ok {
		rest, _ = strings.CutPrefix(path, pplx.ResponsesPath)
	}
	if rest == "" {
		return opCreate, ""
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return opGet, parts[0]
	case len(parts) == 2 && parts[0] != "" && parts[1] == "cancel":
		return opCancel, parts[0]
	}
	return opNone, ""
}

// serveAgent answers a request to an Agent API path; reqID is the
// request's x-request-id, and the id of a created response without its
// "resp_" prefix.
func (s *Server) serveAgent(w http.ResponseWriter, r *http.Request, reqID string) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.Agent.Requests++
	s.mu.Unlock()
	op, id := agentRoute(r.URL.Path)
	method := http.MethodPost
	if op == opGet {
		method = http.MethodGet
	}
	apiKey, ok := s.admitPath(w, r, op != opNone, method)
	if !ok {
		return
	}
	switch op {
	case opCreate:
		s.agentCreate(w, r, apiKey, reqID)
	case opGet:
		s.agentGet(w, r, apiKey, id)
	case opCancel:
		s.agentCancel(w, r, apiKey, id)
	}
}

// setAgentRate writes the rate-limit headers of st in the configured
// style, plus x-ratelimit-used (limit - remaining) as the real API sends
// with the x-ratelimit-* names.
func (s *Server) setAgentRate(h http.Header, st rateState) {
	s.setRateHeaders(h, st)
	limit, err1 := strconv.Atoi(h.Get("x-ratelimit-limit"))
	remaining, err2 := strconv.Atoi(h.Get("x-ratelimit-remaining"))
	if err1 == nil && err2 == nil {
		h.Set("x-ratelimit-used", strconv.Itoa(max(0, limit-remaining)))
	}
}

// writeAgentError counts and writes an error envelope with its param.
func (s *Server) writeAgentError(w http.ResponseWriter, status int, bad *agentBad) {
	s.respond(status)
	b, _ := json.Marshal(pplx.ErrorBody{Error: pplx.ErrorDetail{
		Message: bad.msg, Type: bad.typ, Code: pplx.FlexInt(status), Param: bad.param}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeAgentJSON writes a 200 Agent API JSON body, or its cut or garbage
// form for fault f; ok runs (to count the answer) just before a whole body
// is written.
func (s *Server) writeAgentJSON(w http.ResponseWriter, body []byte, f fault, ok func()) {
	s.writeJSON(w, body, `{"id":"resp_`, f, ok)
}

// agentFate draws the fate of the attempt-th admission of request fp.
func (s *Server) agentFate(fp [16]byte, attempt uint32) agentFate {
	return agentFate(s.pick(s.agent.fates[:], fp, attempt, drawAgentFate))
}

// billLocked adds a billed amount; call with s.mu held.
func (s *Server) billLocked(apiKey string, micros int64) {
	s.micros += micros
	s.agent.micros += micros
	if micros != 0 {
		s.agent.costByKey[apiKey] += micros
	}
}

// recordAgent counts a complete foreground answer with final status (or
// "error" for a bare error event) and bills it.
func (s *Server) recordAgent(apiKey string, fp [16]byte, micros int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Status[http.StatusOK]++
	s.stats.Answered++
	s.stats.Agent.Answered++
	s.stats.Agent.Status[status]++
	s.billLocked(apiKey, micros)
	if rc := s.requests[fp]; rc != nil {
		rc.answered++
	}
}

// agentCreate answers POST /v1/agent.
func (s *Server) agentCreate(w http.ResponseWriter, r *http.Request, apiKey, reqID string) {
	h := w.Header()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		s.setAgentRate(h, s.peek(apiKey, agentBucket))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "Request body too large")
			return
		}
		s.writeError(w, http.StatusBadRequest, "invalid_request", "invalid request body: could not read it")
		return
	}
	c, bad := parseAgent(body)
	if bad != nil {
		s.setAgentRate(h, s.peek(apiKey, agentBucket))
		s.writeAgentError(w, http.StatusBadRequest, bad)
		return
	}
	adm := s.admit(apiKey, agentBucket, c.fp)
	s.setAgentRate(h, adm.rate)
	if adm.refused != refusedNone {
		s.writeRefusal(w, adm)
		return
	}
	var once sync.Once
	release := func() { once.Do(func() { s.release(apiKey) }) }
	defer release()

	f := s.fault(c.fp, adm.attempt)
	id := "resp_" + reqID
	fate := s.agentFate(c.fp, adm.attempt)
	if c.stream && !f.hard() {
		// Like the real API, a stream's headers and response.created come
		// at once; the answer takes the latency.
		s.agentStream(w, r, apiKey, id, c, fate, f, release, s.delay(c.fp, adm.attempt))
		return
	}
	if !s.wait(r.Context(), s.delay(c.fp, adm.attempt)) {
		return
	}
	if s.hardFault(w, f) {
		return
	}
	now := s.now()
	switch {
	case c.background:
		s.agentSubmit(w, apiKey, id, c, fate, f, now)
	default:
		res := agentOutcome(c, fate)
		resp := c.final(id, "msg_"+s.newID(), &res, now.Unix(), now.Unix())
		s.writeAgentJSON(w, marshal(resp), f, func() { s.recordAgent(apiKey, c.fp, res.micros, res.status) })
	}
}

// writeChatRetired answers a chat request with the retirement 403.
func (s *Server) writeChatRetired(w http.ResponseWriter) {
	s.writeError(w, http.StatusForbidden, "chat_completions_not_available", ChatRetiredMessage)
}
