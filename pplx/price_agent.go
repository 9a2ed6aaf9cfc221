package pplx

import (
	"strings"
	"unicode/utf8"
)

// Agent API prices (as of [PricesAsOf]). The Agent API has no request fee:
// a run is billed the model's tokens at the provider's rates and a flat
// fee per tool call; the answer's usage.cost.total_cost is the amount
// billed, and these tables serve only estimates before a run.
const (
	// WebSearchPricePerK is the price of 1,000 web_search calls.
	WebSearchPricePerK = 2.5
	// FastWebSearchPricePerK is the price of 1,000 web_search calls made by
	// the fast preset (Fast Search).
	FastWebSearchPricePerK = 1.0
	// FetchURLPricePerK is the fee of 1,000 fetch_url calls; the tool's
	// own model pass over the fetched pages is billed on top (observed:
	// about $0.003 per call).
	FetchURLPricePerK = 0.5
)

// AgentModelPrice is the token price of one Agent API model, in USD per
// million tokens, as GET /v1/models reported it.
type AgentModelPrice struct {
	Model                 string
	InputPerM, OutputPerM float64
}

// agentModelPrices is the table behind LookupAgentModelPrice; it is never
// modified. Only prices seen in a response of GET /v1/models are listed.
var agentModelPrices = [...]AgentModelPrice{
	{Model: "perplexity/sonar", InputPerM: 0.25, OutputPerM: 2.5},
	{Model: "openai/gpt-6-luna", InputPerM: 0.10, OutputPerM: 0.50},
}

// LookupAgentModelPrice returns the token price of an Agent API model.
func LookupAgentModelPrice(model string) (AgentModelPrice, bool) {
	for _, p := range agentModelPrices {
		if p.Model == model {
			return p, true
		}
	}
	return AgentModelPrice{}, false
}

// presetCosts are the observed total costs of one run of a preset (the
// middle of the totals seen in real captures, 2026-09 and 2026-10); a
// preset's model and tools may change at any time.
var presetCosts = map[string]float64{
	"fast": 0.00125,
	"low":  0.004,
}

// Assumptions of [EstimateAgentCost] for a run of an explicit model.
const (
	// DefaultAgentOutputTokens is the answer length assumed when the
	// request sets no max_output_tokens.
	DefaultAgentOutputTokens = 400
	// SearchContextTokens is the input tokens one web search adds (the
	// results the model reads): about 3,400 in a real capture.
	SearchContextTokens = 3000
)

// EstimateAgentCost estimates the cost in USD of one Agent API run before
// it is sent. For a model (or the first of a fallback list) with a known
// price: one token per four characters of the input and instructions,
// plus [SearchContextTokens] and one web search fee when a web_search
// tool is sent, plus one fetch_url fee when that tool is sent, and
// max_output_tokens (or [DefaultAgentOutputTokens]) output tokens. For a
// preset: its observed cost per run. ok is false when neither is known
// (the estimate is then 0).
func EstimateAgentCost(req *AgentRequest) (usd float64, ok bool) {
	if req == nil {
		return 0, false
	}
	if req.Preset != "" {
		c, ok := presetCosts[PresetName(req.Preset)]
		return c, ok
	}
	model := req.Model
	if model == "" && len(req.Models) > 0 {
		model = req.Models[0]
	}
	p, ok := LookupAgentModelPrice(model)
	if !ok {
		return 0, false
	}
	in := int64(utf8.RuneCountInString(req.Input)+utf8.RuneCountInString(req.Instructions)+3) / 4
	out := int64(req.MaxOutputTokens)
	if out <= 0 {
		out = DefaultAgentOutputTokens
	}
	var fees float64
	for _, t := range req.Tools {
		switch t.Type {
		case ToolWebSearch:
			in += SearchContextTokens
			fees += WebSearchPricePerK / 1000
		case ToolFetchURL:
			fees += FetchURLPricePerK / 1000
		}
	}
	return float64(in)*p.InputPerM/1e6 + float64(out)*p.OutputPerM/1e6 + fees, true
}

// Presets are the Agent API's presets, from the fastest to the most
// thorough.
var presets = [...]string{"fast", "low", "medium", "high", "xhigh"}

// oldPresets maps the presets' earlier names, which the API still accepts,
// to their names now.
var oldPresets = map[string]string{
	"fast-search": "fast", "pro-search": "low", "deep-research": "medium", "advanced-deep-research": "high",
}

// Presets returns the Agent API's preset names, from the fastest to the
// most thorough.
func Presets() []string { return append([]string(nil), presets[:]...) }

// PresetName returns the current name of a preset given by its current or
// an earlier name, and "" for a name that is not a preset.
func PresetName(name string) string {
	for _, p := range presets {
		if p == name {
			return p
		}
	}
	return oldPresets[name]
}

// SonarReplacement returns, for a retired Sonar model name, the Agent API
// equivalent that Perplexity's migration guide names, as flags of this
// tool: "--model perplexity/sonar" (with web search, which this tool
// forces by default) or "--preset NAME". ok is false for any other name.
func SonarReplacement(model string) (flags string, ok bool) {
	switch strings.ToLower(strings.TrimSpace(model)) {
	case "sonar":
		return "--model perplexity/sonar", true
	case "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro":
		return "--preset low", true
	case "sonar-deep-research":
		return "--preset medium", true
	}
	return "", false
}
