package pplx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// streamResponse is a 200 text/event-stream response with body r.
func streamResponse(r io.Reader) *http.Response {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       io.NopCloser(r),
	}
}

// The streams below follow the shapes captured from the API: 2026 chunks
// with deltas and a final chat.completion.done frame carrying usage with
// cost; 2025 chunks repeating usage, citations and the running text in
// message next to the delta.
const (
	stream2026 = `data: {"id":"r1","model":"sonar","created":1770768226,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}

: keep-alive

data: {"id":"r1","model":"sonar","created":1770768226,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":", world"}}],"search_results":[{"title":"A","url":"https://a.example"}]}

data: {"id":"r1","model":"sonar","created":1770768226,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"!"}}],"usage":{"prompt_tokens":6,"completion_tokens":3,"total_tokens":9,"cost":{"total_cost":0}}}

data: {"id":"r1","model":"sonar","created":1770768226,"object":"chat.completion.done","choices":[{"index":0,"finish_reason":"stop","delta":{"content":""}}],"usage":{"prompt_tokens":6,"completion_tokens":3,"total_tokens":9,"cost":{"input_tokens_cost":6e-06,"total_cost":0.005009}},"citations":["https://a.example"]}

data: [DONE]

`
	stream2025 = "data: {\"id\":\"r2\",\"model\":\"sonar\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}],\"citations\":[\"https://a.example\"],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":1,\"total_tokens\":7}}\r\n\r\n" +
		"data: {\"id\":\"r2\",\"model\":\"sonar\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"delta\":{\"role\":\"assistant\",\"content\":\"lo\"}}],\"citations\":[\"https://a.example\",\"https://b.example\"],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":2,\"total_tokens\":8}}\r\n\r\n" +
		"data: [DONE]\r\n\r\n"
	streamAggregate = "data: {\"id\":\"r3\",\"choices\":[{\"message\":{\"content\":\"Hel\"}}]}\n\n" +
		"data: {\"id\":\"r3\",\"choices\":[{\"message\":{\"content\":\"Hello\"},\"finish_reason\":\"length\"}]}\n\n" +
		"data: {\"id\":\"r3\",\"choices\":[]}\n\n" +
		"data: [DONE]\n\n"
)

func TestReadStream(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *ChatResponse
	}{
		{"2026", stream2026, &ChatResponse{
			ID: "r1", Model: "sonar", Created: 1770768226, Object: "chat.completion",
			Choices: []Choice{{FinishReason: "stop", Message: Message{Role: "assistant", Content: "Hello, world!"}}},
			Usage: &Usage{PromptTokens: 6, CompletionTokens: 3, TotalTokens: 9,
				Cost: &Cost{InputTokensCost: 6e-06, TotalCost: 0.005009}},
			Citations:     []string{"https://a.example"},
			SearchResults: []ChatSearchResult{{Title: "A", URL: "https://a.example"}},
		}},
		{"2025", stream2025, &ChatResponse{
			ID: "r2", Model: "sonar", Object: "chat.completion",
			Choices:   []Choice{{FinishReason: "stop", Message: Message{Role: "assistant", Content: "Hello"}}},
			Usage:     &Usage{PromptTokens: 6, CompletionTokens: 2, TotalTokens: 8},
			Citations: []string{"https://a.example", "https://b.example"},
		}},
		{"aggregate only", streamAggregate, &ChatResponse{
			ID: "r3", Object: "chat.completion",
			Choices: []Choice{{FinishReason: "length", Message: Message{Role: "assistant", Content: "Hello"}}},
		}},
		{"done only", "data: [DONE]\n\n", &ChatResponse{
			Object:  "chat.completion",
			Choices: []Choice{{Message: Message{Role: "assistant"}}},
		}},
		{"done with suffix and empty frames", "data:\n\ndata: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE] bye\n\n", &ChatResponse{
			ID: "x", Object: "chat.completion",
			Choices: []Choice{{Message: Message{Role: "assistant", Content: "a"}}},
		}},
		{"events after done are not read", "data: [DONE]\n\ndata: {broken\n\n", &ChatResponse{
			Object:  "chat.completion",
			Choices: []Choice{{Message: Message{Role: "assistant"}}},
		}},
	}
	c := New("http://127.0.0.1", "k", Options{})
	for _, tc := range tests {
		for rname, r := range readers(tc.in) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := c.readStream(t.Context(), streamResponse(r))
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %+v\nwant %+v", got, tc.want)
				}
			})
		}
	}
}

func TestReadStreamErrors(t *testing.T) {
	const key = "pplx-SECRETKEY123"
	c := New("http://127.0.0.1", key, Options{})
	first := "data: {\"id\":\"r9\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
	tests := []struct {
		name      string
		r         io.Reader
		check     func(t *testing.T, err error)
		retryable bool
	}{
		{"clean eof before done", strings.NewReader(first), func(t *testing.T, err error) {
			var se *StreamError
			if !errors.As(err, &se) || se.Events != 1 || se.Err != nil {
				t.Errorf("got %#v, want a *StreamError after 1 event with no cause", err)
			}
		}, true},
		{"cut mid event", strings.NewReader(first + "data: {\"id\":\"r9\",\"cho"), func(t *testing.T, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("got %v, want it to wrap io.ErrUnexpectedEOF", err)
			}
		}, true},
		{"connection reset", io.MultiReader(strings.NewReader(first), iotest.ErrReader(syscall.ECONNRESET)), func(t *testing.T, err error) {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("got %v, want it to wrap ECONNRESET", err)
			}
		}, true},
		{"garbage chunk", strings.NewReader(first + "data: <html>502 Bad Gateway</html>\n\n"), func(t *testing.T, err error) {
			var de *DecodeError
			if !errors.As(err, &de) || !strings.Contains(de.Snippet, "502 Bad Gateway") {
				t.Errorf("got %v, want a *DecodeError with the snippet", err)
			}
		}, true},
		{"error event", strings.NewReader(first + "event: error\ndata: {\"error\":{\"message\":\"upstream failed for " + key + "\",\"type\":\"internal_error\",\"code\":500}}\n\n"), func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Type != "internal_error" {
				t.Fatalf("got %#v, want an *APIError 500 internal_error", err)
			}
			if strings.Contains(ae.Message+ae.Body+err.Error(), key) {
				t.Errorf("the API key is in the error: %q", ae.Message)
			}
		}, true},
		{"error event without status", strings.NewReader("event: error\ndata: {\"message\":\"overloaded\"}\n\n"), func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 200 || ae.Message != "overloaded" {
				t.Errorf("got %#v, want an *APIError 200 overloaded", err)
			}
		}, true},
		{"error event 400", strings.NewReader("event: error\ndata: {\"error\":{\"message\":\"bad\",\"type\":\"invalid_parameter\",\"code\":\"400\"}}\n\n"), func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 400 {
				t.Errorf("got %#v, want an *APIError 400", err)
			}
		}, false},
		{"error object as data", strings.NewReader(first + "data: {\"error\":{\"message\":\"Rate limit exceeded\",\"type\":\"request_rate_limit_exceeded\",\"code\":429}}\n\n"), func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Type != "request_rate_limit_exceeded" {
				t.Errorf("got %#v, want an *APIError 429", err)
			}
		}, true},
		{"event too large", io.MultiReader(strings.NewReader("data: "), repeatReader{'x'}), func(t *testing.T, err error) {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("got %v, want it to wrap ErrTooLarge", err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.readStream(t.Context(), streamResponse(tc.r))
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			tc.check(t, err)
			if got := Retryable(err); got != tc.retryable {
				t.Errorf("Retryable(%v): got %v, want %v", err, got, tc.retryable)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error is not one line: %q", err.Error())
			}
			if tc.name != "event too large" && tc.name != "garbage chunk" {
				if se := (*StreamError)(nil); errors.As(err, &se) != errors.Is(err, ErrTruncatedStream) {
					t.Errorf("StreamError and ErrTruncatedStream disagree for %v", err)
				}
			}
		})
	}
}

func TestStreamHeldOpenAfterDone(t *testing.T) {
	// A server that keeps the response open after [DONE] must not hold
	// the call: the client closes the body after its grace period.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := New(srv.URL, "k", Options{HTTPClient: srv.Client()})
	c.grace = time.Millisecond
	resp, _, err := c.Chat(t.Context(), &ChatRequest{Model: "sonar", Stream: true})
	if err != nil || resp.Content() != "a" {
		t.Fatalf("got %v, %v, want the answer a", resp, err)
	}
}
