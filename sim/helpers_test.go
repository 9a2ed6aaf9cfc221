package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

const testKey = "pplx-test-key-0123456789"

// fakeClock is a settable clock for the token buckets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start serves s on 127.0.0.1 for the duration of the test.
func start(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// response is a finished round trip.
type response struct {
	status int
	header http.Header
	body   []byte
}

// tryDo sends a request with the given bearer key ("" for none) and body
// and reads the whole response.
func tryDo(ts *httptest.Server, method, path, key, body string) (response, error) {
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{resp.StatusCode, resp.Header, b}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{resp.StatusCode, resp.Header, b}, nil
}

// do is tryDo that fails the test on an error.
func do(t *testing.T, ts *httptest.Server, method, path, key, body string) response {
	t.Helper()
	r, err := tryDo(ts, method, path, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func post(t *testing.T, ts *httptest.Server, path, body string) response {
	t.Helper()
	return do(t, ts, http.MethodPost, path, testKey, body)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func searchBody(t *testing.T, maxResults int, q ...string) string {
	t.Helper()
	return mustJSON(t, pplx.SearchRequest{Query: q, MaxResults: maxResults})
}

func chatBody(t *testing.T, model string, stream bool, msg string) string {
	t.Helper()
	return mustJSON(t, chatRequest(model, stream, msg))
}

func chatRequest(model string, stream bool, msg string) pplx.ChatRequest {
	return pplx.ChatRequest{
		Model:  model,
		Stream: stream,
		Messages: []pplx.Message{
			{Role: "system", Content: "Be precise and concise."},
			{Role: "user", Content: msg},
		},
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v (body %q)", v, err, b)
	}
	return v
}

// sseFrames splits an event stream into the data of its frames.
func sseFrames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	blank := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			blank = true
			continue
		}
		if !blank {
			t.Fatalf("frame line %q does not follow a blank line", line)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("frame line %q: want a data: line", line)
		}
		out = append(out, data)
		blank = false
	}
	if !bytes.HasSuffix(b, []byte("\n\n")) {
		t.Errorf("stream does not end with a blank line: %q", b[max(0, len(b)-20):])
	}
	return out
}

// gate replaces the server's latency wait: each admitted request signals
// entered and waits for release or its context.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func installGate(s *Server) *gate {
	g := &gate{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s.sleep = func(ctx context.Context, d time.Duration) error {
		g.entered <- struct{}{}
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g
}
