// Package limiter paces calls to a rate-limited HTTP API so that a batch
// job runs at the server's rate limit and almost never over it.
//
// Each request asks a [Limiter] for permission with [Limiter.Acquire] and
// hands the outcome back with [Limiter.Release]; the Limiter learns the
// server's limit from those outcomes. A [Set] keeps one Limiter per
// server-side bucket ("search", "chat:<model>"): Perplexity limits the
// Search API and each chat model separately. The Limiter never retries and
// never calls the network; retrying is the caller's policy. All waiting
// uses a [Clock], so tests run on fake time. ARCHITECTURE.md, at the root
// of the repository, gives the design's public sources.
//
// # Gates
//
// Every request passes, in order: the in-flight limit (first come, first
// served); one pause shared by every worker (each waiter resumes at its end
// plus a random delay of up to 10% of the pause, at most 1 s, so that the
// workers do not all send in the same millisecond); then, for the head of
// the line only, the rate gates: the token bucket of Config.RPS
// ([golang.org/x/time/rate]) and the learnt pacing below. The head reserves
// nothing while it sleeps: it works out when the gates open, sleeps, and
// looks again on waking, so a rate lowered meanwhile is obeyed, and a rate
// raised meanwhile is used at once (each Release pokes the head).
//
// Config.RPS, Config.Burst and Config.MaxInFlight (the user's --rps, --rpm
// and --concurrency) are hard ceilings: learning only ever goes below them.
// Config.Static turns learning off and leaves just the ceilings and the
// pauses that responses ask for.
//
// # Modes
//
// An adaptive Limiter paces in one of these modes ([Stats].Mode).
//
// [ModeStart]: nothing is known. There is no pacing, and the in-flight limit
// does a TCP slow start: it is 1 at first, so the first request goes alone
// and its headers are seen before much else goes into a bucket that an
// earlier run may have drained, and it grows by one for each response that
// comes back while it was full (doubling per round trip). Until the first
// response comes back it also grows by one every blindGap (50 ms), up to
// blindMax (32): a 429 comes back at once, so a drained bucket costs about
// one, while answers that take a second no longer leave that second empty.
// Against a server that never limits, this is the only brake, and it is gone
// in a few round trips.
//
// [ModeHeaders]: the responses carry a remaining count, in any dialect that
// [ParseHeaders] reads. The Limiter keeps a shadow of the server's bucket:
// each response sets it to remaining, minus our requests granted after that
// one (less those refused, which took no token), plus R̂ × the time since it
// was sent, capped at the limit; between responses it refills at R̂ and each
// request takes a token. A request goes when the shadow holds 1 + k tokens;
// tokens above that are spent over surplusHorizon (0.5 s) on top of the
// refill, never as a burst, whose requests would reach the server out of
// order and spoil the count. The reserve k is reserveMin (2) tokens plus
// reserveTime (20 ms) of refill for arrival jitter, plus reserveBoost (2)
// per recent 429, fading by one token per boostFade (10 s), and at most half
// the limit. Against a token bucket the reserve costs no throughput: the
// bucket hovers at k while as many requests go in as tokens come.
//
// R̂, the refill rate, is the larger of two estimates that both err low.
// From each response a lower bound: (limit − remaining − 1) / reset, or 1 /
// reset when remaining = limit − 1 (the bucket was full before the request,
// so exactly one token is missing), and limit / w when an IETF policy gives
// the window (remaining is rounded down and resets up, and the 1 covers the
// rounding); the largest of the last boundKeep (2 s) counts, since the
// fraction of a token that remaining drops varies from one response to the
// next. Between two responses sent estSpan (2 s) apart, or at least
// estMinSpan (1 s): (remaining₂ − remaining₁ + our requests admitted in
// between − 1) / the time between their sends: exact to a token unless the
// bucket was full, when tokens overflowed and it is only a lower bound,
// which R̂ then never falls below. A reset says only "full by then": coarse
// ones (epoch seconds, IETF t=, a timestamp read against the one-second
// Date) bound a bucket that fills in a fraction of a second very loosely,
// and a bucket that stays full shows no refill at all. So while the
// freshest response finds the bucket full, its surplus is spent over
// fullHorizon (0.1 s), but at no more than twice the rate we send at (the
// send rate doubles every half second or so, while a burst would reach the
// server out of order), faster than R̂ alone would allow; the bucket then
// drains to the reserve, where the interval estimate is exact, and the
// lower bound from a full bucket (what we sent) keeps R̂ climbing until then. An estimate that errs low costs nothing: each
// response brings the shadow back to the server's count, so the shadow errs
// by (R − R̂) × latency tokens at most, and the server's bucket simply
// settles that much above k. When the limit header changes, the intervals
// across the change are dropped and R̂ is scaled by the new limit over the
// old one (a bucket's window, limit/rate, rarely changes) until new ones
// measure it, so a new limit is followed within about one reset window.
//
// [ModeFixedWindow]: a server that restores its whole quota at the end of a
// window shows no refill between two responses of one window and a large
// one across its end. Each voteGap (250 ms) a pair of responses at least
// 1 s apart casts a vote; fixedVotes (3) net votes for "no refill" switch
// to this mode, where the shadow does not refill, the quota left is spread
// evenly up to the reset, and the full quota returns fixedGuard (100 ms)
// after it. Absolute resets are read against the server's Date and so err
// late, never early; the guard covers the rest.
//
// [ModeProbe]: no rate-limit headers (headerlessAfter, 5, responses in a row
// without them) and a 429 was seen. The rate follows the CUBIC curve of
// the last loss: β·Wmax just after it (β = 0.7, as TCP CUBIC and the AWS
// SDKs use), back to Wmax after K, held there for another K, then growing
// as Wmax·(1 + 0.3·((t − 2K)/K)³), and never above twice the measured send
// rate (a rate not used is not grown). K is the larger of cubicKMin (2 s)
// and cubicKLatencies (4) high latencies: a scale-free curve that probes
// once per cycle of 2K plus the time to drain the bucket (6 to 8 s at 50
// requests/s), which costs one or two 429s per cycle. Wmax is the rate the
// server admitted between the last two losses when they are lossSpan
// (0.5 s) apart or more: its bucket was empty at both, so what it admitted
// in between is exactly its refill. The first loss uses what was admitted
// so far, which the bucket's initial content makes too high; the next loss
// then comes soon and measures the rate. The dips below Wmax cost nothing
// when the bucket holds more than the dip (7.5% of K × R): the bucket fills
// during the dip and is spent during the probe.
//
// # 429s
//
// A 429 that says no request remains (or says nothing) is a rate 429. It
// sets the shared pause to retry-after-ms or Retry-After when given; else,
// with headers, the shadow (now empty) waits for the refill, and a fixed
// window waits for its reset; without any hint, the pause is two requests'
// time at the new rate, at least noHintMin (10 ms), doubling for each later
// 429 of a request sent after it began, at most noHintMax (8 s). It makes
// one multiplicative cut per feedback delay: only a 429 of a request
// granted after the last cut cuts again, since the requests in flight then
// were sent at the old rate (TCP's one cut per window). With headers the
// cut caps the rate with the CUBIC curve from R̂ until the curve stops
// binding, and raises the reserve. A 429 while requests remain is a
// concurrency limit: the in-flight limit drops to 0.7 × the requests out,
// and grows back by one per window of successes.
//
// # Outages
//
// outageAfter (10) failures in a row, each a server error (5xx) or no
// response (not the caller's cancelling), with no other answer between
// them, make an outage: the API is down, not one request unlucky. Acquire
// then holds every request and lets one probe through at a time, the first
// after probeMin (1 s), each next one probeGrowth (1.5) times later, at most
// probeMax (1 min), each wait drawn in [w/2, w) so that clients do not probe
// in step. [Verdict].Outage tells the caller of Release that a failure came
// during an outage, so that it does not spend the row's retry budget on it.
// The first answer that is not a server error ends the outage, and the
// requests resume at the rate learnt before it (the next responses bring
// the shadow up to date). An outage longer than Config.MaxOutage (15 min by
// default) makes Acquire return an [*OutageError] with its duration.
//
// # Sharing a limit
//
// Processes that send on one API key draw on one server-side bucket. Alone,
// each would keep its own shadow of that bucket and count only its own
// requests, so together they run over the limit and earn 429s. With
// Config.Shared (a [SharedBucket]; [Set] fills it in for every bucket when
// made [WithShared] a [SharedStore] such as [Redis]) the part of the state
// that describes the server's bucket is shared by every process, and each
// request takes its token from it atomically:
//
//   - the shadow of the server's bucket (tokens, the time of that count,
//     the limit) and the refill rate R̂: every response that any process
//     sees (the freshest by sequence number) sets the shadow to remaining,
//     plus R̂ × the time since it was sent, less the requests of every
//     process granted after it that were not refused (429s are logged by
//     sequence number, the last maxRejectedKept). R̂ is the estimate of
//     the process whose response was freshest; each process still learns
//     R̂ from its own responses (above), and since the tickets are numbered
//     from one shared sequence, "our requests admitted in between" counts
//     every process's;
//   - the reserve k, with its boost after a rate 429 (one per feedback
//     delay: a 429 of a request numbered after the last boost), and the
//     surplus pacing above the reserve (over the horizon, faster while the
//     freshest response found the bucket full, at most twice the send rate
//     of every process together);
//   - the pause after a 429 (or a 503 with a retry delay): one "paused
//     until", which holds every process;
//   - the sequence number of the requests;
//   - without headers ([ModeProbe]), the CUBIC curve itself (its rate at
//     the last loss, the time of the cut, K): a rate 429 of a request
//     numbered after the last cut cuts it, its rate measured as what the
//     server admitted to every process between this loss and the last
//     (lossSpan apart or more; else the reporter's own estimate), and the
//     curve paces every process through one small bucket, never above
//     twice the send rate of every process together. A store without a
//     curve starts one from the asking Limiter's (TakeRequest.Curve).
//
// Each request costs one call to take its token and one to report its
// outcome (from Release). When the next token comes within bookAhead (250
// ms), Take books it: the token is taken at once and the request goes
// when it comes, without asking again. Each process's head of the line
// thus holds its place, and the tokens go to the processes first come,
// first served (their wall times stay within a few percent of each
// other), not to whichever asks most often.
//
// What stays per process: the in-flight limit, Config.RPS and
// Config.MaxInFlight (which are the user's, per process), the learning of
// the mode and of R̂, the outage state, and the pacing of a fixed window
// (there the shared bucket only numbers the requests and holds the shared
// pause; such processes pace alone).
//
// [Redis] keeps a bucket's state in a hash and a sorted set under
// pplx-batch:limit:<hash of the API key>:{<hash of the bucket>}: (never
// the key itself), changed only by two Lua scripts, take and report, on
// the Redis server's clock (TIME), so the processes' clocks need not
// agree. Nothing in it belongs to one process: a crashed process leaves
// at most the tokens it booked and never used, which the next response's
// remaining corrects, and the state expires after RedisConfig.IdleTTL (10
// min) unused. A Redis that restarted empty gets its shadow back from the
// first Take (Seed: the asking Limiter's own model) and numbers above the
// asking Limiter's last number (Floor). When a call fails or times out
// (RedisConfig.OpTimeout, 500 ms), [Redis] logs one warning and every
// Limiter paces alone, from its own shadow, which it kept up to date from
// its own responses all along; Redis is tried again every second, and the
// Limiters rejoin the shared state when it answers. [OpenRedis] fails
// when Redis does not answer at start.
//
// # In flight
//
// The in-flight limit follows Little's law: ceil(rate × (latency + 2 ×
// deviation) × headroom) + inFlightSpare, with headroom 1.5, inFlightSpare 2
// and TCP's smoothed latency and deviation of the answers (not of the 429s,
// which come at once). A job with one-second answers at 50 requests/s thus
// keeps about 80 in flight without being told, and a fast one few, which
// keeps the headers fresh. It never exceeds Config.MaxInFlight nor
// maxAutoInFlight (1024).
//
// # The traps of x/time/rate
//
// rate.Limiter serves only the fixed ceiling of Config.RPS; the learnt rates
// live in this package. SetLimit does not wake sleepers: the ceiling never
// changes, and the head of the line, the only waiter on the rates, is poked
// on every change. Wait fails at once when the context's deadline is too
// near: Acquire does the same on purpose ([ErrWouldExceedDeadline]), having
// reserved nothing. A zero limit blocks forever: pauses are a gate with an
// end, never SetLimit(0), and every learnt rate is at least minRate (0.5
// requests/s). The bucket starts full: the ceiling's bucket starts with one
// token, and the learnt pacing starts with one request in flight.
package limiter
