package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// eventWire is one server-sent event of a streamed run.
type eventWire struct {
	Type           string                   `json:"type"`
	SequenceNumber int64                    `json:"sequence_number"`
	Response       *agentWire               `json:"response,omitempty"`
	OutputIndex    *int                     `json:"output_index,omitempty"`
	ContentIndex   *int                     `json:"content_index,omitempty"`
	ItemID         string                   `json:"item_id,omitempty"`
	Item           any                      `json:"item,omitempty"`
	Delta          string                   `json:"delta,omitempty"`
	Text           *string                  `json:"text,omitempty"`
	CallID         string                   `json:"call_id,omitempty"`
	Queries        []string                 `json:"queries,omitempty"`
	Results        []pplx.AgentSearchResult `json:"results,omitempty"`
	Thought        string                   `json:"thought,omitempty"`
	Error          any                      `json:"error,omitempty"`
}

// bareError is the error of a bare "error" event; its code is null, as
// LiteLLM has seen (see "Agent API sources" in ARCHITECTURE.md).
type bareError struct {
	Code    *string `json:"code"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
}

// Event types the sim sends besides pplx's.
const (
	eventSearchQueries = "response.reasoning.search_queries"
	eventSearchResults = "response.reasoning.search_results"
)

// streamIDs are the ids a stream shows.
type streamIDs struct {
	resp, msg, fc, call string
}

// agentEvents returns the events of a streamed run of c with result r,
// following a real capture (see "Agent API sources" in ARCHITECTURE.md): response.created and
// response.in_progress (model = preset name or model, usage null); with
// search, an output_item.added of a function_call named search_web that
// is never done and is absent from the final output, the reasoning
// events, and the search_results item done at the same output_index; the
// message's output_item.added with "content": null, output_text.delta
// frames, output_text.done and output_item.done; and exactly one terminal
// event, last. Sequence numbers start at 0 and skip 2 and the number
// before output_text.done.
func agentEvents(ids streamIDs, c *agentCall, r *agentResult, created int64) []eventWire {
	var (
		evs []eventWire
		seq int64
	)
	add := func(e eventWire) {
		e.SequenceNumber = seq
		seq++
		evs = append(evs, e)
	}
	ptr := func(i int) *int { return &i }
	start := c.snapshot(ids.resp, pplx.StatusInProgress, created)
	add(eventWire{Type: pplx.EventCreated, Response: &start})
	add(eventWire{Type: pplx.EventInProgress, Response: &start})
	seq++ // a gap, as in the capture

	failed := r.fate == fateFailed || r.fate == fateError
	idx := 0
	if c.search {
		args, _ := json.Marshal(map[string][]string{"queries": {c.input}})
		add(eventWire{Type: pplx.EventOutputItemAdded, OutputIndex: ptr(0), Item: functionCallItem{
			Type: "function_call", ID: ids.fc, CallID: ids.call, Name: "search_web", Status: "completed", Arguments: string(args)}})
		if !failed {
			add(eventWire{Type: eventSearchQueries, CallID: ids.call, Queries: []string{c.input}, Thought: "Searching the web..."})
			add(eventWire{Type: eventSearchResults, CallID: ids.call, Results: r.results,
				Thought: fmt.Sprintf("Found %d results", len(r.results))})
			add(eventWire{Type: pplx.EventOutputItemDone, OutputIndex: ptr(0), Item: searchItem(c, r.results)})
			idx = 1
		}
	}
	completed := created
	final := c.final(ids.resp, ids.msg, r, created, completed)
	switch r.fate {
	case fateFailed:
		add(eventWire{Type: pplx.EventFailed, Response: &final, Error: final.Error})
		return evs
	case fateError:
		add(eventWire{Type: pplx.EventError, Error: bareError{Message: "stream error (simulated)", Type: "server_error"}})
		return evs
	}
	add(eventWire{Type: pplx.EventOutputItemAdded, OutputIndex: ptr(idx),
		Item: messageItem{Type: pplx.ItemMessage, ID: ids.msg, Role: "assistant", Status: pplx.StatusCompleted}})
	for _, d := range splitChunks(r.text, 8) {
		add(eventWire{Type: pplx.EventOutputTextDelta, ItemID: ids.msg, OutputIndex: ptr(idx), ContentIndex: ptr(0), Delta: d})
	}
	seq++ // a gap, as in the capture
	text := r.text
	add(eventWire{Type: pplx.EventOutputTextDone, ItemID: ids.msg, OutputIndex: ptr(idx), ContentIndex: ptr(0), Text: &text})
	add(eventWire{Type: pplx.EventOutputItemDone, OutputIndex: ptr(idx), Item: message(ids.msg, r.msgStatus, r.text)})
	if !c.includeUsage {
		final.Usage = nil
	}
	typ := pplx.EventCompleted
	if r.status == pplx.StatusIncomplete {
		typ = pplx.EventIncomplete
	}
	add(eventWire{Type: typ, Response: &final})
	return evs
}

// keepCutRun records the run of a stream cut after response.created as
// ended and unsettled: it is billed when it settles (polled, or the
// statistics read), whether or not the client collects it.
func (s *Server) keepCutRun(apiKey, id, msgID string, c *agentCall, fate agentFate) {
	run := &agentRun{id: id, apiKey: apiKey, msgID: msgID, fp: c.fp, call: c, fate: fate,
		status: agentOutcome(c, fate).status, created: s.now(), foreground: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent.runs[id] = run
	s.agent.pending = append(s.agent.pending, run)
	s.stats.Agent.CutRuns++
}

// agentStream writes a streamed run: "data: <json>\n\n" frames, no event:
// lines and no [DONE]. The headers, response.created and
// response.in_progress go at once; the rest after latency. A client gone
// by then leaves the run going, as a cut does. A cut fault closes the
// connection halfway, before the terminal event; a garbage fault sends a
// frame that is not JSON after response.in_progress and ends the stream
// there. release runs after the terminal event, before the connection is
// held open for TailOpen.
func (s *Server) agentStream(w http.ResponseWriter, r *http.Request, apiKey, id string, c *agentCall,
	fate agentFate, f fault, release func(), latency time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	res := agentOutcome(c, fate)
	ids := streamIDs{resp: id, msg: "msg_" + s.newID(), fc: "fc_" + s.newID(), call: "call_" + s.newID()}
	events := agentEvents(ids, c, &res, s.now().Unix())
	last := len(events) - 1
	status := res.status
	if fate == fateError {
		status = pplx.EventError
	}
	if f == faultCut || f == faultGarbage {
		s.countFault(f)
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	s.mu.Lock()
	s.agent.streamsFP[c.fp]++
	s.stats.Agent.StreamRuns++
	s.stats.Agent.MaxStreamRunsPerRequest = max(s.stats.Agent.MaxStreamRunsPerRequest, s.agent.streamsFP[c.fp])
	s.mu.Unlock()
	for i, ev := range events {
		switch {
		case i == 2 && !s.wait(r.Context(), latency):
			// The client went away after response.created: the run goes
			// on without it, as after a cut.
			if c.store {
				s.keepCutRun(apiKey, id, ids.msg, c, fate)
			}
			return
		case f == faultCut && i == max(1, last/2):
			// The client has the run's id (response.created came first):
			// like the real API, the run goes on without it, is paid for,
			// and GET /v1/agent/{id} shows it (unless store is false).
			if c.store {
				s.keepCutRun(apiKey, id, ids.msg, c, fate)
			}
			cut(w)
			return
		case f == faultGarbage && i == 2:
			io.WriteString(w, "data: {\"type\":\"response.output_text.delta\",\x00garbage\n\n")
			rc.Flush()
			return
		case i == last:
			s.recordAgent(apiKey, c.fp, res.micros, status)
		}
		buf := append([]byte("data: "), marshal(ev)...)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	release()
	if s.agent.tailOpen > 0 {
		s.sleep(r.Context(), s.agent.tailOpen)
	}
}
