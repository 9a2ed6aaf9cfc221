package limiter

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
	"github.com/pplx-batch/pplx-batch/internal/redistest"
)

const redisTestKey = "pplx-test-secret-key-1234"

// syncBuffer is a bytes.Buffer safe for concurrent writes (the log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openStore opens a store on rd for key, on the client's clock (the times
// of the requests), as one process would; log receives its messages.
func openStore(t *testing.T, rd *redistest.Server, key string, log *syncBuffer) *Redis {
	t.Helper()
	cfg := RedisConfig{URL: rd.URL(0), APIKey: key, Retry: 20 * time.Millisecond, clientTime: true}
	if log != nil {
		cfg.Log = zerolog.New(log)
	}
	r, err := OpenRedis(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func take(t *testing.T, b SharedBucket, q TakeRequest) Grant {
	t.Helper()
	g, err := b.Take(context.Background(), q)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return g
}

func report(t *testing.T, b SharedBucket, q Report) {
	t.Helper()
	if err := b.Report(context.Background(), q); err != nil {
		t.Fatalf("Report: %v", err)
	}
}

// state reads a field of a bucket's state hash.
func state(t *testing.T, b SharedBucket, field string) float64 {
	t.Helper()
	rb := b.(*redisBucket)
	v, err := rb.r.client.HGet(context.Background(), rb.keys[0], field).Result()
	if err != nil {
		t.Fatalf("HGET %s: %v", field, err)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// headers is what a response with limit 10 and rem remaining says.
func headers(rem float64) Info {
	return Info{Limit: 10, HasLimit: true, Remaining: rem, HasRemaining: true}
}

func TestRedisSequenceIsShared(t *testing.T) {
	rd := redistest.Start(t)
	a := openStore(t, rd, redisTestKey, nil)
	b := openStore(t, rd, redisTestKey, nil)
	other := openStore(t, rd, "another key", nil)
	tests := []struct {
		name   string
		bucket SharedBucket
		floor  uint64
		want   uint64
	}{
		{"first of process a", a.Bucket(SearchBucket), 0, 1},
		{"then process b", b.Bucket(SearchBucket), 0, 2},
		{"a again", a.Bucket(SearchBucket), 1, 3},
		{"above the floor", b.Bucket(SearchBucket), 10, 11},
		{"another bucket", a.Bucket(ChatBucket("sonar")), 0, 1},
		{"another key", other.Bucket(SearchBucket), 0, 1},
	}
	for _, tt := range tests {
		g := take(t, tt.bucket, TakeRequest{Now: t0, Floor: tt.floor})
		if !g.OK || g.Wait != 0 || g.Seq != tt.want {
			t.Errorf("%s: got %+v, want seq %d at once", tt.name, g, tt.want)
		}
	}
	if a.Bucket(SearchBucket) != a.Bucket(SearchBucket) {
		t.Error("Bucket returned two values for one name")
	}
	var nilStore *Redis
	if nilStore.Bucket(SearchBucket) != nil {
		t.Error("a nil *Redis returned a bucket")
	}
}

// TestRedisKeys: the keys hold a hash of the API key, never the key, and
// expire by themselves.
func TestRedisKeys(t *testing.T) {
	rd := redistest.Start(t)
	r := openStore(t, rd, redisTestKey, nil)
	b := r.Bucket(SearchBucket)
	take(t, b, TakeRequest{Now: t0})
	report(t, b, Report{Now: t0, Seq: 1, Sent: t0, Kind: ReportRateLimited, Info: headers(0), Rate: 40})
	ctx := context.Background()
	keys, err := r.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Errorf("got keys %q, want a state and a log of 429s", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, redisTestKey) || !strings.HasPrefix(k, "pplx-batch:limit:") {
			t.Errorf("key %q: want pplx-batch:limit: and a hash", k)
		}
		ttl, err := r.client.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > DefaultRedisIdleTTL {
			t.Errorf("key %q: TTL %v (%v), want in (0, %v]", k, ttl, err, DefaultRedisIdleTTL)
		}
	}
}

// TestRedisShadowPaces: once a response says 9 of 10 remain at 40/s, the
// tokens go to whoever asks, booked in order, never below the reserve.
func TestRedisShadowPaces(t *testing.T) {
	rd := redistest.Start(t)
	a := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	b := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	g := take(t, a, TakeRequest{Now: t0, Pace: true})
	if !g.OK || g.Wait != 0 {
		t.Fatalf("nothing known: got %+v, want a token at once", g)
	}
	report(t, a, Report{Now: t0, Seq: g.Seq, Sent: t0, Info: headers(9), Rate: 40})
	if got := state(t, a, "tok"); got != 9 {
		t.Errorf("the shadow holds %v tokens, want 9", got)
	}
	const rate, reserve = 40.0, reserveMin + 40*reserveTime
	var (
		granted int
		last    time.Duration
	)
	for i := range 40 {
		bk := a
		if i%2 == 1 {
			bk = b
		}
		g := take(t, bk, TakeRequest{Now: t0, Pace: true})
		if !g.OK {
			if g.Wait <= 0 {
				t.Fatalf("take %d: refused with no wait", i)
			}
			break
		}
		granted++
		if g.Wait < last {
			t.Errorf("take %d: booked at %v, before the one before (%v)", i, g.Wait, last)
		}
		last = g.Wait
		if g.Wait > bookAhead {
			t.Errorf("take %d: booked %v ahead, want at most %v", i, g.Wait, bookAhead)
		}
		// The server then holds 9 + the refill − what went, at least the reserve.
		if left := 9 + rate*g.Wait.Seconds() - float64(granted); left < reserve-1e-6 {
			t.Errorf("take %d at %v: leaves %.2f tokens, below the reserve %.2f", i, g.Wait, left, reserve)
		}
	}
	if granted < 5 || granted == 40 {
		t.Errorf("granted %d tokens in the first %v, want some but not all", granted, bookAhead)
	}
}

// TestRedisReportSyncs: a response sets the shadow to remaining, less the
// requests granted after it that were not refused, plus the refill since
// it was sent; an older response than the last one synced changes nothing.
func TestRedisReportSyncs(t *testing.T) {
	rd := redistest.Start(t)
	b := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	for range 6 {
		take(t, b, TakeRequest{Now: t0}) // seqs 1 to 6
	}
	report(t, b, Report{Now: t0, Seq: 5, Sent: t0, Kind: ReportRateLimited, Info: headers(0)})
	steps := []struct {
		name string
		r    Report
		want float64
	}{
		{"seq 2: 4 went after it, one refused", Report{Now: t0, Seq: 2, Sent: t0, Info: headers(9), Rate: 40}, 6},
		{"an older one", Report{Now: t0, Seq: 1, Sent: t0, Info: headers(2), Rate: 40}, 6},
		{"seq 3 sent 100 ms ago", Report{Now: t0.Add(100 * time.Millisecond), Seq: 3, Sent: t0, Info: headers(4), Rate: 40}, 4 + 4 - 2},
		{"capped at the limit", Report{Now: t0.Add(time.Second), Seq: 6, Sent: t0, Info: headers(8), Rate: 40}, 10},
	}
	for _, s := range steps {
		report(t, b, s.r)
		if got := state(t, b, "tok"); got != s.want {
			t.Errorf("%s: the shadow holds %v tokens, want %v", s.name, got, s.want)
		}
	}
}

// TestRedisPauseAndBoost: a pause one process reports holds every process;
// a rate 429 raises the reserve once per feedback delay.
func TestRedisPauseAndBoost(t *testing.T) {
	rd := redistest.Start(t)
	a := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	b := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	take(t, a, TakeRequest{Now: t0})
	take(t, a, TakeRequest{Now: t0})
	report(t, a, Report{Now: t0, Seq: 2, Sent: t0, Kind: ReportRateLimited, Info: headers(0), Rate: 40, Pause: 2 * time.Second})
	if g := take(t, b, TakeRequest{Now: t0.Add(time.Second)}); g.OK || g.Wait != time.Second {
		t.Errorf("during the pause: got %+v, want a wait of 1s", g)
	}
	if got := state(t, a, "boost"); got != reserveBoost {
		t.Errorf("boost %v after a 429, want %v", got, reserveBoost)
	}
	// A 429 of a request granted before that one does not boost again.
	report(t, b, Report{Now: t0, Seq: 1, Sent: t0, Kind: ReportRateLimited, Info: headers(0), Rate: 40})
	if got := state(t, a, "boost"); got != reserveBoost {
		t.Errorf("boost %v after an older 429, want %v", got, reserveBoost)
	}
	if g := take(t, b, TakeRequest{Now: t0.Add(2 * time.Second)}); !g.OK || g.Seq != 3 {
		t.Errorf("after the pause: got %+v, want seq 3", g)
	}
}

// TestRedisSeed: a store that lost its state starts the shadow from the
// asking Limiter's model.
func TestRedisSeed(t *testing.T) {
	rd := redistest.Start(t)
	b := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	g := take(t, b, TakeRequest{Now: t0, Floor: 41, Pace: true, Seed: Seed{Limit: 10, Rate: 40, Tokens: 3}})
	// 3 tokens, a reserve of 2.8: the next token comes in 20 ms, booked.
	if !g.OK || g.Seq != 42 || g.Wait != 20*time.Millisecond {
		t.Errorf("got %+v, want seq 42 booked 20ms ahead", g)
	}
	if got := state(t, b, "lim"); got != 10 {
		t.Errorf("limit %v, want 10", got)
	}
}

// TestRedisGoneAndBack: with Redis killed every call answers
// ErrSharedUnavailable, one warning is logged, and the store comes back by
// itself once Redis does, empty but numbering above the floor.
func TestRedisGoneAndBack(t *testing.T) {
	rd := redistest.Start(t)
	var log syncBuffer
	r := openStore(t, rd, redisTestKey, &log)
	b := r.Bucket(SearchBucket)
	take(t, b, TakeRequest{Now: t0})
	rd.Kill()
	for i := range 5 {
		_, err := b.Take(context.Background(), TakeRequest{Now: t0})
		if !errors.Is(err, ErrSharedUnavailable) {
			t.Fatalf("take %d with Redis killed: got %v, want ErrSharedUnavailable", i, err)
		}
		if err := b.Report(context.Background(), Report{Now: t0, Seq: 1, Sent: t0}); !errors.Is(err, ErrSharedUnavailable) {
			t.Fatalf("report %d with Redis killed: got %v, want ErrSharedUnavailable", i, err)
		}
	}
	if n := strings.Count(log.String(), "unreachable"); n != 1 {
		t.Errorf("warned %d times, want once; log:\n%s", n, log.String())
	}
	rd.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Online() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not come back within 10 s of Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g := take(t, b, TakeRequest{Now: t0, Floor: 7}); !g.OK || g.Seq != 8 {
		t.Errorf("after the restart: got %+v, want seq 8", g)
	}
	if !strings.Contains(log.String(), "Redis is back") {
		t.Errorf("no note that Redis came back; log:\n%s", log.String())
	}
}

// TestOpenRedisUnreachable: the error names the address, never the
// password.
func TestOpenRedisUnreachable(t *testing.T) {
	_, err := OpenRedis(context.Background(), RedisConfig{URL: "redis://:hunter2@127.0.0.1:1/0", APIKey: redisTestKey})
	var re *redisconn.Error
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a *redisconn.Error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "hunter2") || strings.Contains(msg, redisTestKey) {
		t.Errorf("error %q: want the address without the password or the key", msg)
	}
}

// TestLimiterShared: two Limiters on one shared bucket number their
// tickets from one sequence; with Redis killed they go on alone, and
// Release never fails.
func TestLimiterShared(t *testing.T) {
	rd := redistest.Start(t)
	var log syncBuffer
	set := func() *Set {
		r, err := OpenRedis(context.Background(), RedisConfig{URL: rd.URL(0), APIKey: redisTestKey, Log: zerolog.New(&log)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return NewSet(Config{Static: true}, WithShared(r))
	}
	a, b := set().Get(SearchBucket), set().Get(SearchBucket)
	var seqs []uint64
	for i := range 4 {
		l := a
		if i%2 == 1 {
			l = b
		}
		tk := mustAcquire(t, l)
		seqs = append(seqs, tk.Seq)
		l.Release(tk, Outcome{Status: 200, Header: hdr("x-ratelimit-limit", "100", "x-ratelimit-remaining", "90", "x-ratelimit-reset", "1")})
	}
	if want := []uint64{1, 2, 3, 4}; !equalSeqs(seqs, want) {
		t.Errorf("got seqs %v, want %v", seqs, want)
	}
	rd.Kill()
	tk := mustAcquire(t, a)
	if tk.Seq != 4 {
		t.Errorf("alone: got seq %d, want 4 (after a's 3)", tk.Seq)
	}
	a.Release(tk, Outcome{Status: 200})
	if !strings.Contains(log.String(), "unreachable") {
		t.Errorf("no warning that Redis is unreachable; log:\n%s", log.String())
	}
	if s := a.Stats(); s.Acquired != 3 || s.Released != 3 {
		t.Errorf("got %d acquired and %d released, want 3 and 3", s.Acquired, s.Released)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRedisSharedCurve: without headers, a rate 429 cuts the shared CUBIC
// curve, its rate measured from the requests of every process between two
// losses, and the curve paces every process: β·w just after the cut.
func TestRedisSharedCurve(t *testing.T) {
	rd := redistest.Start(t)
	a := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	b := openStore(t, rd, redisTestKey, nil).Bucket(SearchBucket)
	k := 2 * time.Second
	// Nothing known: no pacing.
	for i := range 10 {
		bk := a
		if i%2 == 1 {
			bk = b
		}
		if g := take(t, bk, TakeRequest{Now: t0, Pace: true}); !g.OK || g.Wait != 0 {
			t.Fatalf("take %d before any 429: got %+v, want a token at once", i, g)
		}
	}
	// The first loss, seq 10: no earlier loss to measure from, so the
	// reporter's own estimate.
	report(t, a, Report{Now: t0, Seq: 10, Sent: t0, Kind: ReportRateLimited, Curve: Curve{Rate: 50, K: k}})
	if got := state(t, a, "pw"); got != 50 {
		t.Fatalf("the curve's rate after the first loss is %v, want the reporter's 50", got)
	}
	// 30 more requests over the next second, by both processes, one
	// of them refused; the loss of seq 41, sent 1 s after the first,
	// measures 41 − 10 − 1 = 30 admitted in 1 s.
	for i := range 31 {
		bk := a
		if i%2 == 1 {
			bk = b
		}
		// Far past the first cut: the curve has climbed, so a token comes.
		take(t, bk, TakeRequest{Now: t0.Add(time.Hour), Floor: uint64(10 + i)})
	}
	report(t, b, Report{Now: t0, Seq: 5, Sent: t0, Kind: ReportRateLimited, Curve: Curve{Rate: 80, K: k}})
	if got := state(t, a, "pw"); got != 50 {
		t.Errorf("a 429 of a request granted before the cut cut again: rate %v", got)
	}
	report(t, a, Report{Now: t0, Seq: 25, Sent: t0, Kind: ReportConcurrencyLimited, Curve: Curve{Rate: 80, K: k}}) // refused, no cut
	at := t0.Add(2 * time.Second)
	report(t, b, Report{Now: at, Seq: 41, Sent: t0.Add(time.Second), Kind: ReportRateLimited, Curve: Curve{Rate: 80, K: k}})
	if got := state(t, a, "pw"); got != 30 {
		t.Fatalf("the curve's rate after the second loss is %v, want the 30/s admitted between the two", got)
	}
	// Just after the cut the curve paces at β·30 = 21/s, climbing to
	// 28.9/s a second later (25.8 in that second), across both
	// processes, whoever asks.
	granted := 0
	for i := range 200 {
		bk := a
		if i%2 == 1 {
			bk = b
		}
		now := at.Add(time.Duration(i) * 5 * time.Millisecond)
		// A grant may be booked a little ahead: count those that go
		// within the second.
		if g := take(t, bk, TakeRequest{Now: now, Pace: true}); g.OK && now.Add(g.Wait).Before(at.Add(time.Second)) {
			granted++
		}
	}
	t.Logf("granted %d tokens in the second after the cut", granted)
	if granted < 21 || granted > 30 {
		t.Errorf("granted %d tokens in the second after the cut, want about 26, between β·30 and 30", granted)
	}
	// A store with no state (here another key) starts the curve from a
	// Limiter's own, at its rate.
	c := openStore(t, rd, "another-key", nil).Bucket(SearchBucket)
	take(t, c, TakeRequest{Now: t0, Floor: 500, Pace: true, Curve: Curve{Rate: 12, K: k}})
	if got := state(t, c, "pw"); got != 12 {
		t.Errorf("a restarted store's curve rate is %v, want the Limiter's 12", got)
	}
}
