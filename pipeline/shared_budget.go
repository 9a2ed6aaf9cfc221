package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
)

// Ledger keeps the books of a job: it books the estimated cost of each
// request against the job's budget before the request is sent, settles
// what the request cost once it is answered, and counts the rows that
// finished and failed. The pipeline's own counters keep the books of one
// process; a [SharedLedger] keeps those of every process of a job.
type Ledger interface {
	// Reserve books est (USD) for a request about to be sent. With a
	// budget (when positive) it fails with a *BudgetError when what the
	// job spent plus est would pass the budget; when only the bookings of
	// the requests in flight would make it pass, it waits for them to
	// settle, since they may cost less than booked. It returns ctx's
	// cause if ctx ends first.
	Reserve(ctx context.Context, est, budget float64) error
	// Settle releases the booking est of a finished request and adds
	// spent, what it cost.
	Settle(est, spent float64)
	// Finish counts one finished row, failed or not, and returns the
	// job's failed and finished rows so far, this one included.
	Finish(failed bool) (jobFailed, jobFinished int64)
}

// Defaults of SharedLedgerConfig.
const (
	DefaultLeaseTTL  = 15 * time.Second
	DefaultHeartbeat = time.Second
	DefaultIdleTTL   = time.Hour
	DefaultPoll      = 100 * time.Millisecond
	DefaultOpTimeout = 2 * time.Second
)

// SharedLedgerConfig configures a SharedLedger.
type SharedLedgerConfig struct {
	// URL is the Redis URL, redis://[:password@]host:port/db or rediss://.
	URL string
	// JobID names the job whose processes share the books. Redis keys
	// hold a hash of it, never the id itself (nor an API key).
	JobID string
	// LeaseTTL is how long the bookings of a process outlive its last
	// word to Redis: the bookings of a crashed process stop counting
	// after it. 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Heartbeat is how often a live process renews its lease and, while
	// Redis is unreachable, tries to rejoin; 0 means DefaultHeartbeat. It
	// must be well under LeaseTTL.
	Heartbeat time.Duration
	// IdleTTL is how long the job's books stay in Redis after the last
	// process of the job wrote to them; 0 means DefaultIdleTTL.
	IdleTTL time.Duration
	// Poll is how often a reservation waiting for other processes'
	// bookings to settle asks again; 0 means DefaultPoll.
	Poll time.Duration
	// OpTimeout bounds each Redis call; 0 means DefaultOpTimeout. A call
	// that fails or times out makes the ledger fall back to local books.
	OpTimeout time.Duration
	// Log receives the warning that Redis became unreachable (once per
	// outage) and the note that it came back.
	Log zerolog.Logger

	// now, when set, replaces the Redis server's clock (tests).
	now func() time.Time
}

// LedgerTotals are a job's books as a SharedLedger last saw them.
type LedgerTotals struct {
	// Spent is what the job's processes spent, in USD; InFlight what the
	// requests in flight are booked at.
	Spent, InFlight float64
	// Finished and Failed count the job's finished and failed rows.
	Finished, Failed int64
	// Processes is the number of live processes of the job.
	Processes int
	// Shared is false while Redis is unreachable: the totals are then the
	// last ones Redis gave plus what this process did since.
	Shared bool
}

// SharedLedger is a [Ledger] whose books are in Redis, shared by every
// process that opens one with the same URL and job id: together they
// draw on one budget and count failures against one limit. Each process
// writes its own bookings, spend and row counts, as absolute values, and
// a Lua script sums those of every process atomically, so a Redis that
// restarted empty is filled again by the next word of each live process.
// The bookings of a process whose lease (see LeaseTTL) ran out no longer
// count.
//
// When Redis becomes unreachable the ledger logs one warning and carries
// on with local books: it lets this process spend its share of what was
// left of the budget when Redis was last seen (the rest divided by the
// number of live processes), so that all of them together stay within
// the budget; it rejoins at the first heartbeat that reaches Redis again.
//
// Its methods are safe for concurrent use.
type SharedLedger struct {
	cfg    SharedLedgerConfig
	url    string // redacted
	client *redis.Client
	keys   []string
	pid    string

	mu       sync.Mutex
	reserved float64 // this process's bookings
	spent    float64
	finished int64
	failed   int64
	settled  chan struct{} // closed (and replaced) when a booking settles
	online   bool
	last     LedgerTotals // the job's totals at the last word from Redis
	lastMine [4]float64   // this process's reserved, spent, finished, failed then
	closed   bool

	stop chan struct{}
	done chan struct{}
}

// NewSharedLedger connects to the Redis at cfg.URL, registers this process
// with the job's books and starts its heartbeat. It fails, with a
// *redisconn.Error naming the redacted URL, when Redis cannot be reached:
// a job should not start without the books it was told to share. Close
// releases it.
func NewSharedLedger(ctx context.Context, cfg SharedLedgerConfig) (*SharedLedger, error) {
	if cfg.JobID == "" {
		return nil, errors.New("pipeline: shared ledger: no job id")
	}
	cfg.LeaseTTL = cmp0(cfg.LeaseTTL, DefaultLeaseTTL)
	cfg.Heartbeat = cmp0(cfg.Heartbeat, DefaultHeartbeat)
	cfg.IdleTTL = cmp0(cfg.IdleTTL, DefaultIdleTTL)
	cfg.Poll = cmp0(cfg.Poll, DefaultPoll)
	cfg.OpTimeout = cmp0(cfg.OpTimeout, DefaultOpTimeout)
	client, err := redisconn.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	l := &SharedLedger{
		cfg:    cfg,
		url:    redisconn.Redact(cfg.URL),
		client: client,
		keys:   ledgerKeys(cfg.JobID),
		pid:    processID(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	l.mu.Lock()
	_, err = l.sync(ctx, modeSync, 0, 0)
	l.mu.Unlock()
	if err != nil {
		_ = client.Close()
		return nil, redisconn.NewError(cfg.URL, "register", err)
	}
	l.online = true
	go l.heartbeat()
	return l, nil
}

// ledgerKeys returns the Redis keys of a job's books: lease (process →
// lease deadline, ms), reserved, spent, finished and failed (process →
// value). The hash tag keeps them in one slot of a Redis Cluster.
func ledgerKeys(jobID string) []string {
	sum := sha256.Sum256([]byte("pplx-batch job\x00" + jobID))
	p := "pplx-batch:job:{" + hex.EncodeToString(sum[:16]) + "}:"
	return []string{p + "lease", p + "reserved", p + "spent", p + "finished", p + "failed"}
}

func processID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Reserve implements [Ledger]: the budget is the job's, shared by every
// process of the job.
func (l *SharedLedger) Reserve(ctx context.Context, est, budget float64) error {
	for {
		l.mu.Lock()
		wait, err := l.reserve(ctx, est, budget)
		if l.settled == nil {
			l.settled = make(chan struct{})
		}
		settled := l.settled
		l.mu.Unlock()
		if !wait {
			return err
		}
		t := time.NewTimer(l.cfg.Poll)
		select {
		case <-settled:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
		t.Stop()
	}
}

// reserve tries to book est once; wait says to try again after a booking
// settles. l.mu is held.
func (l *SharedLedger) reserve(ctx context.Context, est, budget float64) (wait bool, err error) {
	if budget <= 0 {
		// No budget to check: book locally; the next word to Redis (the
		// request's Settle) carries it.
		l.reserved += est
		return false, nil
	}
	if l.online {
		r, err := l.sync(ctx, modeReserve, est, budget)
		switch {
		case err == nil:
			switch r.verdict {
			case verdictOK:
				l.reserved += est
				return false, nil
			case verdictWait:
				return true, nil
			default:
				return false, &BudgetError{Budget: budget, Spent: r.totals.Spent, InFlight: r.totals.InFlight, Next: est}
			}
		case ctx.Err() != nil:
			return false, context.Cause(ctx)
		}
		l.lost(err)
	}
	// Local books: this process's share of what was left.
	limit := l.offlineLimit(budget)
	if budget > 0 && l.spent+l.reserved+est > limit {
		if l.spent+est > limit || l.reserved == 0 {
			t := l.totalsLocked()
			return false, &BudgetError{Budget: budget, Spent: t.Spent, InFlight: t.InFlight, Next: est}
		}
		return true, nil
	}
	l.reserved += est
	return false, nil
}

// offlineLimit is what this process may have spent and booked while Redis
// is unreachable: what it had when Redis was last seen plus its share of
// the rest of the budget. l.mu is held.
func (l *SharedLedger) offlineLimit(budget float64) float64 {
	rest := max(0, budget-l.last.Spent-l.last.InFlight)
	return l.lastMine[0] + l.lastMine[1] + rest/float64(max(1, l.last.Processes))
}

// Settle implements [Ledger].
func (l *SharedLedger) Settle(est, spent float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reserved = max(0, l.reserved-est)
	l.spent += spent
	if l.settled != nil {
		close(l.settled) // wake this process's reservations waiting for one
		l.settled = nil
	}
	l.push()
}

// Finish implements [Ledger]: the counts are the job's, every process's.
func (l *SharedLedger) Finish(failed bool) (jobFailed, jobFinished int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finished++
	if failed {
		l.failed++
	}
	l.push()
	t := l.totalsLocked()
	return t.Failed, t.Finished
}

// push writes this process's books to Redis when it is reachable. l.mu is
// held.
func (l *SharedLedger) push() {
	if !l.online || l.closed {
		return
	}
	if _, err := l.sync(context.Background(), modeSync, 0, 0); err != nil {
		l.lost(err)
	}
}

// Totals returns the job's books as last seen, with what this process did
// since when Redis is unreachable.
func (l *SharedLedger) Totals() LedgerTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.totalsLocked()
}

func (l *SharedLedger) totalsLocked() LedgerTotals {
	if l.online {
		return l.last
	}
	t := l.last
	t.InFlight += l.reserved - l.lastMine[0]
	t.Spent += l.spent - l.lastMine[1]
	t.Finished += l.finished - int64(l.lastMine[2])
	t.Failed += l.failed - int64(l.lastMine[3])
	t.Shared = false
	return t
}

// lost switches to local books after a failed Redis call. l.mu is held.
func (l *SharedLedger) lost(err error) {
	if !l.online {
		return
	}
	l.online = false
	l.cfg.Log.Warn().Str("shared_limit", l.url).Str("error", redisconn.NewError(l.cfg.URL, "call", err).Error()).
		Msg("shared budget: Redis is unreachable; this process keeps its own books (its share of the budget left) until Redis answers again")
}

// heartbeat renews the lease of this process, and rejoins the shared books
// after an outage, until Close.
func (l *SharedLedger) heartbeat() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		online := l.online
		l.mu.Unlock()
		if !online {
			// Probe without holding the books: a Redis that does not answer
			// must not stall the workers for OpTimeout at every beat.
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.OpTimeout)
			err := l.client.Ping(ctx).Err()
			cancel()
			if err != nil {
				continue
			}
		}
		l.mu.Lock()
		_, err := l.sync(context.Background(), modeSync, 0, 0)
		switch {
		case err != nil:
			l.lost(err)
		case !l.online:
			l.online = true
			l.cfg.Log.Info().Str("shared_limit", l.url).Float64("job_spent_usd", l.last.Spent).
				Msg("shared budget: Redis is back; this process's books are shared again")
			if l.settled != nil {
				close(l.settled) // waiting reservations ask Redis again
				l.settled = nil
			}
		}
		l.mu.Unlock()
	}
}

// Close stops the heartbeat and withdraws this process from the job's
// live processes; what it spent and its rows stay in the job's books.
// It returns the error of the last Redis call (with the password
// scrubbed), if any; the books are then left to expire.
func (l *SharedLedger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	_, err := l.sync(context.Background(), modeClose, 0, 0)
	l.mu.Unlock()
	cerr := l.client.Close()
	if err != nil {
		return redisconn.NewError(l.cfg.URL, "close", err)
	}
	if cerr != nil {
		return redisconn.NewError(l.cfg.URL, "close", cerr)
	}
	return nil
}

// Script modes and verdicts.
const (
	modeReserve = "reserve" // book est if the budget allows
	modeSync    = "sync"    // write this process's books, renew its lease
	modeClose   = "close"   // write them and withdraw the process

	verdictOK   = "ok"
	verdictWait = "wait"
	verdictOver = "over"
)

type ledgerReply struct {
	verdict string
	totals  LedgerTotals
}

// sync runs the ledger script once with this process's books and records
// the job's totals it returns. l.mu is held.
func (l *SharedLedger) sync(ctx context.Context, mode string, est, budget float64) (ledgerReply, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
	defer cancel()
	now := ""
	if l.cfg.now != nil {
		now = strconv.FormatInt(l.cfg.now().UnixMilli(), 10)
	}
	mine := [4]float64{l.reserved, l.spent, float64(l.finished), float64(l.failed)}
	args := []any{
		l.pid, mode, fmtFloat(mine[0]), fmtFloat(mine[1]), strconv.FormatInt(l.finished, 10), strconv.FormatInt(l.failed, 10),
		fmtFloat(est), fmtFloat(budget), l.cfg.LeaseTTL.Milliseconds(), l.cfg.IdleTTL.Milliseconds(), now,
	}
	v, err := ledgerScript.Run(ctx, l.client, l.keys, args...).StringSlice()
	if err != nil {
		return ledgerReply{}, err
	}
	r, err := parseLedgerReply(v)
	if err != nil {
		return r, err
	}
	if r.verdict == verdictOK && mode == modeReserve {
		mine[0] += est
	}
	l.last, l.lastMine = r.totals, mine
	return r, nil
}

func parseLedgerReply(v []string) (ledgerReply, error) {
	if len(v) != 6 {
		return ledgerReply{}, fmt.Errorf("ledger script: %d values, want 6", len(v))
	}
	r := ledgerReply{verdict: v[0], totals: LedgerTotals{Shared: true}}
	var errs [5]error
	r.totals.Spent, errs[0] = strconv.ParseFloat(v[1], 64)
	r.totals.InFlight, errs[1] = strconv.ParseFloat(v[2], 64)
	r.totals.Finished, errs[2] = strconv.ParseInt(v[3], 10, 64)
	r.totals.Failed, errs[3] = strconv.ParseInt(v[4], 10, 64)
	r.totals.Processes, errs[4] = strconv.Atoi(v[5])
	if err := errors.Join(errs[:]...); err != nil {
		return ledgerReply{}, fmt.Errorf("ledger script: %w", err)
	}
	return r, nil
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// ledgerScript writes one process's books and returns the job's.
//
// KEYS: lease, reserved, spent, finished, failed (hashes by process id).
// ARGV: pid, mode, reserved, spent, finished, failed (this process's,
// absolute), est, budget, lease ms, idle ms, now ms ("" for Redis TIME).
// Returns: verdict, spent, in flight, finished, failed, live processes.
//
// The bookings of processes whose lease ran out are dropped; their spend
// and rows stay. In reserve mode est is booked unless the budget says
// "over" (spent + est passes it, or only bookings that can never settle
// would) or "wait" (the bookings in flight would make it pass).
var ledgerScript = redis.NewScript(`
local pid, mode = ARGV[1], ARGV[2]
local mine = tonumber(ARGV[3])
local est, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local leaseMS, idleMS = tonumber(ARGV[9]), tonumber(ARGV[10])
local now = tonumber(ARGV[11])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('HSET', KEYS[3], pid, ARGV[4])
redis.call('HSET', KEYS[4], pid, ARGV[5])
redis.call('HSET', KEYS[5], pid, ARGV[6])
if mode == 'close' then
  redis.call('HDEL', KEYS[1], pid)
  redis.call('HDEL', KEYS[2], pid)
else
  redis.call('HSET', KEYS[1], pid, now + leaseMS)
end
local live, alive = 0, {}
local leases = redis.call('HGETALL', KEYS[1])
for i = 1, #leases, 2 do
  if tonumber(leases[i + 1]) > now then
    alive[leases[i]] = true
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], leases[i])
  end
end
local inflight = 0
local books = redis.call('HGETALL', KEYS[2])
for i = 1, #books, 2 do
  local who = books[i]
  if who ~= pid then
    if alive[who] then
      inflight = inflight + tonumber(books[i + 1])
    else
      redis.call('HDEL', KEYS[2], who)
    end
  end
end
if mode ~= 'close' then
  inflight = inflight + mine
end
local function sum(key)
  local s = 0
  for _, v in ipairs(redis.call('HVALS', key)) do
    s = s + tonumber(v)
  end
  return s
end
local spent, finished, failed = sum(KEYS[3]), sum(KEYS[4]), sum(KEYS[5])
local verdict = 'ok'
if mode == 'reserve' then
  if budget > 0 and spent + inflight + est > budget then
    if spent + est > budget or inflight == 0 then
      verdict = 'over'
    else
      verdict = 'wait'
    end
  else
    mine = mine + est
    inflight = inflight + est
  end
end
if mode ~= 'close' then
  redis.call('HSET', KEYS[2], pid, string.format('%.17g', mine))
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], idleMS)
end
return {verdict, string.format('%.17g', spent), string.format('%.17g', inflight),
  string.format('%d', finished), string.format('%d', failed), tostring(live)}
`)
