package pplx

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Paths of the Agent API, relative to the base URL. ResponsesPath is an
// alias of AgentPath that the API serves identically. A background run is
// polled at AgentPath+"/"+id and cancelled at AgentPath+"/"+id+"/cancel".
const (
	AgentPath     = "/v1/agent"
	ResponsesPath = "/v1/responses"
)

// Statuses of an Agent API response. StatusCompleted, StatusIncomplete,
// StatusFailed and StatusCancelled are terminal; a background run starts
// StatusQueued and goes through StatusInProgress.
const (
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusIncomplete = "incomplete"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// TerminalStatus reports whether an Agent API run with this status has
// ended.
func TerminalStatus(status string) bool {
	switch status {
	case StatusCompleted, StatusIncomplete, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// AgentRequest is the body of POST /v1/agent as this tool sends it. The
// API rejects unknown fields (HTTP 400), so every field is omitted when
// unset: exactly one of Model, Models and Preset should be set.
type AgentRequest struct {
	Model  string   `json:"model,omitempty"`
	Models []string `json:"models,omitempty"`
	Preset string   `json:"preset,omitempty"`
	// Input is the user input: this tool sends a plain string.
	Input string `json:"input"`
	// Instructions is the system prompt; with a preset it replaces the
	// preset's.
	Instructions    string       `json:"instructions,omitempty"`
	Tools           []AgentTool  `json:"tools,omitempty"`
	ToolChoice      *ToolChoice  `json:"tool_choice,omitempty"`
	MaxOutputTokens int          `json:"max_output_tokens,omitempty"`
	Reasoning       *Reasoning   `json:"reasoning,omitempty"`
	Temperature     *float64     `json:"temperature,omitempty"`
	ResponseFormat  *ResponseFmt `json:"response_format,omitempty"`
	Stream          bool         `json:"stream,omitempty"`
	Background      bool         `json:"background,omitempty"`
}

// AgentTool is one entry of an [AgentRequest]'s tools: "web_search" (with
// Filters, SearchContextSize and MaxResults) or "fetch_url" (with
// MaxURLs).
type AgentTool struct {
	Type              string         `json:"type"`
	Filters           *SearchFilters `json:"filters,omitempty"`
	SearchContextSize string         `json:"search_context_size,omitempty"`
	MaxResults        int            `json:"max_results,omitempty"`
	MaxURLs           int            `json:"max_urls,omitempty"`
}

// The tool types this tool sends.
const (
	ToolWebSearch = "web_search"
	ToolFetchURL  = "fetch_url"
)

// SearchFilters are the filters of a web_search tool. Dates are
// MM/DD/YYYY; the recency filter cannot be combined with the date filters;
// domains are plain host names, a "-" prefix excluding one.
type SearchFilters struct {
	SearchDomainFilter     []string `json:"search_domain_filter,omitempty"`
	SearchRecencyFilter    string   `json:"search_recency_filter,omitempty"`
	SearchAfterDateFilter  string   `json:"search_after_date_filter,omitempty"`
	SearchBeforeDateFilter string   `json:"search_before_date_filter,omitempty"`
}

// ToolChoice forces a tool: {"type":"web_search"}.
type ToolChoice struct {
	Type string `json:"type"`
}

// Reasoning is the reasoning configuration of an [AgentRequest].
type Reasoning struct {
	Effort string `json:"effort"`
}

// ResponseFmt is the response_format of an [AgentRequest]:
// {"type":"json_schema","json_schema":{"name":...,"schema":{...}}}.
type ResponseFmt struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema names a JSON Schema in a [ResponseFmt].
type JSONSchema struct {
	Name   string          `json:"name,omitempty"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict,omitempty"`
}

// AgentResponse is an Agent API response object: the body of POST
// /v1/agent and GET /v1/agent/{id}, and the "response" of stream events.
// Every field may be null on the wire; failures, cancellations and
// truncations arrive as HTTP 200 with Status saying so.
type AgentResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object,omitempty"`
	CreatedAt         int64              `json:"created_at,omitempty"`
	CompletedAt       *int64             `json:"completed_at,omitempty"`
	Status            string             `json:"status"`
	Error             *AgentError        `json:"error,omitempty"`
	IncompleteDetails *IncompleteDetails `json:"incomplete_details,omitempty"`
	// Model is the model that served a completed run; on queued and
	// in-progress snapshots it may be the preset's name.
	Model      string       `json:"model,omitempty"`
	Background bool         `json:"background,omitempty"`
	Output     []OutputItem `json:"output"`
	Usage      *AgentUsage  `json:"usage,omitempty"`
}

// AgentError is the error of a failed or cancelled run, or of a stream's
// error event. Code is a string in run objects and a number in HTTP error
// envelopes; it is kept as text.
type AgentError struct {
	Code    FlexString `json:"code,omitempty"`
	Message string     `json:"message"`
	Type    string     `json:"type,omitempty"`
}

// IncompleteDetails says why a run is incomplete, such as
// "max_output_tokens".
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// Output item types this package reads; any other type is kept raw and
// ignored.
const (
	ItemMessage       = "message"
	ItemSearchResults = "search_results"
)

// OutputItem is one typed item of an [AgentResponse]'s output. Message
// items fill ID, Role, Status and Content; search_results items fill
// Queries and Results. Items of any other type keep only Type and Raw, so
// an unknown shape never fails decoding.
type OutputItem struct {
	Type    string              `json:"type"`
	ID      string              `json:"id,omitempty"`
	Role    string              `json:"role,omitempty"`
	Status  string              `json:"status,omitempty"`
	Content []ContentPart       `json:"content,omitempty"`
	Queries []string            `json:"queries,omitempty"`
	Results []AgentSearchResult `json:"results,omitempty"`
	// Raw is the item as received (set by UnmarshalJSON).
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON implements [json.Unmarshaler]. It decodes message and
// search_results items in full (null fields read as empty) and keeps
// other items raw.
func (o *OutputItem) UnmarshalJSON(b []byte) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	raw := append(json.RawMessage(nil), b...)
	switch head.Type {
	case ItemMessage, ItemSearchResults:
		type plain OutputItem // no UnmarshalJSON
		var p plain
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		*o = OutputItem(p)
	default:
		*o = OutputItem{Type: head.Type}
	}
	o.Raw = raw
	return nil
}

// MarshalJSON implements [json.Marshaler]: an item decoded from the wire
// is written back as received.
func (o OutputItem) MarshalJSON() ([]byte, error) {
	if len(o.Raw) > 0 {
		return o.Raw, nil
	}
	type plain OutputItem
	return json.Marshal(plain(o))
}

// ContentPart is one part of a message item's content; the answer text is
// in parts of type "output_text".
type ContentPart struct {
	Type        string            `json:"type"`
	Text        string            `json:"text"`
	Annotations []json.RawMessage `json:"annotations,omitempty"`
}

// AgentSearchResult is one web result of a search_results item. ID is the
// number the answer's [n] markers point at; ids continue across the
// search_results items of one run.
type AgentSearchResult struct {
	ID          FlexInt `json:"id"`
	URL         string  `json:"url"`
	Title       string  `json:"title"`
	Snippet     string  `json:"snippet,omitempty"`
	Date        string  `json:"date,omitempty"`
	LastUpdated string  `json:"last_updated,omitempty"`
	Source      string  `json:"source,omitempty"`
}

// AgentUsage is the usage of a run. It is null on queued, in-progress and
// cancelled runs.
type AgentUsage struct {
	InputTokens      int64                     `json:"input_tokens"`
	OutputTokens     int64                     `json:"output_tokens"`
	TotalTokens      int64                     `json:"total_tokens"`
	ToolCallsDetails map[string]ToolCallDetail `json:"tool_calls_details,omitempty"`
	Cost             *AgentCost                `json:"cost,omitempty"`
}

// ToolCallDetail is the billing of one tool (by its billing name, such as
// "search_web") in a run.
type ToolCallDetail struct {
	CostUSD    float64 `json:"cost_usd"`
	Invocation int64   `json:"invocation"`
}

// AgentCost is the billed cost of a run in USD; TotalCost is the amount
// billed.
type AgentCost struct {
	Currency             string             `json:"currency,omitempty"`
	InputCost            float64            `json:"input_cost"`
	OutputCost           float64            `json:"output_cost"`
	CacheCreationCost    float64            `json:"cache_creation_cost,omitempty"`
	CacheReadCost        float64            `json:"cache_read_cost,omitempty"`
	ToolCallsCost        float64            `json:"tool_calls_cost,omitempty"`
	ToolCallsCostDetails map[string]float64 `json:"tool_calls_cost_details,omitempty"`
	TotalCost            float64            `json:"total_cost"`
}

// AgentEvent is one server-sent event of a streamed Agent API response.
// Which fields are set depends on Type: "response.created",
// "response.in_progress" and the terminal "response.completed",
// "response.incomplete" (and sometimes "response.failed" and
// "response.cancelled") carry Response; "response.output_item.added" and
// ".done" carry OutputIndex and Item; "response.output_text.delta" carries
// ItemID, OutputIndex, ContentIndex and Delta; "response.output_text.done"
// carries the whole Text; "response.failed" and "error" may carry Error,
// and a bare error event may carry only Message and Code.
type AgentEvent struct {
	Type           string         `json:"type"`
	SequenceNumber int64          `json:"sequence_number"`
	Response       *AgentResponse `json:"response,omitempty"`
	OutputIndex    int            `json:"output_index"`
	ContentIndex   int            `json:"content_index"`
	ItemID         string         `json:"item_id,omitempty"`
	Item           *OutputItem    `json:"item,omitempty"`
	Delta          string         `json:"delta,omitempty"`
	Text           string         `json:"text,omitempty"`
	Error          *AgentError    `json:"error,omitempty"`
	Message        string         `json:"message,omitempty"`
	Code           FlexString     `json:"code,omitempty"`
}

// Stream event types. The terminal ones end a stream: exactly one arrives.
const (
	EventCreated         = "response.created"
	EventInProgress      = "response.in_progress"
	EventOutputItemAdded = "response.output_item.added"
	EventOutputItemDone  = "response.output_item.done"
	EventOutputTextDelta = "response.output_text.delta"
	EventOutputTextDone  = "response.output_text.done"
	EventCompleted       = "response.completed"
	EventIncomplete      = "response.incomplete"
	EventFailed          = "response.failed"
	EventCancelled       = "response.cancelled"
	EventError           = "error"
)

// TerminalEvent reports whether a stream event of this type ends the
// stream.
func TerminalEvent(typ string) bool {
	switch typ {
	case EventCompleted, EventIncomplete, EventFailed, EventCancelled, EventError:
		return true
	}
	return false
}

// CancelResponse is the body of POST /v1/agent/{id}/cancel.
type CancelResponse struct {
	ResponseID string `json:"response_id"`
	Status     string `json:"status"`
}

// FlexString is a string that unmarshals from a JSON string, number or
// null (as ""), for fields such as an error code that the API sends in
// either form.
type FlexString string

// UnmarshalJSON implements [json.Unmarshaler].
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*s = FlexString(n.String())
	}
	return nil
}

// Int returns the code as an integer, 0 if it is not one.
func (s FlexString) Int() int {
	n, _ := strconv.Atoi(string(s))
	return n
}
