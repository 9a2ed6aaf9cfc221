package pipeline

import (
	"context"
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

// process turns one input item into one output row. It returns an error
// only when the job must stop (the context is done).
func (p *Pipeline) process(ctx context.Context, it item, st *counters) (sink.Row, error) {
	row := sink.Row{
		ID:    strconv.FormatInt(it.rec.Row, 10),
		Row:   it.rec.Row,
		Input: it.rec.Raw,
	}
	if it.err != nil {
		return failRow(row, it.err.Error()), nil
	}
	if p.Job.IDColumn != "" {
		v, ok := it.rec.Values[p.Job.IDColumn]
		if !ok || v == nil {
			return failRow(row, fmt.Sprintf("row %d has no id column %q", it.rec.Row, p.Job.IDColumn)), nil
		}
		row.ID = fmt.Sprint(v)
	}
	text, err := p.render(it.rec.Values)
	if err != nil {
		return failRow(row, fmt.Sprintf("template: row %d: %v", it.rec.Row, err)), nil
	}
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
		return p.call(ctx, row, "chat:"+req.Model, st, func(ctx context.Context, row *sink.Row) (*pplx.Meta, error) {
			resp, meta, err := p.Client.Chat(ctx, &req)
			if err == nil {
				fillChat(row, resp)
				st.addUsage(resp.Usage)
			}
			return meta, err
		})
	default:
		req := p.Job.Search
		req.Query = pplx.Query{text}
		return p.call(ctx, row, "search", st, func(ctx context.Context, row *sink.Row) (*pplx.Meta, error) {
			resp, meta, err := p.Client.Search(ctx, &req)
			if err == nil {
				fillSearch(row, resp)
				st.searchCost()
			}
			return meta, err
		})
	}
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
// spent. Each attempt first passes the rate limiter of bucket.
func (p *Pipeline) call(ctx context.Context, row sink.Row, bucket string, st *counters,
	attempt func(context.Context, *sink.Row) (*pplx.Meta, error)) (sink.Row, error) {
	lim := p.Limiters.Get(bucket)
	timeout := p.Job.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	for n := 0; ; n++ {
		t, err := lim.Acquire(ctx)
		if err != nil {
			return row, err
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
			st.latency(meta.Latency)
		}
		lim.Release(t, out)
		if out.Status == http.StatusTooManyRequests {
			st.rateLimited.Add(1)
		}
		if err == nil {
			row.Status = sink.StatusOK
			return row, nil
		}
		if ctx.Err() != nil {
			return row, context.Cause(ctx)
		}
		if !pplx.Retryable(err) || n >= p.Job.MaxRetries {
			return failRow(row, oneLine(err)), nil
		}
		// A 429 pauses the shared limiter for every worker; waiting on our
		// own as well would only lose throughput.
		if out.Status == http.StatusTooManyRequests {
			continue
		}
		if err := p.sleep(ctx, pplx.RetryDelay(n, err, p.rand)); err != nil {
			return row, err
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
