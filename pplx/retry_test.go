package pplx

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func apiErr(status int, kv ...string) *APIError {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &APIError{StatusCode: status, Header: h}
}

func urlErr(err error) error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1/search", Err: err}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"400", apiErr(400), false},
		{"401", apiErr(401), false},
		{"402", apiErr(402), false},
		{"403", apiErr(403), false},
		{"404", apiErr(404), false},
		{"413", apiErr(413), false},
		{"422", apiErr(422), false},
		{"302", apiErr(302), false},
		{"408", apiErr(408), true},
		{"409", apiErr(409), true},
		{"429", apiErr(429), true},
		{"500", apiErr(500), true},
		{"502", apiErr(502), true},
		{"503", apiErr(503), true},
		{"504", apiErr(504), true},
		{"in-stream error", apiErr(200), true},
		{"429 should-retry false", apiErr(429, "X-Should-Retry", "false"), false},
		{"500 should-retry FALSE", apiErr(500, "X-Should-Retry", " FALSE "), false},
		{"400 should-retry true", apiErr(400, "X-Should-Retry", "true"), true},
		{"400 should-retry junk", apiErr(400, "X-Should-Retry", "maybe"), false},
		{"nil header", &APIError{StatusCode: 503}, true},
		{"wrapped 429", fmt.Errorf("row 3: %w", apiErr(429)), true},
		{"wrapped 401", fmt.Errorf("row 3: %w", apiErr(401)), false},
		{"stream error", &StreamError{Events: 2, Err: io.ErrUnexpectedEOF}, true},
		{"truncated sentinel", ErrTruncatedStream, true},
		{"decode error", &DecodeError{StatusCode: 200, Err: errTest}, true},
		{"decode too large", &DecodeError{StatusCode: 200, Err: fmt.Errorf("x: %w", ErrTooLarge)}, false},
		{"too large", ErrTooLarge, false},
		{"canceled", context.Canceled, false},
		{"canceled in url error", urlErr(context.Canceled), false},
		{"canceled wrapped", fmt.Errorf("pplx: %w", urlErr(context.Canceled)), false},
		{"deadline", context.DeadlineExceeded, true},
		{"deadline in url error", urlErr(context.DeadlineExceeded), true},
		{"unexpected eof", io.ErrUnexpectedEOF, true},
		{"eof from transport", urlErr(io.EOF), true},
		{"bare eof", io.EOF, false},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"reset bare", syscall.ECONNRESET, true},
		{"refused", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"timeout", timeoutErr{}, true},
		{"timeout in url error", urlErr(timeoutErr{}), true},
		{"op error", &net.OpError{Op: "read", Net: "tcp", Err: errTest}, true},
		{"unknown transport failure", urlErr(errors.New("http2: server sent GOAWAY and closed the connection")), true},
		{"no such host", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}), false},
		{"dns timeout", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}}), true},
		{"unknown authority", urlErr(x509.UnknownAuthorityError{}), false},
		{"hostname", urlErr(x509.HostnameError{Host: "x"}), false},
		{"plain error", errTest, false},
		{"line too large", fmt.Errorf("pplx: %w", ErrTooLarge), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v): got %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestRetryDelay(t *testing.T) {
	const date = "Wed, 21 Oct 2026 07:28:00 GMT"
	tests := []struct {
		name    string
		attempt int
		err     error
		rnd     func() float64
		want    time.Duration
	}{
		{"first retry, no jitter", 0, apiErr(500), fixed(0), 500 * time.Millisecond},
		{"first retry, half jitter", 0, apiErr(500), fixed(0.5), 437500 * time.Microsecond},
		{"first retry, 3/4 jitter", 0, errTest, fixed(0.75), 406250 * time.Microsecond},
		{"second retry", 1, errTest, fixed(0), time.Second},
		{"third retry", 2, errTest, fixed(1), 1500 * time.Millisecond},
		{"fourth retry", 3, errTest, fixed(0), 4 * time.Second},
		{"fifth retry capped", 4, errTest, fixed(0), 8 * time.Second},
		{"sixth retry capped", 5, errTest, fixed(0), 8 * time.Second},
		{"huge attempt", 1000, errTest, fixed(0), 8 * time.Second},
		{"max int attempt", math.MaxInt, errTest, fixed(0.5), 7 * time.Second},
		{"negative attempt", -3, errTest, fixed(0), 500 * time.Millisecond},
		{"rnd NaN", 0, errTest, fixed(math.NaN()), 500 * time.Millisecond},
		{"rnd negative", 0, errTest, fixed(-5), 500 * time.Millisecond},
		{"rnd above one", 0, errTest, fixed(7), 375 * time.Millisecond},
		{"nil error", 1, nil, fixed(0), time.Second},
		{"retry-after seconds", 0, apiErr(429, "Retry-After", "3"), fixed(0.5), 3 * time.Second},
		{"retry-after float", 3, apiErr(429, "Retry-After", "0.1"), fixed(0.5), 100 * time.Millisecond},
		{"retry-after-ms wins", 0, apiErr(429, "Retry-After", "3", "Retry-After-Ms", "1500.5"), fixed(0.5), 1500500 * time.Microsecond},
		{"retry-after zero", 4, apiErr(503, "Retry-After", "0"), fixed(0), 0},
		{"retry-after capped", 0, apiErr(429, "Retry-After", "1000"), fixed(0), MaxRetryAfter},
		{"retry-after date from Date", 0, apiErr(429, "Date", date, "Retry-After", "Wed, 21 Oct 2026 07:28:30 GMT"), fixed(0), 30 * time.Second},
		{"retry-after date in the past", 0, apiErr(429, "Date", date, "Retry-After", "Wed, 21 Oct 2026 07:27:00 GMT"), fixed(0), 0},
		{"retry-after garbage", 1, apiErr(429, "Retry-After", "soon"), fixed(0), time.Second},
		{"wrapped api error hint", 0, fmt.Errorf("x: %w", apiErr(429, "Retry-After", "2")), fixed(0), 2 * time.Second},
		{"hint on non-retryable status still read", 0, apiErr(400, "Retry-After", "2"), fixed(0), 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryDelay(tc.attempt, tc.err, tc.rnd); got != tc.want {
				t.Errorf("RetryDelay(%d, %v): got %v, want %v", tc.attempt, tc.err, got, tc.want)
			}
		})
	}
}

func TestRetryDelayDefaultRand(t *testing.T) {
	for attempt := range 8 {
		step := min(500*time.Millisecond<<attempt, 8*time.Second)
		for range 50 {
			got := RetryDelay(attempt, errTest, nil)
			if got < step*3/4 || got > step {
				t.Fatalf("attempt %d: got %v, want within [%v, %v]", attempt, got, step*3/4, step)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		wantOK bool
	}{
		{"nil header", nil, 0, false},
		{"no hint", http.Header{"X-Other": {"1"}}, 0, false},
		{"ms integer", http.Header{"Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{"ms fraction", http.Header{"Retry-After-Ms": {"0.5"}}, 500 * time.Microsecond, true},
		{"ms negative", http.Header{"Retry-After-Ms": {"-5"}}, 0, true},
		{"ms huge", http.Header{"Retry-After-Ms": {"1e9"}}, 0, false},
		{"ms over cap", http.Header{"Retry-After-Ms": {"999999999"}}, MaxRetryAfter, true},
		{"ms junk falls back", http.Header{"Retry-After-Ms": {"abc"}, "Retry-After": {"2"}}, 2 * time.Second, true},
		{"ms before seconds", http.Header{"Retry-After-Ms": {"10"}, "Retry-After": {"2"}}, 10 * time.Millisecond, true},
		{"seconds", http.Header{"Retry-After": {"2"}}, 2 * time.Second, true},
		{"seconds padded", http.Header{"Retry-After": {" 7 "}}, 7 * time.Second, true},
		{"seconds float", http.Header{"Retry-After": {"0.1"}}, 100 * time.Millisecond, true},
		{"seconds leading dot", http.Header{"Retry-After": {".5"}}, 500 * time.Millisecond, true},
		{"seconds plus", http.Header{"Retry-After": {"+2"}}, 2 * time.Second, true},
		{"seconds zero", http.Header{"Retry-After": {"0"}}, 0, true},
		{"seconds negative", http.Header{"Retry-After": {"-1"}}, 0, true},
		{"seconds over cap", http.Header{"Retry-After": {"121"}}, MaxRetryAfter, true},
		{"seconds enormous", http.Header{"Retry-After": {"99999999999999999999999"}}, MaxRetryAfter, true},
		{"seconds 400 digits", http.Header{"Retry-After": {"1" + strings.Repeat("0", 400)}}, MaxRetryAfter, true},
		{"date ahead", http.Header{"Retry-After": {"Wed, 21 Oct 2026 07:28:45 GMT"}}, 45 * time.Second, true},
		{"date rfc850", http.Header{"Retry-After": {"Wednesday, 21-Oct-26 07:28:10 GMT"}}, 10 * time.Second, true},
		{"date ansi c", http.Header{"Retry-After": {"Wed Oct 21 07:28:05 2026"}}, 5 * time.Second, true},
		{"date past", http.Header{"Retry-After": {"Wed, 21 Oct 2026 07:00:00 GMT"}}, 0, true},
		{"date far", http.Header{"Retry-After": {"Thu, 22 Oct 2026 07:28:00 GMT"}}, MaxRetryAfter, true},
		{"exponent refused", http.Header{"Retry-After": {"1e3"}}, 0, false},
		{"inf refused", http.Header{"Retry-After": {"Inf"}}, 0, false},
		{"nan refused", http.Header{"Retry-After": {"NaN"}}, 0, false},
		{"hex refused", http.Header{"Retry-After": {"0x10"}}, 0, false},
		{"underscore refused", http.Header{"Retry-After": {"1_0"}}, 0, false},
		{"two dots refused", http.Header{"Retry-After": {"1.2.3"}}, 0, false},
		{"dot refused", http.Header{"Retry-After": {"."}}, 0, false},
		{"sign only refused", http.Header{"Retry-After": {"-"}}, 0, false},
		{"double sign refused", http.Header{"Retry-After": {"--1"}}, 0, false},
		{"duration refused", http.Header{"Retry-After": {"1m30s"}}, 0, false},
		{"empty", http.Header{"Retry-After": {""}}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryAfter(tc.header, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("RetryAfter(%v): got %v, %v, want %v, %v", tc.header, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range [][2]string{
		{"", "2"}, {"", "0.1"}, {"1500", ""}, {"-1", "x"}, {"", "Wed, 21 Oct 2026 07:28:45 GMT"},
		{"", "Wednesday, 21-Oct-26 07:28:10 GMT"}, {"NaN", "Inf"}, {"1e400", "99999999999999999999"},
	} {
		f.Add(s[0], s[1], int64(1792560480))
	}
	f.Fuzz(func(t *testing.T, ms, ra string, unix int64) {
		h := http.Header{}
		if ms != "" {
			h["Retry-After-Ms"] = []string{ms}
		}
		if ra != "" {
			h["Retry-After"] = []string{ra}
		}
		now := time.Unix(unix%(1<<40), 0)
		d, ok := RetryAfter(h, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("RetryAfter(%q, %q): got %v, want within [0, %v]", ms, ra, d, MaxRetryAfter)
		}
		if !ok && d != 0 {
			t.Fatalf("RetryAfter(%q, %q): got %v without a hint, want 0", ms, ra, d)
		}
		if d2, ok2 := RetryAfter(h, now); d2 != d || ok2 != ok {
			t.Fatalf("RetryAfter(%q, %q) not deterministic: %v %v then %v %v", ms, ra, d, ok, d2, ok2)
		}
		e := &APIError{StatusCode: 429, Header: h}
		if got := RetryDelay(0, e, fixed(0)); got < 0 || got > MaxRetryAfter {
			t.Fatalf("RetryDelay: got %v, want within [0, %v]", got, MaxRetryAfter)
		}
	})
}
