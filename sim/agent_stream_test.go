package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// agentEventsOf decodes the frames of an Agent API stream.
func agentEventsOf(t *testing.T, body []byte) []pplx.AgentEvent {
	t.Helper()
	var out []pplx.AgentEvent
	for _, f := range sseFrames(t, body) {
		out = append(out, decode[pplx.AgentEvent](t, []byte(f)))
	}
	return out
}

func TestAgentStreamSequence(t *testing.T) {
	s := New(Config{Key: testKey})
	ts := start(t, s)
	r := post(t, ts, pplx.AgentPath, `{"preset":"fast","input":"stream me","stream":true}`)
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got status %d %q, want a 200 event stream", r.status, r.header.Get("Content-Type"))
	}
	if strings.Contains(string(r.body), "[DONE]") || strings.Contains(string(r.body), "event:") {
		t.Errorf("got [DONE] or event: lines, want data: frames only")
	}
	frames := sseFrames(t, r.body)
	evs := agentEventsOf(t, r.body)
	types := make([]string, len(evs))
	for i, e := range evs {
		types[i] = e.Type
	}
	head := []string{pplx.EventCreated, pplx.EventInProgress, pplx.EventOutputItemAdded, eventSearchQueries, eventSearchResults,
		pplx.EventOutputItemDone, pplx.EventOutputItemAdded}
	tail := []string{pplx.EventOutputTextDone, pplx.EventOutputItemDone, pplx.EventCompleted}
	if len(types) < len(head)+len(tail)+2 || !slices.Equal(types[:len(head)], head) || !slices.Equal(types[len(types)-len(tail):], tail) {
		t.Fatalf("got events %v, want %v, deltas, %v", types, head, tail)
	}
	for _, typ := range types[len(head) : len(types)-len(tail)] {
		if typ != pplx.EventOutputTextDelta {
			t.Fatalf("got %s among the deltas", typ)
		}
	}
	// created: the preset's name, no usage, no output.
	for _, i := range []int{0, 1} {
		if !strings.Contains(frames[i], `"model":"fast"`) || !strings.Contains(frames[i], `"usage":null`) ||
			!strings.Contains(frames[i], `"output":[]`) || evs[i].Response.Status != pplx.StatusInProgress {
			t.Errorf("got frame %s, want an in_progress response of model fast with null usage", frames[i])
		}
	}
	// The internal search call: a function_call named search_web at index 0, never done.
	var fc struct {
		Item functionCallItem `json:"item"`
	}
	json.Unmarshal([]byte(frames[2]), &fc)
	if fc.Item.Type != "function_call" || fc.Item.Name != "search_web" || evs[2].OutputIndex != 0 || !strings.HasPrefix(fc.Item.CallID, "call_") {
		t.Errorf("got frame %s, want a search_web function_call at index 0", frames[2])
	}
	results := AgentSearchResults("stream me", 0)
	if it := evs[5].Item; it == nil || it.Type != pplx.ItemSearchResults || evs[5].OutputIndex != 0 || !slices.Equal(it.Results, results) {
		t.Errorf("got %+v, want the search_results item done at index 0", evs[5])
	}
	if !strings.Contains(frames[6], `"content":null`) || evs[6].OutputIndex != 1 || evs[6].Item.Type != pplx.ItemMessage {
		t.Errorf("got frame %s, want the message added at index 1 with null content", frames[6])
	}
	want := AgentContent("openai/gpt-6-luna", "stream me", len(results))
	var text strings.Builder
	msgID := evs[6].Item.ID
	for _, e := range evs[len(head) : len(evs)-len(tail)] {
		if e.ItemID != msgID || e.OutputIndex != 1 || e.ContentIndex != 0 {
			t.Errorf("got delta %+v, want item %s index 1 part 0", e, msgID)
		}
		text.WriteString(e.Delta)
	}
	done := evs[len(evs)-3]
	if text.String() != want || done.Text != want || evs[len(evs)-2].Item.Content[0].Text != want {
		t.Errorf("got deltas %q, done %q, want %q", text.String(), done.Text, want)
	}
	// Sequence numbers increase, with gaps.
	gaps := 0
	for i := 1; i < len(evs); i++ {
		d := evs[i].SequenceNumber - evs[i-1].SequenceNumber
		if d < 1 {
			t.Fatalf("got sequence %d after %d", evs[i].SequenceNumber, evs[i-1].SequenceNumber)
		}
		if d > 1 {
			gaps++
		}
	}
	if evs[0].SequenceNumber != 0 || gaps == 0 {
		t.Errorf("got %d gaps starting at %d, want gaps from 0", gaps, evs[0].SequenceNumber)
	}
	// The terminal response: the real model, usage, and no function_call.
	fin := evs[len(evs)-1].Response
	if fin.Model != "openai/gpt-6-luna" || fin.Status != pplx.StatusCompleted || fin.Usage == nil || fin.Usage.Cost.ToolCallsCost != 0.001 {
		t.Errorf("got terminal %+v, want completed by openai/gpt-6-luna with usage", fin)
	}
	if len(fin.Output) != 2 || fin.Output[0].Type != pplx.ItemSearchResults || fin.Output[1].Content[0].Text != want ||
		strings.Contains(frames[len(frames)-1], "function_call") {
		t.Errorf("got output %+v, want search_results and the message only", fin.Output)
	}
	if st := s.Stats(); st.Agent.Answered != 1 || st.Agent.CostUSD != fin.Usage.Cost.TotalCost {
		t.Errorf("got stats %+v, want one answer billed %g", st.Agent, fin.Usage.Cost.TotalCost)
	}
}

func TestAgentStreamTerminals(t *testing.T) {
	tests := []struct {
		name     string
		agent    AgentConfig
		body     string
		terminal string
		check    func(t *testing.T, last pplx.AgentEvent, frame string)
	}{
		{"completed without search", AgentConfig{}, `{"model":"perplexity/sonar","input":"q","stream":true}`, pplx.EventCompleted,
			func(t *testing.T, last pplx.AgentEvent, frame string) {
				if len(last.Response.Output) != 1 || last.Response.Output[0].Content[0].Text != AgentContent("perplexity/sonar", "q", 0) {
					t.Errorf("got output %+v, want the message only", last.Response.Output)
				}
			}},
		{"no usage", AgentConfig{}, `{"model":"perplexity/sonar","input":"q","stream":true,"stream_options":{"include_usage":false}}`, pplx.EventCompleted,
			func(t *testing.T, last pplx.AgentEvent, frame string) {
				if !strings.Contains(frame, `"usage":null`) {
					t.Errorf("got %s, want null usage", frame)
				}
			}},
		{"incomplete", AgentConfig{}, `{"model":"perplexity/sonar","input":"q","stream":true,"max_output_tokens":16}`, pplx.EventIncomplete,
			func(t *testing.T, last pplx.AgentEvent, frame string) {
				r := last.Response
				if r.Status != pplx.StatusIncomplete || r.IncompleteDetails.Reason != "max_output_tokens" || r.Usage.OutputTokens != 16 {
					t.Errorf("got %+v, want incomplete for max_output_tokens with 16 output tokens", r)
				}
			}},
		{"failed", AgentConfig{PFailed: 1}, `{"preset":"fast","input":"q","stream":true}`, pplx.EventFailed,
			func(t *testing.T, last pplx.AgentEvent, frame string) {
				if last.Error == nil || last.Error.Message == "" || last.Response.Status != pplx.StatusFailed || last.Response.Usage != nil {
					t.Errorf("got %s, want an error and a failed response without usage", frame)
				}
			}},
		{"bare error", AgentConfig{PError: 1}, `{"preset":"fast","input":"q","stream":true}`, pplx.EventError,
			func(t *testing.T, last pplx.AgentEvent, frame string) {
				if last.Error == nil || last.Error.Message == "" || !strings.Contains(frame, `"code":null`) || last.Response != nil {
					t.Errorf("got %s, want a bare error with a null code", frame)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Key: testKey, Agent: tc.agent})
			r := post(t, start(t, s), pplx.AgentPath, tc.body)
			frames := sseFrames(t, r.body)
			evs := agentEventsOf(t, r.body)
			for i, e := range evs {
				if pplx.TerminalEvent(e.Type) != (i == len(evs)-1) {
					t.Fatalf("got %s at %d of %d events, want exactly one terminal event, last", e.Type, i, len(evs))
				}
			}
			last := evs[len(evs)-1]
			if last.Type != tc.terminal {
				t.Fatalf("got terminal %s, want %s", last.Type, tc.terminal)
			}
			tc.check(t, last, frames[len(frames)-1])
			status := tc.terminal
			if last.Response != nil {
				status = last.Response.Status
			}
			if st := s.Stats(); st.Agent.Status[status] != 1 || st.Agent.Answered != 1 {
				t.Errorf("got stats %+v, want one %s", st.Agent, status)
			}
		})
	}
}

func TestAgentStreamFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, body []byte, readErr error)
	}{
		{"cut", Faults{PCut: 1}, func(t *testing.T, body []byte, readErr error) {
			if readErr == nil {
				t.Errorf("got a clean end, want a read error")
			}
			if !strings.HasPrefix(string(body), "data: {") || strings.Contains(string(body), pplx.EventCompleted) {
				t.Errorf("got %q, want some frames and no terminal event", body)
			}
		}},
		{"garbage", Faults{PGarbage: 1}, func(t *testing.T, body []byte, readErr error) {
			frames := sseFrames(t, body)
			if readErr != nil || len(frames) != 3 || json.Valid([]byte(frames[2])) {
				t.Errorf("got %q, %v; want two events and a frame that is not JSON", frames, readErr)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Key: testKey, Faults: tc.faults})
			ts := start(t, s)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+pplx.AgentPath, strings.NewReader(`{"preset":"fast","input":"q","stream":true}`))
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			ts.Close()
			tc.check(t, body, readErr)
			if fp := AgentFingerprint(`{"preset":"fast","input":"q"}`); s.AgentAnswered(fp) != 0 {
				t.Errorf("got AgentAnswered %d, want 0", s.AgentAnswered(fp))
			}
			st := s.Stats()
			if st.Agent.Answered != 0 || st.Cuts+st.Garbage != 1 {
				t.Errorf("got stats %+v, want one fault, nothing answered", st)
			}
			if tc.name != "cut" {
				if st.Agent.CostMicroUSD != 0 || st.Agent.CutRuns != 0 {
					t.Errorf("got stats %+v, want nothing billed", st)
				}
				return
			}
			// Cut after response.created: the run went on, is billed once
			// and GET shows it completed.
			var created struct {
				Response struct{ ID string } `json:"response"`
			}
			if err := json.Unmarshal([]byte(sseFrames(t, body)[0]), &created); err != nil || created.Response.ID == "" {
				t.Fatalf("first frame %q: %v", sseFrames(t, body)[0], err)
			}
			billed := st.Agent.CostMicroUSD
			if st.Agent.CutRuns != 1 || billed == 0 {
				t.Errorf("got stats %+v, want one cut run, billed", st)
			}
			// (Every response here is cut, polls too: read what GET shows.)
			s.mu.Lock()
			kept := s.agent.runs[created.Response.ID]
			var snap []byte
			if kept != nil {
				snap = marshal(s.runSnapshot(kept, s.now()))
			}
			s.mu.Unlock()
			var run pplx.AgentResponse
			if err := json.Unmarshal(snap, &run); err != nil || run.Status != pplx.StatusCompleted || run.Text() == "" {
				t.Errorf("GET of the cut run shows %s (%v), want it completed with its answer", snap, err)
			}
			if st := s.Stats(); st.Agent.CostMicroUSD != billed {
				t.Errorf("billed %d after the GET, want %d: once", st.Agent.CostMicroUSD, billed)
			}
		})
	}
}

func TestAgentJSONFaults(t *testing.T) {
	for _, f := range []Faults{{PCut: 1}, {PGarbage: 1}, {P500: 1}} {
		s := New(Config{Key: testKey, Faults: f})
		ts := start(t, s)
		r, _ := tryDo(ts, http.MethodPost, pplx.AgentPath, testKey, sonarSearch("q"))
		if json.Valid(r.body) && r.status == 200 {
			t.Errorf("%+v: got a whole answer %s", f, r.body)
		}
		ts.Close()
		if st := s.Stats(); st.Agent.Answered != 0 || st.Agent.CostMicroUSD != 0 {
			t.Errorf("%+v: got stats %+v, want nothing answered or billed", f, st.Agent)
		}
	}
}

func TestAgentTailOpen(t *testing.T) {
	const tail = time.Hour
	s := New(Config{Key: testKey, Agent: AgentConfig{TailOpen: tail}})
	holding := make(chan time.Duration, 1)
	s.sleep = func(ctx context.Context, d time.Duration) error {
		if d == 0 {
			return nil
		}
		holding <- d
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, pplx.AgentPath, strings.NewReader(`{"preset":"fast","input":"q","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(rec, req)
		close(done)
	}()
	if d := <-holding; d != tail {
		t.Fatalf("got a wait of %v, want the tail of %v", d, tail)
	}
	select {
	case <-done:
		t.Fatal("the handler returned while holding the connection open")
	default:
	}
	if st := s.Stats(); st.Agent.Answered != 1 || st.InFlight != 0 {
		t.Errorf("got stats %+v, want the answer counted and nothing in flight during the tail", st)
	}
	cancel()
	<-done
	evs := agentEventsOf(t, rec.Body.Bytes())
	if last := evs[len(evs)-1]; last.Type != pplx.EventCompleted {
		t.Errorf("got last event %s, want the terminal event last, then nothing", last.Type)
	}
}

// A stream sends its headers, response.created and response.in_progress
// at once and the rest after the latency; a client that goes away in
// between leaves the run going: billed once, and GET shows it completed.
func TestAgentStreamCreatedAtOnce(t *testing.T) {
	s := New(Config{Key: testKey, Latency: time.Hour})
	ts := start(t, s)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+pplx.AgentPath, strings.NewReader(`{"preset":"fast","input":"q","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := ts.Client().Do(req) // an hour's latency: the headers came first
	if err != nil {
		t.Fatal(err)
	}
	sr := pplx.NewSSEReader(resp.Body)
	var id string
	for _, want := range []string{pplx.EventCreated, pplx.EventInProgress} {
		ev, err := sr.Next()
		if err != nil {
			t.Fatalf("reading %s: %v", want, err)
		}
		e := decode[pplx.AgentEvent](t, ev.Data)
		if e.Type != want || e.Response == nil || e.Response.ID == "" {
			t.Fatalf("got event %s, want %s with the run", ev.Data, want)
		}
		id = e.Response.ID
	}
	resp.Body.Close() // the client goes away while the answer is written
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Agent.CutRuns == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats().Agent; st.CutRuns != 1 || st.StreamRuns != 1 || st.Answered != 0 {
		t.Fatalf("after the client left: %+v; want one streamed run, kept, none answered", st)
	}
	// (A GET waits the hour's latency too: read what it would show.)
	s.mu.Lock()
	var snap []byte
	if kept := s.agent.runs[id]; kept != nil {
		snap = marshal(s.runSnapshot(kept, s.now()))
	}
	s.mu.Unlock()
	var run pplx.AgentResponse
	if err := json.Unmarshal(snap, &run); err != nil || run.Status != pplx.StatusCompleted || run.Text() == "" {
		t.Errorf("GET %s would show %s (%v), want the run completed with its answer", id, snap, err)
	}
	if s.Stats().Agent.CostMicroUSD == 0 {
		t.Error("the run that went on was not billed")
	}
}
