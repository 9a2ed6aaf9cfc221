package pplx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxRetryAfter caps the delay [RetryAfter] and [RetryDelay] take from a
// server's hint.
const MaxRetryAfter = 120 * time.Second

// Backoff constants of [RetryDelay], the official SDKs' values.
const (
	retryBase = 500 * time.Millisecond
	retryMax  = 8 * time.Second
)

// Retryable reports whether a request that failed with err may succeed if
// sent again. It is true for:
//
//   - an [*APIError] whose response has "x-should-retry: true"; without
//     that header (or with a value other than "true" or "false"), one with
//     status 408, 409, 429 or >= 500, or an in-stream error frame that
//     carries no HTTP error status, so has the stream's 2xx status (a
//     server failure mid-answer);
//     "x-should-retry: false" makes any APIError final;
//   - a [*RunError] of ClassRetry: an Agent API run that failed, unless
//     its error code is a client error status (see [RunError]);
//   - a truncated stream ([ErrTruncatedStream]) and a 2xx body that is not
//     valid JSON ([*DecodeError]), unless it was too large ([ErrTooLarge]);
//   - network errors: connection reset, refused or aborted, broken pipe,
//     unexpected EOF, timeouts, and any other failure of the HTTP
//     transport (a [*url.Error] from the client), except certificate
//     verification failures and unknown hosts;
//   - [context.DeadlineExceeded], taken as the timeout of one attempt.
//
// It is false for nil, for [context.Canceled] (the caller gave up), and
// for everything else. A caller whose own context has expired must check
// that itself before retrying. Retryable is safe for concurrent use.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if re, ok := errors.AsType[*RunError](err); ok {
		return re.class() == ClassRetry
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		switch strings.ToLower(strings.TrimSpace(ae.Header.Get("x-should-retry"))) {
		case "true":
			return true
		case "false":
			return false
		}
		s := ae.StatusCode
		return s == http.StatusRequestTimeout || s == http.StatusConflict ||
			s == http.StatusTooManyRequests || s >= 500 || (s >= 200 && s < 300)
	}
	if errors.Is(err, ErrTooLarge) {
		return false
	}
	if errors.Is(err, ErrTruncatedStream) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if _, ok := errors.AsType[*DecodeError](err); ok {
		return true
	}
	if isPermanentNetError(err) {
		return false
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT):
		return true
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		// Any failure of the transport: a reset or closed connection, an
		// HTTP/2 GOAWAY or stream error, a timeout, a dial error.
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		return ne.Timeout() || isOpError(err)
	}
	return false
}

// isOpError reports whether err holds a *net.OpError.
func isOpError(err error) bool {
	_, ok := errors.AsType[*net.OpError](err)
	return ok
}

// isPermanentNetError reports transport failures that repeating the
// request will not fix: certificate verification failures and unknown
// hosts.
func isPermanentNetError(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		return de.IsNotFound
	}
	return false
}

// RetryDelay returns how long to wait before retry number attempt+1 of a
// request that failed with err; attempt is the number of retries already
// taken (0 before the first retry).
//
// A server hint wins: when err is an [*APIError] whose headers carry one
// ([RetryAfter]), that delay is returned as is, without jitter, clamped
// to [0, MaxRetryAfter]. An HTTP-date hint is measured against the
// response's Date header when it has one, else against the local clock.
//
// Otherwise the delay is the official SDKs' backoff: 0.5 s × 2^attempt,
// capped at 8 s, times a jitter factor (1 − 0.25·rnd()), so between 75%
// and 100% of the step: 0.375–0.5 s, 0.75–1 s, 1.5–2 s, 3–4 s, then 6–8 s.
// This keeps a floor under every wait (the rate limiter spreads requests
// already; the jitter only has to break up lockstep retries). rnd returns
// a number in [0, 1), values outside are clamped; nil means math/rand/v2's
// Float64. A negative attempt counts as 0. RetryDelay is safe for
// concurrent use if rnd is.
func RetryDelay(attempt int, err error, rnd func() float64) time.Duration {
	if d, ok := hintDelay(err, MaxRetryAfter); ok {
		return d
	}
	attempt = max(attempt, 0)
	step := retryMax
	if attempt < 5 { // 0.5 s × 2^5 = 16 s > 8 s
		step = retryBase << attempt
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if !(r >= 0) { // also NaN
		r = 0
	}
	r = min(r, 1)
	return time.Duration(float64(step) * (1 - 0.25*r))
}

// RetryAfter returns the delay a response's headers ask for before a
// retry, and whether they ask for one. It reads, in order:
//
//   - "retry-after-ms": milliseconds, an integer or a decimal fraction;
//   - "Retry-After": seconds, an integer or a decimal fraction;
//   - "Retry-After": an HTTP-date (RFC 1123, RFC 850 or ANSI C form),
//     measured from now.
//
// A header that does not parse is skipped. A hint in the past or negative
// gives 0; a hint over [MaxRetryAfter] gives MaxRetryAfter. RetryAfter is
// safe for concurrent use.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	return retryAfter(h, now, MaxRetryAfter)
}

func retryAfter(h http.Header, now time.Time, limit time.Duration) (time.Duration, bool) {
	clampDelay := func(ns float64) time.Duration { return clampTo(ns, limit) }
	if h == nil {
		return 0, false
	}
	if v := h.Get("retry-after-ms"); v != "" {
		if f, ok := parseDecimal(v); ok {
			return clampDelay(f * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if f, ok := parseDecimal(v); ok {
		return clampDelay(f * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampDelay(float64(t.Sub(now))), true
	}
	return 0, false
}

// parseDecimal parses an optionally signed decimal number with an optional
// fraction ("2", "0.1", "-1", "1.5e3" is refused): strconv.ParseFloat alone
// would also take "Inf", "NaN", hex floats and underscores.
func parseDecimal(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" || body == "." {
		return 0, false
	}
	dot := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// hintDelay returns the delay the response behind err asks for before a
// retry (retry-after-ms, else Retry-After), clamped to [0, limit]. An
// HTTP-date is measured against the response's Date header when it has one,
// so the server's clock is the reference.
func hintDelay(err error, limit time.Duration) (time.Duration, bool) {
	ae, ok := errors.AsType[*APIError](err)
	if !ok || ae.Header == nil {
		return 0, false
	}
	now := time.Now()
	if d, err := http.ParseTime(ae.Header.Get("Date")); err == nil {
		now = d
	}
	return retryAfter(ae.Header, now, limit)
}

// clampTo converts nanoseconds to a Duration in [0, limit].
func clampTo(ns float64, limit time.Duration) time.Duration {
	switch {
	case math.IsNaN(ns) || ns <= 0:
		return 0
	case ns >= float64(limit):
		return limit
	}
	return time.Duration(ns)
}
