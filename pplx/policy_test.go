package pplx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	status := func(code int, typ string, kv ...string) error {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return &APIError{StatusCode: code, Type: typ, Message: "m", Header: h}
	}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"401", status(401, "invalid_api_key"), ClassJob},
		{"402", status(402, ""), ClassJob},
		{"403", status(403, "forbidden"), ClassJob},
		{"429 quota", status(429, "insufficient_quota"), ClassJob},
		{"429", status(429, "request_rate_limit_exceeded"), ClassRetry},
		{"429 should-retry false", status(429, "", "x-should-retry", "false"), ClassRow},
		{"400 should-retry true", status(400, "", "x-should-retry", "true"), ClassRetry},
		{"400", status(400, "invalid_request"), ClassRow},
		{"404", status(404, ""), ClassRow},
		{"413", status(413, "payload_too_large"), ClassRow},
		{"422", status(422, ""), ClassRow},
		{"408", status(408, ""), ClassRetry},
		{"409", status(409, ""), ClassRetry},
		{"500", status(500, "internal_error"), ClassRetry},
		{"503", status(503, ""), ClassRetry},
		{"reset", fmt.Errorf("post: %w", syscall.ECONNRESET), ClassRetry},
		{"unexpected EOF", io.ErrUnexpectedEOF, ClassRetry},
		{"cut stream", &StreamError{Err: io.EOF}, ClassRetry},
		{"garbage", &DecodeError{StatusCode: 200, Err: errors.New("invalid character")}, ClassRetry},
		{"attempt timeout", context.DeadlineExceeded, ClassRetry},
		{"cancelled", context.Canceled, ClassRow},
		{"nil", nil, ClassRow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	half := func() float64 { return 0.5 }
	one := func() float64 { return 0.999999 }
	hint := func(k, v string) error {
		return &APIError{StatusCode: 429, Header: http.Header{http.CanonicalHeaderKey(k): {v}}}
	}
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		err     error
		rnd     func() float64
		want    time.Duration
	}{
		{"first retry, full jitter", Backoff{}, 0, errors.New("x"), half, 250 * time.Millisecond},
		{"second retry", Backoff{}, 1, errors.New("x"), half, 500 * time.Millisecond},
		{"capped", Backoff{}, 10, errors.New("x"), half, 4 * time.Second},
		{"huge attempt", Backoff{}, 1000, errors.New("x"), half, 4 * time.Second},
		{"zero draw", Backoff{}, 3, errors.New("x"), func() float64 { return 0 }, 0},
		{"custom base and cap", Backoff{Base: time.Second, Max: 3 * time.Second}, 2, errors.New("x"), one, 2999997 * time.Microsecond},
		{"retry-after seconds", Backoff{}, 0, hint("Retry-After", "7"), half, 7 * time.Second},
		{"retry-after-ms wins", Backoff{}, 0, &APIError{StatusCode: 429, Header: http.Header{"Retry-After": {"7"}, "Retry-After-Ms": {"1500"}}}, half, 1500 * time.Millisecond},
		{"hint clamped by default", Backoff{}, 0, hint("Retry-After", "3600"), half, MaxRetryAfter},
		{"hint clamp configurable", Backoff{MaxRetryAfter: 10 * time.Second}, 0, hint("Retry-After", "30"), half, 10 * time.Second},
		{"hint clamp raised", Backoff{MaxRetryAfter: time.Hour}, 0, hint("Retry-After", "300"), half, 300 * time.Second},
		{"negative hint", Backoff{}, 0, hint("Retry-After", "-5"), half, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.attempt, tc.err, tc.rnd); got != tc.want {
				t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}
