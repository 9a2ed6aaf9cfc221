package pipeline

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
)

// Runs records the Agent API runs a job started and has not collected
// yet (background runs, and streamed runs from their response.created
// on), so that a resumed job polls them instead of submitting them again:
// a row must never be paid for twice. [*Journal] implements it.
type Runs interface {
	// Submitted records, durably enough to survive the process, that the
	// row's request was submitted as the run runID.
	Submitted(row int64, requestHash, runID string) error
	// Pending returns the run recorded for the row's request, if the row
	// has not been answered since.
	Pending(row int64, requestHash string) (runID string, ok bool)
}

// Polling of background runs: the first poll comes PollInterval after the
// submission; each wait is 1.5 times the last, up to MaxPollInterval, with
// a random 20% taken off or added.
const (
	PollInterval    = time.Second
	MaxPollInterval = 10 * time.Second
)

// maxRunNotFound is how many polls in a row may find no run before the
// run counts as gone: the first 404s right after a submission can be
// transient.
const maxRunNotFound = 3

// errCollectStopped reports that the job stopped while a background run
// was pending: the run goes on, paid for, and the next run of the job
// collects it.
var errCollectStopped = errors.New("stopped while the background run was pending")

// RunGoneError reports a background run that the API no longer knows
// (expired, or never stored): the row is submitted again.
type RunGoneError struct {
	ID string
}

func (e *RunGoneError) Error() string {
	return "background run " + e.ID + " not found"
}

// submitted records the background run that s names (a cut stream's run
// is recorded already) and collects it.
func (p *Pipeline) submitted(ctx, stopCtx context.Context, req *Request, s sent, row *sink.Row) (sent, error) {
	if !s.cut {
		p.record(req, row.Row, s.run)
	}
	return p.collect(ctx, stopCtx, req, s.run, row)
}

// record records in p.Runs that row's request is the run id.
func (p *Pipeline) record(req *Request, row int64, id string) {
	if p.Runs == nil {
		return
	}
	if err := p.Runs.Submitted(row, req.Hash, id); err != nil {
		// Without the record a crash would pay for the row again; the
		// run is collected all the same.
		p.Log.Error().Err(err).Int64("row", row).Msg("could not record the run")
	}
}

// collect polls the background run id until it ends and fills row with
// its answer. Polls pass no rate limiter: they create nothing. When the
// job stops first it returns errCollectStopped and leaves the run going.
func (p *Pipeline) collect(ctx, stopCtx context.Context, req *Request, id string, row *sink.Row) (sent, error) {
	timeout := p.Job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	row.RequestID = id
	wait := PollInterval
	notFound, failures := 0, 0
	for {
		d := time.Duration(float64(wait) * (0.8 + 0.4*p.rand()))
		if err := p.sleep(stopCtx, d); err != nil {
			return sent{}, errCollectStopped
		}
		wait = min(wait*3/2, MaxPollInterval)
		actx, cancel := context.WithTimeout(ctx, timeout)
		resp, meta, err := p.Client.AgentRun(actx, id)
		cancel()
		if ctx.Err() != nil {
			return sent{meta: meta}, ctx.Err()
		}
		if err == nil && !pplx.TerminalStatus(resp.Status) {
			notFound, failures = 0, 0
			continue
		}
		if resp != nil || err == nil {
			s := agentAnswer(row, resp, err)
			s.meta = meta
			if meta != nil {
				row.HTTPStatus = meta.StatusCode
			}
			row.RequestID = id
			return s, err
		}
		// The poll itself failed.
		if ae, ok := errors.AsType[*pplx.APIError](err); ok && ae.StatusCode == http.StatusNotFound {
			if notFound++; notFound >= maxRunNotFound {
				return sent{meta: meta}, &RunGoneError{ID: id}
			}
			continue
		}
		switch pplx.Classify(err) {
		case pplx.ClassJob, pplx.ClassRow:
			return sent{meta: meta}, err
		}
		if failures++; failures > max(p.Job.MaxRetries, 3)*4 {
			return sent{meta: meta}, err
		}
		p.Log.Debug().Str("run", id).Err(err).Msg("poll failed; polling again")
	}
}
