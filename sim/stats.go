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
	// Answered counts complete 200 answers, search and chat.
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
	// search_type "fast"). Faulted and refused requests are not billed.
	CostUSD float64
}

// Stats returns a snapshot of the counters; the Status map is a copy. It is
// safe for concurrent use.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Status = maps.Clone(s.stats.Status)
	st.CostUSD = usd(s.micros)
	return st
}

// Answered returns how many complete 200 answers the server has sent for
// requests with the given [Fingerprint]; 0 for an unknown or malformed
// fingerprint. It is safe for concurrent use. The server keeps one small
// record per distinct request admitted.
func (s *Server) Answered(fingerprint string) int {
	k, ok := parseFingerprint(fingerprint)
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
