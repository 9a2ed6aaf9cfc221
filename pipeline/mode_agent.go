package pipeline

import (
	"context"
	"errors"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
)

// DefaultAgentModel is the model of an agent job that names no model,
// preset or fallback list: Perplexity's own, grounded by a web search that
// the request forces, like the retired sonar.
const DefaultAgentModel = "perplexity/sonar"

// AgentBucket names the rate-limit bucket of every Agent API request: the
// API's request limit is per organization, shared across all models.
const AgentBucket = "agent"

// agentMode sends each row's text as the input of POST /v1/agent, with
// Job.System as the instructions.
type agentMode struct{}

func (agentMode) path() string { return pplx.AgentPath }

func (agentMode) build(j *Job, text string) (body, hashed any, bucket string) {
	req := j.Agent
	if req.Model == "" && req.Preset == "" && len(req.Models) == 0 {
		req.Model = DefaultAgentModel
		if req.Tools == nil && req.ToolChoice == nil {
			req.Tools = []pplx.AgentTool{{Type: pplx.ToolWebSearch}}
			req.ToolChoice = &pplx.ToolChoice{Type: pplx.ToolWebSearch}
		}
	}
	req.Input = text
	if j.Schema != nil {
		req.ResponseFormat = j.Schema.ResponseFormat()
	}
	if j.System != "" {
		req.Instructions = j.System
	}
	h := req
	h.Stream, h.Background = false, false // how the answer travels does not change it
	return &req, &h, AgentBucket
}

func (agentMode) send(ctx context.Context, c *pplx.Client, body any, row *sink.Row) (sent, error) {
	req := body.(*pplx.AgentRequest)
	resp, meta, err := c.Agent(ctx, req)
	s := agentAnswer(row, resp, err)
	s.meta = meta
	if err == nil && req.Background && resp != nil && !pplx.TerminalStatus(resp.Status) {
		s.run = resp.ID
	}
	if se, ok := errors.AsType[*pplx.StreamError](err); ok && se.RunID != "" && ctx.Err() == nil {
		// The stream was cut after the run began: the run goes on and is
		// paid for. Collect it by its id, as a background run, rather
		// than pay for it again; if it cannot be collected, the row is
		// asked again.
		s.run, s.cut = se.RunID, true
		return s, nil
	}
	return s, err
}

// agentAnswer fills row with what resp holds, also for a run that failed
// or is incomplete (whose partial text a failed row keeps), and returns
// its billed cost and tokens. resp may be nil.
func agentAnswer(row *sink.Row, resp *pplx.AgentResponse, err error) sent {
	var s sent
	if resp == nil || (err == nil && !pplx.TerminalStatus(resp.Status)) {
		return s
	}
	if err == nil || keepsAnswer(err) {
		row.Content = resp.Text()
		row.Citations = resp.Citations()
		src := resp.Sources()
		row.SearchResults = make([]sink.Source, len(src))
		for i, x := range src {
			row.SearchResults[i] = sink.Source{ID: int64(x.ID), Title: x.Title, URL: x.URL, Date: x.Date, Snippet: x.Snippet}
		}
		row.Model = resp.Model
	}
	if u := resp.Usage; u != nil {
		s.tokens = [3]int64{u.InputTokens, u.OutputTokens, u.TotalTokens}
		if err == nil || keepsAnswer(err) {
			row.Usage = &sink.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
		}
		if u.Cost != nil {
			s.cost, s.known = u.Cost.TotalCost, true
			if row.Usage != nil {
				c := s.cost
				row.Usage.CostUSD = &c
			}
		}
	}
	return s
}

// keepsAnswer reports whether a row that failed with err keeps its
// answer: an incomplete run (cut by max_output_tokens) keeps its partial
// text, and an answer that does not match the schema its raw text.
func keepsAnswer(err error) bool {
	if _, ok := errors.AsType[*SchemaError](err); ok {
		return true
	}
	re, ok := errors.AsType[*pplx.RunError](err)
	return ok && re.Status == pplx.StatusIncomplete
}
