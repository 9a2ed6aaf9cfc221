package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// bgServer serves runs of 10 s on a fake clock.
func bgServer(t *testing.T, cfg AgentConfig) (*Server, *httptest.Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.BackgroundDuration = 10 * time.Second
	s := New(Config{Key: testKey, Now: clock.Now, Agent: cfg})
	return s, start(t, s), clock
}

func poll(t *testing.T, ts *httptest.Server, path, id string) (pplx.AgentResponse, string) {
	t.Helper()
	r := do(t, ts, http.MethodGet, path+"/"+id, testKey, "")
	if r.status != 200 {
		t.Fatalf("GET %s: got status %d, want 200 (body %s)", id, r.status, r.body)
	}
	return decode[pplx.AgentResponse](t, r.body), string(r.body)
}

const bgBody = `{"preset":"low","input":"slow question","background":true}`

func TestAgentBackground(t *testing.T) {
	s, ts, clock := bgServer(t, AgentConfig{})
	r := post(t, ts, pplx.AgentPath, bgBody)
	sub := decode[pplx.AgentResponse](t, r.body)
	if r.status != 200 || sub.Status != pplx.StatusQueued || sub.Model != "low" || !sub.Background || len(sub.Output) != 0 ||
		!strings.Contains(string(r.body), `"usage":null`) || !strings.Contains(string(r.body), `"completed_at":null`) ||
		!strings.Contains(string(r.body), `"tools":[]`) {
		t.Fatalf("got %d %s, want a queued run of preset low with no output, usage or tools", r.status, r.body)
	}
	id := sub.ID
	want := AgentContent("openai/gpt-6-luna", "slow question", DefaultAgentResults)
	steps := []struct {
		at      time.Duration // since submit
		path    string
		status  string
		model   string
		outputs int
	}{
		{0, pplx.AgentPath, pplx.StatusQueued, "low", 0},
		{2 * time.Second, pplx.ResponsesPath, pplx.StatusInProgress, "low", 0},
		{6 * time.Second, pplx.AgentPath, pplx.StatusInProgress, "low", 1}, // partial output: the search results
		{10 * time.Second, pplx.AgentPath, pplx.StatusCompleted, "openai/gpt-6-luna", 2},
		{time.Hour, pplx.ResponsesPath, pplx.StatusCompleted, "openai/gpt-6-luna", 2},
	}
	start := clock.Now()
	for _, st := range steps {
		clock.Advance(start.Add(st.at).Sub(clock.Now()))
		resp, raw := poll(t, ts, st.path, id)
		if resp.ID != id || resp.Status != st.status || resp.Model != st.model || len(resp.Output) != st.outputs {
			t.Fatalf("at %v: got %s, want %s by %s with %d items", st.at, raw, st.status, st.model, st.outputs)
		}
		if resp.CreatedAt != clock.Now().Unix() {
			t.Errorf("at %v: got created_at %d, want the poll time %d (observed quirk)", st.at, resp.CreatedAt, clock.Now().Unix())
		}
		if st.status != pplx.StatusCompleted {
			if !strings.Contains(raw, `"usage":null`) {
				t.Errorf("at %v: got %s, want null usage", st.at, raw)
			}
			continue
		}
		if resp.Output[1].Content[0].Text != want || resp.Usage == nil || resp.CompletedAt == nil || *resp.CompletedAt != start.Add(10*time.Second).Unix() {
			t.Errorf("at %v: got %s, want the answer, usage and completed_at at the end", st.at, raw)
		}
	}
	st := s.Stats()
	if st.Agent.Runs != 1 || st.Agent.Polls != 5 || st.Agent.PolledRuns != 1 || st.Agent.Status[pplx.StatusCompleted] != 1 || st.Agent.MaxRunsPerRequest != 1 ||
		st.Agent.Answered != 0 {
		t.Errorf("got stats %+v, want one run, 5 polls, completed once", st.Agent)
	}
	if n := s.AgentRuns(AgentFingerprint(bgBody)); n != 1 {
		t.Errorf("got AgentRuns %d, want 1", n)
	}
	again := pplx.AgentRequest{Preset: "low", Input: "slow question", Stream: true}
	if n := s.AgentRuns(AgentFingerprint(&again)); n != 1 {
		t.Errorf("got AgentRuns %d for the same row sent differently, want 1", n)
	}
	post(t, ts, pplx.AgentPath, bgBody)
	if st := s.Stats(); st.Agent.MaxRunsPerRequest != 2 || s.AgentRuns(AgentFingerprint(bgBody)) != 2 {
		t.Errorf("got max runs per request %d, want 2 after a second submit of the same row", st.Agent.MaxRunsPerRequest)
	}
}

func TestAgentBackgroundCancel(t *testing.T) {
	s, ts, clock := bgServer(t, AgentConfig{CancelDelay: 3 * time.Second})
	id := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, bgBody).body).ID
	clock.Advance(6 * time.Second)
	r := do(t, ts, http.MethodPost, pplx.AgentPath+"/"+id+"/cancel", testKey, "")
	if want := `{"response_id":"` + id + `","status":"cancelling"}`; r.status != 200 || string(r.body) != want {
		t.Fatalf("got %d %s, want 200 %s", r.status, r.body, want)
	}
	// GET never shows cancelling: in progress until the cancel lands,
	// even past the run's planned end.
	clock.Advance(2 * time.Second)
	if resp, raw := poll(t, ts, pplx.AgentPath, id); resp.Status != pplx.StatusInProgress {
		t.Errorf("got %s, want in_progress while cancelling", raw)
	}
	clock.Advance(5 * time.Second)
	resp, raw := poll(t, ts, pplx.ResponsesPath, id)
	if resp.Status != pplx.StatusCancelled || resp.Error == nil || resp.Error.Code != "cancelled" || resp.IncompleteDetails == nil ||
		resp.IncompleteDetails.Reason != "cancelled" || resp.Usage != nil || !strings.Contains(raw, `"usage":null`) || resp.Model != "low" {
		t.Errorf("got %s, want cancelled with error.code cancelled and null usage", raw)
	}
	for _, path := range []string{pplx.AgentPath, pplx.ResponsesPath} {
		r := do(t, ts, http.MethodPost, path+"/"+id+"/cancel", testKey, "")
		if r.status != 400 || errorOf(t, r).Message != "the run is already terminal and cannot be cancelled" {
			t.Errorf("got %d %s, want the terminal 400", r.status, r.body)
		}
	}
	st := s.Stats()
	if st.Agent.Cancels != 1 || st.Agent.Status[pplx.StatusCancelled] != 1 || st.Agent.CostMicroUSD != 0 {
		t.Errorf("got stats %+v, want one cancel, cancelled, nothing billed", st.Agent)
	}
}

func TestAgentBackgroundTerminalCancel(t *testing.T) {
	s, ts, clock := bgServer(t, AgentConfig{})
	id := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, bgBody).body).ID
	clock.Advance(10 * time.Second)
	r := do(t, ts, http.MethodPost, pplx.AgentPath+"/"+id+"/cancel", testKey, "")
	if r.status != 400 || errorOf(t, r).Message != "the run is already terminal and cannot be cancelled" {
		t.Errorf("got %d %s, want the terminal 400 for a completed run", r.status, r.body)
	}
	// Settled without a poll: the statistics read the clock.
	if st := s.Stats(); st.Agent.Status[pplx.StatusCompleted] != 1 || st.Agent.CostMicroUSD == 0 || st.Agent.Polls != 0 {
		t.Errorf("got stats %+v, want the run completed and billed without a poll", st.Agent)
	}
}

func TestAgentBackgroundFates(t *testing.T) {
	tests := []struct {
		name   string
		agent  AgentConfig
		body   string
		status string
		billed bool
	}{
		{"failed", AgentConfig{PFailed: 1}, bgBody, pplx.StatusFailed, false},
		{"incomplete", AgentConfig{PIncomplete: 1}, bgBody, pplx.StatusIncomplete, true},
		{"max_output_tokens", AgentConfig{}, `{"model":"perplexity/sonar","input":"q","background":true,"max_output_tokens":16}`, pplx.StatusIncomplete, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ts, clock := bgServer(t, tc.agent)
			id := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, tc.body).body).ID
			clock.Advance(10 * time.Second)
			resp, raw := poll(t, ts, pplx.AgentPath, id)
			if resp.Status != tc.status || (tc.status == pplx.StatusFailed) != (resp.Error != nil) {
				t.Fatalf("got %s, want %s", raw, tc.status)
			}
			if st := s.Stats(); (st.Agent.CostMicroUSD > 0) != tc.billed || st.Agent.Status[tc.status] != 1 {
				t.Errorf("got stats %+v, want %s billed %v", st.Agent, tc.status, tc.billed)
			}
		})
	}
}

func TestAgentBackgroundNotFound(t *testing.T) {
	s, ts, _ := bgServer(t, AgentConfig{})
	noStore := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, `{"preset":"fast","input":"q","background":true,"store":false}`).body).ID
	if r := do(t, ts, http.MethodGet, pplx.AgentPath+"/"+noStore, testKey, ""); r.status != 404 {
		t.Errorf("got %d, want 404 for a store:false run", r.status)
	}
	// A foreground answer is not kept.
	fg := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, `{"preset":"fast","input":"q"}`).body).ID
	if r := do(t, ts, http.MethodGet, pplx.AgentPath+"/"+fg, testKey, ""); r.status != 404 {
		t.Errorf("got %d, want 404 for a foreground response", r.status)
	}
	// Another key's run.
	s2 := New(Config{})
	ts2 := start(t, s2)
	id := decode[pplx.AgentResponse](t, do(t, ts2, http.MethodPost, pplx.AgentPath, "key-a", bgBody).body).ID
	if r := do(t, ts2, http.MethodGet, pplx.AgentPath+"/"+id, "key-b", ""); r.status != 404 {
		t.Errorf("got %d, want 404 for another key's run", r.status)
	}
	if r := do(t, ts2, http.MethodPost, pplx.AgentPath+"/"+id+"/cancel", "key-b", ""); r.status != 400 {
		t.Errorf("got %d, want 400 for cancelling another key's run", r.status)
	}
	_ = s
}

func TestAgentPollFaults(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Key: testKey, Now: clock.Now, Faults: Faults{P500: 0.5}, Seed: 3})
	ts := start(t, s)
	var id string
	for id == "" {
		r := post(t, ts, pplx.AgentPath, bgBody)
		if r.status == 200 {
			id = decode[pplx.AgentResponse](t, r.body).ID
		}
	}
	codes := map[int]int{}
	for range 20 {
		codes[do(t, ts, http.MethodGet, pplx.AgentPath+"/"+id, testKey, "").status]++
	}
	if codes[200] == 0 || codes[500] == 0 || codes[200]+codes[500] != 20 {
		t.Errorf("got poll statuses %v, want a mix of 200 and 500", codes)
	}
	if st := s.Stats(); st.Agent.Runs != 1 || st.Agent.Polls != int64(codes[200]) {
		t.Errorf("got stats %+v, want one run and %d polls", st.Agent, codes[200])
	}
}
