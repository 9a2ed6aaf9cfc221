package pplx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrTruncatedStream reports a stream that ended (cleanly or by a cut
// connection) before its final event: a chat stream before its "data: [DONE]"
// frame, an Agent API stream before its terminal event. Errors returned for such
// streams are *[StreamError] values that match it with [errors.Is]. A
// truncated stream is [Retryable].
var ErrTruncatedStream = errors.New("pplx: stream ended before its final event")

// ErrTooLarge reports a response body or a server-sent event larger than
// this package reads ([MaxBodyBytes], [MaxEventBytes]). It is not
// [Retryable]: the same request would most likely get the same answer.
var ErrTooLarge = errors.New("pplx: response too large")

// MaxBodyBytes is the largest non-streamed response body the client
// reads. A larger body fails with an error wrapping [ErrTooLarge].
const MaxBodyBytes = 32 << 20

// maxErrorBody is how much of a non-2xx body is read and kept in
// [APIError.Body]; the rest is discarded.
const maxErrorBody = 64 << 10

// maxMessage is the longest message, in bytes, that [APIError.Error] and
// [DecodeError.Error] print.
const maxMessage = 512

// APIError is an error answer of the API: any non-2xx response, or an
// "event: error" frame inside a stream.
//
// Type and Message are decoded from the body, trying in order the
// {"error":{"message","type","code"}} envelope, FastAPI's {"detail": ...}
// (a string, or a list of {loc, msg, type}), an HTML page's title, and the
// raw text. For a stream's error frame, StatusCode is the frame's own
// "code" when that is an HTTP error status, else the status of the stream
// response (200). Header holds the response headers (the caller may read
// rate-limit and retry hints from it). Body is the raw body, at most 64
// KiB. The client removes its API key from Message and Body.
type APIError struct {
	StatusCode int
	Type       string
	Message    string
	Header     http.Header
	Body       string
}

// Error returns one line: "pplx: <status> <type>: <message>", with the
// type left out when empty and the message shortened to about 512 bytes.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("pplx: ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Type != "" {
		b.WriteByte(' ')
		b.WriteString(oneLine(e.Type, 64))
	}
	msg := oneLine(e.Message, maxMessage)
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.StatusCode))
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// DecodeError reports a 2xx response whose body, or one of whose stream
// chunks, is not the JSON this package expects: typically a proxy's HTML
// page or a body cut short. It is [Retryable] unless it wraps
// [ErrTooLarge].
type DecodeError struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// ContentType is the response's Content-Type header.
	ContentType string
	// Snippet is the start of the offending body or chunk, one line, at
	// most about 512 bytes, with the API key removed.
	Snippet string
	// Err is the decoding error.
	Err error
}

// Error returns one line naming the status, the cause and the snippet.
func (e *DecodeError) Error() string {
	s := fmt.Sprintf("pplx: bad %d response body: %v", e.StatusCode, e.Err)
	if e.Snippet != "" {
		s += ": " + strconv.Quote(e.Snippet)
	}
	return s
}

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// StreamError reports a stream that ended before its final event: a chat stream
// before its "data: [DONE]" frame, an Agent API stream before its terminal
// event. It matches [ErrTruncatedStream] with [errors.Is], and also
// matches Err, the read error that ended the stream (nil for a clean end
// of the body, io.ErrUnexpectedEOF when it ended mid-event, or a network
// error such as a connection reset).
type StreamError struct {
	// Events is the number of events read before the stream ended.
	Events int
	// Err is the read error that ended the stream; nil for a clean EOF.
	Err error
	// RunID is the id of the Agent API run the stream belonged to, when
	// its response.created event came before the end ("" otherwise).
	// The run goes on without the stream: [Client.AgentRun] can collect
	// it, unless it was created with store false.
	RunID string
}

// Error returns one line naming the number of events read and the cause.
func (e *StreamError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("pplx: stream ended before its final event after %d events", e.Events)
	}
	return fmt.Sprintf("pplx: stream ended before its final event after %d events: %v", e.Events, e.Err)
}

// Unwrap returns [ErrTruncatedStream] and Err.
func (e *StreamError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrTruncatedStream}
	}
	return []error{ErrTruncatedStream, e.Err}
}

// newAPIError decodes an error body. redact removes secrets from text
// taken from the body; it runs before any text is shortened, so that no
// part of a secret survives a cut.
func newAPIError(status int, header http.Header, body []byte, redact func(string) string) *APIError {
	e := &APIError{StatusCode: status, Header: header}
	b := redact(string(body))
	if len(b) > maxErrorBody {
		cut := maxErrorBody
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = b[:cut]
	}
	e.Body = strings.ToValidUTF8(b, "\uFFFD")
	e.Type, e.Message = decodeErrorBody([]byte(b))
	// Again, for a key the body had in escaped form.
	e.Type, e.Message = redact(e.Type), redact(e.Message)
	return e
}

// decodeErrorBody returns the error type and message of an error body.
func decodeErrorBody(body []byte) (typ, msg string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return "", ""
	}
	if trimmed[0] == '{' {
		var env struct {
			Error  json.RawMessage `json:"error"`
			Detail json.RawMessage `json:"detail"`
			// Some gateways put the message at the top level.
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if json.Unmarshal(trimmed, &env) == nil {
			if t, m, ok := decodeEnvelope(env.Error); ok {
				return t, m
			}
			if m, ok := decodeDetail(env.Detail); ok {
				return "", m
			}
			if env.Message != "" {
				return env.Type, unwrapMessageList(env.Message)
			}
		}
	}
	if m, ok := htmlTitle(trimmed); ok {
		return "", m
	}
	return "", oneLine(string(trimmed), maxMessage)
}

// decodeEnvelope decodes the value of an "error" key: an object
// {"message","type","code"} or a bare string.
func decodeEnvelope(raw json.RawMessage) (typ, msg string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", "", false
		}
		return "", unwrapMessageList(s), true
	}
	var d ErrorDetail
	if json.Unmarshal(raw, &d) != nil {
		// Decode the two strings alone: a code or param of an unexpected
		// shape must not lose them.
		var loose struct {
			Message json.RawMessage `json:"message"`
			Type    json.RawMessage `json:"type"`
		}
		if json.Unmarshal(raw, &loose) != nil {
			return "", "", false
		}
		d.Message = jsonText(loose.Message)
		d.Type = jsonText(loose.Type)
	}
	if d.Message == "" && d.Type == "" {
		return "", "", false
	}
	return d.Type, unwrapMessageList(d.Message), true
}

// jsonText returns a JSON string's value, or the raw JSON of any other
// value.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// unwrapMessageList turns a message that is itself a JSON list of strings
// (as in "[\"At body -> max_tokens: ...\"]") into the strings joined by
// "; ". Any other message is returned as is.
func unwrapMessageList(m string) string {
	t := strings.TrimSpace(m)
	if !strings.HasPrefix(t, "[") {
		return m
	}
	var l []string
	if json.Unmarshal([]byte(t), &l) != nil || len(l) == 0 {
		return m
	}
	return strings.Join(l, "; ")
}

// decodeDetail decodes FastAPI's "detail": a string, or a list of
// {"loc": [...], "msg": "...", "type": "..."}.
func decodeDetail(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '[':
		var items []struct {
			Loc  []json.RawMessage `json:"loc"`
			Msg  string            `json:"msg"`
			Type string            `json:"type"`
		}
		if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
			return "", false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			locs := make([]string, 0, len(it.Loc))
			for _, l := range it.Loc {
				locs = append(locs, jsonText(l))
			}
			p := it.Msg
			if len(locs) > 0 {
				p = strings.Join(locs, ".") + ": " + p
			}
			if it.Type != "" {
				p += " (" + it.Type + ")"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "; "), true
	}
	return "", false
}

// htmlTitle returns the text of an HTML page's <title>, if body looks like
// HTML and has a non-empty one.
func htmlTitle(body []byte) (string, bool) {
	if len(body) == 0 || body[0] != '<' {
		return "", false
	}
	head := body
	if len(head) > maxErrorBody {
		head = head[:maxErrorBody]
	}
	lower := bytes.ToLower(head)
	i := bytes.Index(lower, []byte("<title"))
	if i < 0 {
		return "", false
	}
	j := bytes.IndexByte(lower[i:], '>')
	if j < 0 {
		return "", false
	}
	start := i + j + 1
	k := bytes.Index(lower[start:], []byte("</title"))
	if k < 0 {
		return "", false
	}
	t := oneLine(string(head[start:start+k]), maxMessage)
	return t, t != ""
}

// oneLine collapses all runs of white space (including line breaks) in s to
// single spaces, trims it, replaces invalid UTF-8, and shortens it to at
// most max bytes (cut at a rune boundary, with "..." appended).
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
