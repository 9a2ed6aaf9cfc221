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
)

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
	if p.Job.IDColumn != "" {
		v, ok := it.rec.Values[p.Job.IDColumn]
		if !ok || v == nil {
			return Result{Row: failRow(row, fmt.Sprintf("row %d has no id column %q", it.rec.Row, p.Job.IDColumn))}, true
		}
		row.ID = fmt.Sprint(v)
	}
	text, err := p.render(it.rec.Values)
	if err != nil {
		return Result{Row: failRow(row, fmt.Sprintf("template: row %d: %v", it.rec.Row, err))}, true
	}
	var (
		bucket  string
		hash    string
		attempt func(context.Context, *sink.Row) (*pplx.Meta, error)
	)
	switch p.Job.Mode {
	case ModeChat:
		req := p.Job.Chat
		if req.Model == "" {
			req.Model = "sonar"
		}
		req.Messages = nil
		if p.Job.System != "" {
			req.Messages = append(req.Messages, pplx.Message{Role: "system", Content: p.Job.System})
		}
		req.Messages = append(req.Messages, pplx.Message{Role: "user", Content: text})
		bucket = limiter.ChatBucket(req.Model)
		h := req
		h.Stream = false // how the answer travels does not change it
		hash = requestHash(pplx.ChatPath, &h)
		attempt = func(ctx context.Context, row *sink.Row) (*pplx.Meta, error) {
			resp, meta, err := p.Client.Chat(ctx, &req)
			if err == nil {
				fillChat(row, resp)
				st.addUsage(resp.Usage)
			}
			return meta, err
		}
	default:
		req := p.Job.Search
		req.Query = pplx.Query{text}
		bucket = limiter.SearchBucket
		hash = requestHash(pplx.SearchPath, &req)
		attempt = func(ctx context.Context, row *sink.Row) (*pplx.Meta, error) {
			resp, meta, err := p.Client.Search(ctx, &req)
			if err == nil {
				fillSearch(row, resp)
				st.searchCost()
			}
			return meta, err
		}
	}
	if p.Resume != nil && p.Resume.Done(it.rec.Row, hash) {
		st.skipped.Add(1)
		return Result{}, false
	}
	row, ok := p.call(ctx, stopCtx, stop, row, bucket, st, attempt)
	return Result{Row: row, RequestHash: hash}, ok
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

func (p *Pipeline) render(values map[string]any) (string, error) {
	if p.Job.Template == nil {
		return "", errors.New("no template")
	}
	var b strings.Builder
	if err := p.Job.Template.Execute(&b, values); err != nil {
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
	st *counters, attempt func(context.Context, *sink.Row) (*pplx.Meta, error)) (sink.Row, bool) {
	lim := p.Limiters.Get(bucket)
	timeout := p.Job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	for n := 0; ; n++ {
		t, err := lim.Acquire(stopCtx)
		if err != nil {
			return row, false // stopped while waiting: not sent
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		meta, err := attempt(actx, &row)
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
			return failRow(row, oneLine(err)), true
		}
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
