package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// DefaultAgentResults is the number of web results of an agent run whose
// web_search tool sets no max_results.
const DefaultAgentResults = 5

// agentFillerWords is the number of filler words at the end of an agent
// answer, so that a small max_output_tokens truncates it.
const agentFillerWords = 20

// agentPrice is a model's token price in US cents per million tokens.
type agentPrice struct{ in, out int64 }

// agentPrices is the sim's price table (GET /v1/models as captured, for perplexity/sonar
// and openai/gpt-6-luna; the others are invented but plausible).
var agentPrices = map[string]agentPrice{
	"perplexity/sonar":          {25, 250},
	"openai/gpt-6-luna":         {10, 50},
	"openai/gpt-6-sol":          {125, 1000},
	"anthropic/claude-opus-5-5": {500, 2500},
}

// Tool fees in micro-USD per web search call.
const (
	webSearchMicros     = 2500
	fastWebSearchMicros = 1000
)

// AgentModels returns the models the simulated Agent API accepts, in no
// particular order.
func AgentModels() []string {
	out := make([]string, 0, len(agentPrices))
	for m := range agentPrices {
		out = append(out, m)
	}
	return out
}

// AgentSearchResults returns the web results of the server's agent answer
// to input when the run searches: maxResults results (DefaultAgentResults
// when maxResults <= 0) with ids 1, 2, ..., the title "<input> - source
// i", the URL "https://sim.invalid/<first 8 hex digits of
// sha256(input)>/agent-i", a snippet naming the input, dates in 2025 and
// source "web". It is a pure function.
func AgentSearchResults(input string, maxResults int) []pplx.AgentSearchResult {
	n := maxResults
	if n <= 0 {
		n = DefaultAgentResults
	}
	h := sha256.Sum256([]byte(input))
	tag := hex.EncodeToString(h[:4])
	out := make([]pplx.AgentSearchResult, n)
	for i := range out {
		date, updated := dates(h, i+1)
		out[i] = pplx.AgentSearchResult{
			ID:          pplx.FlexInt(i + 1),
			URL:         fmt.Sprintf("https://sim.invalid/%s/agent-%d", tag, i+1),
			Title:       fmt.Sprintf("%s - source %d", input, i+1),
			Snippet:     fmt.Sprintf("Source %d on %s: %s.", i+1, input, fillerWords(h, 7*i+1, 6)),
			Date:        date,
			LastUpdated: updated,
			Source:      "web",
		}
	}
	return out
}

// AgentContent returns the text of the server's complete agent answer
// served by model to input, citing the first results of a run that found
// results web results (0 when the run did not search): "Answer from
// <model> to: <input> [1][2]." with two or three markers (chosen by the
// hash of input, never more than results; none without results),
// followed by twenty filler words derived from model and input. An
// incomplete answer's text is a prefix of it: its first
// max(max_output_tokens, 16) space-separated words. It is a pure function.
func AgentContent(model, input string, results int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Answer from %s to: %s", model, input)
	hi := sha256.Sum256([]byte(input))
	if k := min(results, 2+int(hi[0]%2)); k > 0 {
		b.WriteByte(' ')
		for i := range k {
			fmt.Fprintf(&b, "[%d]", i+1)
		}
	}
	h := sha256.Sum256([]byte(model + "\x00" + input))
	fmt.Fprintf(&b, ". %s.", fillerWords(h, 0, agentFillerWords))
	return b.String()
}

// truncateWords returns the first n space-separated words of s (a prefix
// of s) and whether s had more.
func truncateWords(s string, n int64) (string, bool) {
	parts := strings.SplitAfter(s, " ")
	if int64(len(parts)) <= n {
		return s, false
	}
	return strings.TrimSuffix(strings.Join(parts[:n], ""), " "), true
}

func words(s string) int64 { return int64(len(strings.Fields(s))) }

// tokenMicros is the cost of tokens at centsPerM, in micro-USD rounded to
// the nearest 10 (the API's costs are rounded to 1e-5 USD).
func tokenMicros(tokens, centsPerM int64) int64 {
	return (tokens*centsPerM + 500) / 1000 * 10
}

// Outcomes of an agent run other than completion, drawn per request.
type agentFate int

const (
	fateComplete agentFate = iota
	fateFailed
	fateIncomplete
	fateError   // a bare "error" event when streamed; failed otherwise
	fateInvalid // a json_schema answer that does not match the schema
)

// agentResult is the final state of a run: everything the terminal
// response needs.
type agentResult struct {
	status     string
	results    []pplx.AgentSearchResult
	text       string // possibly partial; "" when failed
	msgStatus  string
	usage      *agentUsageWire
	micros     int64 // billed
	err        *pplx.AgentError
	incomplete *pplx.IncompleteDetails
	fate       agentFate
}

// agentOutcome computes the final result of c under fate f.
func agentOutcome(c *agentCall, f agentFate) agentResult {
	r := agentResult{fate: f}
	if f == fateFailed || f == fateError {
		r.status = pplx.StatusFailed
		r.err = &pplx.AgentError{Code: "internal_error", Message: "The agent run failed (simulated).", Type: "internal_error"}
		return r
	}
	if c.search {
		r.results = AgentSearchResults(c.input, c.maxResults)
	}
	full := AgentContent(c.model, c.input, len(r.results))
	if c.schema != nil {
		full = AgentJSONContent(c.schema, c.input)
		if f == fateInvalid {
			full = AgentInvalidJSONContent(c.schema, c.input)
		}
	}
	r.status, r.msgStatus, r.text = pplx.StatusCompleted, pplx.StatusCompleted, full
	limit := int64(0)
	switch {
	case f == fateIncomplete:
		limit = max(words(full)/2, 1)
	case c.maxOutput > 0:
		limit = c.maxOutput
	}
	if limit > 0 {
		if part, cut := truncateWords(full, limit); cut {
			r.status, r.msgStatus, r.text = pplx.StatusIncomplete, pplx.StatusIncomplete, part
			r.incomplete = &pplx.IncompleteDetails{Reason: "max_output_tokens"}
		}
	}
	r.usage, r.micros = agentUsage(c, len(r.results), words(r.text))
	return r
}

// agentUsage returns the usage of a run and its total cost in micro-USD.
// Input tokens: a fixed overhead, the words of the input and instructions,
// and 40 per search result read.
func agentUsage(c *agentCall, results int, outTokens int64) (*agentUsageWire, int64) {
	in := 12 + words(c.input) + int64(40*results)
	if c.instructions != nil {
		in += words(*c.instructions)
	}
	p := agentPrices[c.model]
	inCost, outCost := tokenMicros(in, p.in), tokenMicros(outTokens, p.out)
	total := inCost + outCost
	u := &agentUsageWire{AgentUsage: pplx.AgentUsage{InputTokens: in, OutputTokens: outTokens, TotalTokens: in + outTokens}}
	cost := &pplx.AgentCost{Currency: "USD", InputCost: usd(inCost), OutputCost: usd(outCost)}
	if c.search {
		fee := int64(webSearchMicros)
		if c.fastSearch {
			fee = fastWebSearchMicros
		}
		total += fee
		u.ToolCallsDetails = map[string]pplx.ToolCallDetail{"search_web": {CostUSD: usd(fee), Invocation: 1}}
		cost.ToolCallsCost = usd(fee)
		cost.ToolCallsCostDetails = map[string]float64{"search_web": usd(fee)}
	}
	cost.TotalCost = usd(total)
	u.Cost = cost
	return u, total
}

// Wire shapes. The top-level object and some items are the sim's own
// structs because the real API sends explicit nulls ("usage": null,
// "content": null, "error": null) that pplx's decoding types omit.

// agentWire is an Agent API response object as the API sends it.
type agentWire struct {
	ID                 string                  `json:"id"`
	Object             string                  `json:"object"`
	CreatedAt          int64                   `json:"created_at"`
	CompletedAt        *int64                  `json:"completed_at"`
	Status             string                  `json:"status"`
	Error              *pplx.AgentError        `json:"error"`
	IncompleteDetails  *pplx.IncompleteDetails `json:"incomplete_details"`
	Model              string                  `json:"model"`
	Background         bool                    `json:"background"`
	Store              bool                    `json:"store"`
	Instructions       *string                 `json:"instructions"`
	MaxOutputTokens    *int64                  `json:"max_output_tokens"`
	MaxToolCalls       *int64                  `json:"max_tool_calls"`
	Metadata           map[string]string       `json:"metadata"`
	ParallelToolCalls  bool                    `json:"parallel_tool_calls"`
	PreviousResponseID *string                 `json:"previous_response_id"`
	Reasoning          *pplx.Reasoning         `json:"reasoning"`
	ServiceTier        string                  `json:"service_tier"`
	Temperature        float64                 `json:"temperature"`
	TopP               float64                 `json:"top_p"`
	Text               textEcho                `json:"text"`
	ToolChoice         string                  `json:"tool_choice"`
	Tools              []json.RawMessage       `json:"tools"`
	Truncation         string                  `json:"truncation"`
	User               *string                 `json:"user"`
	Output             []any                   `json:"output"`
	Usage              *agentUsageWire         `json:"usage"`
}

type textEcho struct {
	Format struct {
		Type string `json:"type"`
	} `json:"format"`
}

// agentUsageWire is usage with the token details the API adds.
type agentUsageWire struct {
	pplx.AgentUsage
	InputTokensDetails  inputTokensDetails  `json:"input_tokens_details"`
	OutputTokensDetails outputTokensDetails `json:"output_tokens_details"`
}

type inputTokensDetails struct {
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CachedTokens             int64 `json:"cached_tokens"`
}

type outputTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// messageItem is a message output item; Content nil encodes as null, as
// in the stream's output_item.added.
type messageItem struct {
	Type    string        `json:"type"`
	ID      string        `json:"id"`
	Role    string        `json:"role"`
	Status  string        `json:"status"`
	Content *[]outputText `json:"content"`
}

type outputText struct {
	Type        string            `json:"type"`
	Text        string            `json:"text"`
	Annotations []json.RawMessage `json:"annotations"`
}

// functionCallItem is the internal search call a stream announces.
type functionCallItem struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Arguments string `json:"arguments"`
}

func searchItem(c *agentCall, results []pplx.AgentSearchResult) pplx.OutputItem {
	return pplx.OutputItem{Type: pplx.ItemSearchResults, Queries: []string{c.input}, Results: results}
}

func message(id, status, text string) messageItem {
	content := []outputText{{Type: "output_text", Text: text, Annotations: []json.RawMessage{}}}
	return messageItem{Type: pplx.ItemMessage, ID: id, Role: "assistant", Status: status, Content: &content}
}

// snapshot returns the response object of c with the given status,
// showing the model the API shows before a run ends, no output and null
// usage; created is the created_at time.
func (c *agentCall) snapshot(id, status string, created int64) agentWire {
	w := agentWire{
		ID: id, Object: "response", CreatedAt: created, Status: status,
		Model: c.shown, Background: c.background, Store: c.store,
		Instructions: c.instructions, MaxOutputTokens: c.maxOutputTokens, MaxToolCalls: c.maxToolCalls,
		Metadata: c.metadata, ParallelToolCalls: c.parallelToolCalls, PreviousResponseID: c.previousResponseID,
		Reasoning: c.reasoning, ServiceTier: "default", Temperature: c.temperature, TopP: c.topP,
		ToolChoice: "auto", Tools: c.tools, Output: []any{},
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	if w.Tools == nil {
		w.Tools = []json.RawMessage{}
	}
	if c.preset == "fast" {
		w.ServiceTier = "fast"
	}
	w.Text.Format.Type = "text"
	return w
}

// final returns the terminal response object of c with result r.
func (c *agentCall) final(id, msgID string, r *agentResult, created, completed int64) agentWire {
	w := c.snapshot(id, r.status, created)
	w.CompletedAt = &completed
	w.Error, w.IncompleteDetails = r.err, r.incomplete
	if r.fate != fateFailed && r.fate != fateError {
		w.Model = c.model
		w.Usage = r.usage
	}
	if r.results != nil {
		w.Output = append(w.Output, searchItem(c, r.results))
	}
	if r.msgStatus != "" {
		w.Output = append(w.Output, message(msgID, r.msgStatus, r.text))
	}
	return w
}
