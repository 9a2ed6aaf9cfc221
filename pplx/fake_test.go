package pplx_test

// The fakes in this file produce what the simulator cannot: an
// "event: error" frame, FastAPI's 422 body, a proxy's HTML 401 page, a
// stream written one byte at a time, an error body that echoes the key.
// Each is a few lines of http.HandlerFunc; everything else runs against
// the simulator (client_test.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// fake serves h and returns a client for it with base URL suffix.
func fake(t *testing.T, suffix string, h http.HandlerFunc) *pplx.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return pplx.New(srv.URL+suffix, testKey, pplx.Options{HTTPClient: srv.Client()})
}

// reply answers every request with status, content type and body.
func reply(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

var streamReq = &pplx.ChatRequest{Model: "sonar", Stream: true, Messages: []pplx.Message{{Role: "user", Content: "hi"}}}

func TestRequestShape(t *testing.T) {
	type seen struct {
		method, path, auth, ctype, accept, ua string
		body                                  []byte
	}
	tests := []struct {
		name   string
		suffix string
		ua     string
		call   func(*pplx.Client) error
		want   seen
	}{
		{"search", "/", "", func(c *pplx.Client) error {
			_, _, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}, MaxResults: 2})
			return err
		}, seen{"POST", "/search", "Bearer " + testKey, "application/json", "application/json", "pplx-batch",
			[]byte(`{"query":"q","max_results":2}`)}},
		{"chat stream under a prefix", "/v2//", "batch/1.0", func(c *pplx.Client) error {
			_, _, err := c.Chat(t.Context(), streamReq)
			return err
		}, seen{"POST", "/v2/chat/completions", "Bearer " + testKey, "application/json", "text/event-stream", "batch/1.0",
			[]byte(`{"model":"sonar","messages":[{"role":"user","content":"hi"}],"stream":true}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"),
					r.Header.Get("Accept"), r.Header.Get("User-Agent"), b}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id":"x","results":[],"choices":[]}`)
			}))
			defer srv.Close()
			c := pplx.New(srv.URL+tc.suffix, testKey, pplx.Options{HTTPClient: srv.Client(), UserAgent: tc.ua})
			if err := tc.call(c); err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("server saw %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFakeErrors(t *testing.T) {
	html401 := "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n" +
		"<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>openresty/1.27.4</center>\r\n</body>\r\n</html>\r\n"
	tests := []struct {
		name      string
		h         http.HandlerFunc
		stream    bool
		wantErr   string
		status    int
		retryable bool
	}{
		{"422 detail list", reply(422, "application/json",
			`{"detail":[{"loc":["body","model"],"msg":"Field required","type":"missing"}]}`),
			false, "pplx: 422: body.model: Field required (missing)", 422, false},
		{"html 401", reply(401, "text/html", html401),
			false, "pplx: 401: 401 Authorization Required", 401, false},
		{"401 echoing the key", reply(401, "application/json",
			`{"error":{"message":"Invalid API key `+testKey+`","type":"invalid_api_key","code":401}}`),
			false, "pplx: 401 invalid_api_key: Invalid API key [redacted]", 401, false},
		{"429 should not retry", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Should-Retry", "false")
			reply(429, "application/json", `{"error":{"message":"quota exhausted","type":"insufficient_quota","code":429}}`)(w, r)
		}, false, "pplx: 429 insufficient_quota: quota exhausted", 429, false},
		{"404 empty body", reply(404, "text/plain", ""), false, "pplx: 404: not found", 404, false},
		{"error event", reply(200, "text/event-stream",
			"data: {\"id\":\"r\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"+
				"event: error\ndata: {\"error\":{\"message\":\"Upstream overloaded\",\"type\":\"bad_gateway\",\"code\":502}}\n\n"),
			true, "pplx: 502 bad_gateway: Upstream overloaded", 200, true},
		{"error event with the key", reply(200, "text/event-stream",
			"event: error\ndata: {\"error\":{\"message\":\"bad key "+testKey+"\",\"type\":\"invalid_api_key\",\"code\":401}}\n\n"),
			true, "pplx: 401 invalid_api_key: bad key [redacted]", 200, false},
		{"html 200 to a stream", reply(200, "text/html", "<html>oops</html>"),
			true, `pplx: bad 200 response body: invalid character '<' looking for beginning of value: "<html>oops</html>"`, 200, true},
		{"body too large", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.Copy(w, io.LimitReader(zeros{}, pplx.MaxBodyBytes+10))
		}, false, "pplx: bad 200 response body: body over 33554432 bytes: pplx: response too large", 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, "", tc.h)
			var (
				meta *pplx.Meta
				err  error
			)
			if tc.stream {
				_, meta, err = c.Chat(t.Context(), streamReq)
			} else {
				_, meta, err = c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}})
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("got error %v, want %q", err, tc.wantErr)
			}
			if got := pplx.Retryable(err); got != tc.retryable {
				t.Errorf("Retryable: got %v, want %v", got, tc.retryable)
			}
			if meta.StatusCode != tc.status {
				t.Errorf("got meta status %d, want %d", meta.StatusCode, tc.status)
			}
			noKey(t, err)
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestOneByteStream(t *testing.T) {
	frames := "data: {\"id\":\"r1\",\"model\":\"sonar\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"}}]}\r\n\r\n" +
		": ping\r\n\r\n" +
		"data: {\"id\":\"r1\",\"choices\":[{\"delta\":{\"content\":\", world\"}}]}\r\r" +
		"data: {\"id\":\"r1\",\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,\"cost\":{\"total_cost\":0.005}}}\n\n" +
		"data: [DONE]\n\n"
	c := fake(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("X-Request-Id", "hdr-id")
		rc := http.NewResponseController(w)
		for i := range len(frames) {
			w.Write([]byte{frames[i]})
			rc.Flush()
		}
	})
	resp, meta, err := c.Chat(t.Context(), streamReq)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if got := resp.Content(); got != "Hello, world" {
		t.Errorf("got content %q, want %q", got, "Hello, world")
	}
	if resp.Choices[0].FinishReason != "stop" || resp.Usage == nil || resp.Usage.Cost == nil || resp.Usage.Cost.TotalCost != 0.005 {
		t.Errorf("got %+v, want finish_reason stop and the final usage with cost", resp)
	}
	if meta.RequestID != "r1" {
		t.Errorf("got request id %q, want the chunks' id r1", meta.RequestID)
	}
}

func TestStreamAnsweredWithJSON(t *testing.T) {
	c := fake(t, "", reply(200, "application/json; charset=utf-8",
		`{"id":"j","model":"sonar","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"plain"}}]}`))
	resp, _, err := c.Chat(t.Context(), streamReq)
	if err != nil || resp.Content() != "plain" {
		t.Fatalf("got %v, %v, want the plain answer", resp, err)
	}
}

func TestRequestIDHeader(t *testing.T) {
	tests := []struct {
		name, header, body, want string
	}{
		{"x-request-id", "X-Request-Id", `{"results":[]}`, "h1"},
		{"request-id", "Request-Id", `{"results":[]}`, "h1"},
		{"body id wins", "X-Request-Id", `{"id":"b1","results":[]}`, "b1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, "", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(tc.header, "h1")
				reply(200, "application/json", tc.body)(w, r)
			})
			_, meta, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}})
			if err != nil || meta.RequestID != tc.want {
				t.Fatalf("got %q, %v, want %q", meta.RequestID, err, tc.want)
			}
		})
	}
}

func TestErrorBodyCut(t *testing.T) {
	// A 503 whose body is cut still gives the APIError with what arrived.
	c := fake(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(503)
		io.WriteString(w, "upstream gone")
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // closes the connection
	})
	_, _, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}})
	var ae *pplx.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !bytes.Contains([]byte(ae.Message), []byte("upstream gone")) {
		t.Fatalf("got %v, want a 503 APIError with the partial body", err)
	}
	if !strings.HasPrefix(err.Error(), "pplx: 503") || !pplx.Retryable(err) {
		t.Errorf("got %q (retryable %v), want a retryable 503", err, pplx.Retryable(err))
	}
}

func TestKeyCutByLimit(t *testing.T) {
	// The key sits across the point where the client stops reading or
	// quoting a body: no part of it may show.
	prefix := testKey[:8]
	tests := []struct {
		name, ctype string
		status      int
		pad         string
	}{
		{"error body limit", "text/plain", 500, strings.Repeat("x", 64<<10-10)},
		// White space collapses in the snippet, so what follows the
		// cut of the raw body would show.
		{"decode snippet", "application/json", 200, "x" + strings.Repeat(" ", 1024-11)},
		{"decode snippet one line", "application/json", 200, strings.Repeat("x", 512-10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, "", reply(tc.status, tc.ctype, tc.pad+testKey+" tail"))
			_, _, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}})
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			texts := []string{err.Error()}
			var ae *pplx.APIError
			if errors.As(err, &ae) {
				texts = append(texts, ae.Body, ae.Message)
			}
			var de *pplx.DecodeError
			if errors.As(err, &de) {
				texts = append(texts, de.Snippet)
			}
			for _, s := range texts {
				if strings.Contains(s, prefix) {
					t.Errorf("a part of the key shows: ...%q", s[max(0, len(s)-40):])
				}
			}
		})
	}
}
