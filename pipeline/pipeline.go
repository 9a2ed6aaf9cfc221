// Package pipeline runs a batch job: it reads input rows, renders one API
// request per row, calls the Perplexity API under a rate limiter and writes
// one output row per input row.
//
// The stages are connected by bounded channels:
//
//	read ──records──► call (errgroup, at most Concurrency in flight) ──results──► write
//
// The read stage is the only caller of the [Source]; the write stage is the
// only caller of the sinks. Whoever sends on a channel closes it, and every
// send also selects on the context, so a failure anywhere stops every stage.
// Memory is bounded by the channel sizes and the number of requests in
// flight, never by the size of the input.
//
// A row that fails (a malformed input line, a template that fails for the
// row, an API error that retries did not cure) is written as a row with
// status "error"; it does not fail the job. Run returns an error only when
// the job as a whole cannot go on: the context is cancelled, the source
// fails to read, or a sink fails to write.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
	"github.com/pplx-batch/pplx-batch/source"
)

// Defaults used when a [Job] field is zero. DefaultConcurrency bounds the
// rows in progress at once when the Job sets no Concurrency: how many of
// them have a request in flight is the limiter's to decide (rate times
// latency, see package limiter).
const (
	DefaultConcurrency = 512
	DefaultTimeout     = 120 * time.Second
)

// Source yields input records. Read returns io.EOF at the end of the input;
// a [*source.ParseError] is a row-level error after which Read may be called
// again; any other error is fatal.
type Source interface {
	Read() (source.Record, error)
}

// Writer receives the rows a job produces, one call at a time.
type Writer[T any] interface {
	Write(T) error
}

// Job describes what to do with each row.
type Job struct {
	// Mode selects the endpoint.
	Mode Mode
	// Template renders the search query (search mode), the input (agent
	// mode) or the user message (chat mode) from the row's columns. It should be parsed with
	// Option("missingkey=error") so a missing column fails the row.
	Template *template.Template
	// System is the instructions of agent requests and the system message
	// of chat requests; empty means none.
	System string
	// Search holds the parameters of every search request; Query is set
	// per row.
	Search pplx.SearchRequest
	// Agent holds the parameters of every agent request (Model or Preset
	// or Models, Tools, Stream, Background, ...); Input is set per row.
	Agent pplx.AgentRequest
	// Chat holds the parameters of every chat request (Model, Stream, ...);
	// Messages is set per row. An empty Model means DefaultChatModel.
	Chat pplx.ChatRequest
	// Schema, when not nil, is the JSON Schema of the answers (agent and
	// chat modes): it is sent as the request's response_format, and an
	// answer that does not match it is asked again up to SchemaRetries
	// more times, then fails the row (keeping its text) with a
	// *SchemaError. A valid answer goes, as JSON, to the row's Data.
	Schema *Schema
	// SchemaRetries is how many more requests a row whose answer does not
	// match Schema gets; negative means none.
	SchemaRetries int
	// IDColumn names the column whose value identifies a row; empty means
	// the row number.
	IDColumn string
	// Concurrency is the most rows in progress, so the most requests in
	// flight; 0 means DefaultConcurrency, leaving the limiter's automatic
	// in-flight limit to decide.
	Concurrency int
	// MaxRetries is the most retries of one row after its first attempt.
	MaxRetries int
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxCostUSD, when positive, is the budget of the run: a request whose
	// estimated cost, added to what was spent and what the requests in
	// flight are estimated to cost, would pass it is not sent, and the job
	// stops with a *FatalError wrapping a *BudgetError.
	MaxCostUSD float64
	// Shard, when its Count is above 1, makes the job take only the rows of
	// one shard of the input; rows of other shards are not read into the
	// job, nor written.
	Shard Shard
	// AbortAfterFailures, when positive, stops the job (a *FatalError
	// wrapping a *FailuresError) once this many rows have failed.
	AbortAfterFailures int64
	// MaxFailureRate, when positive, stops the job once at least
	// MinRowsForRate rows are finished and the share of failed rows among
	// them is above it (0.02 for 2%).
	MaxFailureRate float64
}

// Shard is one of Count parts of an input: the rows whose row number
// modulo Count is Index. The zero value (and any Count below 2) is the
// whole input.
type Shard struct {
	Index, Count int
}

// Takes reports whether the row numbered row belongs to the shard.
func (s Shard) Takes(row int64) bool {
	return s.Count < 2 || row%int64(s.Count) == int64(s.Index)
}

// String returns "I/N", or "" for the whole input.
func (s Shard) String() string {
	if s.Count < 2 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// MinRowsForRate is how many rows must be finished before Job's
// MaxFailureRate is checked, so a single early failure does not stop a
// job.
const MinRowsForRate = 20

// Pipeline runs a [Job]. Its fields are set before Run and not changed
// while it runs.
type Pipeline struct {
	Job Job
	// Client calls the API.
	Client *pplx.Client
	// Limiters paces the requests, one limiter per rate-limit bucket.
	Limiters *limiter.Set
	// Backoff spaces the retries of a row; the zero value is the default
	// policy.
	Backoff pplx.Backoff
	// Resume, when not nil, tells which rows an earlier run already
	// answered: Run skips them without a request.
	Resume Resume
	// Runs, when not nil, records the background runs of agent requests
	// (Job.Agent.Background) before they are polled; a row whose run an
	// earlier run recorded is collected, never submitted again.
	Runs Runs
	// Stop, when closed, makes Run stop starting rows: it stops reading,
	// lets the requests in flight finish and writes their rows. Rows not
	// finished are not written (a resumed run does them). Cancelling the
	// context of Run instead also abandons the requests in flight.
	Stop <-chan struct{}
	// Estimate returns the estimated cost in USD of a request body
	// (see Request.Body) before it is sent, for
	// the budget; search answers, which report no cost, are counted at
	// this price too. nil means pplx.EstimateCost, Perplexity's price list.
	Estimate func(body any) float64
	// Ledger, when not nil, keeps the books of the budget (Job.MaxCostUSD)
	// and the failure limits for every process of a job (a
	// *SharedLedger); nil means this process's own counters.
	Ledger Ledger
	// Log receives diagnostics; the zero value discards them.
	Log zerolog.Logger
	// Rand returns uniform numbers in [0, 1) for retry jitter; nil means
	// math/rand/v2.
	Rand func() float64
	// Sleep waits for d or until ctx is done; nil means a real timer. Tests
	// replace it to avoid waiting for retry backoff.
	Sleep func(ctx context.Context, d time.Duration) error

	live atomic.Pointer[counters]
}

// Resume reports whether an earlier run already answered a row with the
// same request. requestHash identifies the rendered request ([Result]).
type Resume interface {
	Done(row int64, requestHash string) bool
}

// Result is one finished row: the output row and the hash of the request
// that answered it (empty when no request was made, e.g. for a malformed
// input line). Its JSON form is the row's with one more key,
// "request_hash".
type Result struct {
	sink.Row
	RequestHash string `json:"request_hash,omitempty"`
}

// ErrorRow is the line written to the errors file for a row that failed.
type ErrorRow struct {
	ID         string          `json:"id"`
	Row        int64           `json:"row"`
	Input      json.RawMessage `json:"input"`
	Error      string          `json:"error"`
	HTTPStatus int             `json:"http_status"`
	Attempts   int             `json:"attempts"`
	RequestID  string          `json:"request_id"`
}

// NewErrorRow returns the errors-file line of a failed row.
func NewErrorRow(r sink.Row) ErrorRow {
	return ErrorRow{ID: r.ID, Row: r.Row, Input: r.Input, Error: r.Error,
		HTTPStatus: r.HTTPStatus, Attempts: r.Attempts, RequestID: r.RequestID}
}

// ErrOutput marks an error of Run that comes from writing an output: the
// rows written so far may be incomplete on disk.
var ErrOutput = errors.New("output failed")

// ErrStopped is returned by Run when Stop was closed before every row was
// finished.
var ErrStopped = errors.New("pipeline: stopped before every row was finished")

// FatalError is returned by Run when the job had to stop starting rows:
// the API answered in a way that makes every other request fail too (a bad
// key, no permission, no credit; Err is the API's error), the budget was
// reached (Err is a *BudgetError) or too many rows failed (Err is a
// *FailuresError).
type FatalError struct {
	Row int64
	Err error
}

func (e *FatalError) Error() string {
	return fmt.Sprintf("pipeline: aborted at row %d: %v", e.Row, e.Err)
}

func (e *FatalError) Unwrap() error { return e.Err }

// BudgetError says the next request would have passed Job.MaxCostUSD.
type BudgetError struct {
	Budget, Spent, InFlight, Next float64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("budget reached: $%.4f spent and $%.4f in flight; the next request (about $%.4f) would pass the budget of $%.4f",
		e.Spent, e.InFlight, e.Next, e.Budget)
}

// FailuresError says more rows failed than Job.AbortAfterFailures or
// MaxFailureRate allow; Limit is the most failures allowed, as given.
type FailuresError struct {
	Failed, Finished int64
	Limit            string
}

func (e *FailuresError) Error() string {
	return fmt.Sprintf("too many failed rows: %d of %d finished rows failed (limit %s); the last failure is in the errors file",
		e.Failed, e.Finished, e.Limit)
}

type item struct {
	rec source.Record
	err error // a row-level parse error
}

// Run reads every record of src, calls the API for it and writes one
// [Result] to out for each, in completion order. It returns when every
// stage has finished; the Stats are complete even when the error is not
// nil. The error is nil when every row read was finished, [ErrStopped]
// after Stop, a [*FatalError] after a job-fatal API answer, the context's
// error after a cancellation, or the first failure to read the input or
// write out (wrapping [ErrOutput]).
func (p *Pipeline) Run(ctx context.Context, src Source, out Writer[Result]) (Stats, error) {
	start := time.Now()
	st := newCounters(p.Ledger)
	p.live.Store(st)
	conc := p.Job.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}

	parent := ctx
	g, ctx := errgroup.WithContext(ctx)
	// stopCtx ends when the job stops starting rows: on Stop, on a fatal
	// API answer, or when ctx ends.
	stopCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if p.Stop != nil {
		go func() {
			select {
			case <-p.Stop:
				stop(ErrStopped)
			case <-stopCtx.Done():
			}
		}()
	}
	items := make(chan item, conc)
	results := make(chan Result, conc)
	writerGone := make(chan struct{})
	var eof atomic.Bool

	// read
	g.Go(func() error {
		defer close(items)
		for stopCtx.Err() == nil {
			rec, err := src.Read()
			if errors.Is(err, io.EOF) {
				eof.Store(true)
				return nil
			}
			var pe *source.ParseError
			if err != nil && !errors.As(err, &pe) {
				return fmt.Errorf("pipeline: read input: %w", err)
			}
			st.lastRow.Store(rec.Row)
			if !p.Job.Shard.Takes(rec.Row) {
				continue
			}
			st.read.Add(1)
			select {
			case items <- item{rec: rec, err: err}:
			case <-stopCtx.Done():
			}
		}
		return nil
	})

	// call
	g.Go(func() error {
		defer close(results)
		// conc workers, each taking rows until the input ends: a worker
		// keeps its grown stack from row to row, where a goroutine per row
		// grew a new one for every row (8% of the CPU at 64 workers).
		var calls errgroup.Group
		for range conc {
			calls.Go(func() error {
				for it := range items {
					if stopCtx.Err() != nil {
						continue // drain, start nothing
					}
					p.finish(ctx, stopCtx, stop, it, st, results, writerGone)
				}
				return nil
			})
		}
		return calls.Wait()
	})

	// write
	g.Go(func() error {
		defer close(writerGone)
		for res := range results {
			if err := out.Write(res); err != nil {
				return fmt.Errorf("pipeline: write row %d: %w: %w", res.Row.Row, ErrOutput, err)
			}
			st.rows.Add(1)
			if res.Status == sink.StatusOK {
				st.ok.Add(1)
			} else {
				st.failed.Add(1)
			}
			if len(results) == 0 {
				// Idle for a moment: hand what is written to the OS so a
				// killed process loses nothing already answered.
				if err := flush(out); err != nil {
					return fmt.Errorf("pipeline: flush output: %w: %w", ErrOutput, err)
				}
			}
		}
		return flush(out)
	})

	err := g.Wait()
	s := st.snapshot()
	s.Wall = time.Since(start)
	if err != nil {
		return s, err
	}
	cause := context.Cause(stopCtx)
	if fe, ok := errors.AsType[*FatalError](cause); ok {
		return s, fe
	}
	if eof.Load() && s.Rows+s.Skipped == s.Read {
		return s, nil // every row read was finished
	}
	if parent.Err() != nil {
		return s, context.Cause(parent)
	}
	return s, ErrStopped
}

// Snapshot returns the counters of the run in progress (or of the last
// run), for progress reports. It is safe to call while Run runs.
func (p *Pipeline) Snapshot() Stats {
	c := p.live.Load()
	if c == nil {
		return Stats{}
	}
	return c.snapshot()
}

func (p *Pipeline) tooManyFailures(failed, finished int64) error {
	j := p.Job
	if j.AbortAfterFailures > 0 && failed >= j.AbortAfterFailures {
		return &FailuresError{Failed: failed, Finished: finished, Limit: fmt.Sprint(j.AbortAfterFailures - 1)}
	}
	if j.MaxFailureRate > 0 && finished >= MinRowsForRate && float64(failed) > j.MaxFailureRate*float64(finished) {
		return &FailuresError{Failed: failed, Finished: finished, Limit: fmt.Sprintf("%g%%", j.MaxFailureRate*100)}
	}
	return nil
}

// flush flushes w if it buffers.
func flush(w any) error {
	if f, ok := w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// finish processes one row, counts it and hands its result to the writer.
func (p *Pipeline) finish(ctx, stopCtx context.Context, stop context.CancelCauseFunc, it item, st *counters, results chan<- Result, writerGone <-chan struct{}) {
	res, ok := p.process(ctx, stopCtx, stop, it, st)
	if !ok {
		return
	}
	// Count failures as rows finish, not as they are written, so a broken
	// job stops as soon as it shows.
	finished, failed := st.finished.Add(1), st.finishedFailed.Load()
	if res.Status != sink.StatusOK {
		failed = st.finishedFailed.Add(1)
	}
	check := res.Status != sink.StatusOK
	if p.Ledger != nil {
		// The job's counts, across its processes: every process stops
		// once the job passes the limit.
		failed, finished = p.Ledger.Finish(res.Status != sink.StatusOK)
		check = true
	}
	if check {
		if err := p.tooManyFailures(failed, finished); err != nil && stopCtx.Err() == nil {
			stop(&FatalError{Row: res.Row.Row, Err: err})
		}
	}
	select {
	case results <- res:
	case <-writerGone:
	}
}
