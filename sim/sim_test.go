package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSearchShape(t *testing.T) {
	ts := start(t, New(Config{Key: testKey}))
	tests := []struct {
		name       string
		queries    []string
		maxResults int
		want       int
	}{
		{"one query, default", []string{"golang generics"}, 0, 10},
		{"one query, three", []string{"golang generics"}, 3, 3},
		{"clamped to 20", []string{"rust traits"}, 50, 20},
		{"multi-query flat", []string{"first question", "second question"}, 2, 4},
		{"five queries", []string{"a", "b", "c", "d", "e"}, 1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, ts, pplx.SearchPath, searchBody(t, tc.maxResults, tc.queries...))
			if r.status != http.StatusOK {
				t.Fatalf("got status %d, want 200 (body %s)", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
			resp := decode[pplx.SearchResponse](t, r.body)
			if !uuidShape.MatchString(resp.ID) {
				t.Errorf("got id %q, want a UUID", resp.ID)
			}
			if got := r.header.Get("x-request-id"); got != resp.ID {
				t.Errorf("got x-request-id %q, want the body id %q", got, resp.ID)
			}
			if len(resp.Results) != tc.want {
				t.Fatalf("got %d results, want %d", len(resp.Results), tc.want)
			}
			if want := SearchResults(tc.queries, tc.maxResults); !slices.Equal(resp.Results, want) {
				t.Errorf("got results %+v, want SearchResults %+v", resp.Results, want)
			}
			per := tc.want / len(tc.queries)
			for i, res := range resp.Results {
				q := tc.queries[i/per]
				if want := fmt.Sprintf("%s - result %d", q, i%per+1); res.Title != want {
					t.Errorf("result %d: got title %q, want %q", i, res.Title, want)
				}
				if res.URL == "" || res.Snippet == "" || res.Date == "" || res.LastUpdated == "" {
					t.Errorf("result %d: got an empty field in %+v", i, res)
				}
			}
			// The raw JSON carries the documented field names.
			var raw struct {
				Results []map[string]any `json:"results"`
			}
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"title", "url", "snippet", "date", "last_updated"} {
				if _, ok := raw.Results[0][k]; !ok {
					t.Errorf("got result keys %v, want %q", raw.Results[0], k)
				}
			}
		})
	}
}

func TestSearchResults(t *testing.T) {
	q := "open source licences"
	h := sha256.Sum256([]byte(q))
	tag := hex.EncodeToString(h[:4])
	tests := []struct {
		name       string
		maxResults int
		want       int
	}{
		{"default", 0, DefaultMaxResults},
		{"negative means default", -3, DefaultMaxResults},
		{"one", 1, 1},
		{"twenty", 20, 20},
		{"clamped", 21, MaxMaxResults},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SearchResults(pplx.Query{q}, tc.maxResults)
			if len(got) != tc.want {
				t.Fatalf("got %d results, want %d", len(got), tc.want)
			}
			for i, r := range got {
				if want := fmt.Sprintf("https://sim.invalid/%s/%d", tag, i+1); r.URL != want {
					t.Errorf("got url %q, want %q", r.URL, want)
				}
				if !strings.Contains(r.Snippet, q) {
					t.Errorf("got snippet %q, want it to mention %q", r.Snippet, q)
				}
				d, err := time.Parse(time.DateOnly, r.Date)
				if err != nil || d.Year() != 2025 {
					t.Errorf("got date %q (%v), want a 2025-MM-DD date", r.Date, err)
				}
				u, err := time.Parse(time.DateOnly, r.LastUpdated)
				if err != nil || u.Year() != 2025 || u.Before(d) {
					t.Errorf("got last_updated %q (%v), want a 2025 date not before %q", r.LastUpdated, err, r.Date)
				}
			}
		})
	}
	t.Run("deterministic", func(t *testing.T) {
		a, b := SearchResults(pplx.Query{q}, 5), SearchResults(pplx.Query{q}, 5)
		if !slices.Equal(a, b) {
			t.Errorf("got %+v then %+v, want equal", a, b)
		}
		c := SearchResults(pplx.Query{q + "!"}, 5)
		for i := range a {
			if a[i].URL == c[i].URL || a[i].Title == c[i].Title {
				t.Errorf("result %d: got the same url or title for different queries: %+v", i, a[i])
			}
		}
	})
}

func TestChatShape(t *testing.T) {
	ts := start(t, New(Config{Key: testKey}))
	tests := []struct {
		path, model, ctx string
		fee              float64 // USD per request
		in, out          float64 // USD per million tokens
	}{
		{pplx.ChatPath, "sonar", "", 0.005, 1, 1},
		{pplx.ChatPath, "sonar", "medium", 0.008, 1, 1},
		{pplx.ChatPath, "sonar", "high", 0.012, 1, 1},
		{"/v1/sonar", "sonar-pro", "low", 0.006, 3, 15},
		{pplx.ChatPath, "sonar-pro", "high", 0.014, 3, 15},
		{pplx.ChatPath, "sonar-reasoning-pro", "", 0.006, 2, 8},
		{pplx.ChatPath, "sonar-reasoning-pro", "medium", 0.010, 2, 8},
		{pplx.ChatPath, "sonar-deep-research", "", 0, 2, 8},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.model+" "+tc.ctx, func(t *testing.T) {
			req := chatRequest(tc.model, false, "Who maintains the Go toolchain?")
			if tc.ctx != "" {
				req.WebSearchOptions = &pplx.WebSearchOptions{SearchContextSize: tc.ctx}
			}
			r := post(t, ts, tc.path, mustJSON(t, req))
			if r.status != http.StatusOK {
				t.Fatalf("got status %d, want 200 (body %s)", r.status, r.body)
			}
			resp := decode[pplx.ChatResponse](t, r.body)
			if !uuidShape.MatchString(resp.ID) || r.header.Get("x-request-id") != resp.ID {
				t.Errorf("got id %q and x-request-id %q, want the same UUID", resp.ID, r.header.Get("x-request-id"))
			}
			if resp.Object != "chat.completion" || resp.Model != tc.model || resp.Created == 0 {
				t.Errorf("got object %q model %q created %d, want chat.completion %q non-zero",
					resp.Object, resp.Model, resp.Created, tc.model)
			}
			if len(resp.Choices) != 1 {
				t.Fatalf("got %d choices, want 1", len(resp.Choices))
			}
			ch := resp.Choices[0]
			want := ChatContent(tc.model, req.Messages)
			if ch.Message.Content != want || ch.Message.Role != "assistant" || ch.FinishReason != "stop" {
				t.Errorf("got choice %+v, want assistant content %q finish stop", ch, want)
			}
			sources := ChatSearchResults(req.Messages)
			if !slices.Equal(resp.SearchResults, sources) {
				t.Errorf("got search_results %+v, want %+v", resp.SearchResults, sources)
			}
			if len(resp.Citations) != len(sources) || len(sources) < 2 || len(sources) > 3 {
				t.Fatalf("got %d citations and %d sources, want the same 2 or 3", len(resp.Citations), len(sources))
			}
			for i, c := range resp.Citations {
				if c != sources[i].URL || sources[i].Source != "web" {
					t.Errorf("citation %d: got %q (source %+v), want the source's URL and source web", i, c, sources[i])
				}
				if !strings.Contains(ch.Message.Content, fmt.Sprintf("[%d]", i+1)) {
					t.Errorf("got content %q, want marker [%d]", ch.Message.Content, i+1)
				}
			}
			u := resp.Usage
			if u == nil || u.Cost == nil {
				t.Fatalf("got usage %+v, want usage with cost", u)
			}
			wantPrompt := int64(len(strings.Fields("Be precise and concise. Who maintains the Go toolchain?")))
			wantCompletion := int64(len(strings.Fields(want)))
			if u.PromptTokens != wantPrompt || u.CompletionTokens != wantCompletion || u.TotalTokens != wantPrompt+wantCompletion {
				t.Errorf("got tokens %d/%d/%d, want %d/%d/%d", u.PromptTokens, u.CompletionTokens, u.TotalTokens,
					wantPrompt, wantCompletion, wantPrompt+wantCompletion)
			}
			wantCtx := cmp(tc.ctx, "low")
			if u.SearchContextSize != wantCtx {
				t.Errorf("got search_context_size %q, want %q", u.SearchContextSize, wantCtx)
			}
			wantIn := float64(wantPrompt) * tc.in / 1e6
			wantOut := float64(wantCompletion) * tc.out / 1e6
			c := u.Cost
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"input_tokens_cost", c.InputTokensCost, wantIn},
				{"output_tokens_cost", c.OutputTokensCost, wantOut},
				{"request_cost", c.RequestCost, tc.fee},
				{"total_cost", c.TotalCost, wantIn + wantOut + tc.fee},
			} {
				if math.Abs(f.got-f.want) > 1e-12 {
					t.Errorf("got %s %g, want %g", f.name, f.got, f.want)
				}
			}
		})
	}
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestCostAnchor checks the price table against the documented example: a
// sonar-pro call at low context with 8 input and 439 output tokens costs
// 0.006 request fee and 0.012609 in total.
func TestCostAnchor(t *testing.T) {
	in, out, fee := costMicros("sonar-pro", "low", 8, 439)
	if fee != 6000 || in+out+fee != 12609 {
		t.Errorf("got fee %d total %d micro-USD, want 6000 and 12609", fee, in+out+fee)
	}
}

func TestChatContent(t *testing.T) {
	msgs := func(s ...string) []pplx.Message {
		var m []pplx.Message
		for i, c := range s {
			role := "user"
			if i%2 == 1 {
				role = "assistant"
			}
			m = append(m, pplx.Message{Role: role, Content: c})
		}
		return m
	}
	tests := []struct {
		name       string
		model      string
		msgs       []pplx.Message
		wantPrefix string
	}{
		{"sonar", "sonar", msgs("What is SSE?"), "Answer from sonar to: What is SSE? [1][2]"},
		{"last user message", "sonar-pro", msgs("first", "reply", "second"), "Answer from sonar-pro to: second [1][2]"},
		{"reasoning", "sonar-reasoning-pro", msgs("Why?"), "<think>\nThe user asks: Why?\n</think>\nAnswer from sonar-reasoning-pro to: Why? [1][2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ChatContent(tc.model, tc.msgs)
			// The third marker is present for some messages; compare up to [2].
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("got %q, want prefix %q", got, tc.wantPrefix)
			}
			if again := ChatContent(tc.model, tc.msgs); again != got {
				t.Errorf("got %q then %q, want the same", got, again)
			}
			n := len(ChatSearchResults(tc.msgs))
			if strings.Count(got, "][") != n-1 {
				t.Errorf("got %q, want %d citation markers", got, n)
			}
		})
	}
	a := ChatContent("sonar", msgs("question one"))
	if b := ChatContent("sonar", msgs("question two")); a == b {
		t.Errorf("got %q for two messages, want different answers", a)
	}
	if b := ChatContent("sonar-pro", msgs("question one")); a == b {
		t.Errorf("got %q for two models, want different answers", a)
	}
	// Both citation counts occur.
	seen := map[int]bool{}
	for i := range 20 {
		seen[len(ChatSearchResults(msgs(fmt.Sprint("q", i))))] = true
	}
	if !seen[2] || !seen[3] {
		t.Errorf("got citation counts %v over 20 messages, want both 2 and 3", seen)
	}
}

func TestDeterministicAnswers(t *testing.T) {
	ts := start(t, New(Config{Key: testKey}))
	tests := []struct {
		name, path string
		a, b       string
		content    func([]byte) string
	}{
		{"search", pplx.SearchPath, searchBody(t, 3, "alpha query"), searchBody(t, 3, "beta query"),
			func(b []byte) string { return mustJSON(t, decode[pplx.SearchResponse](t, b).Results) }},
		{"chat", pplx.ChatPath, chatBody(t, "sonar", false, "alpha prompt"), chatBody(t, "sonar", false, "beta prompt"),
			func(b []byte) string {
				r := decode[pplx.ChatResponse](t, b)
				return r.Content() + mustJSON(t, r.SearchResults) + mustJSON(t, r.Usage)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := post(t, ts, tc.path, tc.a)
			second := post(t, ts, tc.path, tc.a)
			other := post(t, ts, tc.path, tc.b)
			if x, y := tc.content(first.body), tc.content(second.body); x != y {
				t.Errorf("got %s then %s for the same request, want the same", x, y)
			}
			if x, y := tc.content(first.body), tc.content(other.body); x == y {
				t.Errorf("got %s for different requests, want different answers", x)
			}
			if first.header.Get("x-request-id") == second.header.Get("x-request-id") {
				t.Errorf("got the same request id twice, want a new id per request")
			}
		})
	}
}

func TestStream(t *testing.T) {
	for _, model := range []string{"sonar", "sonar-pro", "sonar-reasoning-pro"} {
		t.Run(model, func(t *testing.T) {
			s := New(Config{Key: testKey})
			ts := start(t, s)
			msg := "How do server-sent events frame data?"
			plain := decode[pplx.ChatResponse](t, post(t, ts, pplx.ChatPath, chatBody(t, model, false, msg)).body)
			r := post(t, ts, pplx.ChatPath, chatBody(t, model, true, msg))
			if r.status != http.StatusOK {
				t.Fatalf("got status %d, want 200", r.status)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("got Content-Type %q, want text/event-stream", ct)
			}
			frames := sseFrames(t, r.body)
			if len(frames) < 4 {
				t.Fatalf("got %d frames, want several chunks, a done frame and [DONE]", len(frames))
			}
			if frames[len(frames)-1] != "[DONE]" {
				t.Fatalf("got last frame %q, want [DONE]", frames[len(frames)-1])
			}
			var content strings.Builder
			var lastCompletion int64
			chunks := frames[:len(frames)-2]
			for i, f := range chunks {
				c := decode[pplx.ChatResponse](t, []byte(f))
				if c.Object != "chat.completion.chunk" || c.Model != model {
					t.Errorf("chunk %d: got object %q model %q, want chat.completion.chunk %q", i, c.Object, c.Model, model)
				}
				if c.ID != r.header.Get("x-request-id") {
					t.Errorf("chunk %d: got id %q, want x-request-id %q", i, c.ID, r.header.Get("x-request-id"))
				}
				if len(c.Choices) != 1 || c.Choices[0].Delta.Content == "" || c.Choices[0].Message.Content != "" {
					t.Fatalf("chunk %d: got choices %+v, want one with text in the delta only", i, c.Choices)
				}
				content.WriteString(c.Choices[0].Delta.Content)
				if !slices.Equal(c.Citations, plain.Citations) || !slices.Equal(c.SearchResults, plain.SearchResults) {
					t.Errorf("chunk %d: got citations %v, want %v", i, c.Citations, plain.Citations)
				}
				if c.Usage == nil || c.Usage.Cost == nil || *c.Usage.Cost != (pplx.Cost{}) {
					t.Errorf("chunk %d: got usage %+v, want running usage with zero cost", i, c.Usage)
				} else if c.Usage.CompletionTokens < lastCompletion || c.Usage.PromptTokens != plain.Usage.PromptTokens {
					t.Errorf("chunk %d: got usage %+v, want running totals", i, c.Usage)
				} else {
					lastCompletion = c.Usage.CompletionTokens
				}
			}
			if got := content.String(); got != plain.Content() {
				t.Errorf("got streamed content %q, want %q", got, plain.Content())
			}
			done := decode[pplx.ChatResponse](t, []byte(frames[len(frames)-2]))
			if done.Object != "chat.completion.done" || len(done.Choices) != 1 ||
				done.Choices[0].FinishReason != "stop" || done.Choices[0].Delta.Content != "" || done.Content() != "" {
				t.Errorf("got done frame %+v, want chat.completion.done, finish stop, empty delta", done)
			}
			if done.Usage == nil || done.Usage.Cost == nil {
				t.Fatalf("got done usage %+v, want the final usage with cost", done.Usage)
			}
			pu, du := *plain.Usage, *done.Usage
			if *pu.Cost != *du.Cost || pu.PromptTokens != du.PromptTokens || pu.CompletionTokens != du.CompletionTokens {
				t.Errorf("got final usage %+v cost %+v, want %+v cost %+v", du, *du.Cost, pu, *pu.Cost)
			}
			if du.CompletionTokens != lastCompletion {
				t.Errorf("got final completion tokens %d, want the last running count %d", du.CompletionTokens, lastCompletion)
			}
			st := s.Stats()
			if want := 2 * pu.Cost.TotalCost; math.Abs(st.CostUSD-want) > 1e-12 {
				t.Errorf("got billed %g, want %g", st.CostUSD, want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const want401 = `{"error":{"message":"Invalid API key provided. Ensure your API key is correct and active.","type":"invalid_api_key","code":401}}`
	tests := []struct {
		name     string
		cfgKey   string
		header   string
		wantCode int
	}{
		{"no header", testKey, "", 401},
		{"basic scheme", testKey, "Basic " + testKey, 401},
		{"empty bearer", testKey, "Bearer ", 401},
		{"wrong key", testKey, "Bearer nope", 401},
		{"key prefix", testKey, "Bearer " + testKey[:5], 401},
		{"right key", testKey, "Bearer " + testKey, 200},
		{"lowercase scheme", testKey, "bearer " + testKey, 200},
		{"any key accepted", "", "Bearer whatever", 200},
		{"any key but not none", "", "", 401},
		{"any key but not empty", "", "Bearer  ", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, New(Config{Key: tc.cfgKey, RPS: 10}))
			req, _ := http.NewRequest(http.MethodPost, ts.URL+pplx.SearchPath, strings.NewReader(`{"query":"x"}`))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("got status %d, want %d (body %s)", resp.StatusCode, tc.wantCode, body.String())
			}
			if tc.wantCode != 401 {
				return
			}
			if body.String() != want401 {
				t.Errorf("got body %s, want %s", body.String(), want401)
			}
			if resp.Header.Get("x-ratelimit-limit") != "" {
				t.Errorf("got rate-limit headers on an unauthenticated request, want none")
			}
			for k, v := range resp.Header {
				if strings.Contains(strings.Join(v, " "), testKey) {
					t.Errorf("got the key in header %s", k)
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	ts := start(t, New(Config{Key: testKey, RPS: 5}))
	tests := []struct {
		name, path, body string
		wantCode         int
		wantType         string
	}{
		{"search malformed", pplx.SearchPath, `{"query":`, 400, "bad_request"},
		{"search empty body", pplx.SearchPath, ``, 400, "bad_request"},
		{"search query number", pplx.SearchPath, `{"query":42}`, 400, "bad_request"},
		{"search missing query", pplx.SearchPath, `{"max_results":3}`, 400, "invalid_request"},
		{"search null query", pplx.SearchPath, `{"query":null}`, 400, "invalid_request"},
		{"search empty list", pplx.SearchPath, `{"query":[]}`, 400, "invalid_request"},
		{"search empty string", pplx.SearchPath, `{"query":""}`, 400, "invalid_request"},
		{"search blank in list", pplx.SearchPath, `{"query":["a","  "]}`, 400, "invalid_request"},
		{"search six queries", pplx.SearchPath, `{"query":["a","b","c","d","e","f"]}`, 400, "invalid_request"},
		{"search negative max", pplx.SearchPath, `{"query":"a","max_results":-1}`, 400, "invalid_request"},
		{"chat malformed", pplx.ChatPath, `{"model":"sonar",`, 400, "bad_request"},
		{"chat missing model", pplx.ChatPath, `{"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request"},
		{"chat unknown model", pplx.ChatPath, `{"model":"sonar-reasoning","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_model"},
		{"chat no messages", pplx.ChatPath, `{"model":"sonar"}`, 400, "invalid_request"},
		{"chat empty messages", "/v1/sonar", `{"model":"sonar","messages":[]}`, 400, "invalid_request"},
		{"chat last not user", pplx.ChatPath, `{"model":"sonar","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`, 400, "invalid_request"},
		{"chat bad context", pplx.ChatPath, `{"model":"sonar","messages":[{"role":"user","content":"hi"}],"web_search_options":{"search_context_size":"huge"}}`, 400, "invalid_request"},
		{"chat negative max_tokens", pplx.ChatPath, `{"model":"sonar","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}`, 400, "bad_request"},
		{"search too large", pplx.SearchPath, `{"query":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "payload_too_large"},
		{"chat too large", pplx.ChatPath, strings.Repeat(" ", MaxBodyBytes+1), 413, "payload_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, ts, tc.path, tc.body)
			if r.status != tc.wantCode {
				t.Fatalf("got status %d, want %d (body %s)", r.status, tc.wantCode, r.body)
			}
			e := decode[pplx.ErrorBody](t, r.body)
			if e.Error.Type != tc.wantType || int(e.Error.Code) != tc.wantCode || e.Error.Message == "" {
				t.Errorf("got error %+v, want type %q code %d and a message", e.Error, tc.wantType, tc.wantCode)
			}
			if r.header.Get("x-ratelimit-limit") != "5" || r.header.Get("x-ratelimit-remaining") != "5" {
				t.Errorf("got rate headers limit %q remaining %q, want 5 and 5 (a refused request takes no token)",
					r.header.Get("x-ratelimit-limit"), r.header.Get("x-ratelimit-remaining"))
			}
		})
	}
}

func TestRouting(t *testing.T) {
	ts := start(t, New(Config{Key: testKey}))
	tests := []struct {
		name, method, path string
		key                string
		wantCode           int
		wantType           string
	}{
		{"unknown path", http.MethodPost, "/v1/chat/completions", testKey, 404, "not_found"},
		{"root", http.MethodGet, "/", "", 404, "not_found"},
		{"unknown path without key", http.MethodPost, "/v1/models", "", 404, "not_found"},
		{"GET search", http.MethodGet, pplx.SearchPath, testKey, 405, "method_not_allowed"},
		{"PUT chat", http.MethodPut, pplx.ChatPath, testKey, 405, "method_not_allowed"},
		{"GET sonar", http.MethodGet, "/v1/sonar", "", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, tc.method, tc.path, tc.key, "")
			if r.status != tc.wantCode {
				t.Fatalf("got status %d, want %d", r.status, tc.wantCode)
			}
			e := decode[pplx.ErrorBody](t, r.body)
			if e.Error.Type != tc.wantType || int(e.Error.Code) != tc.wantCode {
				t.Errorf("got error %+v, want type %q code %d", e.Error, tc.wantType, tc.wantCode)
			}
			if tc.wantCode == 405 && r.header.Get("Allow") != http.MethodPost {
				t.Errorf("got Allow %q, want POST", r.header.Get("Allow"))
			}
		})
	}
}

func TestIDsAndDate(t *testing.T) {
	clock := newFakeClock()
	ids := func(seed int64) []string {
		ts := start(t, New(Config{Seed: seed, Now: clock.Now}))
		var out []string
		for range 5 {
			r := post(t, ts, pplx.SearchPath, `{"query":"x"}`)
			out = append(out, r.header.Get("x-request-id"))
			if got, want := r.header.Get("Date"), clock.Now().Format(http.TimeFormat); got != want {
				t.Errorf("got Date %q, want the clock's %q", got, want)
			}
		}
		return out
	}
	a, b, c := ids(1), ids(1), ids(2)
	if !slices.Equal(a, b) {
		t.Errorf("got ids %v and %v with one seed, want the same", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("got ids %v with two seeds, want different", a)
	}
	seen := map[string]bool{}
	for _, id := range a {
		if !uuidShape.MatchString(id) || seen[id] {
			t.Errorf("got id %q, want a new UUID-shaped id", id)
		}
		seen[id] = true
	}
}

func TestStatsAndAnswered(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Key: testKey, RPS: 1, Burst: 3, Now: clock.Now})
	ts := start(t, s)
	search := pplx.SearchRequest{Query: pplx.Query{"stats query"}, MaxResults: 2}
	chat := chatRequest("sonar", false, "stats prompt")
	post(t, ts, pplx.SearchPath, mustJSON(t, search))
	post(t, ts, pplx.SearchPath, mustJSON(t, search))
	r := post(t, ts, pplx.SearchPath, mustJSON(t, search))
	if r.status != 200 {
		t.Fatalf("got status %d, want 200", r.status)
	}
	if r := post(t, ts, pplx.SearchPath, mustJSON(t, search)); r.status != 429 {
		t.Fatalf("got status %d, want 429", r.status)
	}
	cr := decode[pplx.ChatResponse](t, post(t, ts, pplx.ChatPath, mustJSON(t, chat)).body)
	post(t, ts, pplx.ChatPath, `{}`)
	post(t, ts, "/nope", `{}`)

	st := s.Stats()
	want := Stats{
		Requests: 7, Search: 4, Chat: 2,
		Status:      map[int]int64{200: 4, 429: 1, 400: 1, 404: 1},
		RateLimited: 1, Answered: 4, MaxInFlight: 1,
		CostUSD: 3*0.005 + cr.Usage.Cost.TotalCost,
	}
	if st.Requests != want.Requests || st.Search != want.Search || st.Chat != want.Chat ||
		st.RateLimited != want.RateLimited || st.Answered != want.Answered || st.MaxInFlight != want.MaxInFlight {
		t.Errorf("got stats %+v, want %+v", st, want)
	}
	for code, n := range want.Status {
		if st.Status[code] != n {
			t.Errorf("got %d responses with status %d, want %d", st.Status[code], code, n)
		}
	}
	if math.Abs(st.CostUSD-want.CostUSD) > 1e-12 {
		t.Errorf("got cost %g, want %g", st.CostUSD, want.CostUSD)
	}
	st.Status[200] = 99
	if s.Stats().Status[200] != 4 {
		t.Errorf("got a Status map shared with the server, want a copy")
	}

	fp := Fingerprint(pplx.SearchPath, search)
	other := search
	other.MaxResults = 7
	tests := []struct {
		name string
		fp   string
		want int
	}{
		{"struct", fp, 3},
		{"pointer", Fingerprint("search", &search), 3},
		{"raw JSON", Fingerprint("/search", []byte(`{"query":"stats query"}`)), 3},
		{"string JSON", Fingerprint("search", `{"query":["stats query"]}`), 3},
		{"map", Fingerprint("search", map[string]any{"query": "stats query"}), 3},
		{"max_results ignored", Fingerprint("search", other), 3},
		{"chat", Fingerprint(pplx.ChatPath, chat), 1},
		{"chat alias", Fingerprint("/v1/sonar", &chat), 1},
		{"chat stream flag ignored", Fingerprint("chat", chatRequest("sonar", true, "stats prompt")), 1},
		{"other model", Fingerprint("chat", chatRequest("sonar-pro", false, "stats prompt")), 0},
		{"never sent", Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{"other"}}), 0},
		{"malformed", "search:zz", 0},
		{"empty", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Answered(tc.fp); got != tc.want {
				t.Errorf("got Answered(%q) = %d, want %d", tc.fp, got, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	chat := chatRequest("sonar", false, "hello")
	tests := []struct {
		name       string
		endpoint   string
		body       any
		wantPrefix string
	}{
		{"search", "search", pplx.SearchRequest{Query: pplx.Query{"q"}}, "search:"},
		{"chat", "chat", chat, "chat:"},
		{"unknown endpoint", "/v1/agent", chat, ""},
		{"search body for chat", "chat", pplx.SearchRequest{Query: pplx.Query{"q"}}, ""},
		{"chat body for search", "search", chat, ""},
		{"bad JSON", "search", []byte(`{`), ""},
		{"no query", "search", `{}`, ""},
		{"no model", "chat", `{"messages":[{"role":"user","content":"x"}]}`, ""},
		{"unmarshalable", "search", func() {}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Fingerprint(tc.endpoint, tc.body)
			if tc.wantPrefix == "" {
				if got != "" {
					t.Errorf("got %q, want \"\"", got)
				}
				return
			}
			if !strings.HasPrefix(got, tc.wantPrefix) || len(got) != len(tc.wantPrefix)+32 {
				t.Errorf("got %q, want %s and 32 hex digits", got, tc.wantPrefix)
			}
		})
	}
	a := Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{"a", "b"}})
	b := Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{"ab"}})
	c := Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{"b", "a"}})
	if a == b || a == c {
		t.Errorf("got colliding fingerprints %q %q %q, want distinct", a, b, c)
	}
}
