// Package pplx is a client for the Perplexity HTTP API: the Search API
// (POST /search), the Agent API (POST /v1/agent, plain, streamed or as a
// background run polled and cancelled by id) and OpenAI-compatible Chat
// Completions (POST /chat/completions), which Perplexity itself retired
// on 2026-09-27 ([RetiredChat]).
//
// A [Client] makes one attempt per call and reports, besides the answer,
// the response's [Meta] (status, headers, request id, latency), also on
// error, so that a rate limiter can learn from every response. Failures
// are typed: [*APIError] for error answers of the API, [*RunError] for
// Agent API runs that failed, were cancelled or are incomplete (answered
// with HTTP 200), [*StreamError] (matching [ErrTruncatedStream]) for
// streams cut before their end, and [*DecodeError] for 2xx bodies that
// are not the expected JSON. The caller
// drives retries with [Retryable] and [RetryDelay], because every attempt
// must pass its rate limiter first.
//
// The API key is sent only in the Authorization header; the client
// removes it from every error it returns.
package pplx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultMaxConns is the connection pool size of [NewTransport] when asked
// for none, the official Python SDK's pool size.
const defaultMaxConns = 100

// defaultUserAgent is the User-Agent of a [Client] whose Options leave it
// empty.
const defaultUserAgent = "pplx-batch"

// After a response was used, the client reads what is left of its body (at
// most drainLimit bytes, for at most drainGrace) so that the connection can
// be reused, then closes it.
const (
	drainLimit = 256 << 10
	drainGrace = time.Second
)

// Options configures a [Client]. The zero value is ready to use.
type Options struct {
	// HTTPClient sends the requests. Nil means a client on
	// NewTransport(MaxConns), without a timeout: bound each call with its
	// context instead.
	HTTPClient *http.Client
	// MaxConns is the number of idle connections the default transport
	// keeps to the API host; it should be at least the number of requests
	// in flight. Zero or negative means 100. Ignored when HTTPClient is
	// set.
	MaxConns int
	// UserAgent is the User-Agent header. Empty means "pplx-batch".
	UserAgent string
}

// Meta describes the HTTP response to one call. It is returned whenever
// the call was attempted, also with an error: StatusCode is 0 when no
// response arrived (a transport error or a cancelled context).
type Meta struct {
	// StatusCode is the HTTP status of the response, 0 if none arrived.
	StatusCode int
	// Header holds the response headers; nil if no response arrived.
	Header http.Header
	// RequestID identifies the request: the id of the response body (or
	// of a stream's chunks) when there is one, else the x-request-id or
	// request-id header.
	RequestID string
	// Latency is the time from sending the request to receiving the
	// response headers (or to the transport error).
	Latency time.Duration
}

// Client calls the Perplexity API. It is safe for concurrent use by
// multiple goroutines. Its zero value is not usable; call [New].
type Client struct {
	base   string
	key    string
	ua     string
	hc     *http.Client
	urlErr error         // a bad base URL, returned by every call
	grace  time.Duration // drainGrace; shorter in tests
}

// New returns a client for the API at baseURL (such as
// "https://api.perplexity.ai"; a trailing slash is ignored) that
// authenticates with apiKey. A base URL that is not an absolute http or
// https URL makes every call fail with a non-retryable error.
func New(baseURL, apiKey string, opt Options) *Client {
	c := &Client{
		base:  strings.TrimRight(strings.TrimSpace(baseURL), "/"),
		key:   apiKey,
		ua:    opt.UserAgent,
		hc:    opt.HTTPClient,
		grace: drainGrace,
	}
	if c.ua == "" {
		c.ua = defaultUserAgent
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: NewTransport(opt.MaxConns)}
	}
	u, err := url.Parse(c.base)
	switch {
	case err != nil:
		// The parse error repeats the URL; it is left out.
		c.urlErr = errors.New("pplx: base url does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		c.urlErr = fmt.Errorf("pplx: base url %q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		c.urlErr = fmt.Errorf("pplx: base url %q: no host", u.Redacted())
	}
	return c
}

// NewTransport returns an HTTP transport tuned for many concurrent
// requests to one host: a clone of [http.DefaultTransport] (proxy from the
// environment, HTTP/2 attempted) that keeps up to maxConns idle
// connections to the host (zero or negative means 100), with a 10 s dial
// and TLS handshake timeout, 30 s TCP keep-alives and a 90 s idle timeout.
// Share one transport among all the clients of a run.
func NewTransport(maxConns int) *http.Transport {
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = d.DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.MaxIdleConnsPerHost = maxConns
	t.MaxIdleConns = max(t.MaxIdleConns, maxConns)
	t.ForceAttemptHTTP2 = true
	return t
}

// Search sends one POST /search request and returns the decoded answer.
// It blocks until the answer is read or ctx is done. The returned Meta is
// non-nil (see [Meta]). Errors are described in the package
// documentation.
func (c *Client) Search(ctx context.Context, req *SearchRequest) (*SearchResponse, *Meta, error) {
	if req == nil {
		return nil, &Meta{}, errors.New("pplx: nil search request")
	}
	resp, meta, err := c.post(ctx, SearchPath, req, false)
	if err != nil {
		return nil, meta, err
	}
	b, err := c.readBody(ctx, resp)
	if err != nil {
		return nil, meta, err
	}
	out, err := decodeSearch(b)
	if err != nil {
		return nil, meta, c.decodeError(resp, b, err)
	}
	if out.ID != "" {
		meta.RequestID = out.ID
	}
	return &out, meta, nil
}

// Chat sends one POST /chat/completions request and returns the answer. It
// blocks until the answer is read or ctx is done. The returned Meta is
// non-nil (see [Meta]).
//
// When req.Stream is true it reads the server-sent events up to
// "data: [DONE]" and returns them assembled into one response with a
// single choice: its message content is the concatenation of the chunks'
// choices[0].delta.content, or, if no chunk had a delta, the last
// choices[0].message.content (servers that send the running text); its
// finish_reason is the last one sent; ID, Model and Created are the last
// non-empty ones; Citations, SearchResults and Usage (with its cost) are
// the last non-empty ones, normally the final frame's. A stream that ends
// before [DONE] gives a [*StreamError]; an "event: error" frame, or a data
// frame holding an {"error": ...} object, gives an [*APIError]. If the
// server answers a streamed request with another Content-Type than
// text/event-stream (such as plain JSON), the body is decoded as JSON. A
// [Trace] in ctx (see [WithTrace]) hears when a stream starts.
func (c *Client) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, *Meta, error) {
	if req == nil {
		return nil, &Meta{}, errors.New("pplx: nil chat request")
	}
	resp, meta, err := c.post(ctx, ChatPath, req, req.Stream)
	if err != nil {
		return nil, meta, err
	}
	if !req.Stream || !isEventStream(resp.Header) {
		var out ChatResponse
		if err := c.decodeBody(ctx, resp, &out); err != nil {
			return nil, meta, err
		}
		if out.ID != "" {
			meta.RequestID = out.ID
		}
		return &out, meta, nil
	}
	traceOf(ctx).streamStarted(meta)
	out, err := c.readStream(ctx, resp)
	if out != nil && out.ID != "" {
		meta.RequestID = out.ID
	}
	if err != nil {
		return nil, meta, err
	}
	return out, meta, nil
}

// post sends a JSON request. On a 2xx answer it returns the response, whose
// body the caller must finish; otherwise it returns an error and has closed
// the body.
func (c *Client) post(ctx context.Context, path string, in any, stream bool) (*http.Response, *Meta, error) {
	return c.send(ctx, http.MethodPost, path, in, stream)
}

// send is post for any method; a nil in sends no body.
func (c *Client) send(ctx context.Context, method, path string, in any, stream bool) (*http.Response, *Meta, error) {
	meta := &Meta{}
	if c.urlErr != nil {
		return nil, meta, c.urlErr
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, meta, fmt.Errorf("pplx: encode %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		// Not wrapped: a *url.Error here is a bad URL, not a network
		// failure, and must not look retryable.
		return nil, meta, fmt.Errorf("pplx: build %s request: %s", path, c.redact(err.Error()))
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.ua)

	start := time.Now()
	resp, err := c.hc.Do(req)
	meta.Latency = time.Since(start)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return nil, meta, fmt.Errorf("pplx: %s: %w", path, cerr)
		}
		return nil, meta, fmt.Errorf("pplx: %w", err)
	}
	meta.StatusCode = resp.StatusCode
	meta.Header = resp.Header
	meta.RequestID = resp.Header.Get("X-Request-Id")
	if meta.RequestID == "" {
		meta.RequestID = resp.Header.Get("Request-Id")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A body cut short still tells what went wrong: keep what arrived.
		// Read past the limit by the key's length, so that a key cut by
		// the limit is still found and removed.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+int64(len(c.key))))
		c.finish(resp.Body)
		return nil, meta, newAPIError(resp.StatusCode, resp.Header, b, c.redact)
	}
	return resp, meta, nil
}

// decodeBody reads a 2xx body (at most MaxBodyBytes), closes it and
// decodes it into out.
func (c *Client) decodeBody(ctx context.Context, resp *http.Response, out any) error {
	b, err := c.readBody(ctx, resp)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return c.decodeError(resp, b, err)
	}
	return nil
}

// readBody reads a 2xx body (at most MaxBodyBytes) and closes it.
func (c *Client) readBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	c.finish(resp.Body)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("pplx: read response: %w", cerr)
		}
		return nil, fmt.Errorf("pplx: read response: %w", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, c.decodeError(resp, nil, fmt.Errorf("body over %d bytes: %w", MaxBodyBytes, ErrTooLarge))
	}
	return b, nil
}

// decodeError builds a *DecodeError with a snippet of b.
func (c *Client) decodeError(resp *http.Response, b []byte, err error) *DecodeError {
	// Cut after redaction, so that no part of the key survives a cut.
	if n := 2*maxMessage + len(c.key); len(b) > n {
		b = b[:n]
	}
	return &DecodeError{
		StatusCode:  resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
		Snippet:     oneLine(c.redact(string(b)), maxMessage),
		Err:         err,
	}
}

// streamChunk is one data frame of a chat stream: a chunk, or an error
// object sent as data.
type streamChunk struct {
	ChatResponse
	Error json.RawMessage `json:"error"`
}

// readStream reads a chat stream up to [DONE] and assembles it. It closes
// the body: after [DONE] it finishes it for reuse of the connection, after
// an error it closes it at once. On error the partial response is returned
// too (for its id).
func (c *Client) readStream(ctx context.Context, resp *http.Response) (_ *ChatResponse, err error) {
	defer func() {
		if err == nil {
			c.finish(resp.Body)
		} else {
			_ = resp.Body.Close()
		}
	}()
	var a assembler
	sr := NewSSEReader(resp.Body)
	for n := 0; ; n++ {
		ev, err := sr.Next()
		if err != nil {
			return a.result(), c.streamEnd(ctx, resp, "chat", n, err)
		}
		if ev.Type == "error" {
			return a.result(), c.streamError(resp, ev.Data)
		}
		if bytes.HasPrefix(ev.Data, []byte("[DONE]")) {
			return a.result(), nil
		}
		if len(bytes.TrimSpace(ev.Data)) == 0 {
			continue
		}
		var ch streamChunk
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			return a.result(), c.decodeError(resp, ev.Data, fmt.Errorf("stream event %d: %w", n+1, err))
		}
		if e := bytes.TrimSpace(ch.Error); len(e) > 0 && !bytes.Equal(e, []byte("null")) {
			return a.result(), c.streamError(resp, ev.Data)
		}
		a.add(&ch.ChatResponse)
	}
}

// streamEnd returns the error of a stream of this kind whose read failed
// with err after n events: the context's error if it is done, a
// *DecodeError for an event too large, else a *StreamError.
func (c *Client) streamEnd(ctx context.Context, resp *http.Response, kind string, n int, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("pplx: read %s stream: %w", kind, cerr)
	}
	if errors.Is(err, ErrTooLarge) {
		return c.decodeError(resp, nil, err)
	}
	if err == io.EOF {
		err = nil
	}
	return &StreamError{Events: n, Err: err}
}

// streamError builds the *APIError of an error frame of a stream.
func (c *Client) streamError(resp *http.Response, data []byte) *APIError {
	status := resp.StatusCode
	var env struct {
		Error struct {
			Code FlexInt `json:"code"`
		} `json:"error"`
		Code FlexInt `json:"code"`
	}
	if json.Unmarshal(data, &env) == nil {
		for _, code := range []FlexInt{env.Error.Code, env.Code} {
			if code >= 400 && code <= 599 {
				status = int(code)
				break
			}
		}
	}
	return newAPIError(status, resp.Header, data, c.redact)
}

// assembler gathers the chunks of a chat stream into one response.
type assembler struct {
	id, model, role, finish string
	created                 int64
	content                 strings.Builder
	deltas                  bool
	aggregate               string
	usage                   *Usage
	citations               []string
	results                 []ChatSearchResult
}

// add takes in one chunk.
func (a *assembler) add(c *ChatResponse) {
	if c.ID != "" {
		a.id = c.ID
	}
	if c.Model != "" {
		a.model = c.Model
	}
	if c.Created != 0 {
		a.created = c.Created
	}
	if len(c.Choices) > 0 {
		ch := &c.Choices[0]
		if ch.Delta.Content != "" {
			a.content.WriteString(ch.Delta.Content)
			a.deltas = true
		}
		if ch.Message.Content != "" {
			a.aggregate = ch.Message.Content
		}
		if r := ch.Delta.Role; r != "" {
			a.role = r
		} else if r := ch.Message.Role; r != "" {
			a.role = r
		}
		if ch.FinishReason != "" {
			a.finish = ch.FinishReason
		}
	}
	if c.Usage != nil {
		a.usage = c.Usage
	}
	if len(c.Citations) > 0 {
		a.citations = c.Citations
	}
	if len(c.SearchResults) > 0 {
		a.results = c.SearchResults
	}
}

// result returns the assembled response.
func (a *assembler) result() *ChatResponse {
	content := a.aggregate
	if a.deltas {
		content = a.content.String()
	}
	role := a.role
	if role == "" {
		role = "assistant"
	}
	return &ChatResponse{
		ID:      a.id,
		Model:   a.model,
		Created: a.created,
		Object:  "chat.completion",
		Choices: []Choice{{
			FinishReason: a.finish,
			Message:      Message{Role: role, Content: content},
		}},
		Usage:         a.usage,
		Citations:     a.citations,
		SearchResults: a.results,
	}
}

// redact removes the API key from s.
func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

// isEventStream reports whether h declares a text/event-stream body, or
// no Content-Type at all.
func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// finish reads what is left of a body, at most drainLimit bytes and for
// at most c.grace, so that its connection can be reused, and closes it. It
// never blocks for longer than c.grace: a server that holds the response
// open has its connection closed.
func (c *Client) finish(body io.ReadCloser) {
	t := time.AfterFunc(c.grace, func() { _ = body.Close() })
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	t.Stop()
	_ = body.Close()
}
