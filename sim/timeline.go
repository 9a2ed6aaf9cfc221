package sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// StatsPath is the path of the statistics endpoint: GET StatsPath answers,
// without authentication, with the JSON form of [Server.Stats] and
// [Server.Timeline] (see [StatsReport]). Requests to it are not counted in
// the statistics.
const StatsPath = "/_sim/stats"

// MaxTimeline is the number of seconds the timeline records; decisions
// after that are left out of it (not out of [Stats]).
const MaxTimeline = 24 * 60 * 60

// Second counts the rate-limit decisions the server made during one second
// of its clock, the n-th second after [New].
type Second struct {
	// Admitted counts the requests let through the rate and concurrency
	// limits (each took a token when a rate limit applied).
	Admitted int64 `json:"admitted"`
	// RateLimited counts the 429s for an empty bucket.
	RateLimited int64 `json:"rate_limited"`
	// ConcurrencyLimited counts the 429s for Config.MaxInFlight.
	ConcurrencyLimited int64 `json:"concurrency_limited"`
}

// Timeline returns the decisions of each second since [New], one entry per
// second up to the last second with a decision; at most [MaxTimeline]
// entries. It is safe for concurrent use.
func (s *Server) Timeline() []Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.timeline)
}

// second returns the timeline entry of offset off, growing the timeline;
// nil when off is out of its range. Call with s.mu held.
func (s *Server) second(off time.Duration) *Second {
	if off < 0 {
		off = 0
	}
	i := int64(off / time.Second)
	if i >= MaxTimeline {
		return nil
	}
	for int64(len(s.timeline)) <= i {
		s.timeline = append(s.timeline, Second{})
	}
	return &s.timeline[i]
}

// StatsReport is the JSON document served at [StatsPath].
type StatsReport struct {
	// Requests counts every request received, except those to StatsPath.
	Requests int64 `json:"requests"`
	// Answered counts complete 200 answers.
	Answered int64 `json:"answered"`
	// RateLimited and ConcurrencyLimited count the 429s of each kind.
	RateLimited        int64 `json:"rate_limited"`
	ConcurrencyLimited int64 `json:"concurrency_limited"`
	// Status counts responses by HTTP status code.
	Status map[int]int64 `json:"status"`
	// MaxInFlight is the most admitted requests in progress at once.
	MaxInFlight int `json:"max_in_flight"`
	// CostUSD is the amount billed ([Stats].CostUSD).
	CostUSD float64 `json:"cost_usd"`
	// Agent counts the Agent API, with the cost billed per key.
	Agent AgentStats `json:"agent"`
	// Timeline is [Server.Timeline]: entry n covers second n after the
	// server started.
	Timeline []Second `json:"timeline"`
}

// serveStats answers GET StatsPath.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeEnvelope(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed")
		return
	}
	st := s.Stats()
	rep := StatsReport{
		Requests: st.Requests, Answered: st.Answered,
		RateLimited: st.RateLimited, ConcurrencyLimited: st.ConcurrencyLimited,
		Status: st.Status, MaxInFlight: st.MaxInFlight, CostUSD: st.CostUSD, Agent: st.Agent,
		Timeline: s.Timeline(),
	}
	b, _ := json.Marshal(rep) // plain data: always encodes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}
