package pipeline

import (
	"context"
	"encoding/json"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
)

// DefaultChatModel is the model of a chat job that names none.
const DefaultChatModel = "sonar"

// chatMode sends each row's text as the user message of POST
// /chat/completions, after Job.System as the system message.
type chatMode struct{}

func (chatMode) path() string { return pplx.ChatPath }

func (chatMode) build(j *Job, text string) (body, hashed any, bucket string) {
	req := j.Chat
	if req.Model == "" {
		req.Model = DefaultChatModel
	}
	req.Messages = nil
	if j.System != "" {
		req.Messages = append(req.Messages, pplx.Message{Role: "system", Content: j.System})
	}
	req.Messages = append(req.Messages, pplx.Message{Role: "user", Content: text})
	if j.Schema != nil {
		req.ResponseFormat, _ = json.Marshal(j.Schema.ResponseFormat())
	}
	h := req
	h.Stream = false // how the answer travels does not change it
	return &req, &h, limiter.ChatBucket(req.Model)
}

func (chatMode) send(ctx context.Context, c *pplx.Client, body any, row *sink.Row) (sent, error) {
	req := body.(*pplx.ChatRequest)
	resp, meta, err := c.Chat(ctx, req)
	s := sent{meta: meta}
	if err != nil {
		return s, err
	}
	row.Content = resp.Content()
	row.Citations = resp.Citations
	row.SearchResults = make([]sink.Source, len(resp.SearchResults))
	for i, x := range resp.SearchResults {
		row.SearchResults[i] = sink.Source{ID: int64(i + 1), Title: x.Title, URL: x.URL, Date: x.Date, Snippet: x.Snippet}
	}
	row.Model = resp.Model
	if u := resp.Usage; u != nil {
		row.Usage = &sink.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		s.tokens = [3]int64{u.PromptTokens, u.CompletionTokens, u.TotalTokens}
		if u.Cost != nil {
			s.cost, s.known = u.Cost.TotalCost, true
			row.Usage.CostUSD = &s.cost
		} else if cost, ok := pplx.ChatCost(req, *u); ok {
			s.cost, s.known = cost.TotalCost, true // priced from the tokens
		}
	}
	return s, nil
}
