package pipeline

import (
	"context"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
)

// searchMode sends each row's text as the query of POST /search.
type searchMode struct{}

func (searchMode) path() string { return pplx.SearchPath }

func (searchMode) build(j *Job, text string) (body, hashed any, bucket string) {
	req := j.Search
	req.Query = pplx.Query{text}
	return &req, &req, limiter.SearchBucket
}

func (searchMode) send(ctx context.Context, c *pplx.Client, body any, row *sink.Row) (sent, error) {
	resp, meta, err := c.Search(ctx, body.(*pplx.SearchRequest))
	if err != nil {
		return sent{meta: meta}, err // failed searches are not billed
	}
	row.Results = make([]sink.SearchResult, len(resp.Results))
	for i, x := range resp.Results {
		row.Results[i] = sink.SearchResult{Title: x.Title, URL: x.URL, Snippet: x.Snippet, Date: x.Date, LastUpdated: x.LastUpdated}
	}
	return sent{meta: meta}, nil // the Search API reports no cost: the estimate counts
}
