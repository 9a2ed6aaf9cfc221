package limiter

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrSharedUnavailable is returned by a [SharedBucket] whose store cannot
// be reached. The Limiter then paces alone, from its own model of the
// server's bucket, until the store answers again.
var ErrSharedUnavailable = errors.New("limiter: the shared limit is unavailable")

// SharedBucket is the part of a bucket's state that Limiters in several
// processes share because they send on the same API key: the shadow of
// the server's bucket, the learnt refill rate, the pause after a 429, and
// the sequence numbers of the requests (see the package documentation,
// "Sharing a limit"). [Redis] implements it.
//
// A Limiter with a SharedBucket asks it once for each request it lets go
// (Take) and tells it every outcome (Report). Implementations must be safe
// for concurrent use and must return quickly: an unreachable store
// answers [ErrSharedUnavailable] at once rather than after a timeout each
// time.
type SharedBucket interface {
	// Take asks for the token of the next request. It returns a Grant
	// that either lets the request go, with its sequence number, or says
	// how long to wait before asking again. It returns ctx's error when
	// ctx ends first, and ErrSharedUnavailable (or an error wrapping it)
	// when the store cannot be reached.
	Take(ctx context.Context, r TakeRequest) (Grant, error)
	// Report feeds the outcome of a request into the shared state. Its
	// errors are for logging only: the Limiter has already learnt from
	// the outcome itself.
	Report(ctx context.Context, r Report) error
}

// SharedStore hands out the [SharedBucket] of each bucket name; a [Set]
// made with [WithShared] asks it once per bucket. A store may return nil
// for a bucket it does not share.
type SharedStore interface {
	Bucket(name string) SharedBucket
}

// TakeRequest is what [SharedBucket.Take] is told about the Limiter that
// asks.
type TakeRequest struct {
	// Now is the time on the Limiter's Clock.
	Now time.Time
	// Floor is the newest sequence number the Limiter has used: the
	// granted one is above it, so that a store that lost its state
	// (restarted empty) never hands out numbers already used.
	Floor uint64
	// Pace is true when the shared shadow should pace this request; when
	// false the store only checks the shared pause and numbers the
	// request (the Limiter paces by its own model: no headers, a fixed
	// window, or Config.Static).
	Pace bool
	// Seed is the Limiter's own model of the server's bucket, with which
	// the store starts a shadow when it has none (a store that restarted
	// empty); the zero Seed is none.
	Seed Seed
	// Curve is the Limiter's own CUBIC curve when it paces without
	// headers ([ModeProbe]): its rate now, with which a store that has no
	// curve starts one, and its K. The zero Curve is none.
	Curve Curve
}

// Curve describes a Limiter's CUBIC curve, paced without rate-limit
// headers: a rate in requests per second and the time K it takes to climb
// back to the rate of the last loss.
type Curve struct {
	Rate float64
	K    time.Duration
}

// Seed is a Limiter's model of the server's bucket: its capacity, its
// refill rate in requests per second, and the tokens it holds now.
type Seed struct {
	Limit, Rate, Tokens float64
}

// bookAhead is how far ahead a shared bucket books the next token for a
// Limiter that asks before it comes: each process's head of the line then
// holds its place, and the tokens go to the processes first come, first
// served rather than to whoever asks most often.
const bookAhead = 250 * time.Millisecond

// Grant is the answer of [SharedBucket.Take].
type Grant struct {
	// OK is true when the token is the Limiter's: the request may go
	// once Wait has passed (at once when Wait is 0). The token was taken
	// when it was booked, so the Limiter keeps it even if it must wait
	// longer (a pause that began meanwhile).
	OK bool
	// Seq numbers the request among the requests of every process that
	// shares the bucket; valid when OK.
	Seq uint64
	// Wait is how long to wait before the request goes (OK) or before
	// asking again (not OK).
	Wait time.Duration
}

// Report is the outcome of one request for [SharedBucket.Report].
type Report struct {
	// Now is when the outcome came back, on the Limiter's Clock.
	Now time.Time
	// Seq and Sent are the request's [Ticket].Seq and Ticket.Sent.
	Seq  uint64
	Sent time.Time
	// Kind says what the response was.
	Kind ReportKind
	// Info is what the response's rate-limit headers say.
	Info Info
	// Rate is the Limiter's estimate of the server's refill rate in
	// requests per second (0: none); the store keeps the one of the
	// freshest response.
	Rate float64
	// Pause is the pause the outcome sets for every worker (0: none);
	// the store makes it a pause of every process.
	Pause time.Duration
	// Curve is set when the Limiter paces without headers: a rate 429
	// then cuts the store's shared curve, whose rate the store measures
	// from the requests of every process between two losses, or else
	// takes from Curve.Rate (the Limiter's rate at its last loss).
	Curve Curve
}

// ReportKind classifies the response of a [Report].
type ReportKind int8

// The kinds of response.
const (
	// ReportAnswer is any response that is not a 429.
	ReportAnswer ReportKind = iota
	// ReportRateLimited is a 429 that says no request remains (or says
	// nothing): the bucket is empty.
	ReportRateLimited
	// ReportConcurrencyLimited is a 429 while requests remain.
	ReportConcurrencyLimited
	// ReportNoResponse is a request that got no response.
	ReportNoResponse
)

// reportKind classifies an outcome for a Report.
func reportKind(o Outcome, info Info) ReportKind {
	switch {
	case o.Status == http.StatusTooManyRequests && info.HasRemaining && info.Remaining >= 1:
		return ReportConcurrencyLimited
	case o.Status == http.StatusTooManyRequests:
		return ReportRateLimited
	case o.Status == 0:
		return ReportNoResponse
	}
	return ReportAnswer
}

// SetOption configures a [Set] made by [NewSet].
type SetOption func(*Set)

// WithShared makes the Limiters of a Set share their buckets' state
// through store: each Limiter gets store.Bucket(name) as Config.Shared. A
// nil store (or one that returns nil for a bucket) leaves the Limiters
// alone.
func WithShared(store SharedStore) SetOption {
	return func(s *Set) { s.store = store }
}
