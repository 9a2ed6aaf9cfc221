package limiter

import (
	"bytes"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseHeaders(t *testing.T) {
	now := t0
	date := now.Format(http.TimeFormat)
	ahead := now.Add(time.Hour) // a server clock one hour fast
	behind := now.Add(-90 * time.Second)
	epoch := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	epochMs := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	rfc := func(at time.Time) string { return at.Format(time.RFC3339) }
	s := time.Second

	tests := []struct {
		name   string
		header http.Header
		want   Info
	}{
		{name: "nil", header: nil, want: Info{}},
		{name: "unrelated", header: hdr("Content-Type", "application/json"), want: Info{}},

		// x-ratelimit-limit / -remaining / -reset and every reset form.
		{name: "reset integer seconds",
			header: hdr("X-Ratelimit-Limit", "50", "X-Ratelimit-Remaining", "49", "X-Ratelimit-Reset", "30"),
			want:   Info{Limit: 50, HasLimit: true, Remaining: 49, HasRemaining: true, Reset: 30 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset decimal seconds",
			header: hdr("X-Ratelimit-Reset", "1.25"),
			want:   Info{Reset: 1250 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch seconds",
			header: hdr("X-Ratelimit-Reset", epoch(42*s)),
			want:   Info{Reset: 42 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch seconds with decimals",
			header: hdr("X-Ratelimit-Reset", epoch(42*s)+".5"),
			want:   Info{Reset: 42500 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch milliseconds",
			header: hdr("X-Ratelimit-Reset", epochMs(1500*time.Millisecond)),
			want:   Info{Reset: 1500 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch in the past",
			header: hdr("X-Ratelimit-Reset", epoch(-3*s)),
			want:   Info{Reset: 0, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch corrected by Date",
			header: hdr("X-Ratelimit-Reset", strconv.FormatInt(ahead.Unix()+20, 10), "Date", ahead.Format(http.TimeFormat)),
			want:   Info{Reset: 20 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset epoch corrected by a slow Date",
			header: hdr("X-Ratelimit-Reset", strconv.FormatInt(behind.Unix()+20, 10), "Date", behind.Format(http.TimeFormat)),
			want:   Info{Reset: 20 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset Go duration 1s", header: hdr("X-Ratelimit-Reset", "1s"),
			want: Info{Reset: s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset Go duration 6m0s", header: hdr("X-Ratelimit-Reset", "6m0s"),
			want: Info{Reset: 6 * time.Minute, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset Go duration 250ms", header: hdr("X-Ratelimit-Reset", "250ms"),
			want: Info{Reset: 250 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset Go duration 1m30s", header: hdr("X-Ratelimit-Reset", "1m30s"),
			want: Info{Reset: 90 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset RFC 3339", header: hdr("X-Ratelimit-Reset", rfc(now.Add(45*s))),
			want: Info{Reset: 45 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset RFC 3339 with offset and fraction", header: hdr("X-Ratelimit-Reset", now.Add(45500*time.Millisecond).In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)),
			want: Info{Reset: 45500 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset RFC 3339 corrected by Date", header: hdr("X-Ratelimit-Reset", rfc(ahead.Add(45*s)), "Date", ahead.Format(http.TimeFormat)),
			want: Info{Reset: 45 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset HTTP date", header: hdr("X-Ratelimit-Reset", now.Add(5*s).Format(http.TimeFormat)),
			want: Info{Reset: 5 * s, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "reset-after preferred over reset",
			header: hdr("X-Ratelimit-Reset", epoch(60*s), "X-Ratelimit-Reset-After", "2.5"),
			want:   Info{Reset: 2500 * time.Millisecond, HasReset: true, Dialect: DialectXRateLimit}},
		{name: "limit list takes the first member",
			header: hdr("X-Ratelimit-Limit", "100, 100;w=60", "X-Ratelimit-Remaining", "7"),
			want:   Info{Limit: 100, HasLimit: true, Remaining: 7, HasRemaining: true, Dialect: DialectXRateLimit}},
		{name: "lower-case names",
			header: http.Header{"X-Ratelimit-Remaining": {"3"}},
			want:   Info{Remaining: 3, HasRemaining: true, Dialect: DialectXRateLimit}},

		// OpenAI and Anthropic.
		{name: "OpenAI requests family",
			header: hdr("X-Ratelimit-Limit-Requests", "5000", "X-Ratelimit-Remaining-Requests", "4999", "X-Ratelimit-Reset-Requests", "12ms",
				"X-Ratelimit-Limit-Tokens", "160000", "X-Ratelimit-Reset-Tokens", "6m0s"),
			want: Info{Limit: 5000, HasLimit: true, Remaining: 4999, HasRemaining: true, Reset: 12 * time.Millisecond, HasReset: true, Dialect: DialectOpenAI}},
		{name: "OpenAI family wins over plain",
			header: hdr("X-Ratelimit-Remaining-Requests", "1", "X-Ratelimit-Remaining", "9"),
			want:   Info{Remaining: 1, HasRemaining: true, Dialect: DialectOpenAI}},
		{name: "Anthropic",
			header: hdr("Anthropic-Ratelimit-Requests-Limit", "50", "Anthropic-Ratelimit-Requests-Remaining", "0",
				"Anthropic-Ratelimit-Requests-Reset", rfc(now.Add(8*s))),
			want: Info{Limit: 50, HasLimit: true, Remaining: 0, HasRemaining: true, Reset: 8 * s, HasReset: true, Dialect: DialectAnthropic}},

		// IETF structured fields.
		{name: "IETF policy and ratelimit",
			header: hdr("Ratelimit-Policy", `"default";q=100;w=60`, "Ratelimit", `"default";r=50;t=30`),
			want:   Info{Limit: 100, HasLimit: true, Remaining: 50, HasRemaining: true, Reset: 30 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "IETF token names",
			header: hdr("Ratelimit-Policy", `burst;q=10;w=1, daily;q=1000;w=86400`, "Ratelimit", `daily;r=900;t=3600`),
			want:   Info{Limit: 1000, HasLimit: true, Remaining: 900, HasRemaining: true, Reset: time.Hour, HasReset: true, Window: 24 * time.Hour, Dialect: DialectIETF}},
		{name: "IETF binding policy",
			header: hdr("Ratelimit-Policy", `"burst";q=10;w=1, "minute";q=50;w=60`, "Ratelimit", `"burst";r=8;t=1, "minute";r=0;t=42`),
			want:   Info{Limit: 50, HasLimit: true, Remaining: 0, HasRemaining: true, Reset: 42 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "IETF fields split over lines",
			header: hdr("Ratelimit-Policy", `"a";q=10;w=1`, "Ratelimit-Policy", `"b";q=50;w=60`, "Ratelimit", `"b";r=5;t=2`),
			want:   Info{Limit: 50, HasLimit: true, Remaining: 5, HasRemaining: true, Reset: 2 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "IETF quoted name with separators",
			header: hdr("Ratelimit-Policy", `"a;b,c";q=20;w=10`, "Ratelimit", `"a;b,c";r=3;t=4`),
			want:   Info{Limit: 20, HasLimit: true, Remaining: 3, HasRemaining: true, Reset: 4 * s, HasReset: true, Window: 10 * s, Dialect: DialectIETF}},
		{name: "IETF policy of other units ignored",
			header: hdr("Ratelimit-Policy", `"bytes";q=100000;qu="content-bytes";w=60, "req";q=30;w=60`, "Ratelimit", `"req";r=1;t=5`),
			want:   Info{Limit: 30, HasLimit: true, Remaining: 1, HasRemaining: true, Reset: 5 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "IETF draft-07 dictionary",
			header: hdr("Ratelimit", "limit=100, remaining=50, reset=5", "Ratelimit-Policy", "100;w=60"),
			want:   Info{Limit: 100, HasLimit: true, Remaining: 50, HasRemaining: true, Reset: 5 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "IETF draft-08 l= parameter",
			header: hdr("Ratelimit-Policy", `default;l=100;w=10`, "Ratelimit", `default;r=50;t=5`),
			want:   Info{Limit: 100, HasLimit: true, Remaining: 50, HasRemaining: true, Reset: 5 * s, HasReset: true, Window: 10 * s, Dialect: DialectIETF}},
		{name: "IETF policy alone",
			header: hdr("Ratelimit-Policy", `"a";q=10;w=1, "b";q=50;w=60`),
			want:   Info{Limit: 50, HasLimit: true, Window: time.Minute, Dialect: DialectIETF}},
		{name: "older draft RateLimit-Limit family with policy",
			header: hdr("Ratelimit-Limit", "10", "Ratelimit-Remaining", "9", "Ratelimit-Reset", "1", "Ratelimit-Policy", "10;w=1, 50;w=60"),
			want:   Info{Limit: 10, HasLimit: true, Remaining: 9, HasRemaining: true, Reset: s, HasReset: true, Window: s, Dialect: DialectIETFDraft}},
		{name: "older draft family alone",
			header: hdr("Ratelimit-Limit", "100", "Ratelimit-Remaining", "0", "Ratelimit-Reset", "59"),
			want:   Info{Limit: 100, HasLimit: true, Remaining: 0, HasRemaining: true, Reset: 59 * s, HasReset: true, Dialect: DialectIETFDraft}},

		// Retry-After and retry-after-ms.
		{name: "Retry-After integer", header: hdr("Retry-After", "120"),
			want: Info{RetryAfter: 120 * s, HasRetryAfter: true}},
		{name: "Retry-After decimal", header: hdr("Retry-After", "0.5"),
			want: Info{RetryAfter: 500 * time.Millisecond, HasRetryAfter: true}},
		{name: "Retry-After HTTP date", header: hdr("Retry-After", now.Add(30*s).Format(http.TimeFormat)),
			want: Info{RetryAfter: 30 * s, HasRetryAfter: true}},
		{name: "Retry-After HTTP date corrected by Date",
			header: hdr("Retry-After", ahead.Add(30*s).Format(http.TimeFormat), "Date", ahead.Format(http.TimeFormat)),
			want:   Info{RetryAfter: 30 * s, HasRetryAfter: true}},
		{name: "Retry-After RFC 850 date", header: hdr("Retry-After", now.Add(30*s).Format(time.RFC850)),
			want: Info{RetryAfter: 30 * s, HasRetryAfter: true}},
		{name: "Retry-After date in the past", header: hdr("Retry-After", now.Add(-30*s).Format(http.TimeFormat), "Date", date),
			want: Info{RetryAfter: 0, HasRetryAfter: true}},
		{name: "retry-after-ms", header: hdr("Retry-After-Ms", "1500"),
			want: Info{RetryAfter: 1500 * time.Millisecond, HasRetryAfter: true}},
		{name: "retry-after-ms decimal", header: hdr("Retry-After-Ms", "12.5"),
			want: Info{RetryAfter: 12500 * time.Microsecond, HasRetryAfter: true}},
		{name: "retry-after-ms wins", header: hdr("Retry-After-Ms", "1500", "Retry-After", "2"),
			want: Info{RetryAfter: 1500 * time.Millisecond, HasRetryAfter: true}},
		{name: "Retry-After when retry-after-ms is bad", header: hdr("Retry-After-Ms", "soon", "Retry-After", "2"),
			want: Info{RetryAfter: 2 * s, HasRetryAfter: true, Invalid: []InvalidHeader{{"Retry-After-Ms", "soon", reasonSyntax}}}},
		{name: "Retry-After at the bound", header: hdr("Retry-After", "3600"),
			want: Info{RetryAfter: time.Hour, HasRetryAfter: true}},

		// Nonsense is ignored and reported.
		{name: "negative remaining", header: hdr("X-Ratelimit-Remaining", "-1"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Remaining", "-1", reasonNegative}}}},
		{name: "Azure limit -1 reset 0", header: hdr("X-Ratelimit-Limit", "-1", "X-Ratelimit-Reset", "0"),
			want: Info{HasReset: true, Dialect: DialectXRateLimit, Invalid: []InvalidHeader{{"X-Ratelimit-Limit", "-1", reasonNegative}}}},
		{name: "zero limit", header: hdr("X-Ratelimit-Limit", "0"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Limit", "0", reasonNotPositive}}}},
		{name: "NaN and Inf", header: hdr("X-Ratelimit-Limit", "NaN", "X-Ratelimit-Remaining", "+Inf", "Retry-After", "Infinity"),
			want: Info{Invalid: []InvalidHeader{
				{"Retry-After", "Infinity", reasonNotFinite},
				{"X-Ratelimit-Limit", "NaN", reasonNotFinite},
				{"X-Ratelimit-Remaining", "+Inf", reasonNotFinite}}}},
		{name: "remaining above limit", header: hdr("X-Ratelimit-Limit", "10", "X-Ratelimit-Remaining", "11", "X-Ratelimit-Reset", "5"),
			want: Info{Reset: 5 * s, HasReset: true, Dialect: DialectXRateLimit,
				Invalid: []InvalidHeader{{"X-Ratelimit-Remaining", "11", reasonAboveLimit}}}},
		{name: "reset beyond 24h (delta)", header: hdr("X-Ratelimit-Reset", "90000"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", "90000", reasonRange}}}},
		{name: "reset beyond 24h (epoch)", header: hdr("X-Ratelimit-Reset", epoch(25*time.Hour)),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", epoch(25 * time.Hour), reasonRange}}}},
		{name: "reset beyond 24h (duration)", header: hdr("X-Ratelimit-Reset", "25h"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", "25h", reasonRange}}}},
		{name: "reset far in the past", header: hdr("X-Ratelimit-Reset", rfc(now.Add(-48*time.Hour))),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", rfc(now.Add(-48 * time.Hour)), reasonRange}}}},
		{name: "negative duration", header: hdr("X-Ratelimit-Reset", "-5s"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", "-5s", reasonNegative}}}},
		{name: "garbage reset", header: hdr("X-Ratelimit-Reset", "soon"),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", "soon", reasonSyntax}}}},
		{name: "Retry-After beyond 1h", header: hdr("Retry-After", "3601"),
			want: Info{Invalid: []InvalidHeader{{"Retry-After", "3601", reasonRange}}}},
		{name: "Retry-After date beyond 1h", header: hdr("Retry-After", now.Add(2*time.Hour).Format(http.TimeFormat)),
			want: Info{Invalid: []InvalidHeader{{"Retry-After", now.Add(2 * time.Hour).Format(http.TimeFormat), reasonRange}}}},
		{name: "retry-after-ms beyond 1h", header: hdr("Retry-After-Ms", "3600001"),
			want: Info{Invalid: []InvalidHeader{{"Retry-After-Ms", "3600001", reasonRange}}}},
		{name: "negative Retry-After", header: hdr("Retry-After", "-1"),
			want: Info{Invalid: []InvalidHeader{{"Retry-After", "-1", reasonNegative}}}},
		{name: "garbage Retry-After", header: hdr("Retry-After", "later"),
			want: Info{Invalid: []InvalidHeader{{"Retry-After", "later", reasonSyntax}}}},
		{name: "bad Date ignored", header: hdr("Date", "yesterday", "X-Ratelimit-Reset", epoch(10*s)),
			want: Info{Reset: 10 * s, HasReset: true, Dialect: DialectXRateLimit, Invalid: []InvalidHeader{{"Date", "yesterday", reasonSyntax}}}},
		{name: "absurd Date ignored",
			header: hdr("Date", now.Add(48*time.Hour).Format(http.TimeFormat), "X-Ratelimit-Reset", epoch(10*s)),
			want: Info{Reset: 10 * s, HasReset: true, Dialect: DialectXRateLimit,
				Invalid: []InvalidHeader{{"Date", now.Add(48 * time.Hour).Format(http.TimeFormat), reasonRange}}}},
		{name: "bad family falls through to the next",
			header: hdr("X-Ratelimit-Remaining-Requests", "x", "X-Ratelimit-Remaining", "4"),
			want: Info{Remaining: 4, HasRemaining: true, Dialect: DialectXRateLimit,
				Invalid: []InvalidHeader{{"X-Ratelimit-Remaining-Requests", "x", reasonSyntax}}}},
		{name: "IETF bad remaining",
			header: hdr("Ratelimit", `"a";r=-1;t=5`),
			want:   Info{Invalid: []InvalidHeader{{"Ratelimit", `"a";r=-1;t=5`, reasonNegative}}}},
		{name: "IETF remaining above quota",
			header: hdr("Ratelimit-Policy", `"a";q=10;w=60`, "Ratelimit", `"a";r=20;t=5`),
			want: Info{Reset: 5 * s, HasReset: true, Window: time.Minute, Dialect: DialectIETF,
				Invalid: []InvalidHeader{{"Ratelimit", `"a";r=20;t=5`, reasonAboveLimit}}}},
		{name: "IETF zero window",
			header: hdr("Ratelimit-Policy", `"a";q=10;w=0`),
			want: Info{Limit: 10, HasLimit: true, Dialect: DialectIETF,
				Invalid: []InvalidHeader{{"Ratelimit-Policy", `"a";q=10;w=0`, reasonRange}}}},
		{name: "long value cut", header: hdr("X-Ratelimit-Reset", strings.Repeat("x", 100)),
			want: Info{Invalid: []InvalidHeader{{"X-Ratelimit-Reset", strings.Repeat("x", maxInvalidValue), reasonSyntax}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseHeaders(tt.header, now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseHeadersDateOffsetErrsLate checks the documented direction of
// the Date correction: Date's whole-second resolution makes the reset late,
// never early.
func TestParseHeadersDateOffsetErrsLate(t *testing.T) {
	serverNow := t0.Add(700 * time.Millisecond) // Date truncates this to t0
	reset := serverNow.Add(10 * time.Second)
	h := hdr("Date", serverNow.Format(http.TimeFormat), "X-Ratelimit-Reset", reset.Format(time.RFC3339Nano))
	got := ParseHeaders(h, serverNow)
	if want := 10700 * time.Millisecond; got.Reset != want {
		t.Errorf("got Reset %v, want %v", got.Reset, want)
	}
}

// parseRawHeader turns "Name: value" lines into a Header, for fuzzing.
func parseRawHeader(raw []byte) http.Header {
	h := http.Header{}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		h.Add(string(bytes.TrimSpace(name)), string(bytes.TrimSpace(value)))
	}
	return h
}

func FuzzParseHeaders(f *testing.F) {
	seeds := []string{
		"X-Ratelimit-Limit: 50\nX-Ratelimit-Remaining: 0\nX-Ratelimit-Reset: 1780315260",
		"X-Ratelimit-Reset: 1780315260123",
		"X-Ratelimit-Reset: 1m30s\nRetry-After: 1.5",
		"X-Ratelimit-Reset: 2026-06-01T12:00:30Z\nDate: Mon, 01 Jun 2026 12:00:00 GMT",
		"X-Ratelimit-Limit-Requests: 5000\nX-Ratelimit-Remaining-Requests: 4999\nX-Ratelimit-Reset-Requests: 12ms",
		"Ratelimit-Policy: \"default\";q=100;w=60\nRatelimit: \"default\";r=50;t=30",
		"Ratelimit: limit=100, remaining=50, reset=5",
		"Ratelimit-Limit: 10\nRatelimit-Remaining: 11\nRatelimit-Reset: -1",
		"Retry-After: Mon, 01 Jun 2026 12:01:00 GMT\nRetry-After-Ms: NaN",
		"Anthropic-Ratelimit-Requests-Reset: 2026-06-01T12:00:08Z\nAnthropic-Ratelimit-Requests-Remaining: 0",
		"X-Ratelimit-Reset: 1e308\nX-Ratelimit-Limit: 1e-320\nRetry-After: 1e400",
		"Ratelimit-Policy: \"a\\\";q=1;w=1\nRatelimit: \"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	now := t0
	f.Fuzz(func(t *testing.T, raw []byte) {
		info := ParseHeaders(parseRawHeader(raw), now)
		checkInfo(t, info)
		// The same headers seen a day later or earlier stay within bounds.
		checkInfo(t, ParseHeaders(parseRawHeader(raw), now.Add(24*time.Hour)))
	})
}

// checkInfo fails t if info breaks a documented invariant.
func checkInfo(t *testing.T, info Info) {
	t.Helper()
	inRange := func(name string, d, bound time.Duration) {
		if d < 0 || d > bound {
			t.Errorf("%s = %v, want within [0, %v]", name, d, bound)
		}
	}
	inRange("Reset", info.Reset, MaxReset)
	inRange("RetryAfter", info.RetryAfter, MaxRetryAfter)
	inRange("Window", info.Window, MaxWindow)
	finite := func(name string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			t.Errorf("%s = %v, want finite and >= 0", name, v)
		}
	}
	finite("Limit", info.Limit)
	finite("Remaining", info.Remaining)
	if info.HasLimit && info.Limit <= 0 {
		t.Errorf("Limit = %v, want > 0", info.Limit)
	}
	if info.HasLimit && info.HasRemaining && info.Remaining > info.Limit {
		t.Errorf("Remaining %v > Limit %v", info.Remaining, info.Limit)
	}
	zeroUnless := func(name string, has bool, zero bool) {
		if !has && !zero {
			t.Errorf("%s set without its Has flag", name)
		}
	}
	zeroUnless("Limit", info.HasLimit, info.Limit == 0)
	zeroUnless("Remaining", info.HasRemaining, info.Remaining == 0)
	zeroUnless("Reset", info.HasReset, info.Reset == 0)
	zeroUnless("RetryAfter", info.HasRetryAfter, info.RetryAfter == 0)
	for _, bad := range info.Invalid {
		if len(bad.Value) > maxInvalidValue || bad.Reason == "" || bad.Name == "" {
			t.Errorf("bad InvalidHeader %+v", bad)
		}
	}
}

func BenchmarkParseHeaders(b *testing.B) {
	h := hdr("X-Ratelimit-Limit-Requests", "5000", "X-Ratelimit-Remaining-Requests", "4999",
		"X-Ratelimit-Reset-Requests", "12ms", "Date", t0.Format(http.TimeFormat))
	b.ReportAllocs()
	for b.Loop() {
		ParseHeaders(h, t0)
	}
}
