package limiter

import (
	"math"
	"net/http"
	"testing"
	"time"
)

// FuzzAdaptive drives the adaptive model with any sequence of grants,
// outcomes and clock moves, the outcomes carrying the fuzzed headers, and
// checks that what it decides stays sane: finite non-negative delays and
// rates, an in-flight limit within [1, maxAutoInFlight], a finite shadow.
func FuzzAdaptive(f *testing.F) {
	seeds := []struct {
		ops []byte
		raw string
	}{
		{[]byte{0, 1, 0, 0, 1, 1, 4, 0, 2}, "X-Ratelimit-Limit: 50\nX-Ratelimit-Remaining: 49\nX-Ratelimit-Reset: 0.02"},
		{[]byte{0, 2, 0, 2, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3}, "Retry-After: 1"},
		{[]byte{0, 1, 0, 0, 0, 2, 1, 1, 4, 4, 0}, "Ratelimit-Policy: \"d\";q=10;w=1\nRatelimit: \"d\";r=0;t=1"},
		{[]byte{0, 3, 0, 3, 0, 2, 0, 2, 0, 2}, ""},
		{[]byte{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, "X-Ratelimit-Limit: 1\nX-Ratelimit-Remaining: 0\nX-Ratelimit-Reset: 1e-9"},
		{[]byte{0, 1, 9, 0, 1, 254, 0, 2}, "X-Ratelimit-Limit: 1e308\nX-Ratelimit-Remaining: 1e300\nX-Ratelimit-Reset: 86400"},
	}
	for _, s := range seeds {
		f.Add(s.ops, []byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, ops, raw []byte) {
		if len(ops) > 2000 {
			ops = ops[:2000]
		}
		h := parseRawHeader(raw)
		a := newAdapt(0)
		now := t0
		var (
			seq uint64
			out []Ticket
		)
		for i, op := range ops {
			switch op % 5 {
			case 0: // a request goes when the model lets it
				if d := a.delay(now); d > 0 {
					now = now.Add(min(d, time.Hour))
					continue
				}
				if len(out) >= a.inFlightLimit(now) {
					continue
				}
				seq++
				a.grant(now, seq)
				out = append(out, Ticket{Seq: seq, Sent: now})
			case 1, 2, 3: // the oldest answers: 200 with headers, 429, 200 without
				if len(out) == 0 {
					continue
				}
				tk := out[0]
				out = out[1:]
				o := Outcome{Status: http.StatusOK, Header: h, Latency: time.Duration(op) * time.Millisecond}
				switch op % 5 {
				case 2:
					o.Status = http.StatusTooManyRequests
				case 3:
					o.Header = nil
				}
				var info Info
				if o.Header != nil {
					info = ParseHeaders(o.Header, now)
				}
				pause, _, _ := a.observe(now, tk, o, info, seq, len(out)+1)
				if pause < 0 {
					t.Fatalf("op %d: pause %v < 0", i, pause)
				}
			case 4: // time passes
				now = now.Add(time.Duration(op) * time.Millisecond)
			}
			if d := a.delay(now); d < 0 {
				t.Fatalf("op %d: delay %v < 0", i, d)
			}
			if c := a.inFlightLimit(now); c < 1 || c > maxAutoInFlight {
				t.Fatalf("op %d: in-flight limit %d outside [1, %d]", i, c, maxAutoInFlight)
			}
			if r := a.rate(now); math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
				t.Fatalf("op %d: rate %v", i, r)
			}
			if math.IsNaN(a.est) || math.IsNaN(a.rhat) || math.IsInf(a.rhat, 0) {
				t.Fatalf("op %d: shadow %v, rate %v", i, a.est, a.rhat)
			}
		}
	})
}
