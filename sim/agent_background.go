package sim

import (
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// agentRun is a background run; guarded by Server.mu. Its result is
// recomputed when needed (it is a pure function of the call and the
// fate), so that a run kept for polling stays small.
type agentRun struct {
	id, apiKey, msgID string
	fp                [16]byte
	call              *agentCall
	fate              agentFate
	status            string // final status
	created           time.Time
	cancelAt          time.Time
	cancelReq         bool
	settled           bool
	polls             uint32
	// foreground marks the run of a stream cut after response.created:
	// the run went on, ended at once, and is paid for; GET shows it.
	foreground bool
}

// phase returns the status of run at now and, for a terminal status, the
// time it ended.
func (a *agentState) phase(run *agentRun, now time.Time) (string, time.Time) {
	if run.foreground {
		return run.status, run.created
	}
	elapsed := now.Sub(run.created)
	queued := min(a.duration/5, time.Second)
	if run.cancelReq {
		if at := run.cancelAt.Add(a.cancelDelay); !now.Before(at) {
			return pplx.StatusCancelled, at
		}
		if elapsed < queued {
			return pplx.StatusQueued, time.Time{}
		}
		return pplx.StatusInProgress, time.Time{}
	}
	switch {
	case elapsed < queued:
		return pplx.StatusQueued, time.Time{}
	case elapsed < a.duration:
		return pplx.StatusInProgress, time.Time{}
	}
	return run.status, run.created.Add(a.duration)
}

// runSnapshot is the response object GET shows for run at now. Its
// created_at is the time of the poll, as observed (in real captures).
func (s *Server) runSnapshot(run *agentRun, now time.Time) agentWire {
	a := s.agent
	c := run.call
	status, end := a.phase(run, now)
	searched := func(at time.Time) bool {
		return c.search && run.status != pplx.StatusFailed && at.Sub(run.created) >= a.duration/2
	}
	results := func() []pplx.AgentSearchResult { return AgentSearchResults(c.input, c.maxResults) }
	switch status {
	case pplx.StatusQueued, pplx.StatusInProgress:
		w := c.snapshot(run.id, status, now.Unix())
		if status == pplx.StatusInProgress && searched(now) {
			w.Output = append(w.Output, searchItem(c, results()))
		}
		return w
	case pplx.StatusCancelled:
		w := c.snapshot(run.id, status, now.Unix())
		done := end.Unix()
		w.CompletedAt = &done
		w.Error = &pplx.AgentError{Code: "cancelled", Message: "cancelled", Type: "cancelled"}
		w.IncompleteDetails = &pplx.IncompleteDetails{Reason: "cancelled"}
		if searched(run.cancelAt) {
			w.Output = append(w.Output, searchItem(c, results()))
		}
		return w
	}
	res := agentOutcome(c, run.fate)
	return c.final(run.id, run.msgID, &res, now.Unix(), end.Unix())
}

// settleLocked counts and bills run once it is terminal at now; call with
// s.mu held. A cancelled or failed run is not billed.
func (s *Server) settleLocked(run *agentRun, now time.Time) bool {
	if run.settled {
		return true
	}
	status, _ := s.agent.phase(run, now)
	if !pplx.TerminalStatus(status) {
		return false
	}
	run.settled = true
	s.stats.Agent.Status[status]++
	if status == pplx.StatusCompleted || status == pplx.StatusIncomplete {
		s.billLocked(run.apiKey, agentOutcome(run.call, run.fate).micros)
	}
	return true
}

// settleAllLocked settles every run that has ended by now; call with s.mu
// held.
func (s *Server) settleAllLocked(now time.Time) {
	a := s.agent
	keep := a.pending[:0]
	for _, run := range a.pending {
		if !s.settleLocked(run, now) {
			keep = append(keep, run)
		}
	}
	clear(a.pending[len(keep):])
	a.pending = keep
}

// agentSubmit creates a background run and answers its queued snapshot.
// Under a cut or garbage fault no run is created.
func (s *Server) agentSubmit(w http.ResponseWriter, apiKey, id string, c *agentCall, fate agentFate, f fault, now time.Time) {
	snap := c.snapshot(id, pplx.StatusQueued, now.Unix())
	snap.Tools = snap.Tools[:0] // a submit echoes no tools
	body := marshal(snap)
	s.writeAgentJSON(w, body, f, func() {
		run := &agentRun{id: id, apiKey: apiKey, msgID: "msg_" + s.newID(), fp: c.fp, call: c,
			fate: fate, status: agentOutcome(c, fate).status, created: now}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.agent
		a.runs[id] = run
		a.pending = append(a.pending, run)
		a.runsPerFP[c.fp]++
		s.stats.Agent.Runs++
		s.stats.Agent.MaxRunsPerRequest = max(s.stats.Agent.MaxRunsPerRequest, a.runsPerFP[c.fp])
		s.stats.Status[http.StatusOK]++
	})
}

// pollKey is the fingerprint under which the faults of a run's polls are
// drawn.
func pollKey(id string) [16]byte {
	h := sha256.New()
	writeField(h, "poll")
	writeField(h, id)
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

var (
	errBadID    = &agentBad{typ: "invalid_request", msg: "invalid response id"}
	errNotFound = &agentBad{typ: "not_found", msg: "resource not found"}
	errTerminal = &agentBad{typ: "invalid_request", msg: "the run is already terminal and cannot be cancelled"}
)

// runRequest starts the answer to a request about run id: the agent
// bucket's rate-limit headers (no token is taken), the 400 of a malformed
// id, and the base latency. It reports whether to go on.
func (s *Server) runRequest(w http.ResponseWriter, r *http.Request, apiKey, id string) bool {
	s.setAgentRate(w.Header(), s.peek(apiKey, agentBucket))
	if !validResponseID(id) {
		s.writeAgentError(w, http.StatusBadRequest, errBadID)
		return false
	}
	return s.wait(r.Context(), s.latency)
}

// agentGet answers GET /v1/agent/{id}: the run's snapshot. A poll takes
// no rate-limit token (it shows the agent bucket's state) and waits the
// base latency; faults are drawn per run and poll.
func (s *Server) agentGet(w http.ResponseWriter, r *http.Request, apiKey, id string) {
	if !s.runRequest(w, r, apiKey, id) {
		return
	}
	now := s.now()
	s.mu.Lock()
	run := s.agent.runs[id]
	if run == nil || run.apiKey != apiKey || !run.call.store {
		s.mu.Unlock()
		s.writeAgentError(w, http.StatusNotFound, errNotFound)
		return
	}
	s.settleLocked(run, now)
	poll := run.polls
	run.polls++
	if poll == 0 {
		s.stats.Agent.PolledRuns++
	}
	body := marshal(s.runSnapshot(run, now))
	s.mu.Unlock()

	f := s.fault(pollKey(id), poll)
	if s.hardFault(w, f) {
		return
	}
	s.writeAgentJSON(w, body, f, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stats.Status[http.StatusOK]++
		s.stats.Agent.Polls++
	})
}

// agentCancel answers POST /v1/agent/{id}/cancel. Like the real API, an
// unknown well-formed id gets the same 400 as a terminal run. A cancel
// takes no rate-limit token.
func (s *Server) agentCancel(w http.ResponseWriter, r *http.Request, apiKey, id string) {
	if !s.runRequest(w, r, apiKey, id) {
		return
	}
	now := s.now()
	s.mu.Lock()
	run := s.agent.runs[id]
	if run == nil || run.apiKey != apiKey || s.settleLocked(run, now) {
		s.mu.Unlock()
		s.writeAgentError(w, http.StatusBadRequest, errTerminal)
		return
	}
	if !run.cancelReq {
		run.cancelReq, run.cancelAt = true, now
	}
	s.stats.Agent.Cancels++
	s.stats.Status[http.StatusOK]++
	s.mu.Unlock()
	body := marshal(pplx.CancelResponse{ResponseID: id, Status: "cancelling"})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// AgentAnswered returns how many complete foreground answers (a JSON
// body, or a stream through its terminal event) the server has sent for
// requests with the given [AgentFingerprint]; 0 for an unknown or
// malformed fingerprint. It is safe for concurrent use.
func (s *Server) AgentAnswered(fingerprint string) int {
	k, ok := parseAgentFingerprint(fingerprint)
	return s.answered(k, ok)
}

// AgentRuns returns how many background runs the server created for
// requests with the given [AgentFingerprint]; 0 for an unknown or
// malformed fingerprint. It is safe for concurrent use.
func (s *Server) AgentRuns(fingerprint string) int {
	k, ok := parseAgentFingerprint(fingerprint)
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agent.runsPerFP[k]
}
