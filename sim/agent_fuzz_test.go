package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
)

func FuzzAgentRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"perplexity/sonar","input":"q","tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"}}`,
		`{"preset":"fast","input":"q","stream":true}`,
		`{"preset":"deep-research","input":[{"role":"user","content":[{"type":"input_text","text":"a"}]}],"background":true}`,
		`{"model":"anthropic/claude-opus-5-5","input":"q","max_output_tokens":3}`,
		`{"model":"sonar","input":"q"}`,
		`{"preset":"fast","input":"q","X":1}`,
		`{"preset":"fast","input":""}`,
		`{"preset":"fast","input":[]}`,
		`{"preset":"fast","input":"q","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"array"}}}}`,
		`{"preset":"fast","input":"q","tools":[{"type":"web_search","filters":{"search_recency_filter":"week","search_before_date_filter":"01/01/2026"}}]}`,
		`{"models":["a","b","c","d","e","f"],"input":"q"}`,
		`{"preset":"fast","input":"q"} trailing`,
		``,
	} {
		f.Add([]byte(seed))
	}
	s := New(Config{})
	f.Fuzz(func(t *testing.T, body []byte) {
		c, bad := parseAgent(body)
		switch {
		case (c == nil) == (bad == nil):
			t.Fatalf("got call %v and error %v, want exactly one", c, bad)
		case bad != nil:
			if bad.typ == "" || bad.msg == "" {
				t.Fatalf("got error %+v, want a type and a message", bad)
			}
			if q, ok := strings.CutPrefix(bad.msg, "invalid request body: json: unknown field "); ok && q != strconv.Quote(bad.param) {
				t.Fatalf("got error %+v, want the unknown field as its param", bad)
			}
		default:
			if _, ok := agentPrices[c.model]; !ok || strings.TrimSpace(c.input) == "" || (c.maxOutput != 0 && c.maxOutput < MinOutputTokens) {
				t.Fatalf("got call %+v, want a known model, an input and max_output_tokens of at least %d", c, MinOutputTokens)
			}
			if !json.Valid(body) {
				t.Fatalf("accepted a body that is not JSON: %q", body)
			}
		}

		rec := serve(s, pplx.AgentPath, string(body))
		switch {
		case rec.Code == http.StatusBadRequest || rec.Code == http.StatusRequestEntityTooLarge:
			checkError(t, rec)
		case rec.Code != http.StatusOK:
			t.Fatalf("got status %d, want 200, 400 or 413", rec.Code)
		case c == nil:
			t.Fatalf("got 200 for a body the parser refused")
		case c.stream:
			frames := bytes.Split(bytes.TrimSuffix(rec.Body.Bytes(), []byte("\n\n")), []byte("\n\n"))
			var last pplx.AgentEvent
			if err := json.Unmarshal(bytes.TrimPrefix(frames[len(frames)-1], []byte("data: ")), &last); err != nil || !pplx.TerminalEvent(last.Type) {
				t.Fatalf("got last frame %q (%v), want a terminal event", frames[len(frames)-1], err)
			}
		default:
			var resp pplx.AgentResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("got 200 with body %q: %v", rec.Body.Bytes(), err)
			}
			want := pplx.StatusCompleted
			if c.background {
				want = pplx.StatusQueued
			}
			if resp.Status != want && resp.Status != pplx.StatusIncomplete {
				t.Fatalf("got status %q, want %q", resp.Status, want)
			}
		}
	})
}
