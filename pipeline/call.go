package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
	"github.com/pplx-batch/pplx-batch/source"
)

// Request is the API request of one input row.
type Request struct {
	// ID identifies the row: the Job's IDColumn value, or the row number.
	ID string
	// Endpoint is the path of the endpoint the request goes to, such as
	// pplx.SearchPath.
	Endpoint string
	// Bucket names the rate-limit bucket that paces the request.
	Bucket string
	// Hash identifies the request: rows whose requests hash the same get
	// the same answer. How the answer travels (streamed, as a background
	// run) does not count.
	Hash string
	// Body is the request body: a *pplx.SearchRequest, *pplx.AgentRequest
	// or *pplx.ChatRequest, by the Job's Mode.
	Body any

	mode endpoint
}

// Request renders the API request of rec. The error, a problem of this
// row alone (a missing id column, a template that fails for it), says
// which.
func (j *Job) Request(rec source.Record) (*Request, error) {
	r := &Request{ID: strconv.FormatInt(rec.Row, 10)}
	if j.IDColumn != "" {
		v, ok := rec.Values[j.IDColumn]
		if !ok || v == nil {
			return r, fmt.Errorf("row %d has no id column %q", rec.Row, j.IDColumn)
		}
		r.ID = fmt.Sprint(v)
	}
	r.mode = j.Mode.endpoint()
	if r.mode == nil {
		return r, errMode(j.Mode)
	}
	text, err := j.render(rec.Values)
	if err != nil {
		return r, fmt.Errorf("template: row %d: %w", rec.Row, err)
	}
	var hashed any
	r.Body, hashed, r.Bucket = r.mode.build(j, text)
	r.Endpoint = r.mode.path()
	r.Hash = requestHash(r.Endpoint, hashed)
	return r, nil
}

// process turns one input item into one Result. ok is false when the row
// was not finished (the job stopped first) or an earlier run already
// answered it: then nothing is written for it.
//
// ctx ends only when the job is cancelled; it bounds the requests in
// flight. stopCtx ends when the job stops starting rows; it bounds every
// wait before a request. stop stops the job after a job-fatal answer.
func (p *Pipeline) process(ctx, stopCtx context.Context, stop context.CancelCauseFunc, it item, st *counters) (Result, bool) {
	row := sink.Row{
		ID:    strconv.FormatInt(it.rec.Row, 10),
		Row:   it.rec.Row,
		Input: it.rec.Raw,
	}
	if it.err != nil {
		return Result{Row: failRow(row, it.err)}, true
	}
	req, err := p.Job.Request(it.rec)
	row.ID = req.ID
	if err != nil {
		return Result{Row: failRow(row, err)}, true
	}
	if p.Resume != nil && p.Resume.Done(it.rec.Row, req.Hash) {
		st.skipped.Add(1)
		return Result{}, false
	}
	row, ok := p.call(ctx, stopCtx, stop, row, req, st)
	return Result{Row: row, RequestHash: req.Hash}, ok
}

// requestHash identifies a rendered request: 16 hex digits of the SHA-256
// of the endpoint and the request's JSON.
func requestHash(endpoint string, req any) string {
	b, err := json.Marshal(req)
	if err != nil {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(endpoint))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (j *Job) render(values map[string]any) (string, error) {
	if j.Template == nil {
		return "", errors.New("no template")
	}
	var b strings.Builder
	if err := j.Template.Execute(&b, values); err != nil {
		return "", err
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		return "", errors.New("the template rendered an empty text")
	}
	return s, nil
}

// call sends req until it is answered, fails for good, or the retries are
// spent, and returns the finished row. ok is false when the row was not
// finished because the job stopped or was cancelled. Each attempt first
// passes the budget and the rate limiter of the request's bucket. A
// background run that an earlier run of the job submitted is collected
// instead of being submitted again.
func (p *Pipeline) call(ctx, stopCtx context.Context, stop context.CancelCauseFunc, row sink.Row, req *Request, st *counters) (sink.Row, bool) {
	lim := p.Limiters.Get(req.Bucket)
	timeout := p.Job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	est := p.estimate(req.Body)
	var pending string
	if p.Runs != nil {
		pending, _ = p.Runs.Pending(row.Row, req.Hash)
	}
	schemaRetries := p.Job.SchemaRetries
	retries := 0 // retries spent: failures during an outage spend none
	for n := 0; ; n++ {
		var (
			s       sent
			err     error
			verdict limiter.Verdict
		)
		if pending != "" {
			// Collect the run an earlier process paid for: no new request.
			s, err = p.collect(ctx, stopCtx, req, pending, &row)
			pending = ""
			s.cost = s.spent(0)
			st.settle(0, s.cost)
		} else {
			if rerr := st.reserve(stopCtx, est, p.Job.MaxCostUSD); rerr != nil {
				if be, ok := errors.AsType[*BudgetError](rerr); ok {
					stop(&FatalError{Row: row.Row, Err: be})
				}
				return row, false
			}
			t, aerr := lim.Acquire(stopCtx)
			if aerr != nil {
				st.settle(est, 0)
				if oe, ok := errors.AsType[*limiter.OutageError](aerr); ok {
					stop(&FatalError{Row: row.Row, Err: oe})
				}
				return row, false // stopped while waiting: not sent
			}
			actx, cancel := context.WithTimeout(ctx, timeout)
			released := false
			actx = pplx.WithTrace(actx, &pplx.Trace{
				// A stream is admitted once its headers come: the limiter
				// hears of it then, not after the last event, minutes
				// later, when its rate-limit headers would be stale.
				StreamStarted: func(m *pplx.Meta) {
					verdict = lim.Release(t, limiter.Outcome{Status: m.StatusCode, Header: m.Header, Latency: m.Latency})
					released = true
				},
				// The run is paid for from now on: record it, so that a
				// job killed before its answer collects it when resumed.
				RunCreated: func(id string) { p.record(req, row.Row, id) },
			})
			st.inFlight.Add(1)
			s, err = req.mode.send(actx, p.Client, req.Body, &row)
			st.inFlight.Add(-1)
			cancel()
			st.requests.Add(1)
			if n > 0 {
				st.retries.Add(1)
			}
			out := p.observe(&row, s.meta, err, st)
			if !released {
				verdict = lim.Release(t, out)
			}
			if err == nil && s.run != "" {
				cut, id := s.cut, s.run
				if cut {
					p.Log.Debug().Int64("row", row.Row).Str("run", id).Msg("the stream was cut after its run began: collecting the run")
				}
				s, err = p.submitted(ctx, stopCtx, req, s, &row)
				if cut && err != nil && !errors.Is(err, errCollectStopped) && ctx.Err() == nil && !keepsAnswer(err) {
					// The cut stream's run is not to be had (not kept,
					// cancelled, failed): ask again.
					p.Log.Debug().Int64("row", row.Row).Str("run", id).Err(err).Msg("the cut stream's run could not be collected")
					err = &RunGoneError{ID: id}
				}
			}
			s.cost = s.spent(est)
			if err != nil && !s.known {
				s.cost = 0 // failed requests are not billed unless the API says so
			}
			st.settle(est, s.cost)
		}
		st.addTokens(s.tokens)
		row.Attempts = n + 1
		if err == nil && p.Job.Schema != nil {
			if row.Data, err = p.Job.Schema.Validate(row.Content); err != nil {
				if schemaRetries > 0 {
					schemaRetries--
					p.Log.Debug().Int64("row", row.Row).Err(err).Msg("asking again")
					continue // ask again: the cost of this answer is counted
				}
				return failRow(row, err), true
			}
		}
		if err == nil {
			row.Status = sink.StatusOK
			return row, true
		}
		if ctx.Err() != nil || errors.Is(err, errCollectStopped) {
			return row, false // a resumed run asks again, or collects the pending run
		}
		if _, gone := errors.AsType[*RunGoneError](err); gone && retries < p.Job.MaxRetries {
			retries++
			continue // nothing left to collect: submit the row again
		}
		switch pplx.Classify(err) {
		case pplx.ClassJob:
			stop(&FatalError{Row: row.Row, Err: err})
			return row, false
		case pplx.ClassRow:
			return failRow(row, err), true
		}
		if verdict.Outage {
			// The whole API is down: the limiter holds every request and
			// probes until it answers; the row keeps its retries.
			p.Log.Debug().Int64("row", row.Row).Err(err).Msg("failed during an outage; waiting for the API")
			continue
		}
		if retries >= p.Job.MaxRetries {
			p.Log.Debug().Int64("row", row.Row).Int("attempts", n+1).Err(err).Msg("row failed: retries spent")
			return failRow(row, err), true
		}
		retries++
		status := 0
		if s.meta != nil {
			status = s.meta.StatusCode
		}
		p.Log.Debug().Int64("row", row.Row).Int("attempt", n+1).Int("status", status).Err(err).Msg("retrying")
		// A 429 pauses the shared limiter for every worker; waiting on our
		// own as well would only lose throughput.
		if status == http.StatusTooManyRequests {
			continue
		}
		if err := p.sleep(stopCtx, p.Backoff.Delay(retries-1, err, p.rand)); err != nil {
			return row, false
		}
	}
}

// observe records the response metadata of one attempt in row and the
// counters, and returns the outcome for the rate limiter.
func (p *Pipeline) observe(row *sink.Row, meta *pplx.Meta, err error, st *counters) limiter.Outcome {
	out := limiter.Outcome{Err: err}
	if meta == nil {
		return out
	}
	out.Status, out.Header, out.Latency = meta.StatusCode, meta.Header, meta.Latency
	row.HTTPStatus = meta.StatusCode
	row.RequestID = meta.RequestID
	row.LatencyMS = meta.Latency.Milliseconds()
	if meta.StatusCode != 0 {
		st.latency(meta.Latency)
	}
	if meta.StatusCode == http.StatusTooManyRequests {
		st.rateLimited.Add(1)
	}
	return out
}

// spent returns what an attempt cost: the billed cost when the API
// reported one, else est.
func (s sent) spent(est float64) float64 {
	if s.known {
		return s.cost
	}
	return est
}

// estimate returns the estimated cost of a request body.
func (p *Pipeline) estimate(body any) float64 {
	if p.Estimate != nil {
		return p.Estimate(body)
	}
	return pplx.EstimateCost(body)
}

func (p *Pipeline) rand() float64 {
	if p.Rand != nil {
		return p.Rand()
	}
	return rand.Float64()
}

func (p *Pipeline) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// failRow marks row failed with err. The answer goes, unless err says
// the row keeps its partial answer (an incomplete agent run).
func failRow(row sink.Row, err error) sink.Row {
	row.Status = sink.StatusError
	row.Error = oneLine(err)
	if !keepsAnswer(err) {
		row.Results, row.Content, row.Citations, row.SearchResults, row.Usage, row.Model = nil, "", nil, nil, nil, ""
	}
	row.Data = nil // only a valid answer has data
	return row
}

// oneLine flattens an error message to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func randN(n int64) int64 { return rand.Int64N(n) }
