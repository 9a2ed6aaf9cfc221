package sim

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

const want429 = `{"error":{"message":"Rate limit exceeded. Please retry after some time.","type":"request_rate_limit_exceeded","code":429}}`

func TestBucket(t *testing.T) {
	clock := newFakeClock()
	ts := start(t, New(Config{Key: testKey, RPS: 2, Burst: 3, Now: clock.Now}))
	body := searchBody(t, 1, "bucket")
	steps := []struct {
		advance       time.Duration
		wantCode      int
		wantRemaining string
		wantReset     string
		wantRA        string // Retry-After
		wantRAms      string // retry-after-ms
	}{
		{0, 200, "2", "0.5", "", ""},
		{0, 200, "1", "1", "", ""},
		{0, 200, "0", "1.5", "", ""},
		{0, 429, "0", "1.5", "1", "500"},
		{0, 429, "0", "1.5", "1", "500"}, // a 429 takes no token
		{250 * time.Millisecond, 429, "0", "1.25", "1", "250"},
		{250 * time.Millisecond, 200, "0", "1.5", "", ""},
		{10 * time.Second, 200, "2", "0.5", "", ""},
		{100 * time.Millisecond, 200, "1", "0.9", "", ""},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		r := post(t, ts, pplx.SearchPath, body)
		h := r.header
		if r.status != st.wantCode {
			t.Fatalf("step %d: got status %d, want %d", i, r.status, st.wantCode)
		}
		if got := h.Get("x-ratelimit-limit"); got != "3" {
			t.Errorf("step %d: got limit %q, want 3", i, got)
		}
		if got := h.Get("x-ratelimit-remaining"); got != st.wantRemaining {
			t.Errorf("step %d: got remaining %q, want %q", i, got, st.wantRemaining)
		}
		if got := h.Get("x-ratelimit-reset"); got != st.wantReset {
			t.Errorf("step %d: got reset %q, want %q", i, got, st.wantReset)
		}
		if got := h.Get("Retry-After"); got != st.wantRA {
			t.Errorf("step %d: got Retry-After %q, want %q", i, got, st.wantRA)
		}
		if got := h.Get("retry-after-ms"); got != st.wantRAms {
			t.Errorf("step %d: got retry-after-ms %q, want %q", i, got, st.wantRAms)
		}
		if st.wantCode == 429 && string(r.body) != want429 {
			t.Errorf("step %d: got body %s, want %s", i, r.body, want429)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name     string
		rps      float64
		burst    int
		advance  time.Duration
		wantRA   string
		wantRAms string
	}{
		{"one per 4 s", 0.25, 1, 0, "4", "4000"},
		{"one per 4 s, 1.5 s later", 0.25, 1, 1500 * time.Millisecond, "3", "2500"},
		{"fast rate, at least 1 s", 50, 1, 0, "1", "20"},
		{"one per third of a second rounds up", 3, 1, 0, "1", "334"},
		{"one per minute", 1.0 / 60, 1, 0, "60", "60000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			ts := start(t, New(Config{RPS: tc.rps, Burst: tc.burst, Now: clock.Now}))
			if r := post(t, ts, pplx.SearchPath, `{"query":"q"}`); r.status != 200 {
				t.Fatalf("got status %d, want 200", r.status)
			}
			clock.Advance(tc.advance)
			r := post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			if r.status != 429 {
				t.Fatalf("got status %d, want 429", r.status)
			}
			if got := r.header.Get("Retry-After"); got != tc.wantRA {
				t.Errorf("got Retry-After %q, want %q", got, tc.wantRA)
			}
			if got := r.header.Get("retry-after-ms"); got != tc.wantRAms {
				t.Errorf("got retry-after-ms %q, want %q", got, tc.wantRAms)
			}
		})
	}
}

func TestBucketsAreSeparate(t *testing.T) {
	clock := newFakeClock()
	ts := start(t, New(Config{RPS: 1, Burst: 1, Now: clock.Now}))
	// Drain key a's search and sonar buckets.
	for _, req := range []struct{ path, body string }{
		{pplx.SearchPath, `{"query":"q"}`},
		{pplx.ChatPath, chatBody(t, "sonar", false, "m")},
	} {
		if r := do(t, ts, http.MethodPost, req.path, "a", req.body); r.status != 200 {
			t.Fatalf("got status %d, want 200", r.status)
		}
	}
	tests := []struct {
		name, key, path, body string
		wantCode              int
	}{
		{"same key, search again", "a", pplx.SearchPath, `{"query":"q"}`, 429},
		{"same key, sonar again via alias", "a", "/v1/sonar", chatBody(t, "sonar", false, "other"), 429},
		{"same key, other model", "a", pplx.ChatPath, chatBody(t, "sonar-pro", false, "m"), 200},
		{"other key, search", "b", pplx.SearchPath, `{"query":"q"}`, 200},
		{"other key, sonar", "b", pplx.ChatPath, chatBody(t, "sonar", false, "m"), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, ts, http.MethodPost, tc.path, tc.key, tc.body); r.status != tc.wantCode {
				t.Errorf("got status %d, want %d", r.status, tc.wantCode)
			}
		})
	}
}

// rateInfo is what a dialect's headers mean, parsed back.
type rateInfo struct {
	limit, remaining int
	resetAt          time.Time // when the bucket is full
	slack            time.Duration
}

var (
	policyRE = regexp.MustCompile(`^"default";q=(\d+);w=(\d+)$`)
	rateRE   = regexp.MustCompile(`^"default";r=(\d+);t=(\d+)$`)
)

func parseRate(t *testing.T, style HeaderStyle, h http.Header, date time.Time) (rateInfo, bool) {
	t.Helper()
	atoi := func(name string) int {
		v, err := strconv.Atoi(h.Get(name))
		if err != nil {
			t.Fatalf("header %s: %v", name, err)
		}
		return v
	}
	switch style {
	case HeadersSeconds, HeadersEpoch, HeadersDuration, HeadersRFC3339:
		if h.Get("x-ratelimit-limit") == "" {
			return rateInfo{}, false
		}
		ri := rateInfo{limit: atoi("x-ratelimit-limit"), remaining: atoi("x-ratelimit-remaining")}
		v := h.Get("x-ratelimit-reset")
		switch style {
		case HeadersSeconds:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("reset %q: %v", v, err)
			}
			ri.resetAt = date.Add(time.Duration(math.Round(f * 1e9)))
		case HeadersEpoch:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("reset %q: %v", v, err)
			}
			ri.resetAt, ri.slack = time.Unix(n, 0), time.Second
		case HeadersDuration:
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("reset %q: %v", v, err)
			}
			ri.resetAt = date.Add(d)
		case HeadersRFC3339:
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatalf("reset %q: %v", v, err)
			}
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(v) {
				t.Errorf("got reset %q, want an RFC 3339 UTC time with milliseconds", v)
			}
			ri.resetAt = at
		}
		return ri, true
	case HeadersOpenAI:
		if h.Get("x-ratelimit-limit-requests") == "" {
			return rateInfo{}, false
		}
		d, err := time.ParseDuration(h.Get("x-ratelimit-reset-requests"))
		if err != nil {
			t.Fatal(err)
		}
		return rateInfo{limit: atoi("x-ratelimit-limit-requests"), remaining: atoi("x-ratelimit-remaining-requests"),
			resetAt: date.Add(d)}, true
	case HeadersIETF:
		p, r := policyRE.FindStringSubmatch(h.Get("RateLimit-Policy")), rateRE.FindStringSubmatch(h.Get("RateLimit"))
		if p == nil || r == nil {
			if h.Get("RateLimit-Policy")+h.Get("RateLimit") != "" {
				t.Fatalf("got RateLimit-Policy %q RateLimit %q, want the draft syntax", h.Get("RateLimit-Policy"), h.Get("RateLimit"))
			}
			return rateInfo{}, false
		}
		q, _ := strconv.Atoi(p[1])
		rem, _ := strconv.Atoi(r[1])
		secs, _ := strconv.Atoi(r[2])
		return rateInfo{limit: q, remaining: rem, resetAt: date.Add(time.Duration(secs) * time.Second), slack: time.Second}, true
	}
	return rateInfo{}, false
}

func TestHeaderDialects(t *testing.T) {
	// 4 tokens per second, burst 8; after 3 requests 5 are left and the
	// bucket is full again 750 ms later.
	tests := []struct {
		style     HeaderStyle
		wantRate  bool
		wantRetry bool
	}{
		{"", true, true},
		{"bogus", true, true},
		{HeadersSeconds, true, true},
		{HeadersEpoch, true, true},
		{HeadersDuration, true, true},
		{HeadersOpenAI, true, true},
		{HeadersIETF, true, true},
		{HeadersRFC3339, true, true},
		{HeadersNone, false, true},
		{HeadersNoneAtAll, false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.style), func(t *testing.T) {
			clock := newFakeClock()
			clock.Advance(300 * time.Millisecond)
			s := New(Config{Key: testKey, RPS: 4, Burst: 8, Headers: tc.style, Now: clock.Now})
			ts := start(t, s)
			style := s.style
			now := clock.Now()
			var r response
			for range 3 {
				r = post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			}
			ri, ok := parseRate(t, style, r.header, now)
			if ok != tc.wantRate {
				t.Fatalf("got rate headers %v, want %v (headers %v)", ok, tc.wantRate, r.header)
			}
			if ok {
				want := now.Add(750 * time.Millisecond)
				if ri.limit != 8 || ri.remaining != 5 {
					t.Errorf("got limit %d remaining %d, want 8 and 5", ri.limit, ri.remaining)
				}
				if ri.resetAt.Before(want) || ri.resetAt.After(want.Add(ri.slack)) {
					t.Errorf("got full at %v, want %v (up to %v later)", ri.resetAt, want, ri.slack)
				}
			}
			if style == HeadersIETF {
				if p := policyRE.FindStringSubmatch(r.header.Get("RateLimit-Policy")); p == nil || p[2] != "2" {
					t.Errorf("got RateLimit-Policy %q, want window w=2 (8 tokens at 4/s)", r.header.Get("RateLimit-Policy"))
				}
			}
			if style == HeadersEpoch {
				if got, want := r.header.Get("x-ratelimit-reset"), strconv.FormatInt(now.Unix()+2, 10); got != want {
					t.Errorf("got epoch reset %s, want %s (12:00:01.05 rounded up)", got, want)
				}
			}
			// Drain the bucket: the 429 carries the headers too.
			for range 5 {
				post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			}
			r = post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			if r.status != 429 {
				t.Fatalf("got status %d, want 429", r.status)
			}
			if ri, ok := parseRate(t, style, r.header, now); ok != tc.wantRate || ok && ri.remaining != 0 {
				t.Errorf("got 429 rate headers %v remaining %d, want %v and 0", ok, ri.remaining, tc.wantRate)
			}
			if got := r.header.Get("Retry-After") != "" && r.header.Get("retry-after-ms") != ""; got != tc.wantRetry {
				t.Errorf("got Retry-After %q retry-after-ms %q, want present %v",
					r.header.Get("Retry-After"), r.header.Get("retry-after-ms"), tc.wantRetry)
			}
		})
	}
}

func TestHeaderRounding(t *testing.T) {
	// One token per third of a second: after one request the bucket is
	// full in 333.33 ms, reported rounded up to 334 ms.
	tests := []struct {
		style HeaderStyle
		name  string
		want  string
	}{
		{HeadersSeconds, "x-ratelimit-reset", "0.334"},
		{HeadersDuration, "x-ratelimit-reset", "334ms"},
		{HeadersOpenAI, "x-ratelimit-reset-requests", "334ms"},
		{HeadersRFC3339, "x-ratelimit-reset", "2026-03-01T12:00:00.334Z"},
		{HeadersEpoch, "x-ratelimit-reset", strconv.FormatInt(newFakeClock().Now().Unix()+1, 10)},
		{HeadersIETF, "RateLimit", `"default";r=0;t=1`},
		{HeadersIETF, "RateLimit-Policy", `"default";q=1;w=1`},
	}
	for _, tc := range tests {
		t.Run(string(tc.style)+" "+tc.name, func(t *testing.T) {
			clock := newFakeClock()
			ts := start(t, New(Config{RPS: 3, Burst: 1, Headers: tc.style, Now: clock.Now}))
			r := post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			if got := r.header.Get(tc.name); got != tc.want {
				t.Errorf("got %s %q, want %q", tc.name, got, tc.want)
			}
		})
	}
	t.Run("full bucket resets now", func(t *testing.T) {
		clock := newFakeClock()
		ts := start(t, New(Config{RPS: 1, Burst: 1, Headers: HeadersDuration, Now: clock.Now}))
		r := post(t, ts, pplx.SearchPath, `{}`) // 400: no token taken
		if got := r.header.Get("x-ratelimit-reset"); got != "0s" || r.header.Get("x-ratelimit-remaining") != "1" {
			t.Errorf("got reset %q remaining %q, want 0s and 1", got, r.header.Get("x-ratelimit-remaining"))
		}
	})
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantLimit string
	}{
		{"burst from rate", Config{RPS: 2.5}, "3"},
		{"burst at least 1", Config{RPS: 0.1}, "1"},
		{"explicit burst", Config{RPS: 2, Burst: 7}, "7"},
		{"negative burst", Config{RPS: 2, Burst: -1}, "2"},
		{"unlimited", Config{}, ""},
		{"negative rate is unlimited", Config{RPS: -1}, ""},
		{"NaN rate is unlimited", Config{RPS: math.NaN()}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, New(tc.cfg))
			r := post(t, ts, pplx.SearchPath, `{"query":"q"}`)
			if r.status != 200 {
				t.Fatalf("got status %d, want 200", r.status)
			}
			if got := r.header.Get("x-ratelimit-limit"); got != tc.wantLimit {
				t.Errorf("got limit %q, want %q", got, tc.wantLimit)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Key: testKey, RPS: 1, Burst: 2, Now: clock.Now, Schedule: []Change{
		{At: 30 * time.Second, RPS: 1, Burst: 1}, // given out of order on purpose
		{At: 10 * time.Second, RPS: 0},
		{At: 20 * time.Second, RPS: 10, Burst: 5},
	}})
	ts := start(t, s)
	type step struct {
		at       time.Duration
		wantCode int
		wantRem  string // "" means no rate headers
		wantLim  string
		wantRAms string
	}
	steps := []step{
		{0, 200, "1", "2", ""},
		{0, 200, "0", "2", ""},
		{0, 429, "0", "2", "1000"},
		{10 * time.Second, 200, "", "", ""}, // unlimited
		{10 * time.Second, 200, "", "", ""},
		{10 * time.Second, 200, "", "", ""},
		{20 * time.Second, 200, "4", "5", ""}, // starts full after the unlimited period
		{20 * time.Second, 200, "3", "5", ""},
		{20 * time.Second, 200, "2", "5", ""},
		{20 * time.Second, 200, "1", "5", ""},
		{20 * time.Second, 200, "0", "5", ""},
		{20 * time.Second, 429, "0", "5", "100"},
		{30 * time.Second, 200, "0", "1", ""}, // refilled to 5, clamped to 1
		{30 * time.Second, 429, "0", "1", "1000"},
	}
	t0 := clock.Now()
	for i, st := range steps {
		clock.mu.Lock()
		clock.t = t0.Add(st.at)
		clock.mu.Unlock()
		r := post(t, ts, pplx.SearchPath, `{"query":"q"}`)
		if r.status != st.wantCode {
			t.Fatalf("step %d (t=%v): got status %d, want %d", i, st.at, r.status, st.wantCode)
		}
		if got := r.header.Get("x-ratelimit-remaining"); got != st.wantRem {
			t.Errorf("step %d (t=%v): got remaining %q, want %q", i, st.at, got, st.wantRem)
		}
		if got := r.header.Get("x-ratelimit-limit"); got != st.wantLim {
			t.Errorf("step %d (t=%v): got limit %q, want %q", i, st.at, got, st.wantLim)
		}
		if got := r.header.Get("retry-after-ms"); got != st.wantRAms {
			t.Errorf("step %d (t=%v): got retry-after-ms %q, want %q", i, st.at, got, st.wantRAms)
		}
	}
	// A bucket first used after the changes starts full at the new burst.
	r := do(t, ts, http.MethodPost, pplx.ChatPath, testKey, chatBody(t, "sonar", false, "m"))
	if r.header.Get("x-ratelimit-limit") != "1" || r.header.Get("x-ratelimit-remaining") != "0" || r.status != 200 {
		t.Errorf("got status %d limit %q remaining %q, want 200, 1, 0", r.status,
			r.header.Get("x-ratelimit-limit"), r.header.Get("x-ratelimit-remaining"))
	}
}

func TestClockGoingBack(t *testing.T) {
	clock := newFakeClock()
	ts := start(t, New(Config{RPS: 1, Burst: 1, Now: clock.Now}))
	post(t, ts, pplx.SearchPath, `{"query":"q"}`)
	clock.Advance(-time.Hour)
	if r := post(t, ts, pplx.SearchPath, `{"query":"q"}`); r.status != 429 {
		t.Errorf("got status %d after the clock went back, want 429 (no refill)", r.status)
	}
	clock.Advance(time.Hour + time.Second)
	if r := post(t, ts, pplx.SearchPath, `{"query":"q"}`); r.status != 200 {
		t.Errorf("got status %d, want 200", r.status)
	}
}

func TestMaxInFlight(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{RPS: 10, Burst: 10, MaxInFlight: 1, Now: clock.Now})
	g := installGate(s)
	ts := start(t, s)
	var wg sync.WaitGroup
	results := make(chan response, 2)
	for _, key := range []string{"a", "b"} {
		wg.Go(func() {
			r, err := tryDo(ts, http.MethodPost, pplx.SearchPath, key, `{"query":"q"}`)
			if err != nil {
				t.Error(err)
			}
			results <- r
		})
		<-g.entered // admitted and waiting
	}
	r := do(t, ts, http.MethodPost, pplx.SearchPath, "a", `{"query":"q"}`)
	if r.status != 429 || string(r.body) != want429 {
		t.Fatalf("got status %d body %s, want 429 %s", r.status, r.body, want429)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("got Retry-After %q, want 1", got)
	}
	if got := r.header.Get("x-ratelimit-remaining"); got != "9" {
		t.Errorf("got remaining %q, want 9 (the concurrency 429 takes no token)", got)
	}
	close(g.release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != 200 {
			t.Errorf("got status %d, want 200", r.status)
		}
	}
	ts.Close() // waits for the handlers
	st := s.Stats()
	if st.ConcurrencyLimited != 1 || st.RateLimited != 0 || st.Status[429] != 1 || st.MaxInFlight != 2 || st.InFlight != 0 {
		t.Errorf("got stats %+v, want 1 concurrency 429, max in flight 2, none now", st)
	}
}

func TestLatencyCanceled(t *testing.T) {
	s := New(Config{Latency: time.Hour})
	entered := make(chan struct{})
	s.sleep = func(ctx context.Context, d time.Duration) error {
		if d != time.Hour {
			t.Errorf("got latency %v, want 1h", d)
		}
		close(entered)
		return sleepCtx(ctx, d)
	}
	ts := start(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+pplx.SearchPath, strings.NewReader(`{"query":"q"}`))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want context.Canceled", err)
	}
	ts.Close()
	st := s.Stats()
	if st.Canceled != 1 || st.InFlight != 0 || len(st.Status) != 0 || st.Answered != 0 {
		t.Errorf("got stats %+v, want one canceled request and no response", st)
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		wantErr error
	}{
		{"zero", context.Background(), 0, nil},
		{"short", context.Background(), time.Microsecond, nil},
		{"canceled", ctx, time.Hour, context.Canceled},
		{"canceled, zero", ctx, 0, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sleepCtx(tc.ctx, tc.d); !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	cfg := Config{Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond, Seed: 3}
	a, b := New(cfg), New(cfg)
	cfg.Seed = 4
	c := New(cfg)
	differs := false
	seen := map[time.Duration]bool{}
	for i := range 200 {
		fp := searchKey([]string{strconv.Itoa(i)})
		d := a.delay(fp, 0)
		if d < 100*time.Millisecond || d >= 150*time.Millisecond {
			t.Errorf("got delay %v, want in [100ms, 150ms)", d)
		}
		if e := b.delay(fp, 0); e != d {
			t.Errorf("got delays %v and %v with one seed, want the same", d, e)
		}
		differs = differs || c.delay(fp, 0) != d
		seen[d] = true
	}
	if !differs || len(seen) < 100 {
		t.Errorf("got %d distinct delays, differs across seeds %v; want spread and seed-dependent", len(seen), differs)
	}
	if d := New(Config{Latency: time.Second}).delay([16]byte{}, 0); d != time.Second {
		t.Errorf("got delay %v without jitter, want 1s", d)
	}
}

func TestHeaderStyleValid(t *testing.T) {
	tests := []struct {
		in   HeaderStyle
		want bool
	}{
		{"", true},
		{HeadersSeconds, true},
		{HeadersNoneAtAll, true},
		{HeadersRFC3339, true},
		{"Seconds", false},
		{"github", false},
	}
	for _, tc := range tests {
		if got := tc.in.Valid(); got != tc.want {
			t.Errorf("got HeaderStyle(%q).Valid() = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseHeaderStyle(t *testing.T) {
	tests := []struct {
		in      string
		want    HeaderStyle
		wantErr bool
	}{
		{"", HeadersSeconds, false},
		{"seconds", HeadersSeconds, false},
		{" Epoch ", HeadersEpoch, false},
		{"duration", HeadersDuration, false},
		{"OPENAI", HeadersOpenAI, false},
		{"ietf", HeadersIETF, false},
		{"rfc3339", HeadersRFC3339, false},
		{"none", HeadersNone, false},
		{"none-at-all", HeadersNoneAtAll, false},
		{"github", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseHeaderStyle(tc.in)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && (!strings.HasPrefix(err.Error(), "sim: ") || !strings.Contains(err.Error(), "none-at-all")) {
				t.Errorf("got error %q, want a sim: message listing the styles", err)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	clock := newFakeClock()
	ts := start(t, New(Config{Key: testKey, RPS: 2, Burst: 3, Now: clock.Now,
		Outages: []Outage{{At: time.Second, For: 2 * time.Second}}}))
	body := searchBody(t, 1, "outage")
	steps := []struct {
		advance       time.Duration
		wantCode      int
		wantRemaining string // "" for no header
	}{
		{0, 200, "2"},
		{time.Second, 503, ""}, // down from 1 s
		{0, 503, ""},           // takes no token
		{1999 * time.Millisecond, 503, ""},
		{time.Millisecond, 200, "2"}, // up at 3 s, the bucket full again
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		r := post(t, ts, pplx.SearchPath, body)
		if r.status != st.wantCode {
			t.Fatalf("step %d: got status %d, want %d", i, r.status, st.wantCode)
		}
		if got := r.header.Get("x-ratelimit-remaining"); got != st.wantRemaining {
			t.Errorf("step %d: got remaining %q, want %q", i, got, st.wantRemaining)
		}
		if r.status == 503 && string(r.body) != "503 Service Temporarily Unavailable\n" {
			t.Errorf("step %d: got body %q", i, r.body)
		}
	}
}

func TestParseOutages(t *testing.T) {
	tests := []struct {
		in      string
		want    []Outage
		wantErr bool
	}{
		{"", nil, false},
		{"4s+8s", []Outage{{4 * time.Second, 8 * time.Second}}, false},
		{" 0s+1m , 2m+30s ", []Outage{{0, time.Minute}, {2 * time.Minute, 30 * time.Second}}, false},
		{"4s", nil, true},
		{"4s+0s", nil, true},
		{"-1s+2s", nil, true},
		{"x+2s", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseOutages(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseOutages(%q): got error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseOutages(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseOutages(f *testing.F) {
	for _, seed := range []string{"", "4s+8s", "0s+1m,2m+30s", "4s", "+", "1h+-1s", "\xff+1s"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		outs, err := ParseOutages(in)
		if err != nil {
			if outs != nil || !strings.HasPrefix(err.Error(), "sim: ") {
				t.Fatalf("got %v, %v; want nil and a sim: error", outs, err)
			}
			return
		}
		for _, o := range outs {
			if o.At < 0 || o.For <= 0 {
				t.Fatalf("got outage %+v from %q", o, in)
			}
		}
	})
}
