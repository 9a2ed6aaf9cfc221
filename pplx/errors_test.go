package pplx

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewAPIError(t *testing.T) {
	html401 := "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n" +
		"<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>openresty/1.27.4</center>\r\n" +
		"<script>window.__CF$cv$params={r:'9a1b'};</script></body>\r\n</html>\r\n"
	tests := []struct {
		name     string
		status   int
		body     string
		wantType string
		wantMsg  string
		wantErr  string
	}{
		{"envelope 401", 401,
			`{"error":{"message":"Invalid API key provided. Ensure your API key is correct and active.","type":"invalid_api_key","code":401}}`,
			"invalid_api_key", "Invalid API key provided. Ensure your API key is correct and active.",
			"pplx: 401 invalid_api_key: Invalid API key provided. Ensure your API key is correct and active."},
		{"envelope 429", 429,
			`{"error":{"message":"Rate limit exceeded. Please slow down.","type":"request_rate_limit_exceeded","code":429}}`,
			"request_rate_limit_exceeded", "Rate limit exceeded. Please slow down.",
			"pplx: 429 request_rate_limit_exceeded: Rate limit exceeded. Please slow down."},
		{"envelope message list", 400,
			`{"error":{"message":"[\"At body -> max_tokens: Input should be greater than 0\"]","type":"bad_request","code":400}}`,
			"bad_request", "At body -> max_tokens: Input should be greater than 0",
			"pplx: 400 bad_request: At body -> max_tokens: Input should be greater than 0"},
		{"envelope string code and param", 400,
			`{"error":{"message":"invalid request body: json: unknown field \"X\"","type":"invalid_request","code":"400","param":"X"}}`,
			"invalid_request", `invalid request body: json: unknown field "X"`,
			`pplx: 400 invalid_request: invalid request body: json: unknown field "X"`},
		{"envelope odd code", 400,
			`{"error":{"message":"bad","type":"invalid_parameter","code":{"n":1},"param":null}}`,
			"invalid_parameter", "bad", "pplx: 400 invalid_parameter: bad"},
		{"envelope string", 500, `{"error":"boom"}`, "", "boom", "pplx: 500: boom"},
		{"detail string", 429, `{"detail":"Too Many Requests"}`, "", "Too Many Requests", "pplx: 429: Too Many Requests"},
		{"detail list", 422,
			`{"detail":[{"loc":["body","model"],"msg":"Field required","type":"missing"},{"loc":["body","messages",0,"content"],"msg":"Input should be a valid string","type":"string_type"}]}`,
			"", "body.model: Field required (missing); body.messages.0.content: Input should be a valid string (string_type)",
			"pplx: 422: body.model: Field required (missing); body.messages.0.content: Input should be a valid string (string_type)"},
		{"top-level message", 503, `{"message":"Service Unavailable","type":"overloaded"}`, "overloaded", "Service Unavailable", "pplx: 503 overloaded: Service Unavailable"},
		{"html page", 401, html401, "", "401 Authorization Required", "pplx: 401: 401 Authorization Required"},
		{"raw text", 502, "  upstream connect error\r\nor disconnect/reset before headers\n", "",
			"upstream connect error or disconnect/reset before headers", "pplx: 502: upstream connect error or disconnect/reset before headers"},
		{"broken json", 500, `{"error": {"message": "x"`, "", `{"error": {"message": "x"`, `pplx: 500: {"error": {"message": "x"`},
		{"empty body", 404, "", "", "", "pplx: 404: not found"},
		{"json without known keys", 418, `{"foo":1}`, "", `{"foo":1}`, `pplx: 418: {"foo":1}`},
		{"invalid utf8", 500, "bad \xff byte", "", "bad \uFFFD byte", "pplx: 500: bad \uFFFD byte"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"X-Test": {"1"}}
			e := newAPIError(tc.status, h, []byte(tc.body), func(s string) string { return s })
			if e.StatusCode != tc.status {
				t.Errorf("got status %d, want %d", e.StatusCode, tc.status)
			}
			if e.Type != tc.wantType {
				t.Errorf("got type %q, want %q", e.Type, tc.wantType)
			}
			if e.Message != tc.wantMsg {
				t.Errorf("got message %q, want %q", e.Message, tc.wantMsg)
			}
			if got := e.Error(); got != tc.wantErr {
				t.Errorf("got Error() %q, want %q", got, tc.wantErr)
			}
			if e.Header.Get("X-Test") != "1" {
				t.Errorf("got header %v, want the response's", e.Header)
			}
			if !strings.HasPrefix(tc.body, "\n") && e.Body != strings.ToValidUTF8(tc.body, "\uFFFD") {
				t.Errorf("got body %q, want %q", e.Body, tc.body)
			}
		})
	}
}

func TestAPIErrorOneLine(t *testing.T) {
	long := strings.Repeat("é", 2000) // 4000 bytes
	tests := []struct {
		name string
		e    *APIError
	}{
		{"long message", &APIError{StatusCode: 500, Message: long}},
		{"multi-line message", &APIError{StatusCode: 500, Type: "a\nb", Message: "line1\nline2\r\nline3\rline4\u2028"}},
		{"long raw body", newAPIError(502, nil, []byte(strings.Repeat("x ", 100_000)), func(s string) string { return s })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.e.Error()
			if strings.ContainsAny(got, "\r\n\u2028") {
				t.Errorf("got %q, want one line", got)
			}
			if len(got) > 2*maxMessage {
				t.Errorf("got %d bytes, want at most %d", len(got), 2*maxMessage)
			}
			if !strings.HasPrefix(got, "pplx: ") {
				t.Errorf("got %q, want the pplx: prefix", got)
			}
			if !utf8.ValidString(got) {
				t.Errorf("got invalid UTF-8 %q", got)
			}
		})
	}
}

func TestAPIErrorRedaction(t *testing.T) {
	const key = "pplx-0123456789abcdef"
	c := New("http://127.0.0.1", key, Options{})
	body := `{"error":{"message":"Invalid API key ` + key + `","type":"invalid_api_key ` + key + `","code":401}}`
	e := newAPIError(401, nil, []byte(body), c.redact)
	for name, s := range map[string]string{"Error": e.Error(), "Message": e.Message, "Type": e.Type, "Body": e.Body} {
		if strings.Contains(s, key) {
			t.Errorf("%s holds the API key: %q", name, s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("%s: got %q, want the key replaced by [redacted]", name, s)
		}
	}
}

func TestStreamErrorIs(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   []error
		msg  string
	}{
		{"clean", &StreamError{Events: 3}, []error{ErrTruncatedStream},
			"pplx: stream ended before its final event after 3 events"},
		{"cause", &StreamError{Events: 1, Err: errTest}, []error{ErrTruncatedStream, errTest},
			"pplx: stream ended before its final event after 1 events: test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range tc.is {
				if !errors.Is(tc.err, target) {
					t.Errorf("errors.Is(%v, %v): got false, want true", tc.err, target)
				}
			}
			if got := tc.err.Error(); got != tc.msg {
				t.Errorf("got %q, want %q", got, tc.msg)
			}
		})
	}
}

var errTest = errors.New("test")
