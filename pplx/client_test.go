package pplx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// testKey is the simulator's key; tests check it never leaks.
const testKey = "pplx-test-0123456789abcdef0123456789abcdef"

// simClock is a fixed clock for the simulator, so that its rate-limit
// hints are exact.
func simClock() time.Time { return time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC) }

// newSim serves a simulator with cfg (Key defaults to testKey) and returns
// a client for it.
func newSim(t *testing.T, cfg sim.Config) (*pplx.Client, *sim.Server) {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey
	}
	s := sim.New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return pplx.New(srv.URL+"/", testKey, pplx.Options{HTTPClient: srv.Client()}), s
}

// noKey fails the test if the API key appears in err.
func noKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err)} {
		if strings.Contains(s, testKey) {
			t.Errorf("the API key appears in the error: %q", s)
		}
	}
	var ae *pplx.APIError
	if errors.As(err, &ae) && (strings.Contains(ae.Message, testKey) || strings.Contains(ae.Body, testKey)) {
		t.Errorf("the API key appears in the APIError: %+v", ae)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error is not one line: %q", err.Error())
	}
}

func TestSearch(t *testing.T) {
	c, _ := newSim(t, sim.Config{})
	tests := []struct {
		name string
		req  pplx.SearchRequest
	}{
		{"one query", pplx.SearchRequest{Query: pplx.Query{"acme corp headquarters"}, MaxResults: 3}},
		{"default max results", pplx.SearchRequest{Query: pplx.Query{"golang"}}},
		{"multi query", pplx.SearchRequest{Query: pplx.Query{"a b", "c d", "é ü"}, MaxResults: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, meta, err := c.Search(t.Context(), &tc.req)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			want := sim.SearchResults(tc.req.Query, tc.req.MaxResults)
			if !reflect.DeepEqual([]pplx.SearchResult(resp.Results), want) {
				t.Errorf("got results %+v\nwant %+v", resp.Results, want)
			}
			if meta.StatusCode != http.StatusOK {
				t.Errorf("got status %d, want 200", meta.StatusCode)
			}
			if resp.ID == "" || meta.RequestID != resp.ID {
				t.Errorf("got request id %q, want the body id %q", meta.RequestID, resp.ID)
			}
			if meta.Header.Get("Content-Type") != "application/json" || meta.Header.Get("X-Request-Id") == "" {
				t.Errorf("got headers %v, want the response's", meta.Header)
			}
		})
	}
}

func TestChat(t *testing.T) {
	c, _ := newSim(t, sim.Config{})
	msgs := []pplx.Message{
		{Role: "system", Content: "Be precise."},
		{Role: "user", Content: "Where is Acme Corp based?"},
	}
	for _, model := range []string{"sonar", "sonar-pro", "sonar-reasoning-pro"} {
		var plain *pplx.ChatResponse
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", model, stream), func(t *testing.T) {
				req := &pplx.ChatRequest{Model: model, Messages: msgs, Stream: stream}
				resp, meta, err := c.Chat(t.Context(), req)
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if got, want := resp.Content(), sim.ChatContent(model, msgs); got != want {
					t.Errorf("got content %q, want %q", got, want)
				}
				sources := sim.ChatSearchResults(msgs)
				if !reflect.DeepEqual(resp.SearchResults, sources) {
					t.Errorf("got search results %+v, want %+v", resp.SearchResults, sources)
				}
				if len(resp.Citations) != len(sources) || (len(sources) > 0 && resp.Citations[0] != sources[0].URL) {
					t.Errorf("got citations %q, want the sources' URLs", resp.Citations)
				}
				if len(resp.Choices) != 1 || resp.Choices[0].FinishReason != "stop" || resp.Choices[0].Message.Role != "assistant" {
					t.Errorf("got choices %+v, want one assistant choice finished by stop", resp.Choices)
				}
				if resp.Usage == nil || resp.Usage.Cost == nil || resp.Usage.Cost.TotalCost <= 0 {
					t.Fatalf("got usage %+v, want one with a cost", resp.Usage)
				}
				if resp.Model != model || resp.ID == "" || meta.RequestID != resp.ID {
					t.Errorf("got model %q id %q request id %q, want %q and the body id", resp.Model, resp.ID, meta.RequestID, model)
				}
				if !stream {
					plain = resp
					return
				}
				if plain == nil {
					t.Fatal("no plain answer to compare with")
				}
				if !reflect.DeepEqual(resp.Usage, plain.Usage) {
					t.Errorf("got streamed usage %+v %+v, want the plain answer's %+v %+v", resp.Usage, resp.Usage.Cost, plain.Usage, plain.Usage.Cost)
				}
				if ct := meta.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("got content type %q, want text/event-stream", ct)
				}
			})
		}
	}
}

func TestAPIErrors(t *testing.T) {
	sixQueries := pplx.Query{"a", "b", "c", "d", "e", "f"}
	tests := []struct {
		name      string
		cfg       sim.Config
		key       string
		call      func(c *pplx.Client, ctx context.Context) (*pplx.Meta, error)
		status    int
		typ       string
		retryable bool
	}{
		{"401 search", sim.Config{}, "pplx-wrong-" + testKey, search("q"), 401, "invalid_api_key", false},
		{"401 chat stream", sim.Config{}, testKey + "x", chat(true), 401, "invalid_api_key", false},
		{"400 too many queries", sim.Config{}, testKey, searchReq(&pplx.SearchRequest{Query: sixQueries}), 400, "invalid_request", false},
		{"400 bad model", sim.Config{}, testKey, chatReq(&pplx.ChatRequest{Model: "nope", Messages: []pplx.Message{{Role: "user", Content: "hi"}}}), 400, "invalid_model", false},
		{"500", sim.Config{Faults: sim.Faults{P500: 1}}, testKey, search("q"), 500, "internal_error", true},
		{"503 plain text", sim.Config{Faults: sim.Faults{P503: 1}}, testKey, chat(false), 503, "", true},
		{"503 on a stream", sim.Config{Faults: sim.Faults{P503: 1}}, testKey, chat(true), 503, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Key = testKey
			s := sim.New(tc.cfg)
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := pplx.New(srv.URL, tc.key, pplx.Options{HTTPClient: srv.Client()})
			meta, err := tc.call(c, t.Context())
			var ae *pplx.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got error %v, want an *APIError", err)
			}
			if ae.StatusCode != tc.status || ae.Type != tc.typ {
				t.Errorf("got %d %q, want %d %q", ae.StatusCode, ae.Type, tc.status, tc.typ)
			}
			if ae.Message == "" {
				t.Error("got an empty message")
			}
			if got := pplx.Retryable(err); got != tc.retryable {
				t.Errorf("Retryable: got %v, want %v", got, tc.retryable)
			}
			if meta == nil || meta.StatusCode != tc.status || meta.Header.Get("X-Request-Id") == "" || meta.RequestID == "" {
				t.Errorf("got meta %+v, want status %d and the response headers", meta, tc.status)
			}
			if strings.Contains(err.Error(), tc.key) {
				t.Errorf("the API key appears in %q", err.Error())
			}
			noKey(t, err)
			want := fmt.Sprintf("pplx: %d", tc.status)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q, want it to start with %q", err.Error(), want)
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	tests := []struct {
		name    string
		headers sim.HeaderStyle
		want    time.Duration
		hinted  bool
	}{
		// One token per 100 s: the second request waits 100 s for it.
		{"retry-after-ms and Retry-After", sim.HeadersSeconds, 100 * time.Second, true},
		{"no hints", sim.HeadersNoneAtAll, 500 * time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newSim(t, sim.Config{RPS: 0.01, Burst: 1, Headers: tc.headers, Now: simClock})
			if _, _, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"first"}}); err != nil {
				t.Fatalf("first request: got error %v, want nil", err)
			}
			_, meta, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"second"}})
			var ae *pplx.APIError
			if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Type != "request_rate_limit_exceeded" {
				t.Fatalf("got %v, want a 429 request_rate_limit_exceeded", err)
			}
			if want := "pplx: 429 request_rate_limit_exceeded: Rate limit exceeded"; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q, want it to start with %q", err.Error(), want)
			}
			if !pplx.Retryable(err) {
				t.Error("Retryable: got false, want true")
			}
			if got := pplx.RetryDelay(0, err, func() float64 { return 0 }); got != tc.want {
				t.Errorf("RetryDelay: got %v, want %v", got, tc.want)
			}
			d, ok := pplx.RetryAfter(meta.Header, simClock())
			if ok != tc.hinted || (ok && d != tc.want) {
				t.Errorf("RetryAfter: got %v, %v, want %v, %v", d, ok, tc.want, tc.hinted)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		call   func(c *pplx.Client, ctx context.Context) (*pplx.Meta, error)
		check  func(t *testing.T, err error)
		status int
	}{
		{"cut stream", sim.Faults{PCut: 1}, chat(true), func(t *testing.T, err error) {
			var se *pplx.StreamError
			if !errors.Is(err, pplx.ErrTruncatedStream) || !errors.As(err, &se) {
				t.Errorf("got %v, want a *StreamError matching ErrTruncatedStream", err)
			}
		}, 200},
		{"cut search body", sim.Faults{PCut: 1}, search("q"), nil, 200},
		{"cut chat body", sim.Faults{PCut: 1}, chat(false), nil, 200},
		{"garbage search", sim.Faults{PGarbage: 1}, search("q"), isDecodeError, 200},
		{"garbage chat", sim.Faults{PGarbage: 1}, chat(false), isDecodeError, 200},
		{"garbage stream", sim.Faults{PGarbage: 1}, chat(true), isDecodeError, 200},
		{"reset", sim.Faults{PReset: 1}, search("q"), nil, 0},
		{"reset stream", sim.Faults{PReset: 1}, chat(true), nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newSim(t, sim.Config{Faults: tc.faults})
			meta, err := tc.call(c, t.Context())
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			if !pplx.Retryable(err) {
				t.Errorf("Retryable(%v): got false, want true", err)
			}
			if meta == nil || meta.StatusCode != tc.status {
				t.Errorf("got meta %+v, want status %d", meta, tc.status)
			}
			noKey(t, err)
		})
	}
}

func isDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *pplx.DecodeError
	if !errors.As(err, &de) || de.StatusCode != 200 {
		t.Errorf("got %v, want a *DecodeError for a 200", err)
	}
}

func TestContextCancel(t *testing.T) {
	tests := []struct {
		name string
		call func(c *pplx.Client, ctx context.Context) (*pplx.Meta, error)
	}{
		{"search", search("q")},
		{"chat", chat(false)},
		{"stream", chat(true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The simulator would answer after an hour; the request is
			// cancelled once it has arrived.
			arrived := make(chan struct{}, 1)
			s := sim.New(sim.Config{Key: testKey, Latency: time.Hour})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				s.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c := pplx.New(srv.URL, testKey, pplx.Options{HTTPClient: srv.Client()})
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-arrived
				cancel()
			}()
			meta, err := tc.call(c, ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			if pplx.Retryable(err) {
				t.Error("Retryable: got true, want false")
			}
			if meta == nil || meta.StatusCode != 0 {
				t.Errorf("got meta %+v, want status 0", meta)
			}
		})
	}
}

func TestContextCancelMidStream(t *testing.T) {
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
		http.NewResponseController(w).Flush()
		close(sent)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Cancel once the response headers are in and the first frame was
	// sent: the client is then reading the stream.
	base := srv.Client().Transport
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		<-sent
		cancel()
		return resp, err
	})}
	c := pplx.New(srv.URL, testKey, pplx.Options{HTTPClient: hc})
	_, meta, err := c.Chat(ctx, &pplx.ChatRequest{Model: "sonar", Stream: true})
	if !errors.Is(err, context.Canceled) || errors.Is(err, pplx.ErrTruncatedStream) {
		t.Fatalf("got %v, want context.Canceled and no truncated stream", err)
	}
	if pplx.Retryable(err) {
		t.Error("Retryable: got true, want false")
	}
	if meta.StatusCode != 200 || meta.RequestID != "x" {
		t.Errorf("got meta %+v, want status 200 and the chunks' id", meta)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDeadline(t *testing.T) {
	c, _ := newSim(t, sim.Config{Latency: time.Hour})
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, _, err := c.Search(ctx, &pplx.SearchRequest{Query: pplx.Query{"q"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if !pplx.Retryable(err) {
		t.Error("Retryable: got false, want true (an attempt's timeout)")
	}
}

func TestStreamConnectionReuse(t *testing.T) {
	s := sim.New(sim.Config{Key: testKey})
	srv := httptest.NewUnstartedServer(s)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := pplx.New(srv.URL, testKey, pplx.Options{HTTPClient: srv.Client()})
	for i := range 5 {
		call := chat(i%2 == 0)
		if _, err := call(c, t.Context()); err != nil {
			t.Fatalf("call %d: got error %v, want nil", i, err)
		}
	}
	if _, err := search("q")(c, t.Context()); err != nil {
		t.Fatalf("search: got error %v, want nil", err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("got %d connections for sequential calls, want 1", got)
	}
}

func TestBadBaseURL(t *testing.T) {
	tests := []string{"", "api.perplexity.ai", "ftp://x", "http://", "http://[::1", "https://user:" + testKey + "@"}
	for _, base := range tests {
		t.Run(base, func(t *testing.T) {
			c := pplx.New(base, testKey, pplx.Options{})
			_, meta, err := c.Search(t.Context(), &pplx.SearchRequest{Query: pplx.Query{"q"}})
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if pplx.Retryable(err) {
				t.Errorf("Retryable(%v): got true, want false", err)
			}
			if meta == nil || meta.StatusCode != 0 {
				t.Errorf("got meta %+v, want status 0", meta)
			}
			noKey(t, err)
		})
	}
}

func TestNilRequest(t *testing.T) {
	c := pplx.New("http://127.0.0.1", testKey, pplx.Options{})
	if _, meta, err := c.Search(t.Context(), nil); err == nil || meta == nil {
		t.Errorf("Search(nil): got %v, %v, want an error and a Meta", meta, err)
	}
	if _, meta, err := c.Chat(t.Context(), nil); err == nil || meta == nil {
		t.Errorf("Chat(nil): got %v, %v, want an error and a Meta", meta, err)
	}
}

func TestNewTransport(t *testing.T) {
	tests := []struct {
		maxConns, wantPerHost int
	}{
		{0, 100}, {-1, 100}, {8, 8}, {500, 500},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.maxConns), func(t *testing.T) {
			tr := pplx.NewTransport(tc.maxConns)
			if tr.MaxIdleConnsPerHost != tc.wantPerHost {
				t.Errorf("got MaxIdleConnsPerHost %d, want %d", tr.MaxIdleConnsPerHost, tc.wantPerHost)
			}
			if tr.MaxIdleConns < tc.wantPerHost {
				t.Errorf("got MaxIdleConns %d, want at least %d", tr.MaxIdleConns, tc.wantPerHost)
			}
			if !tr.ForceAttemptHTTP2 || tr.Proxy == nil || tr.DialContext == nil {
				t.Errorf("got ForceAttemptHTTP2 %v, Proxy set %v, DialContext set %v, want all", tr.ForceAttemptHTTP2, tr.Proxy != nil, tr.DialContext != nil)
			}
			if tr.TLSHandshakeTimeout <= 0 || tr.IdleConnTimeout <= 0 {
				t.Errorf("got TLS handshake timeout %v, idle timeout %v, want both set", tr.TLSHandshakeTimeout, tr.IdleConnTimeout)
			}
			if tr == http.DefaultTransport {
				t.Error("got the default transport, want a clone")
			}
		})
	}
}

// search returns a call of Search with one query.
func search(q string) func(*pplx.Client, context.Context) (*pplx.Meta, error) {
	return searchReq(&pplx.SearchRequest{Query: pplx.Query{q}})
}

func searchReq(req *pplx.SearchRequest) func(*pplx.Client, context.Context) (*pplx.Meta, error) {
	return func(c *pplx.Client, ctx context.Context) (*pplx.Meta, error) {
		_, meta, err := c.Search(ctx, req)
		return meta, err
	}
}

// chat returns a call of Chat with a sonar question.
func chat(stream bool) func(*pplx.Client, context.Context) (*pplx.Meta, error) {
	return chatReq(&pplx.ChatRequest{Model: "sonar", Stream: stream,
		Messages: []pplx.Message{{Role: "user", Content: "What is Go?"}}})
}

func chatReq(req *pplx.ChatRequest) func(*pplx.Client, context.Context) (*pplx.Meta, error) {
	return func(c *pplx.Client, ctx context.Context) (*pplx.Meta, error) {
		_, meta, err := c.Chat(ctx, req)
		return meta, err
	}
}
