package sim

import "maps"

// Stats is a snapshot of a [Server]'s counters. A response is counted just
// before it is written, so a client that has read a response sees it
// counted; InFlight drops only when the handler returns.
type Stats struct {
	// Requests counts every request received, whatever its path.
	Requests int64
	// Search counts requests to /search; Chat those to /chat/completions
	// and /v1/sonar.
	Search, Chat int64
	// Status counts responses by HTTP status code. Cut and garbage answers
	// count as 200; connection resets and canceled requests are not
	// responses. Status[429] is RateLimited + ConcurrencyLimited.
	Status map[int]int64
	// RateLimited counts 429s for an empty bucket; ConcurrencyLimited
	// counts 429s for MaxInFlight.
	RateLimited, ConcurrencyLimited int64
	// Answered counts complete 200 answers: search, chat, and agent runs
	// answered in the foreground (a JSON body, or a stream through its
	// terminal event). Background submits, polls and cancels are not
	// answers.
	Answered int64
	// Resets, Cuts and Garbage count injected faults of each kind.
	Resets, Cuts, Garbage int64
	// Canceled counts admitted requests whose context ended during the
	// latency, before any response.
	Canceled int64
	// InFlight is the number of admitted requests in progress now;
	// MaxInFlight the most there were at once, over all keys.
	InFlight, MaxInFlight int
	// CostUSD is the amount billed: the total_cost of each complete chat
	// answer plus $0.005 per complete search answer ($0.001 with
	// search_type "fast"), plus Agent.CostUSD. Faulted and refused
	// requests are not billed.
	CostUSD float64
	// Agent counts the Agent API.
	Agent AgentStats
}

// AgentStats is the Agent API part of [Stats] and of the [StatsReport].
type AgentStats struct {
	// Requests counts every request to an Agent API path (also counted in
	// Stats.Requests).
	Requests int64 `json:"requests"`
	// Answered counts complete foreground answers (also in
	// Stats.Answered).
	Answered int64 `json:"answered"`
	// Runs counts the background runs created; Polls the GETs answered
	// with a snapshot; Cancels the cancels answered 200.
	Runs    int64 `json:"runs"`
	Polls   int64 `json:"polls"`
	Cancels int64 `json:"cancels"`
	// PolledRuns counts the background runs polled at least once (a GET
	// of a known run, answered or not): a client that records a run before
	// it polls has recorded every one of them.
	PolledRuns int64 `json:"polled_runs"`
	// CutRuns counts the foreground runs whose stream was cut after
	// response.created: they go on, are billed once they settle, and GET
	// shows them, as with the real API.
	CutRuns int64 `json:"cut_runs"`
	// StreamRuns counts the streamed runs created (each as its
	// response.created is sent), and MaxStreamRunsPerRequest the most for
	// one request: 1 when no row's stream was started twice.
	StreamRuns              int64 `json:"stream_runs"`
	MaxStreamRunsPerRequest int   `json:"max_stream_runs_per_request"`
	// MaxRunsPerRequest is the most background runs created for one
	// request ([AgentFingerprint]): 1 when no row's run was submitted
	// twice. [Server.AgentRuns] gives the count of one request.
	MaxRunsPerRequest int `json:"max_runs_per_request"`
	// Status counts finished runs by final status ("completed",
	// "incomplete", "failed", "cancelled", and "error" for a stream ended
	// by a bare error event): foreground runs when their answer is sent,
	// background runs once the server's clock has passed their end (when
	// they are polled or the statistics are read).
	Status map[string]int64 `json:"status"`
	// CostMicroUSD is the exact amount billed for agent runs, in
	// millionths of a USD: the usage.cost.total_cost of every complete
	// foreground answer and of every background run that ended completed
	// or incomplete. Failed and cancelled runs are not billed. CostUSD is
	// the same in USD.
	CostMicroUSD int64   `json:"cost_micro_usd"`
	CostUSD      float64 `json:"cost_usd"`
	// CostByKey is CostUSD by API key, named by [KeyID] (never the key).
	CostByKey map[string]float64 `json:"cost_by_key"`
}

// Stats returns a snapshot of the counters; the maps are copies. It first
// settles the background runs that have ended by the server's clock. It
// is safe for concurrent use.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleAllLocked(s.now())
	st := s.stats
	st.Status = maps.Clone(s.stats.Status)
	st.CostUSD = usd(s.micros)
	st.Agent.Status = maps.Clone(s.stats.Agent.Status)
	st.Agent.CostMicroUSD = s.agent.micros
	st.Agent.CostUSD = usd(s.agent.micros)
	st.Agent.CostByKey = make(map[string]float64, len(s.agent.costByKey))
	for k, v := range s.agent.costByKey {
		st.Agent.CostByKey[KeyID(k)] = usd(v)
	}
	return st
}

// Answered returns how many complete 200 answers the server has sent for
// requests with the given [Fingerprint]; 0 for an unknown or malformed
// fingerprint. It is safe for concurrent use. The server keeps one small
// record per distinct request admitted.
func (s *Server) Answered(fingerprint string) int {
	k, ok := parseFingerprint(fingerprint)
	return s.answered(k, ok)
}

// answered returns the complete answers sent for the request with key k,
// 0 when !ok (a malformed fingerprint) or for an unknown request.
func (s *Server) answered(k [16]byte, ok bool) int {
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rc := s.requests[k]; rc != nil {
		return int(rc.answered)
	}
	return 0
}
