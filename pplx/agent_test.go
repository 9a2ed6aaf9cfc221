package pplx_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// agentClock is a settable clock for the simulator's background runs.
type agentClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *agentClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *agentClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// runErr returns err as a *RunError, failing the test if it is not one.
func runErr(t *testing.T, err error) *pplx.RunError {
	t.Helper()
	re, ok := errors.AsType[*pplx.RunError](err)
	if !ok {
		t.Fatalf("got error %v (%T), want a *pplx.RunError", err, err)
	}
	return re
}

func TestAgentSim(t *testing.T) {
	const input = "What is the current stable version of Python?"
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "stream"}[stream]
		t.Run(name, func(t *testing.T) {
			c, _ := newSim(t, sim.Config{})
			req := &pplx.AgentRequest{Model: "perplexity/sonar", Input: input, Stream: stream,
				Tools: []pplx.AgentTool{{Type: pplx.ToolWebSearch}}, ToolChoice: &pplx.ToolChoice{Type: pplx.ToolWebSearch}}
			resp, meta, err := c.Agent(t.Context(), req)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			results := sim.AgentSearchResults(input, 0)
			if want := sim.AgentContent("perplexity/sonar", input, len(results)); resp.Text() != want {
				t.Errorf("got text %q\nwant %q", resp.Text(), want)
			}
			if resp.Status != pplx.StatusCompleted || resp.Model != "perplexity/sonar" || meta.RequestID != resp.ID ||
				!strings.HasPrefix(resp.ID, "resp_") || meta.StatusCode != 200 {
				t.Errorf("got status %q model %q id %q, meta %+v", resp.Status, resp.Model, resp.ID, meta)
			}
			cites := resp.Citations()
			if len(cites) != len(results) {
				t.Fatalf("got %d citations, want %d", len(cites), len(results))
			}
			for i, s := range resp.Sources() {
				if s.ID != results[i].ID || cites[i] != results[i].URL {
					t.Errorf("source %d: got %d %s, want %d %s", i, s.ID, cites[i], results[i].ID, results[i].URL)
				}
			}
			if resp.Usage == nil || resp.Usage.Cost == nil || resp.Usage.Cost.TotalCost <= 0 {
				t.Errorf("got usage %+v, want a billed cost", resp.Usage)
			}
		})
	}
}

func TestAgentSimStatuses(t *testing.T) {
	tests := []struct {
		name   string
		cfg    sim.AgentConfig
		stream bool
		status string
		class  pplx.Class
		text   bool // partial text kept
	}{
		{"failed", sim.AgentConfig{PFailed: 1}, false, pplx.StatusFailed, pplx.ClassRetry, false},
		{"failed streamed", sim.AgentConfig{PFailed: 1}, true, pplx.StatusFailed, pplx.ClassRetry, false},
		{"error event", sim.AgentConfig{PError: 1}, true, pplx.StatusFailed, pplx.ClassRetry, false},
		{"incomplete", sim.AgentConfig{PIncomplete: 1}, false, pplx.StatusIncomplete, pplx.ClassRow, true},
		{"incomplete streamed", sim.AgentConfig{PIncomplete: 1}, true, pplx.StatusIncomplete, pplx.ClassRow, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newSim(t, sim.Config{Agent: tc.cfg})
			resp, meta, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: tc.stream})
			re := runErr(t, err)
			if resp == nil || resp.Status != tc.status || re.Status != tc.status || re.ID != resp.ID || meta.RequestID != resp.ID {
				t.Fatalf("got %+v, %+v, meta %+v; want the %s run and its RunError", resp, re, meta, tc.status)
			}
			if got := pplx.Classify(err); got != tc.class {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tc.class)
			}
			if pplx.Retryable(err) != (tc.class == pplx.ClassRetry) {
				t.Errorf("Retryable(%v) disagrees with class %v", err, tc.class)
			}
			if (resp.Text() != "") != tc.text {
				t.Errorf("got text %q, want text: %v", resp.Text(), tc.text)
			}
			switch tc.status {
			case pplx.StatusIncomplete:
				if re.Reason != "max_output_tokens" || !strings.HasSuffix(err.Error(), " incomplete: max_output_tokens") {
					t.Errorf("got %q, want the reason max_output_tokens", err)
				}
			case pplx.StatusFailed:
				if re.Message == "" || !strings.Contains(err.Error(), " failed: ") {
					t.Errorf("got %q, want the failure's message", err)
				}
			}
			noKey(t, err)
		})
	}
}

func TestAgentSimStreamFaults(t *testing.T) {
	for _, f := range []struct {
		name   string
		faults sim.Faults
	}{{"cut", sim.Faults{PCut: 1}}, {"garbage", sim.Faults{PGarbage: 1}}} {
		t.Run(f.name, func(t *testing.T) {
			c, _ := newSim(t, sim.Config{Faults: f.faults})
			resp, meta, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: true})
			if !errors.Is(err, pplx.ErrTruncatedStream) || resp != nil {
				t.Fatalf("got %v, %v, want a truncated stream and no response", resp, err)
			}
			if !pplx.Retryable(err) || pplx.Classify(err) != pplx.ClassRetry {
				t.Errorf("a cut stream must be retryable: %v", err)
			}
			if !strings.HasPrefix(meta.RequestID, "resp_") {
				t.Errorf("got request id %q, want the run's id from response.created", meta.RequestID)
			}
		})
	}
}

func TestAgentSimTailOpen(t *testing.T) {
	// The simulator holds the connection open for an hour after the
	// terminal event: Agent must return without waiting for it.
	c, _ := newSim(t, sim.Config{Agent: sim.AgentConfig{TailOpen: time.Hour}})
	resp, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: true})
	if err != nil || resp.Status != pplx.StatusCompleted || resp.Text() == "" {
		t.Fatalf("got %+v, %v, want a completed answer", resp, err)
	}
}

func TestAgentSimBackground(t *testing.T) {
	clock := &agentClock{t: simClock()}
	c, s := newSim(t, sim.Config{Now: clock.Now, Agent: sim.AgentConfig{BackgroundDuration: 10 * time.Second}})
	req := &pplx.AgentRequest{Preset: "low", Input: "slow question", Background: true}
	sub, meta, err := c.Agent(t.Context(), req)
	if err != nil || sub.Status != pplx.StatusQueued || meta.RequestID != sub.ID {
		t.Fatalf("submit: got %+v, %v, want a queued run", sub, err)
	}
	var statuses []string
	var last *pplx.AgentResponse
	for range 20 {
		r, meta, err := c.AgentRun(t.Context(), sub.ID)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if meta.RequestID != sub.ID {
			t.Errorf("poll: got request id %q, want %q", meta.RequestID, sub.ID)
		}
		if len(statuses) == 0 || statuses[len(statuses)-1] != r.Status {
			statuses = append(statuses, r.Status)
		}
		last = r
		if pplx.TerminalStatus(r.Status) {
			break
		}
		clock.Advance(time.Second)
	}
	if got := strings.Join(statuses, ","); got != "queued,in_progress,completed" {
		t.Errorf("got statuses %s, want queued,in_progress,completed", got)
	}
	if last.Text() == "" || len(last.Citations()) == 0 || last.Usage == nil {
		t.Errorf("got %+v, want the answer with sources and usage", last)
	}
	if n := s.AgentRuns(sim.AgentFingerprint(req)); n != 1 {
		t.Errorf("the server created %d runs, want 1", n)
	}
}

func TestAgentSimCancel(t *testing.T) {
	clock := &agentClock{t: simClock()}
	c, _ := newSim(t, sim.Config{Now: clock.Now})
	sub, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "high", Input: "q", Background: true})
	if err != nil {
		t.Fatal(err)
	}
	cr, meta, err := c.CancelAgent(t.Context(), sub.ID)
	if err != nil || cr.ResponseID != sub.ID || cr.Status != "cancelling" || meta.RequestID != sub.ID {
		t.Fatalf("cancel: got %+v, %+v, %v", cr, meta, err)
	}
	r, _, err := c.AgentRun(t.Context(), sub.ID)
	re := runErr(t, err)
	if r == nil || r.Status != pplx.StatusCancelled || re.Status != pplx.StatusCancelled || pplx.Classify(err) != pplx.ClassRow || pplx.Retryable(err) {
		t.Errorf("poll after cancel: got %+v, %v (class %v)", r, err, pplx.Classify(err))
	}
	_, _, err = c.CancelAgent(t.Context(), sub.ID)
	ae, ok := errors.AsType[*pplx.APIError](err)
	if !ok || ae.StatusCode != 400 || pplx.Classify(err) != pplx.ClassRow {
		t.Errorf("cancel of a cancelled run: got %v, want a 400 of ClassRow", err)
	}
}

func TestAgentSimErrors(t *testing.T) {
	c, _ := newSim(t, sim.Config{})
	missing := "resp_00000000-0000-4000-8000-000000000000"
	tests := []struct {
		name   string
		call   func() (*pplx.Meta, error)
		status int
		typ    string
	}{
		{"unknown run", func() (*pplx.Meta, error) { _, m, err := c.AgentRun(t.Context(), missing); return m, err }, 404, "not_found"},
		{"malformed id", func() (*pplx.Meta, error) { _, m, err := c.AgentRun(t.Context(), "resp_x"); return m, err }, 400, "invalid_request"},
		{"cancel unknown", func() (*pplx.Meta, error) { _, m, err := c.CancelAgent(t.Context(), missing); return m, err }, 400, "invalid_request"},
		{"empty input", func() (*pplx.Meta, error) {
			_, m, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast"})
			return m, err
		}, 400, "invalid_request"},
		{"sonar model", func() (*pplx.Meta, error) {
			_, m, err := c.Agent(t.Context(), &pplx.AgentRequest{Model: "sonar-pro", Input: "q", Stream: true})
			return m, err
		}, 400, "invalid_model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			meta, err := tc.call()
			ae, ok := errors.AsType[*pplx.APIError](err)
			if !ok || ae.StatusCode != tc.status || ae.Type != tc.typ || meta.StatusCode != tc.status {
				t.Fatalf("got %v, want an APIError %d %s", err, tc.status, tc.typ)
			}
			if pplx.Classify(err) != pplx.ClassRow || pplx.RetiredChat(err) {
				t.Errorf("Classify(%v) = %v, want ClassRow", err, pplx.Classify(err))
			}
			noKey(t, err)
		})
	}
	for _, id := range []string{""} {
		if _, _, err := c.AgentRun(t.Context(), id); err == nil {
			t.Errorf("AgentRun(%q): got nil error", id)
		}
		if _, _, err := c.CancelAgent(t.Context(), id); err == nil {
			t.Errorf("CancelAgent(%q): got nil error", id)
		}
	}
	if _, _, err := c.Agent(t.Context(), nil); err == nil {
		t.Error("Agent(nil): got nil error")
	}
}

func TestRetiredChatSim(t *testing.T) {
	c, _ := newSim(t, sim.Config{RetireChat: true})
	_, _, err := c.Chat(t.Context(), &pplx.ChatRequest{Model: "sonar", Messages: []pplx.Message{{Role: "user", Content: "q"}}})
	if !pplx.RetiredChat(err) || pplx.Classify(err) != pplx.ClassJob || pplx.Retryable(err) {
		t.Errorf("got %v (class %v), want the retirement 403 of ClassJob", err, pplx.Classify(err))
	}
}

// fixture returns a file of testdata/agent.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/agent/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAgentCaptures(t *testing.T) {
	// Recorded and documented run objects, served as they are.
	tests := []struct {
		file   string
		status string
		class  pplx.Class // 0: no error
		text   string
		cites  int
	}{
		{"completed.json", pplx.StatusCompleted, 0, "Python 3.14.8 is the current stable release, released September 30, 2026.[1][3]", 3},
		{"background_queued.json", pplx.StatusQueued, 0, "", 0},
		{"background_in_progress.json", pplx.StatusInProgress, 0, "", 2},
		{"background_completed.json", pplx.StatusCompleted, 0, "Python 3.14.8 is current.[1][4] Its schedule is PEP 745.[4]", 5},
		{"background_cancelled.json", pplx.StatusCancelled, pplx.ClassRow, "", 2},
		{"incomplete.json", pplx.StatusIncomplete, pplx.ClassRow, "", 0},
		{"failed.json", pplx.StatusFailed, pplx.ClassRetry, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := fixture(t, tc.file)
			c := fake(t, "", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Request-Id", "hdr-id")
				io.WriteString(w, body)
			})
			for _, call := range []struct {
				name string
				do   func() (*pplx.AgentResponse, *pplx.Meta, error)
			}{
				{"agent", func() (*pplx.AgentResponse, *pplx.Meta, error) {
					return c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q"})
				}},
				{"poll", func() (*pplx.AgentResponse, *pplx.Meta, error) {
					return c.AgentRun(t.Context(), "resp_8eead91b-1612-4fc7-b7d2-c15e903da865")
				}},
			} {
				resp, meta, err := call.do()
				if resp == nil || resp.Status != tc.status || meta.RequestID != resp.ID || !strings.HasPrefix(resp.ID, "resp_") {
					t.Fatalf("%s: got %+v, %+v, %v", call.name, resp, meta, err)
				}
				if tc.class == 0 && err != nil || tc.class != 0 && pplx.Classify(runErr(t, err)) != tc.class {
					t.Errorf("%s: got error %v (class %v), want class %v", call.name, err, pplx.Classify(err), tc.class)
				}
				if resp.Text() != tc.text || len(resp.Citations()) != tc.cites {
					t.Errorf("%s: got text %q and %d citations, want %q and %d", call.name, resp.Text(), len(resp.Citations()), tc.text, tc.cites)
				}
			}
		})
	}
}

func TestAgentRunErrorText(t *testing.T) {
	tests := map[string]string{
		"failed.json":               "pplx: run resp_c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f failed: internal_error: the model provider returned an error",
		"incomplete.json":           "pplx: run resp_0b6e1a7c-33d4-4f8e-a1c2-9d7e5f3b2a61 incomplete: max_output_tokens",
		"background_cancelled.json": "pplx: run resp_3f1c9b52-8a7e-4d0b-9c61-5e2a7d4f8b10 cancelled",
	}
	for file, want := range tests {
		body := fixture(t, file)
		c := fake(t, "", reply(200, "application/json", body))
		_, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q"})
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v\nwant %s", file, err, want)
		}
	}
}

func TestAgentStreamCaptureTailOpen(t *testing.T) {
	// The recorded event sequence, then the connection stays open until
	// the test ends: Agent returns after the terminal event.
	body := fixture(t, "stream_fast.sse")
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Request-Id", "5619e0d2-4c1b-4b8a-a0f3-7d2c9e1b6a48")
		io.WriteString(w, body)
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := pplx.New(srv.URL, testKey, pplx.Options{HTTPClient: srv.Client()})
	resp, meta, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	const want = "The official TypeScript website is **typescriptlang.org**; it hosts the handbook, the playground and downloads.[7]"
	if resp.Text() != want || resp.Model != "openai/gpt-6-luna" || meta.RequestID != "resp_5619e0d2-4c1b-4b8a-a0f3-7d2c9e1b6a48" {
		t.Errorf("got %q by %q, id %q", resp.Text(), resp.Model, meta.RequestID)
	}
}

func TestAgentStreamAnsweredWithJSON(t *testing.T) {
	c := fake(t, "", reply(200, "application/json", fixture(t, "completed.json")))
	resp, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: true})
	if err != nil || resp.Status != pplx.StatusCompleted || resp.Text() == "" {
		t.Errorf("got %+v, %v, want the JSON answer", resp, err)
	}
}

func TestAgentNoStatus(t *testing.T) {
	c := fake(t, "", reply(200, "application/json", `{"id":"resp_x","output":[]}`))
	_, meta, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q"})
	if _, ok := errors.AsType[*pplx.DecodeError](err); !ok || !pplx.Retryable(err) {
		t.Errorf("got %v, want a retryable DecodeError", err)
	}
	if meta.StatusCode != 200 {
		t.Errorf("got meta %+v", meta)
	}
}

func TestAgentRequestShape(t *testing.T) {
	type seen struct{ method, path, ctype, accept, body string }
	var got []seen
	c := fake(t, "/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Accept"), string(b)})
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/cancel") {
			io.WriteString(w, `{"response_id":"resp_a","status":"cancelling"}`)
			return
		}
		io.WriteString(w, `{"id":"resp_a","status":"queued","output":[]}`)
	})
	temp := 0.0
	if _, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "high", Input: "q", Background: true, Temperature: &temp}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AgentRun(t.Context(), "resp_a/b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CancelAgent(t.Context(), "resp_a"); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"POST", "/v1/agent", "application/json", "application/json", `{"preset":"high","input":"q","temperature":0,"background":true}`},
		{"GET", "/v1/agent/resp_a%2Fb", "", "application/json", ""},
		{"POST", "/v1/agent/resp_a/cancel", "", "application/json", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests %q, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestAgentKeyRedaction(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		stream bool
	}{
		{"error body", 400, "application/json", `{"error":{"message":"invalid request body: key ` + testKey + `","type":"invalid_request","code":400}}`, false},
		{"failed run", 200, "application/json", `{"id":"resp_k","status":"failed","error":{"code":"` + testKey + `","message":"bad key ` + testKey + `","type":"` + testKey + `"},"output":[]}`, false},
		{"incomplete run", 200, "application/json", `{"id":"resp_k","status":"incomplete","incomplete_details":{"reason":"` + testKey + `"},"output":[]}`, false},
		{"error event", 200, "text/event-stream", "data: {\"type\":\"error\",\"error\":{\"message\":\"for " + testKey + "\"}}\n\n", true},
		{"bad terminal event", 200, "text/event-stream", "data: {\"type\":\"response.completed\",\"response\":{\"output\":\"" + testKey + "\"}}\n\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, "", reply(tc.status, tc.ctype, tc.body))
			_, _, err := c.Agent(t.Context(), &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: tc.stream})
			if err == nil {
				t.Fatal("got nil error")
			}
			noKey(t, err)
			if re, ok := errors.AsType[*pplx.RunError](err); ok {
				if strings.Contains(re.Code+re.Type+re.Message+re.Reason, testKey) {
					t.Errorf("the API key is in the RunError: %+v", re)
				}
			}
		})
	}
}

func TestAgentContextCancelMidStream(t *testing.T) {
	created := strings.SplitAfter(fixture(t, "stream_fast.sse"), "\n\n")[0]
	written := make(chan struct{})
	c := fake(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, created)
		http.NewResponseController(w).Flush()
		close(written)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-written
		cancel()
	}()
	resp, _, err := c.Agent(ctx, &pplx.AgentRequest{Preset: "fast", Input: "q", Stream: true})
	if !errors.Is(err, context.Canceled) || resp != nil || pplx.Retryable(err) {
		t.Errorf("got %v, %v, want a non-retryable context.Canceled", resp, err)
	}
}
