package pipeline

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
	"github.com/pplx-batch/pplx-batch/internal/redistest"
)

// ledgerDeadline bounds the waits of these tests for something that happens
// in milliseconds (a heartbeat); it is a deadline, not a measurement.
const ledgerDeadline = 20 * time.Second

// ledgerLog is a log sink safe for concurrent writes.
type ledgerLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *ledgerLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *ledgerLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leaseClock is a clock for the leases, moved by the test.
type leaseClock struct{ ms atomic.Int64 }

func (f *leaseClock) now() time.Time          { return time.UnixMilli(f.ms.Load()) }
func (f *leaseClock) advance(d time.Duration) { f.ms.Add(d.Milliseconds()) }

func newLeaseClock() *leaseClock {
	f := &leaseClock{}
	f.ms.Store(1_700_000_000_000)
	return f
}

func (l *SharedLedger) isOnline() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online
}

// refresh writes l's books to Redis and returns the job's totals as Redis
// has them now.
func (l *SharedLedger) refresh(t *testing.T) LedgerTotals {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.sync(context.Background(), modeSync, 0, 0); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return l.totalsLocked()
}

func testLedgerConfig(url, job string) SharedLedgerConfig {
	return SharedLedgerConfig{URL: url, JobID: job, Heartbeat: 20 * time.Millisecond, Poll: time.Millisecond}
}

// openLedger opens a ledger closed at the end of the test.
func openLedger(t *testing.T, cfg SharedLedgerConfig) *SharedLedger {
	t.Helper()
	l, err := NewSharedLedger(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewSharedLedger: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// crash stops l as a killed process would stop: no more heartbeats, no
// word to Redis, its bookings left behind.
func (l *SharedLedger) crash() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	_ = l.client.Close()
}

// spendUntilBudget runs workers goroutines that book est, "send" and
// settle cost(n) for the n-th request until the budget stops them, and
// returns what was spent and how many requests were sent. Every worker
// must end with a *BudgetError.
func spendUntilBudget(t *testing.T, l Ledger, workers int, est, budget float64, cost func(n int64) float64, maxInFlight *atomic.Int64, inFlight *atomic.Int64) (spent float64, sent int64) {
	t.Helper()
	var (
		mu   sync.Mutex
		n    atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Go(func() {
			for {
				if err := l.Reserve(context.Background(), est, budget); err != nil {
					errs <- err
					return
				}
				k := inFlight.Add(1)
				for m := maxInFlight.Load(); k > m && !maxInFlight.CompareAndSwap(m, k); m = maxInFlight.Load() {
				}
				c := cost(n.Add(1))
				time.Sleep(100 * time.Microsecond) // "in flight": let the others book
				inFlight.Add(-1)
				mu.Lock()
				spent += c
				mu.Unlock()
				l.Settle(est, c)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if _, ok := errors.AsType[*BudgetError](err); !ok {
			t.Errorf("a worker stopped with %v, want a *BudgetError", err)
		}
	}
	return spent, n.Load()
}

// Processes sharing one budget never spend more than it: bookings are
// only made while the spend plus what is in flight leaves room, and a
// request costs at most its booking here. Each process stops only when
// the job's spend leaves no room for one more request.
func TestSharedLedgerBudget(t *testing.T) {
	srv := redistest.Start(t)
	const est, budget = 0.01, 1.0
	for _, tc := range []struct {
		name               string
		processes, workers int
		cost               func(n int64) float64
	}{
		{"2 processes, cost as booked", 2, 4, func(int64) float64 { return est }},
		{"4 processes, cost as booked", 4, 3, func(int64) float64 { return est }},
		{"4 processes, some cost less", 4, 3, func(n int64) float64 { return est * float64(1+n%2) / 2 }},
		{"4 processes, some free", 4, 2, func(n int64) float64 { return est * float64(n%3) / 2 }},
		{"4 processes, some cost more", 4, 3, func(n int64) float64 { return est * float64(1+n%2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := t.Name()
			ledgers := make([]*SharedLedger, tc.processes)
			for i := range ledgers {
				ledgers[i] = openLedger(t, testLedgerConfig(srv.URL(0), job))
			}
			var (
				wg                    sync.WaitGroup
				mu                    sync.Mutex
				total, overrun        float64
				inFlight, maxInFlight atomic.Int64
			)
			for _, l := range ledgers {
				wg.Go(func() {
					s, _ := spendUntilBudget(t, l, tc.workers, est, budget, func(n int64) float64 {
						c := tc.cost(n)
						mu.Lock()
						overrun += max(0, c-est)
						mu.Unlock()
						return c
					}, &maxInFlight, &inFlight)
					mu.Lock()
					total += s
					mu.Unlock()
				})
			}
			wg.Wait()
			// What requests cost beyond their booking is the only overrun.
			if total > budget+overrun+1e-9 {
				t.Errorf("spent $%.4f, more than the budget $%.2f plus $%.4f that requests cost beyond their bookings", total, budget, overrun)
			}
			if total <= budget-est-1e-9 {
				t.Errorf("spent $%.4f and stopped: room was left for another $%.2f request under $%.2f", total, est, budget)
			}
			// A process's totals are the job's as of its last word to Redis,
			// which may come before another process's last Settle: ask again.
			got := ledgers[0].refresh(t)
			if math.Abs(got.Spent-total) > 1e-9 || got.InFlight > 1e-9 {
				t.Errorf("the job's books say $%.6f spent, $%.6f in flight; the processes spent $%.6f with nothing in flight", got.Spent, got.InFlight, total)
			}
			if got.Processes != tc.processes {
				t.Errorf("the job's books count %d live processes, want %d", got.Processes, tc.processes)
			}
			t.Logf("spent $%.4f of $%.2f; at most %d requests in flight at once", total, budget, maxInFlight.Load())
		})
	}
}

// A booking of a process that died stops counting when its lease runs
// out: another process waits for it (it might still settle for less)
// until then, and books its request after.
func TestSharedLedgerCrashedBookingsExpire(t *testing.T) {
	srv := redistest.Start(t)
	clock := newLeaseClock()
	cfg := testLedgerConfig(srv.URL(0), t.Name())
	cfg.now, cfg.LeaseTTL = clock.now, 10*time.Second
	crashed, alive := openLedger(t, cfg), openLedger(t, cfg)
	ctx := context.Background()

	if err := crashed.Reserve(ctx, 0.6, 1); err != nil {
		t.Fatal(err)
	}
	crashed.Settle(0, 0.1) // spent: $0.1; booked: $0.6
	crashed.crash()

	try := func() (bool, error) {
		alive.mu.Lock()
		defer alive.mu.Unlock()
		return alive.reserve(ctx, 0.5, 1)
	}
	if wait, err := try(); !wait || err != nil {
		t.Fatalf("with $0.6 booked by a live lease: wait %v, err %v; want to wait", wait, err)
	}
	if got := alive.Totals(); got.Processes != 2 || math.Abs(got.InFlight-0.6) > 1e-9 {
		t.Fatalf("before the lease runs out: %+v, want 2 processes, $0.6 in flight", got)
	}
	clock.advance(cfg.LeaseTTL + time.Millisecond)
	if wait, err := try(); wait || err != nil {
		t.Fatalf("after the lease ran out: wait %v, err %v; want the booking made", wait, err)
	}
	got := alive.Totals()
	if got.Processes != 1 || math.Abs(got.InFlight-0.5) > 1e-9 || math.Abs(got.Spent-0.1) > 1e-9 {
		t.Errorf("after the lease ran out: %+v, want 1 process, $0.5 in flight and the dead process's $0.1 still spent", got)
	}
	// The spend of the dead process still counts against the budget.
	alive.Settle(0.5, 0.5)
	err := alive.Reserve(ctx, 0.45, 1)
	if be, ok := errors.AsType[*BudgetError](err); !ok || math.Abs(be.Spent-0.6) > 1e-9 {
		t.Errorf("Reserve past the budget: %v, want a *BudgetError with $0.6 spent", err)
	}
}

// Redis killed mid-run: every process goes on with its share of what was
// left, without an error and with one warning; when Redis is back (empty)
// the processes fill it again with their books, and the job still stops
// within its budget.
func TestSharedLedgerRedisKilledAndRestarted(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Password: "ledger-secret"})
	const est, budget = 0.01, 1.0
	var logs ledgerLog
	cfg := testLedgerConfig(srv.URL(0), t.Name())
	cfg.Log = zerolog.New(&logs)
	a, b := openLedger(t, cfg), openLedger(t, cfg)
	ctx := context.Background()
	spend := func(l *SharedLedger, n int) {
		t.Helper()
		for range n {
			if err := l.Reserve(ctx, est, budget); err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			l.Settle(est, est)
			l.Finish(false)
		}
	}
	spend(a, 20)
	spend(b, 20) // the job: $0.40 spent; $0.60 left, $0.30 a process
	a.Settle(0, 0)
	b.Settle(0, 0) // both have seen the job's $0.40

	srv.Kill()
	spend(a, 25) // within its share: no error
	spend(b, 25)
	if a.isOnline() || b.isOnline() {
		t.Fatal("the ledgers still think Redis is there")
	}
	// Past its share a process stops as if the budget were reached.
	if err := a.Reserve(ctx, 0.06, budget); err == nil {
		t.Fatal("offline, a process booked past its share of the budget")
	} else if _, ok := errors.AsType[*BudgetError](err); !ok {
		t.Fatalf("offline past the share: %v, want a *BudgetError", err)
	}
	if got := a.Totals(); got.Shared || math.Abs(got.Spent-0.65) > 1e-9 || got.Finished != 65 {
		t.Errorf("offline totals %+v, want not shared, $0.65 spent (the last known $0.40 plus its own $0.25), 65 rows", got)
	}

	srv.Restart()
	deadline := time.Now().Add(ledgerDeadline)
	for !a.isOnline() || !b.isOnline() {
		if time.Now().After(deadline) {
			t.Fatalf("the ledgers did not rejoin Redis within %v", ledgerDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Settle(0, 0) // one more word from each, after both rejoined
	b.Settle(0, 0)
	if got := a.Totals(); !got.Shared || math.Abs(got.Spent-0.9) > 1e-9 || got.Finished != 90 || got.Processes != 2 {
		t.Errorf("after the restart the job's books are %+v, want shared, $0.90 spent, 90 rows, 2 processes", got)
	}

	var inFlight, maxInFlight atomic.Int64
	sa, _ := spendUntilBudget(t, a, 2, est, budget, func(int64) float64 { return est }, &maxInFlight, &inFlight)
	sb, _ := spendUntilBudget(t, b, 2, est, budget, func(int64) float64 { return est }, &maxInFlight, &inFlight)
	if total := 0.9 + sa + sb; total > budget+1e-9 || total < budget-est-1e-9 {
		t.Errorf("the job spent $%.4f in all, want within one request under the budget $%.2f", total, budget)
	}

	out := logs.String()
	if n := strings.Count(out, "Redis is unreachable"); n != 2 {
		t.Errorf("%d warnings that Redis is unreachable, want one a process:\n%s", n, out)
	}
	if n := strings.Count(out, "Redis is back"); n != 2 {
		t.Errorf("%d notes that Redis is back, want one a process:\n%s", n, out)
	}
	if strings.Contains(out, "ledger-secret") {
		t.Errorf("the log shows the Redis password:\n%s", out)
	}
}

// Failures and finished rows are counted for the whole job.
func TestSharedLedgerFinish(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testLedgerConfig(srv.URL(0), t.Name())
	a, b := openLedger(t, cfg), openLedger(t, cfg)
	for i, tc := range []struct {
		l                    *SharedLedger
		failed               bool
		wantFailed, wantDone int64
	}{
		{a, false, 0, 1},
		{b, true, 1, 2},
		{b, false, 1, 3},
		{a, true, 2, 4},
		{a, true, 3, 5},
	} {
		if f, d := tc.l.Finish(tc.failed); f != tc.wantFailed || d != tc.wantDone {
			t.Errorf("step %d: Finish(%v) = %d failed of %d, want %d of %d", i, tc.failed, f, d, tc.wantFailed, tc.wantDone)
		}
	}
	// Another job's books are its own.
	other := openLedger(t, testLedgerConfig(srv.URL(0), t.Name()+"-other"))
	if f, d := other.Finish(true); f != 1 || d != 1 {
		t.Errorf("another job: %d failed of %d, want 1 of 1", f, d)
	}
}

// The keys hold a hash of the job id, not the id; the books expire once
// the job is idle.
func TestSharedLedgerKeys(t *testing.T) {
	srv := redistest.Start(t)
	const job = "nightly-refresh-2026"
	cfg := testLedgerConfig(srv.URL(0), job)
	cfg.IdleTTL = time.Hour
	l := openLedger(t, cfg)
	l.Settle(0, 0.25)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Errorf("keys %q, want the 5 hashes of one job", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, job) || !strings.HasPrefix(k, "pplx-batch:job:{") {
			t.Errorf("key %q: want pplx-batch:job:{hash}:..., without the job id", k)
		}
		if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > cfg.IdleTTL {
			t.Errorf("key %q expires in %v, want within %v", k, ttl, cfg.IdleTTL)
		}
	}
}

// Without Redis a ledger does not start; the error names the address and
// hides the password.
func TestNewSharedLedgerUnreachable(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Password: "start-secret"})
	url := srv.URL(0)
	srv.Kill()
	_, err := NewSharedLedger(context.Background(), SharedLedgerConfig{URL: url, JobID: "j"})
	if _, ok := errors.AsType[*redisconn.Error](err); !ok || !strings.Contains(err.Error(), srv.Addr()) || strings.Contains(err.Error(), "start-secret") {
		t.Errorf("NewSharedLedger with Redis down: %v; want a *redisconn.Error naming %s without the password", err, srv.Addr())
	}
	if _, err := NewSharedLedger(context.Background(), SharedLedgerConfig{URL: url}); err == nil {
		t.Error("NewSharedLedger without a job id: no error")
	}
}

func TestParseLedgerReply(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want ledgerReply
		err  bool
	}{
		{[]string{"ok", "0.25", "0.5", "10", "2", "3"}, ledgerReply{verdictOK, LedgerTotals{Spent: 0.25, InFlight: 0.5, Finished: 10, Failed: 2, Processes: 3, Shared: true}}, false},
		{[]string{"wait", "1e-05", "0", "0", "0", "1"}, ledgerReply{verdictWait, LedgerTotals{Spent: 1e-05, Processes: 1, Shared: true}}, false},
		{[]string{"ok", "x", "0", "0", "0", "1"}, ledgerReply{}, true},
		{[]string{"ok"}, ledgerReply{}, true},
	} {
		got, err := parseLedgerReply(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseLedgerReply(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// BenchmarkSharedLedger measures one request's bookkeeping (Reserve,
// Settle, Finish: three Redis round trips) against a local redis-server,
// with 4 processes of 4 workers sharing the books.
func BenchmarkSharedLedger(b *testing.B) {
	srv := redistest.Start(b)
	ledgers := make([]*SharedLedger, 4)
	for i := range ledgers {
		l, err := NewSharedLedger(context.Background(), SharedLedgerConfig{URL: srv.URL(0), JobID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ledgers[i] = l
	}
	var next atomic.Int64
	b.SetParallelism(4) // 4 × GOMAXPROCS goroutines, spread over the processes
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := ledgers[next.Add(1)%int64(len(ledgers))]
		for pb.Next() {
			if err := l.Reserve(context.Background(), 1e-6, 1e9); err != nil {
				b.Error(err)
				return
			}
			l.Settle(1e-6, 1e-6)
			l.Finish(false)
		}
	})
}
