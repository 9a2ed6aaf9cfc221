package pplx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestRunErrorClass(t *testing.T) {
	tests := []struct {
		name string
		err  *RunError
		want Class
	}{
		{"failed", &RunError{Status: StatusFailed, Code: "internal_error", Message: "boom"}, ClassRetry},
		{"failed without error", &RunError{Status: StatusFailed}, ClassRetry},
		{"failed structured output", &RunError{Status: StatusFailed, Code: "upstream_structured_output_failed"}, ClassRetry},
		{"failed 500", &RunError{Status: StatusFailed, Code: "500"}, ClassRetry},
		{"failed 429", &RunError{Status: StatusFailed, Code: "429", Message: "rate limited"}, ClassRetry},
		{"failed 408", &RunError{Status: StatusFailed, Code: "408"}, ClassRetry},
		{"failed 400", &RunError{Status: StatusFailed, Code: "400", Message: "bad schema"}, ClassRow},
		{"failed 422", &RunError{Status: StatusFailed, Code: "422"}, ClassRow},
		{"failed 401", &RunError{Status: StatusFailed, Code: "401"}, ClassJob},
		{"failed 403", &RunError{Status: StatusFailed, Code: "403"}, ClassJob},
		{"failed quota", &RunError{Status: StatusFailed, Code: "insufficient_quota"}, ClassJob},
		{"failed out of credits", &RunError{Status: StatusFailed, Message: "Account is out of credits"}, ClassJob},
		{"incomplete", &RunError{Status: StatusIncomplete, Reason: "max_output_tokens"}, ClassRow},
		{"cancelled", &RunError{Status: StatusCancelled, Code: "cancelled", Reason: "cancelled"}, ClassRow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("row 3: %w", tc.err)
			if got := Classify(wrapped); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if got := Retryable(wrapped); got != (tc.want == ClassRetry) {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want == ClassRetry)
			}
		})
	}
}

func TestRunErrorString(t *testing.T) {
	long := strings.Repeat("x ", 600)
	tests := []struct {
		err  *RunError
		want string
	}{
		{&RunError{ID: "resp_1", Status: StatusFailed, Code: "internal_error", Message: "upstream\nfailed"}, "pplx: run resp_1 failed: internal_error: upstream failed"},
		{&RunError{ID: "resp_1", Status: StatusFailed, Type: "server_error", Message: "m"}, "pplx: run resp_1 failed: server_error: m"},
		{&RunError{ID: "resp_1", Status: StatusFailed}, "pplx: run resp_1 failed"},
		{&RunError{Status: StatusFailed, Message: "overloaded"}, "pplx: run failed: overloaded"},
		{&RunError{ID: "resp_1", Status: StatusIncomplete, Reason: "max_output_tokens"}, "pplx: run resp_1 incomplete: max_output_tokens"},
		{&RunError{ID: "resp_1", Status: StatusCancelled, Code: "cancelled", Message: "cancelled", Reason: "cancelled"}, "pplx: run resp_1 cancelled"},
		{&RunError{ID: "resp_1", Status: StatusCancelled, Code: "cancelled", Message: "by user"}, "pplx: run resp_1 cancelled: by user"},
		{&RunError{Status: StatusFailed, Message: long}, "pplx: run failed: " + long[:maxMessage] + "..."},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestRetiredChat(t *testing.T) {
	redact := func(s string) string { return s }
	api := func(status int, body string) error { return newAPIError(status, http.Header{}, []byte(body), redact) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"capture", api(403, `{"error":{"message":"Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar. Migrate here: https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview","type":"chat_completions_not_available","code":403}}`), true},
		{"type only", api(403, `{"error":{"message":"gone","type":"chat_completions_not_available"}}`), true},
		{"message only", api(403, `{"error":{"message":"Sonar is now the Agent API. Use /v1/responses instead of /chat/completions"}}`), true},
		{"migration code", api(403, `{"error":{"message":"migrate","type":"forbidden","code":"agent_api_migration_required"}}`), true},
		{"migration type", api(403, `{"error":{"message":"migrate","type":"agent_api_migration_required","code":403}}`), true},
		{"wrapped", fmt.Errorf("row 1: %w", api(403, `{"error":{"type":"chat_completions_not_available"}}`)), true},
		{"plain 403", api(403, `{"error":{"message":"forbidden","type":"forbidden","code":403}}`), false},
		{"code mentioned in message", api(403, `{"error":{"message":"not agent_api_migration_required","code":403}}`), false},
		{"404", api(404, `{"error":{"message":"resource not found","type":"not_found","code":404}}`), false},
		{"nil", nil, false},
		{"other error", fmt.Errorf("x"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetiredChat(tc.err); got != tc.want {
				t.Errorf("RetiredChat(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.want && Classify(tc.err) != ClassJob {
				t.Errorf("Classify(%v) = %v, want ClassJob", tc.err, Classify(tc.err))
			}
		})
	}
}

func TestAgentResponseHelpers(t *testing.T) {
	const body = `{"id":"resp_h","status":"completed","output":[
	 {"type":"search_results","queries":["a"],"results":[{"id":2,"url":"https://b.example"},{"id":1,"url":"https://a.example"}]},
	 {"type":"function_call","id":"fc_1","name":"search_web","arguments":"{}"},
	 {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"One [1]"},{"type":"refusal","text":"no"},{"type":"output_text","text":" two [3]."}]},
	 {"type":"search_results","results":[{"id":3,"url":"https://c.example"},{"id":2,"url":"https://b2.example"},{"id":0,"url":"https://x.example"},{"url":"https://x.example"},{"id":"4","url":"https://d.example"}]},
	 {"type":"finance_results","payload":{"q":1}},
	 {"type":"message","id":"msg_2","content":null},
	 {"type":"message","id":"msg_3","content":[{"type":"output_text","text":" Three."}]}
	]}`
	var r AgentResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Text(), "One [1] two [3]. Three."; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	var ids []FlexInt
	for _, s := range r.Sources() {
		ids = append(ids, s.ID)
	}
	if want := []FlexInt{1, 2, 3, 4, 0}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Sources() ids = %v, want %v", ids, want)
	}
	want := []string{"https://a.example", "https://b.example", "https://c.example", "https://d.example", "https://x.example"}
	if got := r.Citations(); !reflect.DeepEqual(got, want) {
		t.Errorf("Citations() = %q, want %q", got, want)
	}
	var empty *AgentResponse
	if empty.Text() != "" || empty.Sources() != nil || empty.Citations() != nil {
		t.Error("a nil response must have no text and no sources")
	}
	if (&AgentResponse{}).Citations() != nil {
		t.Error("a response without search results must have nil citations")
	}
}
