package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// agentBody is the strict schema of POST /v1/agent: every field the real
// API accepts, decoded with DisallowUnknownFields so that any other field
// is the API's 400 "invalid request body: json: unknown field".
type agentBody struct {
	Input              json.RawMessage      `json:"input"`
	Model              *string              `json:"model"`
	Models             []string             `json:"models"`
	Preset             *string              `json:"preset"`
	Instructions       *string              `json:"instructions"`
	Tools              []agentToolBody      `json:"tools"`
	ToolChoice         json.RawMessage      `json:"tool_choice"`
	MaxOutputTokens    *int64               `json:"max_output_tokens"`
	MaxSteps           *int64               `json:"max_steps"`
	MaxToolCalls       *int64               `json:"max_tool_calls"`
	Reasoning          *agentReasoningBody  `json:"reasoning"`
	ResponseFormat     *agentResponseFormat `json:"response_format"`
	Stream             bool                 `json:"stream"`
	StreamOptions      *agentStreamOptions  `json:"stream_options"`
	Background         bool                 `json:"background"`
	Store              *bool                `json:"store"`
	PreviousResponseID *string              `json:"previous_response_id"`
	Temperature        *float64             `json:"temperature"`
	TopP               *float64             `json:"top_p"`
	ParallelToolCalls  *bool                `json:"parallel_tool_calls"`
	LanguagePreference *string              `json:"language_preference"`
	Metadata           map[string]string    `json:"metadata"`
	Truncation         *string              `json:"truncation"`
	Skills             []json.RawMessage    `json:"skills"`
}

type agentReasoningBody struct {
	Effort string `json:"effort"`
}

type agentStreamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

type agentResponseFormat struct {
	Type       string           `json:"type"`
	JSONSchema *agentJSONSchema `json:"json_schema"`
}

type agentJSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

// agentToolBody is the union of the tool shapes of the Agent API reference.
type agentToolBody struct {
	Type              string            `json:"type"`
	Filters           *agentFilters     `json:"filters"`
	SearchContextSize string            `json:"search_context_size"`
	MaxResults        *int              `json:"max_results"`
	MaxTokens         *int              `json:"max_tokens"`
	MaxTokensPerPage  *int              `json:"max_tokens_per_page"`
	UserLocation      *agentLocation    `json:"user_location"`
	MaxURLs           *int              `json:"max_urls"`
	TotalBudgetTokens *int              `json:"total_budget_tokens"`
	ServerLabel       string            `json:"server_label"`
	ServerURL         string            `json:"server_url"`
	Authorization     string            `json:"authorization"`
	Headers           map[string]string `json:"headers"`
	AllowedTools      []string          `json:"allowed_tools"`
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	Parameters        json.RawMessage   `json:"parameters"`
	Strict            *bool             `json:"strict"`
}

type agentFilters struct {
	SearchDomainFilter      []string `json:"search_domain_filter"`
	SearchRecencyFilter     string   `json:"search_recency_filter"`
	SearchAfterDateFilter   string   `json:"search_after_date_filter"`
	SearchBeforeDateFilter  string   `json:"search_before_date_filter"`
	LastUpdatedAfterFilter  string   `json:"last_updated_after_filter"`
	LastUpdatedBeforeFilter string   `json:"last_updated_before_filter"`
}

type agentLocation struct {
	Country   string   `json:"country"`
	Region    string   `json:"region"`
	City      string   `json:"city"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

// agentInputItem is the union of the input item shapes.
type agentInputItem struct {
	Type             string          `json:"type"`
	ID               string          `json:"id"`
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	CallID           string          `json:"call_id"`
	Output           json.RawMessage `json:"output"`
	Name             string          `json:"name"`
	Arguments        string          `json:"arguments"`
	Status           string          `json:"status"`
	ThoughtSignature string          `json:"thought_signature"`
}

type agentInputPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL string `json:"image_url"`
}

type agentToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// Limits of the Agent API request.
const (
	// MaxAgentModels is the most entries of a request's models list.
	MaxAgentModels = 5
	// MaxSearchDomains is the most entries of a web_search tool's
	// search_domain_filter.
	MaxSearchDomains = 20
	// MinOutputTokens is the floor the API applies to max_output_tokens.
	MinOutputTokens = 16
)

// agentCall is a parsed, valid Agent API request.
type agentCall struct {
	fp    [16]byte
	input string // the text the answer is about
	// model is the model that serves the run; shown is what the response
	// says before the run ends (the preset's name with a preset).
	model, shown, preset string
	search               bool
	maxResults           int
	fastSearch           bool
	maxOutput            int64 // 0: no limit
	stream, background   bool
	includeUsage         bool
	store                bool
	schema               json.RawMessage // response_format's JSON Schema

	// echoes
	instructions       *string
	maxOutputTokens    *int64
	maxToolCalls       *int64
	reasoning          *pplx.Reasoning
	temperature, topP  float64
	parallelToolCalls  bool
	metadata           map[string]string
	previousResponseID *string
	tools              []json.RawMessage
}

// agentBad is a 400 answer to an Agent API request.
type agentBad struct {
	typ, msg, param string
}

func invalid(format string, args ...any) *agentBad {
	return &agentBad{typ: "invalid_request", msg: "validation failed: " + fmt.Sprintf(format, args...)}
}

// strictDecode decodes b into v rejecting unknown fields and trailing data.
func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("invalid character after top-level value")
	}
	return nil
}

// decodeBad turns a strict decoding error into the API's 400.
func decodeBad(err error) *agentBad {
	msg := err.Error()
	bad := &agentBad{typ: "invalid_request", msg: "invalid request body: " + msg}
	if q, ok := strings.CutPrefix(msg, `json: unknown field `); ok {
		if name, err := strconv.Unquote(q); err == nil {
			bad.param = name
		}
	}
	return bad
}

// Presets and the models they resolve to (Perplexity's presets page), and the old
// names the API still accepts.
var (
	presetModels = map[string]string{
		"fast":   "openai/gpt-6-luna",
		"low":    "openai/gpt-6-luna",
		"medium": "openai/gpt-6-luna",
		"high":   "openai/gpt-6-sol",
		"xhigh":  "anthropic/claude-opus-5-5",
	}
	presetAliases = map[string]string{
		"fast-search":            "fast",
		"pro-search":             "low",
		"deep-research":          "medium",
		"advanced-deep-research": "high",
	}
)

// AgentPresetModel returns the canonical name of a preset (an old name
// such as "pro-search" maps to its new one) and the model a run with
// that preset is served by; ok is false for an unknown preset.
func AgentPresetModel(preset string) (canonical, model string, ok bool) {
	if p, alias := presetAliases[preset]; alias {
		preset = p
	}
	model, ok = presetModels[preset]
	if !ok {
		return "", "", false
	}
	return preset, model, true
}

var (
	recencies     = []string{"hour", "day", "week", "month", "year"}
	efforts       = []string{"minimal", "low", "medium", "high", "xhigh", "max"}
	contextSizes  = []string{"low", "medium", "high"}
	toolTypes     = []string{"web_search", "fetch_url", "people_search", "finance_search", "sandbox", "mcp", "function"}
	reservedNames = []string{"web_search", "search_web", "fetch_url", "people_search", "search_people", "finance_search", "sandbox"}
	roles         = []string{"user", "assistant", "system", "developer"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// parseAgent decodes and validates a POST /v1/agent body.
func parseAgent(body []byte) (*agentCall, *agentBad) {
	var b agentBody
	if err := strictDecode(body, &b); err != nil {
		return nil, decodeBad(err)
	}
	c := &agentCall{
		stream: b.Stream, background: b.Background, includeUsage: true, store: true,
		instructions: b.Instructions, maxOutputTokens: b.MaxOutputTokens, maxToolCalls: b.MaxToolCalls,
		temperature: 1, topP: 1, parallelToolCalls: true, metadata: b.Metadata,
		previousResponseID: b.PreviousResponseID,
	}
	text, bad := inputText(b.Input)
	if bad != nil {
		return nil, bad
	}
	c.input = text

	// Model selection: models takes precedence over model; a preset
	// brings its own model and web search.
	if len(b.Models) > MaxAgentModels {
		return nil, invalid("models accepts at most %d entries, got %d", MaxAgentModels, len(b.Models))
	}
	explicit := b.Models
	if len(explicit) == 0 && b.Model != nil {
		explicit = []string{*b.Model}
	}
	for _, m := range explicit {
		if _, ok := agentPrices[m]; !ok {
			return nil, &agentBad{typ: "invalid_model", msg: fmt.Sprintf("validation failed: model %q is not supported", clip(m))}
		}
	}
	if b.Preset != nil {
		p, m, ok := AgentPresetModel(*b.Preset)
		if !ok {
			return nil, &agentBad{typ: "invalid_request", msg: fmt.Sprintf("validation failed: preset %q is not supported", clip(*b.Preset))}
		}
		c.preset, c.model, c.shown, c.search = p, m, *b.Preset, true
		c.fastSearch = p == "fast"
	}
	if len(explicit) > 0 {
		c.model = explicit[0]
		if c.preset == "" {
			c.shown = c.model
		}
	}
	if c.model == "" {
		return nil, invalid("one of model, models or preset is required")
	}
	for _, m := range explicit {
		if strings.HasPrefix(m, "anthropic/") && b.MaxOutputTokens == nil {
			return nil, invalid("max_output_tokens is required when using Anthropic models")
		}
	}

	if v := b.MaxOutputTokens; v != nil {
		if *v < 1 {
			return nil, invalid("max output tokens must be at least 1")
		}
		c.maxOutput = max(*v, MinOutputTokens)
	}
	if v := b.MaxSteps; v != nil && *v < 1 {
		return nil, invalid("max steps must be at least 1")
	}
	if v := b.MaxToolCalls; v != nil && *v < 0 {
		return nil, invalid("max tool calls must not be negative")
	}
	if r := b.Reasoning; r != nil {
		if !oneOf(r.Effort, efforts) {
			return nil, invalid("reasoning effort must be one of: %s", strings.Join(efforts, " "))
		}
		c.reasoning = &pplx.Reasoning{Effort: r.Effort}
	}
	if v := b.Temperature; v != nil {
		if *v < 0 || *v > 2 {
			return nil, invalid("temperature must be between 0 and 2")
		}
		c.temperature = *v
	}
	if v := b.TopP; v != nil {
		if *v < 0 || *v > 1 {
			return nil, invalid("top_p must be between 0 and 1")
		}
		c.topP = *v
	}
	if v := b.ParallelToolCalls; v != nil {
		c.parallelToolCalls = *v
	}
	if len(b.Metadata) > 16 {
		return nil, invalid("metadata accepts at most 16 keys")
	}
	if v := b.Truncation; v != nil && *v != "auto" && *v != "disabled" {
		return nil, invalid("truncation must be one of: auto disabled")
	}
	if v := b.Store; v != nil {
		c.store = *v
	}
	if o := b.StreamOptions; o != nil && o.IncludeUsage != nil {
		c.includeUsage = *o.IncludeUsage
	}
	if v := b.PreviousResponseID; v != nil && !validResponseID(*v) {
		return nil, &agentBad{typ: "invalid_request", msg: "invalid request"}
	}
	if bad := checkResponseFormat(b.ResponseFormat); bad != nil {
		return nil, bad
	}
	if rf := b.ResponseFormat; rf != nil && rf.Type == "json_schema" {
		c.schema = rf.JSONSchema.Schema
	}

	// Tools: an explicit web_search turns search on; with a preset, an
	// explicit list without web_search ran no search in the capture of
	// a real capture, so it replaces the preset's tools here.
	explicitSearch := false
	for i, t := range b.Tools {
		if bad := checkTool(i, &t); bad != nil {
			return nil, bad
		}
		if t.Type == "web_search" {
			explicitSearch = true
			if t.MaxResults != nil {
				c.maxResults = *t.MaxResults
			}
		}
		raw, _ := json.Marshal(toolEcho(t))
		c.tools = append(c.tools, raw)
	}
	if len(b.Tools) > 0 {
		c.search = explicitSearch
	}
	if c.preset != "" && len(b.Tools) == 0 {
		c.tools = append(c.tools, json.RawMessage(`{"type":"web_search"}`))
	}
	choice, bad := checkToolChoice(b.ToolChoice)
	if bad != nil {
		return nil, bad
	}
	if choice == "none" || (b.MaxToolCalls != nil && *b.MaxToolCalls == 0) {
		c.search = false
	}
	if !c.search {
		c.maxResults = 0
	}
	c.fp = agentKey(&b)
	return c, nil
}

// toolEcho is a tool as the response echoes it: only the fields set.
func toolEcho(t agentToolBody) map[string]any {
	out := map[string]any{"type": t.Type}
	if t.Filters != nil {
		out["filters"] = t.Filters
	}
	if t.SearchContextSize != "" {
		out["search_context_size"] = t.SearchContextSize
	}
	if t.MaxResults != nil {
		out["max_results"] = *t.MaxResults
	}
	if t.MaxURLs != nil {
		out["max_urls"] = *t.MaxURLs
	}
	if t.Name != "" {
		out["name"] = t.Name
	}
	return out
}

// inputText validates input and returns the text the answer is about: the
// string itself, or the text of the last user message of an item array.
func inputText(raw json.RawMessage) (string, *agentBad) {
	raw = bytes.TrimSpace(raw)
	emptyArray := invalid("input array cannot be empty")
	if len(raw) == 0 {
		return "", emptyArray
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", decodeBad(err)
		}
		if strings.TrimSpace(s) == "" {
			return "", invalid("input cannot be empty")
		}
		return s, nil
	case '[':
	default:
		return "", emptyArray
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return "", decodeBad(err)
	}
	if len(items) == 0 {
		return "", emptyArray
	}
	last := ""
	for i, r := range items {
		var it agentInputItem
		if err := strictDecode(r, &it); err != nil {
			return "", decodeBad(err)
		}
		switch it.Type {
		case "", "message":
			if !oneOf(it.Role, roles) {
				return "", invalid("input[%d]: role must be one of: %s", i, strings.Join(roles, " "))
			}
			text, bad := contentText(i, it.Content)
			if bad != nil {
				return "", bad
			}
			if it.Role == "user" {
				last = text
			}
		case "function_call_output":
			if it.CallID == "" {
				return "", invalid("input[%d]: call_id is required", i)
			}
		case "function_call":
			if it.CallID == "" || it.Name == "" {
				return "", invalid("input[%d]: call_id and name are required", i)
			}
		default:
			return "", invalid("input[%d]: unknown item type %q", i, clip(it.Type))
		}
	}
	if strings.TrimSpace(last) == "" {
		return "", invalid("input cannot be empty")
	}
	return last, nil
}

// contentText returns the text of a message's content: a string, or the
// input_text parts joined by newlines.
func contentText(i int, raw json.RawMessage) (string, *agentBad) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", decodeBad(err)
		}
		return s, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return "", invalid("input[%d]: content must be a string or an array of parts", i)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", decodeBad(err)
	}
	var texts []string
	for _, r := range parts {
		var p agentInputPart
		if err := strictDecode(r, &p); err != nil {
			return "", decodeBad(err)
		}
		switch p.Type {
		case "input_text":
			texts = append(texts, p.Text)
		case "input_image":
			if p.ImageURL == "" {
				return "", invalid("input[%d]: input_image needs image_url", i)
			}
		default:
			return "", invalid("input[%d]: unknown content part type %q", i, clip(p.Type))
		}
	}
	return strings.Join(texts, "\n"), nil
}

func checkTool(i int, t *agentToolBody) *agentBad {
	if !oneOf(t.Type, toolTypes) {
		return invalid("tools[%d]: unknown tool type %q", i, clip(t.Type))
	}
	if f := t.Filters; f != nil {
		if len(f.SearchDomainFilter) > MaxSearchDomains {
			return invalid("tools[%d]: search domain filter accepts at most %d domains", i, MaxSearchDomains)
		}
		if f.SearchRecencyFilter != "" {
			if !oneOf(f.SearchRecencyFilter, recencies) {
				return invalid("tools[%d]: search recency filter must be one of: %s", i, strings.Join(recencies, " "))
			}
			if f.SearchAfterDateFilter != "" || f.SearchBeforeDateFilter != "" {
				return invalid("tools[%d]: search recency filter cannot be combined with search date filters", i)
			}
		}
	}
	if t.SearchContextSize != "" && !oneOf(t.SearchContextSize, contextSizes) {
		return invalid("tools[%d]: search context size must be one of: %s", i, strings.Join(contextSizes, " "))
	}
	if v := t.MaxResults; v != nil && (*v < 1 || *v > 50) {
		return invalid("tools[%d]: max results must be between 1 and 50", i)
	}
	if v := t.MaxURLs; v != nil && (*v < 1 || *v > 10) {
		return invalid("tools[%d]: max urls must be between 1 and 10", i)
	}
	if t.Type == "function" {
		if t.Name == "" {
			return invalid("tools[%d]: function name is required", i)
		}
		if oneOf(t.Name, reservedNames) {
			return invalid("tools[%d]: function name %q is reserved", i, t.Name)
		}
	}
	if t.Type == "mcp" && !strings.HasPrefix(t.ServerURL, "https://") {
		return invalid("tools[%d]: mcp server_url must be an https URL", i)
	}
	return nil
}

// checkToolChoice validates tool_choice and returns its string form ("" for
// an object or none given).
func checkToolChoice(raw json.RawMessage) (string, *agentBad) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", decodeBad(err)
		}
		if !oneOf(s, []string{"none", "auto", "required"}) {
			return "", invalid("tool_choice must be one of: none auto required")
		}
		return s, nil
	}
	var tc agentToolChoice
	if err := strictDecode(raw, &tc); err != nil {
		return "", decodeBad(err)
	}
	if tc.Type == "" && tc.Name == "" {
		return "", invalid("tool_choice needs a type or a name")
	}
	return "", nil
}

func checkResponseFormat(rf *agentResponseFormat) *agentBad {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case "text":
		return nil
	case "json_schema":
	default:
		return invalid(`response_format.type must be "json_schema"`)
	}
	if rf.JSONSchema == nil {
		return invalid(`response_format.json_schema is required when type is "json_schema"`)
	}
	var root struct {
		Type json.RawMessage `json:"type"`
	}
	if json.Unmarshal(rf.JSONSchema.Schema, &root) != nil || string(bytes.TrimSpace(root.Type)) != `"object"` {
		return &agentBad{typ: "invalid_parameter",
			msg: "json_schema.schema must have a root type of 'object' (got a schema whose root is not an object)"}
	}
	return nil
}

// validResponseID reports whether id has the shape resp_<uuid>.
func validResponseID(id string) bool {
	u, ok := strings.CutPrefix(id, "resp_")
	if !ok || len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// agentKey is the fingerprint of an agent request: its model selection,
// instructions and input. Other fields do not count, so the retries of
// one row share it.
func agentKey(b *agentBody) [16]byte {
	h := sha256.New()
	writeField(h, "agent")
	if b.Model != nil {
		writeField(h, "model="+*b.Model)
	}
	for _, m := range b.Models {
		writeField(h, "models="+m)
	}
	if b.Preset != nil {
		writeField(h, "preset="+*b.Preset)
	}
	if b.Instructions != nil {
		writeField(h, "instructions="+*b.Instructions)
	}
	var in bytes.Buffer
	if json.Compact(&in, b.Input) != nil {
		in.Write(b.Input)
	}
	writeField(h, "input="+in.String())
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

// AgentFingerprint returns the fingerprint the server files an Agent API
// request under for [Server.AgentRuns]: "agent:<32 hex digits>" from the
// request's model, models, preset, instructions and input. Other fields
// do not count, so the retries of one row share a fingerprint. body is a
// pplx.AgentRequest (or a pointer to one), raw JSON as []byte,
// json.RawMessage or string, or any value that marshals to the request's
// JSON. It returns "" for a body without input.
func AgentFingerprint(body any) string {
	raw, ok := bodyJSON(body)
	if !ok {
		return ""
	}
	var b agentBody
	if json.Unmarshal(raw, &b) != nil || len(bytes.TrimSpace(b.Input)) == 0 {
		return ""
	}
	k := agentKey(&b)
	return "agent:" + hex.EncodeToString(k[:])
}

func parseAgentFingerprint(fp string) ([16]byte, bool) {
	var k [16]byte
	digits, ok := strings.CutPrefix(fp, "agent:")
	if !ok || hex.DecodedLen(len(digits)) != len(k) {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(digits)); err != nil {
		return k, false
	}
	return k, true
}
