package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// sonarSearch is the default agent job's request body for input q.
func sonarSearch(q string) string {
	return `{"model":"perplexity/sonar","input":` + strconv.Quote(q) +
		`,"tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"}}`
}

// errorOf decodes an error envelope.
func errorOf(t *testing.T, r response) pplx.ErrorDetail {
	t.Helper()
	return decode[pplx.ErrorBody](t, r.body).Error
}

func TestAgentStrict400s(t *testing.T) {
	long := `"models":["perplexity/sonar","openai/gpt-6-luna","openai/gpt-6-sol","perplexity/sonar","openai/gpt-6-luna","openai/gpt-6-sol"]`
	tests := []struct {
		name, body      string
		typ, msg, param string
	}{
		{"unknown field", `{"model":"perplexity/sonar","input":"q","disable_search":true}`,
			"invalid_request", `invalid request body: json: unknown field "disable_search"`, "disable_search"},
		{"OpenAI text.format", `{"preset":"fast","input":"q","text":{"format":{"type":"json_schema"}}}`,
			"invalid_request", `invalid request body: json: unknown field "text"`, "text"},
		{"unknown tool field", `{"preset":"fast","input":"q","tools":[{"type":"web_search","num_search_results":3}]}`,
			"invalid_request", `invalid request body: json: unknown field "num_search_results"`, "num_search_results"},
		{"unknown filter", `{"preset":"fast","input":"q","tools":[{"type":"web_search","filters":{"search_context_size":"low"}}]}`,
			"invalid_request", `invalid request body: json: unknown field "search_context_size"`, "search_context_size"},
		{"unknown input item field", `{"preset":"fast","input":[{"role":"user","content":"q","name":"x","weight":1}]}`,
			"invalid_request", `invalid request body: json: unknown field "weight"`, "weight"},
		{"empty input", `{"preset":"fast","input":""}`, "invalid_request", "validation failed: input cannot be empty", ""},
		{"blank input", `{"preset":"fast","input":"  "}`, "invalid_request", "validation failed: input cannot be empty", ""},
		{"empty array", `{"preset":"fast","input":[]}`, "invalid_request", "validation failed: input array cannot be empty", ""},
		{"number input", `{"preset":"fast","input":7}`, "invalid_request", "validation failed: input array cannot be empty", ""},
		{"object input", `{"preset":"fast","input":{"text":"q"}}`, "invalid_request", "validation failed: input array cannot be empty", ""},
		{"missing input", `{"preset":"fast"}`, "invalid_request", "validation failed: input array cannot be empty", ""},
		{"no user text", `{"preset":"fast","input":[{"role":"system","content":"be brief"}]}`,
			"invalid_request", "validation failed: input cannot be empty", ""},
		{"no model", `{"input":"q"}`, "invalid_request", "validation failed: one of model, models or preset is required", ""},
		{"bare sonar", `{"model":"sonar","input":"q"}`, "invalid_model", `validation failed: model "sonar" is not supported`, ""},
		{"bare sonar-pro", `{"model":"sonar-pro","input":"q"}`, "invalid_model", `validation failed: model "sonar-pro" is not supported`, ""},
		{"auto", `{"model":"auto","input":"q"}`, "invalid_model", `validation failed: model "auto" is not supported`, ""},
		{"unknown in models", `{"models":["perplexity/sonar","sonar-reasoning"],"input":"q"}`,
			"invalid_model", `validation failed: model "sonar-reasoning" is not supported`, ""},
		{"unknown preset", `{"preset":"sonar-pro","input":"q"}`, "invalid_request", `validation failed: preset "sonar-pro" is not supported`, ""},
		{"too many models", `{` + long + `,"input":"q"}`, "invalid_request", "validation failed: models accepts at most 5 entries, got 6", ""},
		{"anthropic without max_output_tokens", `{"model":"anthropic/claude-opus-5-5","input":"q"}`,
			"invalid_request", "validation failed: max_output_tokens is required when using Anthropic models", ""},
		{"anthropic in models", `{"models":["perplexity/sonar","anthropic/claude-opus-5-5"],"input":"q"}`,
			"invalid_request", "validation failed: max_output_tokens is required when using Anthropic models", ""},
		{"bad recency", `{"preset":"fast","input":"q","tools":[{"type":"web_search","filters":{"search_recency_filter":"decade"}}]}`,
			"invalid_request", "validation failed: tools[0]: search recency filter must be one of: hour day week month year", ""},
		{"recency with dates", `{"preset":"fast","input":"q","tools":[{"type":"fetch_url"},{"type":"web_search","filters":{"search_recency_filter":"week","search_after_date_filter":"01/02/2026"}}]}`,
			"invalid_request", "validation failed: tools[1]: search recency filter cannot be combined with search date filters", ""},
		{"json_schema missing", `{"preset":"fast","input":"q","response_format":{"type":"json_schema"}}`,
			"invalid_request", `validation failed: response_format.json_schema is required when type is "json_schema"`, ""},
		{"json_schema array root", `{"preset":"fast","input":"q","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array"}}}}`,
			"invalid_parameter", "json_schema.schema must have a root type of 'object' (got a schema whose root is not an object)", ""},
		{"json_schema no schema", `{"preset":"fast","input":"q","response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`,
			"invalid_parameter", "json_schema.schema must have a root type of 'object' (got a schema whose root is not an object)", ""},
		{"max_steps 0", `{"preset":"fast","input":"q","max_steps":0}`, "invalid_request", "validation failed: max steps must be at least 1", ""},
		{"max_output_tokens 0", `{"preset":"fast","input":"q","max_output_tokens":0}`, "invalid_request", "validation failed: max output tokens must be at least 1", ""},
		{"bad effort", `{"preset":"fast","input":"q","reasoning":{"effort":"huge"}}`,
			"invalid_request", "validation failed: reasoning effort must be one of: minimal low medium high xhigh max", ""},
		{"reserved function", `{"preset":"fast","input":"q","tools":[{"type":"function","name":"search_web"}]}`,
			"invalid_request", `validation failed: tools[0]: function name "search_web" is reserved`, ""},
		{"max_results 51", `{"preset":"fast","input":"q","tools":[{"type":"web_search","max_results":51}]}`,
			"invalid_request", "validation failed: tools[0]: max results must be between 1 and 50", ""},
		{"bad previous_response_id", `{"preset":"fast","input":"q","previous_response_id":"nope"}`, "invalid_request", "invalid request", ""},
		{"bad tool_choice", `{"preset":"fast","input":"q","tool_choice":"always"}`,
			"invalid_request", "validation failed: tool_choice must be one of: none auto required", ""},
		{"wrong type", `{"preset":"fast","input":"q","max_output_tokens":"many"}`,
			"invalid_request", "invalid request body: json: cannot unmarshal string into Go struct field agentBody.max_output_tokens of type int64", ""},
		{"trailing data", `{"preset":"fast","input":"q"} {}`, "invalid_request", "invalid request body: invalid character after top-level value", ""},
		{"not JSON", `hello`, "invalid_request", "invalid request body: invalid character 'h' looking for beginning of value", ""},
	}
	clock := newFakeClock()
	s := New(Config{Key: testKey, RPS: 1, Burst: 5, Headers: HeadersEpoch, Now: clock.Now})
	ts := start(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, ts, pplx.AgentPath, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("got status %d, want 400 (body %s)", r.status, r.body)
			}
			e := errorOf(t, r)
			if e.Type != tc.typ || e.Message != tc.msg || e.Param != tc.param || e.Code != 400 {
				t.Errorf("got error %+v, want type %q message %q param %q code 400", e, tc.typ, tc.msg, tc.param)
			}
			if got := r.header.Get("x-ratelimit-remaining"); got != "5" {
				t.Errorf("got remaining %q, want 5: a 400 takes no token", got)
			}
		})
	}
	// The exact bytes of the real API's unknown-field 400 (a real capture).
	r := post(t, ts, pplx.ResponsesPath, `{"preset":"fast","input":"q","X":1}`)
	want := `{"error":{"message":"invalid request body: json: unknown field \"X\"","type":"invalid_request","code":400,"param":"X"}}`
	if string(r.body) != want {
		t.Errorf("got body %s, want %s", r.body, want)
	}
}

func TestAgentAccepts(t *testing.T) {
	all := `{"input":[{"type":"message","role":"system","content":"be brief"},{"role":"user","content":[{"type":"input_text","text":"first"},{"type":"input_image","image_url":"https://x.invalid/a.png"}]},
		{"type":"function_call","call_id":"c1","name":"lookup","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"42"}],
		"model":"perplexity/sonar","models":["openai/gpt-6-luna","perplexity/sonar","openai/gpt-6-sol","anthropic/claude-opus-5-5","perplexity/sonar"],
		"preset":"fast","instructions":"","tools":[{"type":"web_search","filters":{"search_domain_filter":["go.dev","-example.com"],"search_after_date_filter":"01/02/2026",
		"search_before_date_filter":"03/04/2026","last_updated_after_filter":"01/01/2026","last_updated_before_filter":"05/05/2026"},"search_context_size":"high",
		"max_results":7,"max_tokens":100,"max_tokens_per_page":50,"user_location":{"country":"US","region":"CA","city":"SF","latitude":37.7,"longitude":-122.4}},
		{"type":"fetch_url","max_urls":3},{"type":"function","name":"lookup","description":"d","parameters":{"type":"object"},"strict":true},
		{"type":"mcp","server_label":"m","server_url":"https://mcp.invalid","authorization":"a","headers":{"h":"v"},"allowed_tools":["t"]}],
		"tool_choice":{"type":"web_search"},"max_output_tokens":4000,"max_steps":101,"max_tool_calls":5,"reasoning":{"effort":"xhigh"},
		"response_format":{"type":"text"},
		"stream":false,"stream_options":{"include_usage":true},"background":false,"store":true,"previous_response_id":"resp_8eead91b-1612-4fc7-b7d2-c15e903da865",
		"temperature":0.2,"top_p":0.9,"parallel_tool_calls":false,"language_preference":"en","metadata":{"row":"1"},"truncation":"auto","skills":[]}`
	tests := []struct {
		name, body, model, input string
		results                  int // search results, 0 for none
		fee                      float64
	}{
		{"every field", all, "openai/gpt-6-luna", "first", 7, 0.001},
		{"old preset name", `{"preset":"pro-search","input":"q"}`, "openai/gpt-6-luna", "q", DefaultAgentResults, 0.0025},
		{"fast preset", `{"preset":"fast","input":"q"}`, "openai/gpt-6-luna", "q", DefaultAgentResults, 0.001},
		{"high preset", `{"preset":"advanced-deep-research","input":"q"}`, "openai/gpt-6-sol", "q", DefaultAgentResults, 0.0025},
		{"xhigh preset", `{"preset":"xhigh","input":"q"}`, "anthropic/claude-opus-5-5", "q", DefaultAgentResults, 0.0025},
		{"preset pinned to a model", `{"preset":"fast","model":"perplexity/sonar","input":"q"}`, "perplexity/sonar", "q", DefaultAgentResults, 0.001},
		{"model without tools", `{"model":"perplexity/sonar","input":"q"}`, "perplexity/sonar", "q", 0, 0},
		{"web_search tool", sonarSearch("q"), "perplexity/sonar", "q", DefaultAgentResults, 0.0025},
		{"max_results 1", `{"model":"perplexity/sonar","input":"q","tools":[{"type":"web_search","max_results":1}]}`, "perplexity/sonar", "q", 1, 0.0025},
		{"preset with fetch_url only", `{"preset":"low","input":"q","tools":[{"type":"fetch_url"}]}`, "openai/gpt-6-luna", "q", 0, 0},
		{"tool_choice none", `{"preset":"fast","input":"q","tool_choice":"none"}`, "openai/gpt-6-luna", "q", 0, 0},
		{"max_tool_calls 0", `{"preset":"fast","input":"q","max_tool_calls":0}`, "openai/gpt-6-luna", "q", 0, 0},
		{"anthropic with max_output_tokens", `{"model":"anthropic/claude-opus-5-5","input":"q","max_output_tokens":1000}`, "anthropic/claude-opus-5-5", "q", 0, 0},
		{"untyped message array", `{"preset":"fast","input":[{"role":"user","content":"older"},{"role":"assistant","content":"a"},{"role":"user","content":"newer"}]}`,
			"openai/gpt-6-luna", "newer", DefaultAgentResults, 0.001},
	}
	s := New(Config{Key: testKey})
	ts := start(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{pplx.AgentPath, pplx.ResponsesPath} {
				r := post(t, ts, path, tc.body)
				if r.status != http.StatusOK {
					t.Fatalf("%s: got status %d, want 200 (body %s)", path, r.status, r.body)
				}
				checkAnswer(t, r, tc.model, tc.input, tc.results, tc.fee)
			}
		})
	}
}

// checkAnswer checks a completed non-streamed answer.
func checkAnswer(t *testing.T, r response, model, input string, results int, fee float64) pplx.AgentResponse {
	t.Helper()
	resp := decode[pplx.AgentResponse](t, r.body)
	if resp.Status != pplx.StatusCompleted || resp.Object != "response" || resp.Model != model || resp.Error != nil {
		t.Errorf("got status %q object %q model %q error %v, want a completed response from %s", resp.Status, resp.Object, resp.Model, resp.Error, model)
	}
	if id := strings.TrimPrefix(resp.ID, "resp_"); id == resp.ID || !uuidShape.MatchString(id) || r.header.Get("x-request-id") != id {
		t.Errorf("got id %q and x-request-id %q, want resp_<uuid> and the uuid", resp.ID, r.header.Get("x-request-id"))
	}
	want := AgentContent(model, input, results)
	var items []pplx.OutputItem
	if results > 0 {
		if len(resp.Output) != 2 || resp.Output[0].Type != pplx.ItemSearchResults {
			t.Fatalf("got output %+v, want a search_results item then a message", resp.Output)
		}
		if got := resp.Output[0].Results; !slices.Equal(got, AgentSearchResults(input, results)) {
			t.Errorf("got results %+v, want AgentSearchResults", got)
		}
		items = resp.Output[1:]
	} else {
		items = resp.Output
	}
	if len(items) != 1 || items[0].Type != pplx.ItemMessage || len(items[0].Content) != 1 {
		t.Fatalf("got items %+v, want one message with one part", items)
	}
	if p := items[0].Content[0]; p.Type != "output_text" || p.Text != want || !strings.HasPrefix(items[0].ID, "msg_") {
		t.Errorf("got part %+v of %s, want output_text %q", p, items[0].ID, want)
	}
	u := resp.Usage
	if u == nil || u.Cost == nil {
		t.Fatalf("got usage %+v, want usage with cost", u)
	}
	if u.TotalTokens != u.InputTokens+u.OutputTokens || u.OutputTokens != words(want) {
		t.Errorf("got usage %+v, want total = input + output and %d output tokens", u, words(want))
	}
	c := u.Cost
	if math.Abs(c.InputCost+c.OutputCost+c.ToolCallsCost-c.TotalCost) > 1e-12 || c.ToolCallsCost != fee || c.Currency != "USD" {
		t.Errorf("got cost %+v, want parts summing to the total and a tool fee of %g", c, fee)
	}
	if d, ok := u.ToolCallsDetails["search_web"]; (fee > 0) != ok || d.CostUSD != fee || (ok && d.Invocation != 1) {
		t.Errorf("got tool_calls_details %+v, want search_web at %g", u.ToolCallsDetails, fee)
	}
	return resp
}

func TestAgentContent(t *testing.T) {
	a := AgentContent("perplexity/sonar", "What is a token bucket?", 5)
	if !strings.HasPrefix(a, "Answer from perplexity/sonar to: What is a token bucket? [1][2]") {
		t.Errorf("got %q, want it to name the model and input and cite [1][2]", a)
	}
	if a != AgentContent("perplexity/sonar", "What is a token bucket?", 5) {
		t.Error("AgentContent is not deterministic")
	}
	for _, other := range []string{
		AgentContent("openai/gpt-6-luna", "What is a token bucket?", 5),
		AgentContent("perplexity/sonar", "What is a leaky bucket?", 5),
	} {
		if other == a {
			t.Errorf("got the same answer %q for a different model or input", a)
		}
	}
	if got := AgentContent("m", "x", 1); !strings.Contains(got, "x [1].") || strings.Contains(got, "[2]") {
		t.Errorf("got %q, want only [1] with one result", got)
	}
	if got := AgentContent("m", "x", 0); strings.Contains(got, "[") {
		t.Errorf("got %q, want no marker without search", got)
	}
	r := AgentSearchResults("q", 3)
	if len(r) != 3 || r[0].ID != 1 || r[2].ID != 3 || r[0].Source != "web" || !strings.HasPrefix(r[0].URL, "https://sim.invalid/") {
		t.Errorf("got %+v, want three web results with ids 1..3", r)
	}
	if len(AgentSearchResults("q", 0)) != DefaultAgentResults {
		t.Errorf("got %d default results, want %d", len(AgentSearchResults("q", 0)), DefaultAgentResults)
	}
	if c, m, ok := AgentPresetModel("deep-research"); c != "medium" || m != "openai/gpt-6-luna" || !ok {
		t.Errorf("got %q %q %v, want medium served by openai/gpt-6-luna", c, m, ok)
	}
	if _, _, ok := AgentPresetModel("sonar"); ok {
		t.Error("got a preset for sonar")
	}
	if !slices.Contains(AgentModels(), "perplexity/sonar") {
		t.Errorf("got models %v, want perplexity/sonar among them", AgentModels())
	}
}

func TestAgentDeterministic(t *testing.T) {
	s := New(Config{Key: testKey})
	ts := start(t, s)
	text := func(q string) (string, []pplx.AgentSearchResult) {
		resp := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, sonarSearch(q)).body)
		return resp.Output[1].Content[0].Text, resp.Output[0].Results
	}
	a1, r1 := text("alpha question")
	a2, r2 := text("alpha question")
	b, _ := text("beta question")
	if a1 != a2 || !slices.Equal(r1, r2) {
		t.Errorf("got %q then %q for the same input, want the same answer", a1, a2)
	}
	if a1 == b || !strings.Contains(b, "beta question") {
		t.Errorf("got %q for another input, want an answer naming it", b)
	}
	for body, want := range map[string]int{
		sonarSearch("alpha question"):                                     2,
		`{"model":"perplexity/sonar","tools":[],"input":"beta question"}`: 1, // tools do not count
		sonarSearch("gamma question"):                                     0,
		"not json":                                                        0,
	} {
		if got := s.AgentAnswered(AgentFingerprint(body)); got != want {
			t.Errorf("got AgentAnswered %d for %s, want %d", got, body, want)
		}
	}
}

func TestAgentStatuses(t *testing.T) {
	tests := []struct {
		name       string
		agent      AgentConfig
		body       string
		status     string
		reason     string
		billed     bool
		wantPrefix bool // the text is a strict prefix of AgentContent
	}{
		{"completed", AgentConfig{}, sonarSearch("q"), pplx.StatusCompleted, "", true, false},
		{"max_output_tokens", AgentConfig{}, `{"model":"perplexity/sonar","input":"q","max_output_tokens":3}`, pplx.StatusIncomplete, "max_output_tokens", true, true},
		{"configured incomplete", AgentConfig{PIncomplete: 1}, sonarSearch("q"), pplx.StatusIncomplete, "max_output_tokens", true, true},
		{"failed", AgentConfig{PFailed: 1}, sonarSearch("q"), pplx.StatusFailed, "", false, false},
		{"error fate, not streamed", AgentConfig{PError: 1}, sonarSearch("q"), pplx.StatusFailed, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Key: testKey, Agent: tc.agent})
			ts := start(t, s)
			r := post(t, ts, pplx.AgentPath, tc.body)
			if r.status != http.StatusOK {
				t.Fatalf("got status %d, want 200: failures are 200s (body %s)", r.status, r.body)
			}
			resp := decode[pplx.AgentResponse](t, r.body)
			if resp.Status != tc.status {
				t.Fatalf("got status %q, want %q", resp.Status, tc.status)
			}
			if got := resp.IncompleteDetails; (got == nil) != (tc.reason == "") || (got != nil && got.Reason != tc.reason) {
				t.Errorf("got incomplete_details %+v, want reason %q", got, tc.reason)
			}
			st := s.Stats()
			var cost float64
			switch tc.status {
			case pplx.StatusFailed:
				if resp.Error == nil || resp.Error.Code == "" || resp.Error.Message == "" || resp.Usage != nil || len(resp.Output) != 0 {
					t.Errorf("got error %+v usage %+v output %v, want an error object, null usage and no output", resp.Error, resp.Usage, resp.Output)
				}
				if !strings.Contains(string(r.body), `"usage":null`) {
					t.Errorf("got body %s, want an explicit null usage", r.body)
				}
			default:
				msg := resp.Output[len(resp.Output)-1]
				text := msg.Content[0].Text
				full := AgentContent("perplexity/sonar", "q", len(resp.Output[0].Results))
				if tc.wantPrefix != (text != full && strings.HasPrefix(full, text)) || text == "" {
					t.Errorf("got text %q, want a partial answer %v of %q", text, tc.wantPrefix, full)
				}
				if tc.wantPrefix && (msg.Status != pplx.StatusIncomplete || resp.Usage.OutputTokens != words(text)) {
					t.Errorf("got message status %q and %d output tokens, want incomplete with the partial text's count", msg.Status, resp.Usage.OutputTokens)
				}
				if tc.reason == "max_output_tokens" && tc.agent.PIncomplete == 0 && words(text) != MinOutputTokens {
					t.Errorf("got %d words, want max_output_tokens floored to %d", words(text), MinOutputTokens)
				}
				cost = resp.Usage.Cost.TotalCost
			}
			if tc.billed != (cost > 0) || st.Agent.CostUSD != cost || st.Agent.Status[tc.status] != 1 || st.Answered != 1 {
				t.Errorf("got stats %+v, want one %s answer billed %g", st.Agent, tc.status, cost)
			}
		})
	}
}

func TestAgentFatesDeterministic(t *testing.T) {
	run := func(order []string) map[string][]string {
		s := New(Config{Key: testKey, Seed: 7, Agent: AgentConfig{PFailed: 0.3, PIncomplete: 0.3}})
		ts := start(t, s)
		out := map[string][]string{}
		for _, q := range order {
			resp := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, sonarSearch(q)).body)
			out[q] = append(out[q], resp.Status)
		}
		return out
	}
	var order []string
	for i := range 12 {
		order = append(order, "q"+strconv.Itoa(i%4))
	}
	a := run(order)
	slices.Reverse(order)
	b := run(order)
	seen := map[string]bool{}
	for q, st := range a {
		if !slices.Equal(st, b[q]) {
			t.Errorf("%s: got %v then %v in another order, want the n-th attempt to meet the same fate", q, st, b[q])
		}
		for _, v := range st {
			seen[v] = true
		}
	}
	if len(seen) < 2 {
		t.Errorf("got statuses %v, want a mix", seen)
	}
}

func TestRetireChat(t *testing.T) {
	want := `{"error":{"message":"Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar. Migrate here: https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview","type":"chat_completions_not_available","code":403}}`
	tests := []struct {
		name   string
		retire bool
		path   string
		status int
	}{
		{"retired chat", true, pplx.ChatPath, 403},
		{"retired sonar", true, "/v1/sonar", 403},
		{"search still served", true, pplx.SearchPath, 200},
		{"default chat", false, pplx.ChatPath, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Key: testKey, RPS: 1, Burst: 1, RetireChat: tc.retire})
			ts := start(t, s)
			body := chatBody(t, "sonar", false, "q")
			if tc.path == pplx.SearchPath {
				body = `{"query":"q"}`
			}
			r := post(t, ts, tc.path, body)
			if r.status != tc.status {
				t.Fatalf("got status %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if tc.status == 403 {
				if string(r.body) != want {
					t.Errorf("got body %s, want %s", r.body, want)
				}
				if r2 := post(t, ts, tc.path, body); r2.status != 403 {
					t.Errorf("got status %d on the second request, want 403 again (no token taken)", r2.status)
				}
			}
		})
	}
	s := New(Config{Key: testKey, RetireChat: true})
	if r := do(t, start(t, s), http.MethodPost, pplx.ChatPath, "", "{}"); r.status != 401 {
		t.Errorf("got status %d without a key, want 401 before the 403", r.status)
	}
}

func TestAgentRouting(t *testing.T) {
	ts := start(t, New(Config{Key: testKey}))
	id := "resp_8eead91b-1612-4fc7-b7d2-c15e903da865"
	tests := []struct {
		name, method, path, key string
		code                    int
		typ, msg, allow         string
	}{
		{"GET create", http.MethodGet, pplx.AgentPath, testKey, 405, "method_not_allowed", "Method Not Allowed", "POST"},
		{"POST run", http.MethodPost, pplx.AgentPath + "/" + id, testKey, 405, "method_not_allowed", "Method Not Allowed", "GET"},
		{"GET cancel", http.MethodGet, pplx.ResponsesPath + "/" + id + "/cancel", testKey, 405, "method_not_allowed", "Method Not Allowed", "POST"},
		{"deep path", http.MethodGet, pplx.AgentPath + "/a/b/c", testKey, 404, "not_found", "Not Found", ""},
		{"empty id", http.MethodGet, pplx.AgentPath + "/", testKey, 404, "not_found", "Not Found", ""},
		{"no key", http.MethodPost, pplx.AgentPath, "", 401, "invalid_api_key", "Invalid API key provided. Ensure your API key is correct and active.", ""},
		{"wrong key", http.MethodGet, pplx.AgentPath + "/" + id, "other", 401, "invalid_api_key", "Invalid API key provided. Ensure your API key is correct and active.", ""},
		{"unknown run", http.MethodGet, pplx.AgentPath + "/" + id, testKey, 404, "not_found", "resource not found", ""},
		{"unknown run alias", http.MethodGet, pplx.ResponsesPath + "/" + id, testKey, 404, "not_found", "resource not found", ""},
		{"malformed id", http.MethodGet, pplx.AgentPath + "/resp_123", testKey, 400, "invalid_request", "invalid response id", ""},
		{"malformed cancel", http.MethodPost, pplx.AgentPath + "/123/cancel", testKey, 400, "invalid_request", "invalid response id", ""},
		{"cancel unknown", http.MethodPost, pplx.AgentPath + "/" + id + "/cancel", testKey, 400, "invalid_request", "the run is already terminal and cannot be cancelled", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, tc.method, tc.path, tc.key, "")
			if r.status != tc.code {
				t.Fatalf("got status %d, want %d (body %s)", r.status, tc.code, r.body)
			}
			e := errorOf(t, r)
			if e.Type != tc.typ || e.Message != tc.msg || int(e.Code) != tc.code {
				t.Errorf("got error %+v, want %s %q", e, tc.typ, tc.msg)
			}
			if r.header.Get("Allow") != tc.allow {
				t.Errorf("got Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
		})
	}
	// The real API's bytes (a real capture).
	r := do(t, ts, http.MethodPost, pplx.AgentPath+"/"+id+"/cancel", testKey, "")
	if want := `{"error":{"message":"the run is already terminal and cannot be cancelled","type":"invalid_request","code":400}}`; string(r.body) != want {
		t.Errorf("got %s, want %s", r.body, want)
	}
	r = do(t, ts, http.MethodGet, pplx.AgentPath+"/"+id, testKey, "")
	if want := `{"error":{"message":"resource not found","type":"not_found","code":404}}`; string(r.body) != want {
		t.Errorf("got %s, want %s", r.body, want)
	}
}

func TestAgentRateLimit(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Key: testKey, RPS: 1, Burst: 2, Headers: HeadersEpoch, Now: clock.Now, Agent: AgentConfig{BackgroundDuration: time.Minute}})
	ts := start(t, s)
	// Models share one bucket: the limit is per organization.
	r1 := post(t, ts, pplx.AgentPath, `{"model":"perplexity/sonar","input":"a","background":true}`)
	h := r1.header
	reset := strconv.FormatInt(clock.Now().Unix()+1, 10)
	if h.Get("x-ratelimit-limit") != "2" || h.Get("x-ratelimit-remaining") != "1" || h.Get("x-ratelimit-used") != "1" || h.Get("x-ratelimit-reset") != reset {
		t.Errorf("got headers %v, want limit 2, remaining 1, used 1, reset %s (epoch)", h, reset)
	}
	id := decode[pplx.AgentResponse](t, r1.body).ID
	r2 := post(t, ts, pplx.ResponsesPath, `{"preset":"high","input":"b"}`)
	if r2.status != 200 || r2.header.Get("x-ratelimit-used") != "2" {
		t.Fatalf("got status %d used %q, want 200 and 2", r2.status, r2.header.Get("x-ratelimit-used"))
	}
	r3 := post(t, ts, pplx.AgentPath, `{"model":"openai/gpt-6-luna","input":"c"}`)
	if r3.status != 429 || r3.header.Get("Retry-After") == "" || errorOf(t, r3).Type != "request_rate_limit_exceeded" {
		t.Errorf("got %d %v, want 429 with Retry-After on the shared bucket", r3.status, r3.header)
	}
	// Polls and cancels take no token.
	for range 3 {
		if r := do(t, ts, http.MethodGet, pplx.AgentPath+"/"+id, testKey, ""); r.status != 200 || r.header.Get("x-ratelimit-remaining") != "0" {
			t.Fatalf("got poll status %d remaining %q, want 200 and 0", r.status, r.header.Get("x-ratelimit-remaining"))
		}
	}
	if r := do(t, ts, http.MethodPost, pplx.AgentPath+"/"+id+"/cancel", testKey, ""); r.status != 200 {
		t.Errorf("got cancel status %d, want 200 with an empty bucket", r.status)
	}
	if st := s.Stats(); st.RateLimited != 1 || st.Agent.Polls != 3 || st.Agent.Cancels != 1 || st.Agent.Requests != 7 {
		t.Errorf("got stats %+v, want one 429, 3 polls, 1 cancel, 7 agent requests", st)
	}
}

func TestAgentBilledCost(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Now: clock.Now, Agent: AgentConfig{BackgroundDuration: time.Second}})
	ts := start(t, s)
	keys := []string{"key-one-000", "key-two-000"}
	want := map[string]float64{}
	var total float64
	add := func(key string, c float64) { want[KeyID(key)] += c; total += c }
	var runs []string
	for i, body := range []string{
		sonarSearch("one"),
		`{"preset":"fast","input":"two","stream":true}`,
		`{"model":"perplexity/sonar","input":"three","max_output_tokens":16}`,
		`{"preset":"low","input":"four","background":true}`,
		`{"model":"openai/gpt-6-sol","input":"five"}`,
	} {
		key := keys[i%2]
		r := do(t, ts, http.MethodPost, pplx.AgentPath, key, body)
		if r.status != 200 {
			t.Fatalf("got status %d, want 200", r.status)
		}
		switch {
		case strings.Contains(body, `"stream":true`):
			evs := agentEventsOf(t, r.body)
			add(key, evs[len(evs)-1].Response.Usage.Cost.TotalCost)
		case strings.Contains(body, `"background":true`):
			runs = append(runs, key, decode[pplx.AgentResponse](t, r.body).ID)
		default:
			add(key, decode[pplx.AgentResponse](t, r.body).Usage.Cost.TotalCost)
		}
	}
	clock.Advance(2 * time.Second)
	for i := 0; i < len(runs); i += 2 {
		resp := decode[pplx.AgentResponse](t, do(t, ts, http.MethodGet, pplx.AgentPath+"/"+runs[i+1], runs[i], "").body)
		add(runs[i], resp.Usage.Cost.TotalCost)
	}
	st := s.Stats()
	if math.Abs(st.Agent.CostUSD-total) > 1e-12 || math.Abs(float64(st.Agent.CostMicroUSD)/1e6-total) > 1e-12 || math.Abs(st.CostUSD-total) > 1e-12 {
		t.Errorf("got billed %g (%d micro-USD, all %g), want the sum of total_cost %g", st.Agent.CostUSD, st.Agent.CostMicroUSD, st.CostUSD, total)
	}
	for k, v := range want {
		if math.Abs(st.Agent.CostByKey[k]-v) > 1e-12 {
			t.Errorf("got %g billed to %s, want %g", st.Agent.CostByKey[k], k, v)
		}
	}
	// The same over HTTP, without any key in it.
	r := do(t, ts, http.MethodGet, StatsPath, "", "")
	rep := decode[StatsReport](t, r.body)
	if rep.Agent.CostMicroUSD != st.Agent.CostMicroUSD || len(rep.Agent.CostByKey) != 2 || rep.Agent.Status[pplx.StatusCompleted] != 4 {
		t.Errorf("got report %+v, want the agent stats", rep.Agent)
	}
	for _, k := range keys {
		if strings.Contains(string(r.body), k) {
			t.Errorf("the stats report shows the API key %q", k)
		}
	}
}

func TestAgentJSONContent(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{"capture", `{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":2000}},"required":["city","population"]}`,
			`{"city":"city of France","population":2000}`},
		{"enum, const, bool, null", `{"type":"object","properties":{"a":{"enum":["x","y"]},"b":{"const":3},"c":{"type":["null","string"]},"d":{"type":"null"}}}`,
			`{"a":"x","b":3,"c":"c of France","d":null}`},
		{"array and nesting", `{"type":"object","properties":{"tags":{"type":"array","minItems":2,"items":{"type":"string"}},"o":{"properties":{"k":{"anyOf":[{"type":"string"}]}}}}}`,
			`{"o":{"k":"k of France"},"tags":["tags[0] of France","tags[1] of France"]}`},
		{"not JSON", `{`, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AgentJSONContent([]byte(tc.schema), "France"); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	var v map[string]any
	got := AgentJSONContent([]byte(`{"type":"object","properties":{"n":{"type":"number"},"b":{"type":"boolean"}}}`), "France")
	if err := json.Unmarshal([]byte(got), &v); err != nil || len(v) != 2 {
		t.Errorf("got %s (%v), want an object with a number and a boolean", got, err)
	}

	ts := start(t, New(Config{Key: testKey}))
	schema := `{"type":"object","properties":{"city":{"type":"string"}}}`
	r := post(t, ts, pplx.AgentPath, `{"preset":"fast","input":"France","response_format":{"type":"json_schema","json_schema":{"name":"c","description":"d","strict":true,"schema":`+schema+`}}}`)
	resp := decode[pplx.AgentResponse](t, r.body)
	if text := resp.Output[len(resp.Output)-1].Content[0].Text; text != AgentJSONContent([]byte(schema), "France") {
		t.Errorf("got text %q, want the JSON answer", text)
	}
	if !strings.Contains(string(r.body), `"text":{"format":{"type":"text"}}`) {
		t.Errorf("got %s, want text.format echoed as text (observed quirk)", r.body)
	}
}

func TestAgentInvalidJSONContent(t *testing.T) {
	schema := []byte(`{"type":"object","properties":{"a":{"type":"string"},"d":{"type":"string","format":"date"},"t":{"type":"string","format":"date-time"}},"required":["a"]}`)
	var nonJSON, wrongType int
	for i := range 40 {
		input := fmt.Sprintf("input %d", i)
		var valid map[string]any
		if err := json.Unmarshal([]byte(AgentJSONContent(schema, input)), &valid); err != nil {
			t.Fatalf("valid answer: %v", err)
		}
		if _, err := time.Parse(time.DateOnly, valid["d"].(string)); err != nil {
			t.Errorf("format date: %v", err)
		}
		if _, err := time.Parse(time.RFC3339, valid["t"].(string)); err != nil {
			t.Errorf("format date-time: %v", err)
		}
		bad := AgentInvalidJSONContent(schema, input)
		var v map[string]any
		switch err := json.Unmarshal([]byte(bad), &v); {
		case err != nil:
			nonJSON++
		case v["a"] == float64(42) && v["d"] == valid["d"]:
			wrongType++
		default:
			t.Errorf("invalid answer %s is neither non-JSON nor the valid one with a wrong type for a", bad)
		}
	}
	if nonJSON == 0 || wrongType == 0 {
		t.Errorf("%d non-JSON and %d wrong-type answers in 40: want both kinds", nonJSON, wrongType)
	}

	ts := start(t, New(Config{Key: testKey, Agent: AgentConfig{PInvalid: 1}}))
	body := `{"model":"perplexity/sonar","input":"France","response_format":{"type":"json_schema","json_schema":{"schema":` + string(schema) + `}}}`
	resp := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, body).body)
	if resp.Status != pplx.StatusCompleted || resp.Text() != AgentInvalidJSONContent(schema, "France") {
		t.Errorf("with PInvalid 1: status %s text %q, want the invalid answer", resp.Status, resp.Text())
	}
	plain := decode[pplx.AgentResponse](t, post(t, ts, pplx.AgentPath, `{"model":"perplexity/sonar","input":"France"}`).body)
	if plain.Text() != AgentContent("perplexity/sonar", "France", 0) {
		t.Errorf("PInvalid changed an answer without a schema: %q", plain.Text())
	}
}
