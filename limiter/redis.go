package limiter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
)

// Defaults of [RedisConfig].
const (
	// DefaultRedisOpTimeout bounds each call to Redis on the request path.
	DefaultRedisOpTimeout = 500 * time.Millisecond
	// DefaultRedisRetry is how often an unreachable Redis is tried again.
	DefaultRedisRetry = time.Second
	// DefaultRedisIdleTTL is how long a bucket's shared state outlives its
	// last use.
	DefaultRedisIdleTTL = 10 * time.Minute
)

// maxRejectedKept bounds the shared log of 429s (the sequence numbers of
// the requests refused, which took no token).
const maxRejectedKept = 1024

// RedisConfig configures [OpenRedis].
type RedisConfig struct {
	// URL is the Redis URL, redis://[:password@]host:port/db or rediss://
	// (see package internal/redisconn for the query parameters).
	URL string
	// APIKey is the API key whose limit is shared. Only a hash of it,
	// with each bucket's name, goes into the Redis keys; it is never sent
	// nor logged.
	APIKey string
	// Log receives the warning that Redis became unreachable (once per
	// outage) and the note that it came back.
	Log zerolog.Logger
	// OpTimeout bounds each call to Redis; 0 means
	// [DefaultRedisOpTimeout]. A call that fails or times out makes every
	// bucket pace alone until Redis answers again.
	OpTimeout time.Duration
	// Retry is how often an unreachable Redis is tried again; 0 means
	// [DefaultRedisRetry].
	Retry time.Duration
	// IdleTTL is how long a bucket's shared state stays in Redis after
	// its last use; 0 means [DefaultRedisIdleTTL].
	IdleTTL time.Duration

	// clientTime makes the scripts use the time of the Limiter's Clock
	// instead of the Redis server's (tests on a fake clock).
	clientTime bool
}

// Redis is a [SharedStore] in Redis: every process that opens one on the
// same Redis with the same API key shares the state of each bucket (see
// the package documentation, "Sharing a limit"). Each request costs one
// script call to take its token and one to report its outcome. When Redis
// cannot be reached it logs one warning, its buckets answer
// [ErrSharedUnavailable] at once (each Limiter then paces alone from its
// own model), and it tries again every RedisConfig.Retry, logging when it
// is back. Its methods are safe for concurrent use.
type Redis struct {
	cfg    RedisConfig
	url    string // redacted
	client *redis.Client
	prefix string // key prefix: a hash of the API key

	offset atomic.Int64 // Redis time − Clock time, in µs, at the last call

	mu      sync.Mutex
	down    bool
	closed  bool
	buckets map[string]*redisBucket
	stop    chan struct{}
	done    chan struct{} // closed when the retry loop ends; nil: none runs
}

// OpenRedis connects to the Redis at cfg.URL and checks that it answers.
// It fails with a *redisconn.Error that names the redacted URL when Redis
// cannot be reached: a job told to share its limit should not start
// without it. Close releases the connection.
func OpenRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultRedisOpTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRedisRetry
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = DefaultRedisIdleTTL
	}
	client, err := redisconn.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte("pplx-batch api key\x00" + cfg.APIKey))
	r := &Redis{
		cfg:     cfg,
		url:     redisconn.Redact(cfg.URL),
		client:  client,
		prefix:  "pplx-batch:limit:" + hex.EncodeToString(sum[:12]),
		buckets: make(map[string]*redisBucket),
		stop:    make(chan struct{}),
	}
	// Load the scripts now, so that a server without Lua fails here.
	for _, s := range []*redis.Script{takeScript, reportScript} {
		if err := s.Load(ctx, client).Err(); err != nil {
			_ = client.Close()
			return nil, redisconn.NewError(cfg.URL, "load script", err)
		}
	}
	return r, nil
}

// Close stops the retries and closes the connection. Buckets answer
// [ErrSharedUnavailable] after it. Closing a nil or closed *Redis does
// nothing.
func (r *Redis) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
	return r.client.Close()
}

// Bucket returns the shared state of the bucket name (the same value for
// the same name). It implements [SharedStore]; a nil *Redis returns nil,
// so that a Set made WithShared of a nil *Redis shares nothing.
func (r *Redis) Bucket(name string) SharedBucket {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.buckets[name]; ok {
		return b
	}
	sum := sha256.Sum256([]byte(name))
	// The hash tag keeps a bucket's keys in one slot of a Redis Cluster.
	p := r.prefix + ":{" + hex.EncodeToString(sum[:8]) + "}:"
	b := &redisBucket{r: r, keys: []string{p + "state", p + "rejected"}}
	r.buckets[name] = b
	return b
}

// Online reports whether calls go to Redis: false from a failed call
// until Redis answers again, and after Close.
func (r *Redis) Online() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.down && !r.closed
}

// lost notes a failed call: one warning, then a retry every cfg.Retry.
func (r *Redis) lost(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down || r.closed {
		return
	}
	r.down = true
	r.cfg.Log.Warn().Str("error", r.scrub(err)).
		Msg("shared limit: Redis is unreachable; each process paces alone from the rate-limit headers until it is back")
	r.done = make(chan struct{})
	go r.retry(r.done)
}

// retry pings Redis every cfg.Retry until it answers or r is closed.
func (r *Redis) retry(done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.Retry)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.OpTimeout)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err != nil {
			continue
		}
		// The note is written before Online says so, so that whoever
		// sees the store online also finds the note in the log.
		r.mu.Lock()
		r.cfg.Log.Info().Str("redis", r.url).Msg("shared limit: Redis is back; sharing the limit again")
		r.down = false
		r.done = nil
		r.mu.Unlock()
		return
	}
}

// scrub returns err's text, naming the redacted URL, without the password.
func (r *Redis) scrub(err error) string {
	return redisconn.NewError(r.cfg.URL, "call", err).Error()
}

// now returns the time the scripts use as ARGV: 0 (the server's clock),
// or t on a client clock.
func (r *Redis) now(t time.Time) int64 {
	if r.cfg.clientTime {
		return t.UnixMicro()
	}
	return 0
}

// toRedis converts a time on the Limiter's Clock to the Redis clock.
func (r *Redis) toRedis(t time.Time) int64 {
	return t.UnixMicro() + r.offset.Load()
}

// call runs a script, noting the Redis clock's offset from now, and turns
// a failure into ErrSharedUnavailable (after noting that Redis is away).
func (r *Redis) call(ctx context.Context, s *redis.Script, keys []string, now time.Time, args ...any) ([]int64, error) {
	if !r.Online() {
		return nil, ErrSharedUnavailable
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	v, err := s.Run(cctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.lost(err)
		return nil, fmt.Errorf("%w: %s", ErrSharedUnavailable, r.scrub(err))
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%w: the script answered nothing", ErrSharedUnavailable)
	}
	// The last value is always the script's time, in µs.
	r.offset.Store(v[len(v)-1] - now.UnixMicro())
	return v, nil
}

// redisBucket is the shared state of one bucket in Redis.
type redisBucket struct {
	r    *Redis
	keys []string // state hash, rejected sorted set
}

// Take implements [SharedBucket].
func (b *redisBucket) Take(ctx context.Context, q TakeRequest) (Grant, error) {
	pace := 0
	if q.Pace {
		pace = 1
	}
	v, err := b.r.call(ctx, takeScript, b.keys, q.Now,
		b.r.now(q.Now), q.Floor, pace, ff(q.Seed.Limit), ff(q.Seed.Rate), ff(q.Seed.Tokens),
		b.r.cfg.IdleTTL.Milliseconds(), ff(reserveMin), ff(reserveTime), ff(boostFade.Seconds()),
		ff(surplusHorizon), ff(fullHorizon), ff(pacerBurst), ff(minRate), rateBin.Microseconds(), bookAhead.Microseconds(),
		ff(q.Curve.Rate), ff(q.Curve.K.Seconds()), ff(beta))
	if err != nil {
		return Grant{}, err
	}
	if len(v) != 4 {
		return Grant{}, fmt.Errorf("%w: the take script answered %d values", ErrSharedUnavailable, len(v))
	}
	wait := time.Duration(v[2]) * time.Microsecond
	if v[0] == 1 {
		return Grant{OK: true, Seq: uint64(v[1]), Wait: wait}, nil
	}
	return Grant{Wait: max(wait, time.Microsecond)}, nil
}

// Report implements [SharedBucket].
func (b *redisBucket) Report(ctx context.Context, q Report) error {
	info := q.Info
	hasRem := 0
	if info.HasRemaining && info.HasLimit {
		hasRem = 1
	}
	_, err := b.r.call(ctx, reportScript, b.keys, q.Now,
		b.r.now(q.Now), q.Seq, b.r.toRedis(q.Sent), int(q.Kind), hasRem, ff(info.Remaining), ff(info.Limit),
		ff(q.Rate), q.Pause.Microseconds(), b.r.cfg.IdleTTL.Milliseconds(), maxRejectedKept,
		ff(reserveBoost), ff(maxBoost), ff(boostFade.Seconds()), ff(minRate),
		ff(q.Curve.Rate), ff(q.Curve.K.Seconds()), lossSpan.Microseconds())
	return err
}

// ff formats a float for a script argument; NaN and infinities become 0.
func ff(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "0"
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// takeScript takes the token of one request from a bucket's shared state:
// KEYS state, rejected; ARGV now (µs, 0: the server's clock), floor, pace,
// seed limit, rate and tokens, idle TTL (ms), reserveMin, reserveTime,
// boostFade (s), surplusHorizon, fullHorizon, pacerBurst, minRate, rateBin
// (µs), book (µs), curve rate and K (s), beta. It answers {1, seq, wait µs, now} for a grant, the
// request to go after wait (a booking of the next token when it comes
// within book), and {0, 0, wait µs, now} otherwise.
// (go-redis's Script.Run sends EVALSHA and falls back to EVAL when a
// restarted Redis has lost the script.)
// The shadow: tok tokens at time at, refilling at rate up to lim, synced by
// the report script; a request goes when tok >= 1 + k, and a surplus above
// that is spent by a small pacing bucket (sp, spat) at rate + surplus /
// horizon, faster while the freshest response found the bucket full.
// Without a shadow (no rate-limit headers) the shared CUBIC curve (pw,
// pcut, pk), which the report script cuts at a rate 429, paces through
// the same small bucket: β·pw just after the cut, pw from K to 2K, then
// growing, and never above twice the send rate of every process together.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local floor, pace = tonumber(ARGV[2]), ARGV[3] == '1'
local ttl = tonumber(ARGV[7])
local kmin, ktime, fade = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local hsurplus, hfull, pburst, minrate, bin = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local book = tonumber(ARGV[16])
local h = redis.call('HMGET', KEYS[1], 'seq', 'pause', 'lim', 'rate', 'tok', 'at', 'sp', 'spat', 'boost', 'bat', 'full', 'bin', 'bcnt', 'srate', 'pw', 'pcut', 'pk')
local seq = tonumber(h[1]) or 0
if floor > seq then seq = floor end
local pause = tonumber(h[2]) or 0
if pause > now then
  return {0, 0, pause - now, now}
end
local lim, rate = tonumber(h[3]) or 0, tonumber(h[4]) or 0
local tok, at = tonumber(h[5]), tonumber(h[6]) or now
local sp, spat = tonumber(h[7]) or 1, tonumber(h[8]) or now
local set = {}
local booked = 0
if pace and (lim <= 0 or rate <= 0 or tok == nil) then
  local sl, sr, st = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if sl > 0 and sr > 0 then
    lim, rate, tok, at = sl, sr, st, now
    set = {'lim', lim, 'rate', rate, 'ssq', floor}
  end
end
if pace and lim > 0 and rate > 0 and tok ~= nil then
  local r = math.max(rate, minrate)
  if now > at then
    tok = tok + r * (now - at) / 1e6
    at = now
  end
  if tok > lim then tok = lim end
  local boost = tonumber(h[9]) or 0
  if boost > 0 then
    boost = math.max(0, boost - (now - (tonumber(h[10]) or now)) / 1e6 / fade)
  end
  local k = math.min(kmin + rate * ktime + boost, math.max(0, (lim - 1) / 2))
  local need = 1 + k
  local wait = 0
  if tok < need then
    wait = math.max(math.ceil((need - tok) / r * 1e6), 1)
  end
  -- The surplus above the reserve goes over the horizon on top of the
  -- refill, paced; a booking owes the pacer its token too, so the wait is
  -- the larger of the two, and the bookings come in order.
  local surplus = math.max(0, tok - need + 1)
  local horizon = math.max(math.min(hsurplus, lim / rate / 2), 0.01)
  local rs = r + surplus / horizon
  if h[11] == '1' then
    local srate = tonumber(h[14]) or 0
    rs = math.max(rs, math.min(r + surplus / hfull, 2 * math.max(srate, r)))
  end
  if now > spat then
    sp = math.min(sp + rs * (now - spat) / 1e6, math.max(1, rs * pburst))
    spat = now
  end
  if sp < 1 then
    wait = math.max(wait, math.ceil((1 - sp) / rs * 1e6), 1)
  end
  if wait > book then
    table.insert(set, 'tok'); table.insert(set, tok)
    table.insert(set, 'at'); table.insert(set, at)
    table.insert(set, 'sp'); table.insert(set, sp)
    table.insert(set, 'spat'); table.insert(set, spat)
    redis.call('HSET', KEYS[1], unpack(set))
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {0, 0, wait, now}
  end
  -- Now, or booked for a moment soon: the token is taken now, so the
  -- next caller's wait comes after this one's (first come, first served).
  booked = wait
  tok = tok - 1
  sp = sp - 1
  for _, v in ipairs({'tok', tok, 'at', at, 'sp', sp, 'spat', spat}) do table.insert(set, v) end
elseif pace then
  -- No shadow (no headers): the shared CUBIC curve paces, if there is
  -- one; a Limiter that has its own starts it (a store that restarted).
  local pw, pcut, pk = tonumber(h[15]) or 0, tonumber(h[16]) or now, tonumber(h[17]) or 0
  local cr, ck = tonumber(ARGV[17]), tonumber(ARGV[18])
  if (pw <= 0 or pk <= 0) and cr > 0 and ck > 0 then
    pw, pk, pcut = cr, ck, now - 2 * ck * 1e6
    for _, v in ipairs({'pw', pw, 'pk', pk, 'pcut', pcut}) do table.insert(set, v) end
  end
  if pw > 0 and pk > 0 then
    local t = (now - pcut) / 1e6
    if t > pk then t = math.max(pk, t - pk) end
    local x = (t - pk) / pk
    local r = pw * (1 + (1 - tonumber(ARGV[19])) * x * x * x)
    local srate = tonumber(h[14]) or 0
    if srate > 0 then r = math.min(r, math.max(2 * srate, pw)) end
    if not (r >= minrate) then r = minrate end
    if now > spat then
      sp = math.min(sp + r * (now - spat) / 1e6, math.max(1, r * pburst))
      spat = now
    end
    local wait = 0
    if sp < 1 then wait = math.max(math.ceil((1 - sp) / r * 1e6), 1) end
    if wait > book then
      for _, v in ipairs({'sp', sp, 'spat', spat}) do table.insert(set, v) end
      redis.call('HSET', KEYS[1], unpack(set))
      redis.call('PEXPIRE', KEYS[1], ttl)
      return {0, 0, wait, now}
    end
    booked = wait
    sp = sp - 1
    for _, v in ipairs({'sp', sp, 'spat', spat}) do table.insert(set, v) end
  end
end
seq = seq + 1
-- The send rate of every process together, in bins, smoothed.
local b0, bc, srate = tonumber(h[12]), tonumber(h[13]) or 0, tonumber(h[14]) or 0
if b0 == nil then b0 = now end
if now - b0 >= bin then
  srate = 0.8 * bc / ((now - b0) / 1e6) + 0.2 * srate
  b0, bc = now, 0
end
bc = bc + 1
for _, v in ipairs({'seq', seq, 'bin', b0, 'bcnt', bc, 'srate', srate}) do table.insert(set, v) end
redis.call('HSET', KEYS[1], unpack(set))
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, seq, booked, now}
`)

// reportScript feeds one outcome into a bucket's shared state: KEYS
// state, rejected; ARGV now (µs, 0: the server's clock), seq, sent (µs),
// kind (0 answer, 1 rate 429, 2 concurrency 429, 3 no response), has
// remaining and limit, remaining, limit, rate, pause (µs), idle TTL (ms),
// most 429s kept, reserveBoost, maxBoost, boostFade (s), minRate, curve
// rate and K (s) (K 0: the reporter has headers), lossSpan (µs). It
// answers {now}. A rate 429 of a request granted after the last boost
// raises the reserve; a pause extends the shared pause; the headers of the
// freshest response (by sequence number) set the shadow to remaining,
// plus the refill since it was sent, less the requests granted after it
// that were not refused.
var reportScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local g, sent, kind = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local hasrem, rem, lim, rate = ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local pausefor, ttl, keep = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local kboost, maxboost, fade, minrate = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local h = redis.call('HMGET', KEYS[1], 'seq', 'ssq', 'lim', 'rate', 'csq', 'boost', 'bat', 'pause', 'plsq', 'plst', 'srate')
local cr, ck = tonumber(ARGV[16]), tonumber(ARGV[17])
local seq = tonumber(h[1]) or 0
if g > seq then seq = g end
local set = {'seq', seq}
if kind == 1 or kind == 2 then
  redis.call('ZADD', KEYS[2], g, g)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if kind == 1 and g > (tonumber(h[5]) or 0) then
  local boost = tonumber(h[6]) or 0
  if boost > 0 then
    boost = math.max(0, boost - (now - (tonumber(h[7]) or now)) / 1e6 / fade)
  end
  boost = math.min(boost + kboost, maxboost)
  for _, v in ipairs({'boost', boost, 'bat', now, 'csq', seq}) do table.insert(set, v) end
  if ck > 0 then
    -- No headers: cut the shared curve. The server's rate is what it
    -- admitted, to every process, between the last loss and this one
    -- when they are far enough apart; else the reporter's own estimate.
    local lsq, lst = tonumber(h[9]) or 0, tonumber(h[10]) or 0
    local w = 0
    if lsq > 0 and g > lsq and sent - lst >= tonumber(ARGV[18]) then
      local refused = redis.call('ZCOUNT', KEYS[2], '(' .. lsq, '(' .. g)
      w = (g - lsq - refused) / ((sent - lst) / 1e6)
    end
    if w <= 0 then w = cr end
    if w < minrate then w = minrate end
    for _, v in ipairs({'pw', w, 'pcut', now, 'pk', ck, 'plsq', g, 'plst', sent}) do table.insert(set, v) end
  end
end
if pausefor > 0 and now + pausefor > (tonumber(h[8]) or 0) then
  table.insert(set, 'pause'); table.insert(set, now + pausefor)
end
if hasrem and lim > 0 and g > (tonumber(h[2]) or 0) then
  local slim, srate = tonumber(h[3]) or 0, tonumber(h[4]) or 0
  if rate > 0 then
    srate = rate
  elseif slim > 0 and math.abs(lim - slim) >= 1 then
    srate = srate * lim / slim
  end
  if srate > 0 then
    local refused = redis.call('ZCOUNT', KEYS[2], '(' .. g, seq)
    local after = math.max(0, seq - g - refused)
    local dt = math.max(0, now - sent) / 1e6
    local tok = math.min(rem + math.max(srate, minrate) * dt - after, lim)
    local full = 0
    if kind == 0 and lim >= 2 and rem >= lim - 1 then full = 1 end
    for _, v in ipairs({'ssq', g, 'lim', lim, 'rate', srate, 'tok', tok, 'at', now, 'full', full}) do table.insert(set, v) end
  end
end
redis.call('HSET', KEYS[1], unpack(set))
redis.call('PEXPIRE', KEYS[1], ttl)
return {now}
`)
