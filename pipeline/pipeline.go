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
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
	"github.com/pplx-batch/pplx-batch/source"
)

// Mode is the endpoint every row of a job calls.
type Mode string

// The modes of a job.
const (
	ModeSearch Mode = "search"
	ModeChat   Mode = "chat"
)

// Defaults used when a [Job] field is zero.
const (
	DefaultConcurrency = 32
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

// Client calls the API. [*pplx.Client] implements it.
type Client interface {
	Search(ctx context.Context, req *pplx.SearchRequest) (*pplx.SearchResponse, *pplx.Meta, error)
	Chat(ctx context.Context, req *pplx.ChatRequest) (*pplx.ChatResponse, *pplx.Meta, error)
}

// Job describes what to do with each row.
type Job struct {
	// Mode selects the endpoint.
	Mode Mode
	// Template renders the search query (search mode) or the user message
	// (chat mode) from the row's columns. It should be parsed with
	// Option("missingkey=error") so a missing column fails the row.
	Template *template.Template
	// System is the system message of chat requests; empty means none.
	System string
	// Search holds the parameters of every search request; Query is set
	// per row.
	Search pplx.SearchRequest
	// Chat holds the parameters of every chat request (Model, Stream, ...);
	// Messages is set per row. An empty Model means "sonar".
	Chat pplx.ChatRequest
	// IDColumn names the column whose value identifies a row; empty means
	// the row number.
	IDColumn string
	// Concurrency is the most requests in flight; 0 means
	// DefaultConcurrency.
	Concurrency int
	// MaxRetries is the most retries of one row after its first attempt.
	MaxRetries int
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Pipeline runs a [Job]. Its fields are set before Run and not changed
// while it runs.
type Pipeline struct {
	Job Job
	// Client calls the API.
	Client Client
	// Limiters paces the requests, one limiter per rate-limit bucket.
	Limiters *limiter.Set
	// Log receives diagnostics; the zero value discards them.
	Log zerolog.Logger
	// Rand returns uniform numbers in [0, 1) for retry jitter; nil means
	// math/rand/v2.
	Rand func() float64
	// Sleep waits for d or until ctx is done; nil means a real timer. Tests
	// replace it to avoid waiting for retry backoff.
	Sleep func(ctx context.Context, d time.Duration) error
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

// ErrOutput marks an error of Run that comes from writing an output: the
// rows written so far may be incomplete on disk.
var ErrOutput = errors.New("output failed")

type item struct {
	rec source.Record
	err error // a row-level parse error
}

// Run reads every record of src, calls the API for it and writes one row to
// out for each; rows that failed are also written to errs when it is not
// nil. It returns when every stage has finished. The returned Stats are
// complete even when the error is not nil.
func (p *Pipeline) Run(ctx context.Context, src Source, out Writer[sink.Row], errs Writer[ErrorRow]) (Stats, error) {
	start := time.Now()
	st := newCounters()
	conc := p.Job.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}

	g, ctx := errgroup.WithContext(ctx)
	items := make(chan item, conc)
	results := make(chan sink.Row, conc)

	// read
	g.Go(func() error {
		defer close(items)
		for {
			rec, err := src.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			var pe *source.ParseError
			if err != nil && !errors.As(err, &pe) {
				return fmt.Errorf("pipeline: read input: %w", err)
			}
			select {
			case items <- item{rec: rec, err: err}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	})

	// call
	g.Go(func() error {
		defer close(results)
		calls, cctx := errgroup.WithContext(ctx)
		calls.SetLimit(conc)
	loop:
		for {
			var it item
			var ok bool
			select {
			case it, ok = <-items:
				if !ok {
					break loop
				}
			case <-cctx.Done():
				break loop
			}
			calls.Go(func() error {
				row, err := p.process(cctx, it, st)
				if err != nil {
					return err
				}
				select {
				case results <- row:
					return nil
				case <-cctx.Done():
					return context.Cause(cctx)
				}
			})
		}
		return calls.Wait()
	})

	// write
	g.Go(func() error {
		for row := range results {
			if err := out.Write(row); err != nil {
				return fmt.Errorf("pipeline: write row %d: %w: %w", row.Row, ErrOutput, err)
			}
			st.rows.Add(1)
			if row.Status == sink.StatusOK {
				st.ok.Add(1)
			} else {
				st.failed.Add(1)
				if errs != nil {
					if err := errs.Write(errorRow(row)); err != nil {
						return fmt.Errorf("pipeline: write errors file, row %d: %w: %w", row.Row, ErrOutput, err)
					}
				}
			}
			if len(results) == 0 {
				// Idle for a moment: hand what is written to the OS so a
				// killed process loses nothing already answered.
				if err := flush(out); err != nil {
					return fmt.Errorf("pipeline: flush output: %w: %w", ErrOutput, err)
				}
				if errs != nil {
					if err := flush(errs); err != nil {
						return fmt.Errorf("pipeline: flush errors file: %w: %w", ErrOutput, err)
					}
				}
			}
		}
		return nil
	})

	err := g.Wait()
	s := st.snapshot()
	s.Wall = time.Since(start)
	return s, err
}

// flush flushes w if it buffers.
func flush(w any) error {
	if f, ok := w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

func errorRow(r sink.Row) ErrorRow {
	return ErrorRow{
		ID:         r.ID,
		Row:        r.Row,
		Error:      r.Error,
		HTTPStatus: r.HTTPStatus,
		Attempts:   r.Attempts,
		RequestID:  r.RequestID,
		Input:      r.Input,
	}
}
