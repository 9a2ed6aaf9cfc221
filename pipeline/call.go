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
	// Endpoint is pplx.SearchPath or pplx.ChatPath.
	Endpoint string
	// Bucket names the rate-limit bucket (limiter.SearchBucket, or
	// limiter.ChatBucket of the model).
	Bucket string
	// Hash identifies the request: rows whose requests hash the same get
	// the same answer. Streaming does not count.
	Hash string
	// Search or Chat is the body, by the Job's Mode.
	Search *pplx.SearchRequest
	Chat   *pplx.ChatRequest
}

// Body returns the request body (Search or Chat).
func (r *Request) Body() any {
	if r.Chat != nil {
		return r.Chat
	}
	return r.Search
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
	text, err := j.render(rec.Values)
	if err != nil {
		return r, fmt.Errorf("template: row %d: %w", rec.Row, err)
	}
	switch j.Mode {
	case ModeChat:
		req := j.Chat
		if req.Model == "" {
			req.Model = "sonar"
		}
		req.Messages = nil
		if j.System != "" {
			req.Messages = append(req.Messages, pplx.Message{Role: "system", Content: j.System})
		}
		req.Messages = append(req.Messages, pplx.Message{Role: "user", Content: text})
		h := req
		h.Stream = false // how the answer travels does not change it
		r.Endpoint, r.Bucket, r.Hash, r.Chat = pplx.ChatPath, limiter.ChatBucket(req.Model), requestHash(pplx.ChatPath, &h), &req
	default:
		req := j.Search
		req.Query = pplx.Query{text}
		r.Endpoint, r.Bucket, r.Hash, r.Search = pplx.SearchPath, limiter.SearchBucket, requestHash(pplx.SearchPath, &req), &req
	}
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
		return Result{Row: failRow(row, it.err.Error())}, true
	}
	req, err := p.Job.Request(it.rec)
	row.ID = req.ID
	if err != nil {
		return Result{Row: failRow(row, err.Error())}, true
	}
	est := p.estimate(req.Body())
	// attempt sends the request once and returns what it cost.
	var attempt func(context.Context, *sink.Row) (*pplx.Meta, float64, error)
	if req.Chat != nil {
		attempt = func(ctx context.Context, row *sink.Row) (*pplx.Meta, float64, error) {
			resp, meta, err := p.Client.Chat(ctx, req.Chat)
			if err != nil {
				return meta, 0, err
			}
			fillChat(row, resp)
			st.addTokens(resp.Usage)
			if u := resp.Usage; u != nil {
				if u.Cost != nil {
					return meta, u.Cost.TotalCost, nil
				}
				if c, ok := pplx.ChatCost(req.Chat, *u); ok {
					return meta, c.TotalCost, nil // priced from the tokens
				}
			}
			return meta, est, nil
		}
	} else {
		attempt = func(ctx context.Context, row *sink.Row) (*pplx.Meta, float64, error) {
			resp, meta, err := p.Client.Search(ctx, req.Search)
			if err != nil {
				return meta, 0, err // failed searches are not billed
			}
			fillSearch(row, resp)
			return meta, est, nil
		}
	}
	if p.Resume != nil && p.Resume.Done(it.rec.Row, req.Hash) {
		st.skipped.Add(1)
		return Result{}, false
	}
	row, ok := p.call(ctx, stopCtx, stop, row, req.Bucket, est, st, attempt)
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

// call runs attempt until it succeeds, fails for good, or the retries are
// spent, and returns the finished row. ok is false when the row was not
// finished because the job stopped or was cancelled. Each attempt first
// passes the rate limiter of bucket.
func (p *Pipeline) call(ctx, stopCtx context.Context, stop context.CancelCauseFunc, row sink.Row, bucket string,
	est float64, st *counters, attempt func(context.Context, *sink.Row) (*pplx.Meta, float64, error)) (sink.Row, bool) {
	lim := p.Limiters.Get(bucket)
	timeout := p.Job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	for n := 0; ; n++ {
		if err := st.reserve(est, p.Job.MaxCostUSD); err != nil {
			stop(&FatalError{Row: row.Row, Err: err})
			return row, false
		}
		t, err := lim.Acquire(stopCtx)
		if err != nil {
			st.settle(est, 0)
			return row, false // stopped while waiting: not sent
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		st.inFlight.Add(1)
		meta, spent, err := attempt(actx, &row)
		st.inFlight.Add(-1)
		st.settle(est, spent)
		cancel()
		row.Attempts = n + 1
		st.requests.Add(1)
		if n > 0 {
			st.retries.Add(1)
		}
		out := limiter.Outcome{Err: err}
		if meta != nil {
			out.Status, out.Header, out.Latency = meta.StatusCode, meta.Header, meta.Latency
			row.HTTPStatus = meta.StatusCode
			row.RequestID = meta.RequestID
			row.LatencyMS = meta.Latency.Milliseconds()
			if meta.StatusCode != 0 {
				st.latency(meta.Latency)
			}
		}
		lim.Release(t, out)
		if out.Status == http.StatusTooManyRequests {
			st.rateLimited.Add(1)
		}
		if err == nil {
			row.Status = sink.StatusOK
			return row, true
		}
		if ctx.Err() != nil {
			return row, false // cancelled in flight: a resumed run asks again
		}
		switch pplx.Classify(err) {
		case pplx.ClassJob:
			stop(&FatalError{Row: row.Row, Err: err})
			return row, false
		case pplx.ClassRow:
			return failRow(row, oneLine(err)), true
		}
		if n >= p.Job.MaxRetries {
			p.Log.Debug().Int64("row", row.Row).Int("attempts", n+1).Err(err).Msg("row failed: retries spent")
			return failRow(row, oneLine(err)), true
		}
		p.Log.Debug().Int64("row", row.Row).Int("attempt", n+1).Int("status", out.Status).Err(err).Msg("retrying")
		// A 429 pauses the shared limiter for every worker; waiting on our
		// own as well would only lose throughput.
		if out.Status == http.StatusTooManyRequests {
			continue
		}
		if err := p.sleep(stopCtx, p.Backoff.Delay(n, err, p.rand)); err != nil {
			return row, false
		}
	}
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

func failRow(row sink.Row, reason string) sink.Row {
	row.Status = sink.StatusError
	row.Error = reason
	row.Results, row.Content, row.Citations, row.SearchResults, row.Usage = nil, "", nil, nil, nil
	return row
}

// oneLine flattens an error message to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func fillSearch(row *sink.Row, r *pplx.SearchResponse) {
	row.Results = make([]sink.SearchResult, len(r.Results))
	for i, x := range r.Results {
		row.Results[i] = sink.SearchResult{Title: x.Title, URL: x.URL, Snippet: x.Snippet, Date: x.Date, LastUpdated: x.LastUpdated}
	}
	if row.RequestID == "" {
		row.RequestID = r.ID
	}
}

func fillChat(row *sink.Row, r *pplx.ChatResponse) {
	row.Content = r.Content()
	row.Citations = r.Citations
	row.SearchResults = make([]sink.Source, len(r.SearchResults))
	for i, x := range r.SearchResults {
		row.SearchResults[i] = sink.Source{Title: x.Title, URL: x.URL, Date: x.Date, Snippet: x.Snippet}
	}
	if u := r.Usage; u != nil {
		row.Usage = &sink.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		if u.Cost != nil {
			c := u.Cost.TotalCost
			row.Usage.CostUSD = &c
		}
	}
	if row.RequestID == "" {
		row.RequestID = r.ID
	}
}

func randN(n int64) int64 { return rand.Int64N(n) }
