package pplx

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Class says what a failed request means for a batch job.
type Class int

// The classes of [Classify].
const (
	// ClassRetry: the request may succeed if sent again (408, 409, 429,
	// 5xx, network errors, a stream cut before its final event, a 2xx
	// body that is not JSON, an Agent API run that failed), unless the
	// server said "x-should-retry: false".
	ClassRetry Class = iota + 1
	// ClassRow: the request itself is wrong (400, 404, 413, 422, ...), or
	// its Agent API run was cancelled or is incomplete; sending it again
	// cannot help, but other rows may succeed.
	ClassRow
	// ClassJob: the account cannot make requests at all (401, 402, 403, or
	// an error type naming quota, billing or credits), or the endpoint is
	// retired ([RetiredChat]); every other row would fail the same way,
	// so the job must stop.
	ClassJob
)

// String implements [fmt.Stringer].
func (c Class) String() string {
	switch c {
	case ClassRetry:
		return "retryable"
	case ClassRow:
		return "row"
	case ClassJob:
		return "job"
	}
	return "unknown"
}

// Classify returns the [Class] of the error of a failed request. nil and
// errors it does not know are ClassRow. A [*RunError] has the class its
// documentation gives. It is safe for concurrent use.
func Classify(err error) Class {
	if err == nil {
		return ClassRow
	}
	if re, ok := errors.AsType[*RunError](err); ok {
		return re.class()
	}
	if RetiredChat(err) {
		return ClassJob
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		switch ae.StatusCode {
		case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
			return ClassJob
		}
		if quotaText(ae.Type + " " + ae.Message) {
			return ClassJob
		}
	}
	if Retryable(err) {
		return ClassRetry
	}
	return ClassRow
}

// quotaText reports whether an error's type or message names an exhausted
// quota, billing problem or lack of credit.
func quotaText(s string) bool {
	s = strings.ToLower(s)
	for _, w := range []string{"insufficient_quota", "quota exceeded", "exceeded your quota", "billing", "insufficient credit", "out of credits"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Backoff computes how long to wait before retrying a failed request:
// exponential backoff with full jitter, unless the server names a delay.
// The zero value uses the defaults given with each field.
type Backoff struct {
	// Base is the first step; 0 means 500 ms.
	Base time.Duration
	// Max caps a step; 0 means 8 s.
	Max time.Duration
	// MaxRetryAfter caps a delay the server asks for (retry-after-ms or
	// Retry-After); 0 means [MaxRetryAfter] (120 s).
	MaxRetryAfter time.Duration
}

// Delay returns the wait before retry number attempt+1 (attempt counts the
// retries already taken) of a request that failed with err.
//
// A hint from the server wins: retry-after-ms, then Retry-After in seconds
// or as an HTTP-date (measured against the response's Date header when it
// has one), clamped to [0, MaxRetryAfter], without jitter. Otherwise the
// delay is drawn uniformly from [0, min(Max, Base×2^attempt)) ("full
// jitter"), which spreads retries of many workers best. rnd returns a
// number in [0, 1); nil means math/rand/v2's Float64. Delay is safe for
// concurrent use if rnd is.
func (b Backoff) Delay(attempt int, err error, rnd func() float64) time.Duration {
	base, ceil, hint := b.Base, b.Max, b.MaxRetryAfter
	if base <= 0 {
		base = retryBase
	}
	if ceil <= 0 {
		ceil = retryMax
	}
	if hint <= 0 {
		hint = MaxRetryAfter
	}
	if d, ok := hintDelay(err, hint); ok {
		return d
	}
	step := ceil
	if attempt = max(attempt, 0); attempt < 40 {
		step = min(ceil, base<<attempt)
		if step <= 0 { // overflow
			step = ceil
		}
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if !(r >= 0) {
		r = 0
	}
	return time.Duration(float64(step) * min(r, 1))
}
