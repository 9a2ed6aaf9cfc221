package pplx

import (
	"math"
	"unicode/utf8"
)

// PricesAsOf is the date (year and month) of the price list in this file:
// Perplexity's pricing page as captured from 2025-07 to 2026-10. Prices
// change; when an answer reports usage.cost, that billed amount is the
// truth and these tables are only a fallback and an estimate.
const PricesAsOf = "2026-10"

// Search API prices in USD per 1,000 requests (as of [PricesAsOf]). A
// request is billed once, however many queries it holds; there are no
// token charges.
const (
	// SearchPricePerK is the price with search_type "web", the default.
	SearchPricePerK = 5.0
	// FastSearchPricePerK is the price with search_type "fast".
	FastSearchPricePerK = 1.0
)

// ChatPrice is the price list of one Sonar chat model (as of
// [PricesAsOf]), in the units of Perplexity's pricing page. A field that
// does not apply to the model is zero.
type ChatPrice struct {
	// Model is the model name, e.g. "sonar-pro".
	Model string
	// InputPerM, OutputPerM, CitationPerM and ReasoningPerM are token
	// prices in USD per million prompt, completion, citation and reasoning
	// tokens. Only sonar-deep-research bills citation and reasoning tokens.
	InputPerM, OutputPerM, CitationPerM, ReasoningPerM float64
	// SearchQueriesPerK is the price of the searches a request runs, in USD
	// per 1,000 search queries (sonar-deep-research only).
	SearchQueriesPerK float64
	// RequestFeePerK is the request fee in USD per 1,000 requests by
	// web_search_options.search_context_size: low (the default), medium,
	// high. ProRequestFeePerK is the same for Pro Search (sonar-pro with
	// search_type "pro" or "auto", streamed).
	RequestFeePerK, ProRequestFeePerK [3]float64
}

// chatPrices is the table behind ChatPrices and LookupChatPrice; it is
// never modified. sonar-reasoning is left out: the API removed it on
// 2025-12-15 and rejects it.
var chatPrices = [...]ChatPrice{
	{Model: "sonar", InputPerM: 1, OutputPerM: 1, RequestFeePerK: [3]float64{5, 8, 12}},
	{Model: "sonar-pro", InputPerM: 3, OutputPerM: 15, RequestFeePerK: [3]float64{6, 10, 14},
		ProRequestFeePerK: [3]float64{14, 18, 22}},
	{Model: "sonar-reasoning-pro", InputPerM: 2, OutputPerM: 8, RequestFeePerK: [3]float64{6, 10, 14}},
	{Model: "sonar-deep-research", InputPerM: 2, OutputPerM: 8, CitationPerM: 2, ReasoningPerM: 3,
		SearchQueriesPerK: 5},
}

// ChatPrices returns the price list of every chat model the API accepts,
// as of [PricesAsOf], in the order of Perplexity's pricing page. The slice
// is a new copy on each call.
func ChatPrices() []ChatPrice {
	out := make([]ChatPrice, len(chatPrices))
	copy(out, chatPrices[:])
	return out
}

// LookupChatPrice returns the price list of model; false when the model is
// not in the table (an unknown, new or removed model).
func LookupChatPrice(model string) (ChatPrice, bool) {
	for _, p := range chatPrices {
		if p.Model == model {
			return p, true
		}
	}
	return ChatPrice{}, false
}

// SearchRequestCost returns the price in USD of one successful Search API
// request: $0.001 with search_type "fast", else $0.005 (the web price; the
// people search type is not priced separately in the docs and is charged
// at it here). A nil req is priced at the web price.
func SearchRequestCost(req *SearchRequest) float64 {
	if req != nil && req.SearchType == "fast" {
		return usd(perK(FastSearchPricePerK))
	}
	return usd(perK(SearchPricePerK))
}

// ChatCost computes what a chat request is billed from its token counts,
// as the API would report in usage.cost, using the tables of
// [PricesAsOf]: prompt and completion tokens at the model's token prices,
// plus the request fee of the search context size, plus for
// sonar-deep-research its citation and reasoning tokens and search
// queries (it has no request fee).
//
// The model is req.Model ("" means sonar, as the pipeline sends it). The
// search context size is u.SearchContextSize when the API reported one,
// else req.WebSearchOptions.SearchContextSize, else "low". sonar-pro pays
// the Pro Search fee when req.Stream is set and search_type is "pro" or
// "auto" (auto is billed at the fast or the pro rate depending on the
// query; ChatCost assumes pro, the upper bound). Negative token counts
// count as zero.
//
// ok is false, and the Cost zero, for an unknown model or search context
// size.
func ChatCost(req *ChatRequest, u Usage) (Cost, bool) {
	model := ""
	var opt WebSearchOptions
	stream := false
	if req != nil {
		model, stream = req.Model, req.Stream
		if req.WebSearchOptions != nil {
			opt = *req.WebSearchOptions
		}
	}
	if model == "" {
		model = "sonar"
	}
	p, ok := LookupChatPrice(model)
	if !ok {
		return Cost{}, false
	}
	size := u.SearchContextSize
	if size == "" {
		size = opt.SearchContextSize
	}
	ci, ok := contextIndex(size)
	if !ok {
		return Cost{}, false
	}
	fees := p.RequestFeePerK
	if stream && (opt.SearchType == "pro" || opt.SearchType == "auto") && p.ProRequestFeePerK != [3]float64{} {
		fees = p.ProRequestFeePerK
	}
	// Every term is an exact number of nano-USD, so the sums do not drift
	// and equal the API's decimal amounts.
	in := tokens(u.PromptTokens) * perM(p.InputPerM)
	out := tokens(u.CompletionTokens) * perM(p.OutputPerM)
	cit := tokens(u.CitationTokens) * perM(p.CitationPerM)
	rea := tokens(u.ReasoningTokens) * perM(p.ReasoningPerM)
	sq := tokens(u.NumSearchQueries) * perK(p.SearchQueriesPerK)
	fee := perK(fees[ci])
	return Cost{
		InputTokensCost:     usd(in),
		OutputTokensCost:    usd(out),
		RequestCost:         usd(fee),
		CitationTokensCost:  usd(cit),
		ReasoningTokensCost: usd(rea),
		SearchQueriesCost:   usd(sq),
		TotalCost:           usd(in + out + cit + rea + sq + fee),
	}, true
}

// Assumptions of [EstimateChatUsage]: completion tokens per request when
// max_tokens is not set, by model, and what a sonar-deep-research request
// is assumed to use besides (Perplexity documents no typical values; real
// deep research requests vary widely and can cost dollars each).
const (
	// DefaultCompletionTokens is assumed for sonar, sonar-pro and any
	// model not listed below.
	DefaultCompletionTokens = 400
	// ReasoningCompletionTokens is assumed for sonar-reasoning-pro, whose
	// answer starts with a <think> block.
	ReasoningCompletionTokens = 1500
	// DeepResearchCompletionTokens, DeepResearchCitationTokens,
	// DeepResearchReasoningTokens and DeepResearchSearchQueries are
	// assumed for sonar-deep-research.
	DeepResearchCompletionTokens = 4000
	DeepResearchCitationTokens   = 20000
	DeepResearchReasoningTokens  = 100000
	DeepResearchSearchQueries    = 20
)

// EstimateChatUsage estimates the token usage of req before it is sent:
//   - prompt tokens: one per four characters (Unicode code points) of the
//     messages' contents, rounded up, a common rule of thumb for English
//     text;
//   - completion tokens: req.MaxTokens when set (the most the answer may
//     take), else [DefaultCompletionTokens], or
//     [ReasoningCompletionTokens] for sonar-reasoning-pro, or
//     [DeepResearchCompletionTokens] for sonar-deep-research;
//   - for sonar-deep-research also [DeepResearchCitationTokens],
//     [DeepResearchReasoningTokens] and [DeepResearchSearchQueries].
//
// SearchContextSize is the request's, or "low". A nil req gives the zero
// Usage.
func EstimateChatUsage(req *ChatRequest) Usage {
	if req == nil {
		return Usage{}
	}
	var chars int64
	for _, m := range req.Messages {
		chars += int64(utf8.RuneCountInString(m.Content))
	}
	u := Usage{PromptTokens: (chars + 3) / 4, SearchContextSize: "low"}
	if o := req.WebSearchOptions; o != nil && o.SearchContextSize != "" {
		u.SearchContextSize = o.SearchContextSize
	}
	u.CompletionTokens = DefaultCompletionTokens
	switch req.Model {
	case "sonar-reasoning-pro":
		u.CompletionTokens = ReasoningCompletionTokens
	case "sonar-deep-research":
		u.CompletionTokens = DeepResearchCompletionTokens
		u.CitationTokens = DeepResearchCitationTokens
		u.ReasoningTokens = DeepResearchReasoningTokens
		u.NumSearchQueries = DeepResearchSearchQueries
	}
	if req.MaxTokens > 0 {
		u.CompletionTokens = int64(req.MaxTokens)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// EstimateChatCost estimates the cost in USD of req before it is sent: the
// [ChatCost] of its [EstimateChatUsage]. It is 0 for a nil req, an unknown
// model or an unknown search context size (see [LookupChatPrice]).
func EstimateChatCost(req *ChatRequest) float64 {
	if req == nil {
		return 0
	}
	c, _ := ChatCost(req, EstimateChatUsage(req))
	return c.TotalCost
}

// EstimateCost estimates the cost in USD of a request body before it is
// sent: [SearchRequestCost] for a *SearchRequest, [EstimateChatCost] for a
// *ChatRequest, [EstimateAgentCost] for an *AgentRequest (values of these
// types are accepted too), and 0 for
// anything else, a nil pointer included. It is safe for concurrent use, as
// are all the functions of this file.
func EstimateCost(body any) float64 {
	switch b := body.(type) {
	case *SearchRequest:
		if b == nil {
			return 0
		}
		return SearchRequestCost(b)
	case SearchRequest:
		return SearchRequestCost(&b)
	case *ChatRequest:
		return EstimateChatCost(b)
	case ChatRequest:
		return EstimateChatCost(&b)
	case *AgentRequest:
		c, _ := EstimateAgentCost(b)
		return c
	case AgentRequest:
		c, _ := EstimateAgentCost(&b)
		return c
	}
	return 0
}

// contextIndex maps a search context size to its column of the request
// fee tables; "" means the default, low.
func contextIndex(size string) (int, bool) {
	switch size {
	case "", "low":
		return 0, true
	case "medium":
		return 1, true
	case "high":
		return 2, true
	}
	return 0, false
}

// Amounts are computed in whole nano-USD (1e-9 USD): every price of the
// tables is a whole number of them per token, query or request.

// perM converts a price per million units to nano-USD per unit.
func perM(usdPerMillion float64) int64 { return int64(math.Round(usdPerMillion * 1e3)) }

// perK converts a price per 1,000 units to nano-USD per unit.
func perK(usdPerThousand float64) int64 { return int64(math.Round(usdPerThousand * 1e6)) }

func usd(nanos int64) float64 { return float64(nanos) / 1e9 }

// tokens clamps a reported count to [0, 1e12] so products cannot overflow.
func tokens(n int64) int64 { return min(max(n, 0), 1e12) }
