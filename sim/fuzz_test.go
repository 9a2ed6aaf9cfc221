package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// serve runs one request through s without a network.
func serve(s *Server, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer fuzz")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// checkError checks that a non-200 answer is the JSON error envelope.
func checkError(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	var e pplx.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("status %d: got body %q, want the error envelope: %v", rec.Code, rec.Body.Bytes(), err)
	}
	if int(e.Error.Code) != rec.Code || e.Error.Type == "" || e.Error.Message == "" {
		t.Fatalf("got error %+v with status %d, want code, type and message", e.Error, rec.Code)
	}
}

func FuzzSearch(f *testing.F) {
	for _, seed := range []string{
		`{"query":"golang"}`,
		`{"query":["a","b"],"max_results":3}`,
		`{"query":[],"max_results":-1}`,
		`{"query":null}`,
		`{"query":"x","max_results":1e3}`,
		`{"query":["a","b","c","d","e","f"]}`,
		`[1,2]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	s := New(Config{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(s, pplx.SearchPath, string(body))
		switch rec.Code {
		case http.StatusOK:
			var resp pplx.SearchResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("got 200 with body %q: %v", rec.Body.Bytes(), err)
			}
			var req pplx.SearchRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("got 200 for a body that does not decode: %v", err)
			}
			if want := len(req.Query) * resultsPerQuery(req.MaxResults); len(resp.Results) != want {
				t.Fatalf("got %d results, want %d", len(resp.Results), want)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			checkError(t, rec)
		default:
			t.Fatalf("got status %d, want 200, 400 or 413", rec.Code)
		}
	})
}

func FuzzChat(f *testing.F) {
	for _, seed := range []string{
		`{"model":"sonar","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"sonar-pro","stream":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":"a b c d e f g"}]}`,
		`{"model":"sonar-reasoning-pro","messages":[{"role":"tool","content":""}],"web_search_options":{"search_context_size":"high"}}`,
		`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"sonar","messages":[{"role":"user","content":["part"]}]}`,
		`{"model":"sonar","max_tokens":-5,"messages":[{"role":"user","content":"hi"}]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	s := New(Config{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(s, pplx.ChatPath, string(body))
		switch rec.Code {
		case http.StatusOK:
			var req pplx.ChatRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("got 200 for a body that does not decode: %v", err)
			}
			want := ChatContent(req.Model, req.Messages)
			if !req.Stream {
				var resp pplx.ChatResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
					t.Fatalf("got 200 with body %q: %v", rec.Body.Bytes(), err)
				}
				if resp.Content() != want || resp.Usage == nil || resp.Usage.Cost == nil {
					t.Fatalf("got %+v, want content %q with usage and cost", resp, want)
				}
				return
			}
			frames := bytes.Split(bytes.TrimSuffix(rec.Body.Bytes(), []byte("\n\n")), []byte("\n\n"))
			if string(frames[len(frames)-1]) != "data: [DONE]" {
				t.Fatalf("got last frame %q, want data: [DONE]", frames[len(frames)-1])
			}
			var got strings.Builder
			for _, fr := range frames[:len(frames)-1] {
				var c pplx.ChatResponse
				if err := json.Unmarshal(bytes.TrimPrefix(fr, []byte("data: ")), &c); err != nil {
					t.Fatalf("frame %q: %v", fr, err)
				}
				if len(c.Choices) > 0 {
					got.WriteString(c.Choices[0].Delta.Content)
				}
			}
			if got.String() != want {
				t.Fatalf("got streamed content %q, want %q", got.String(), want)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			checkError(t, rec)
		default:
			t.Fatalf("got status %d, want 200, 400 or 413", rec.Code)
		}
	})
}

func FuzzParseHeaderStyle(f *testing.F) {
	for _, seed := range []string{"", "seconds", " OpenAI ", "none-at-all", "nope", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseHeaderStyle(in)
		if err != nil {
			if h != "" || !strings.HasPrefix(err.Error(), "sim: ") {
				t.Fatalf("got %q, %v; want \"\" and a sim: error", h, err)
			}
			return
		}
		if h == "" || !h.Valid() {
			t.Fatalf("got invalid style %q without an error", h)
		}
		if again, err := ParseHeaderStyle(string(h)); again != h || err != nil {
			t.Fatalf("got %q, %v parsing %q again, want the same style", again, err, h)
		}
	})
}
