package pplx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Paths of the endpoints this package calls, relative to the base URL.
const (
	SearchPath = "/search"
	ChatPath   = "/chat/completions"
)

// Query is the query of a Search request: one string, or up to five.
// It marshals as a JSON string when it holds exactly one query and as an
// array otherwise, and unmarshals from either form.
type Query []string

// MarshalJSON implements [json.Marshaler].
func (q Query) MarshalJSON() ([]byte, error) {
	if len(q) == 1 {
		return json.Marshal(q[0])
	}
	return json.Marshal([]string(q))
}

// UnmarshalJSON implements [json.Unmarshaler].
func (q *Query) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Query{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("query: want a string or an array of strings: %w", err)
	}
	*q = l
	return nil
}

// SearchRequest is the body of POST /search.
type SearchRequest struct {
	Query                   Query    `json:"query"`
	MaxResults              int      `json:"max_results,omitempty"`
	MaxTokens               int      `json:"max_tokens,omitempty"`
	MaxTokensPerPage        int      `json:"max_tokens_per_page,omitempty"`
	SearchContextSize       string   `json:"search_context_size,omitempty"`
	SearchType              string   `json:"search_type,omitempty"`
	SearchMode              string   `json:"search_mode,omitempty"`
	SearchDomainFilter      []string `json:"search_domain_filter,omitempty"`
	SearchLanguageFilter    []string `json:"search_language_filter,omitempty"`
	Country                 string   `json:"country,omitempty"`
	SearchRecencyFilter     string   `json:"search_recency_filter,omitempty"`
	SearchAfterDateFilter   string   `json:"search_after_date_filter,omitempty"`
	SearchBeforeDateFilter  string   `json:"search_before_date_filter,omitempty"`
	LastUpdatedAfterFilter  string   `json:"last_updated_after_filter,omitempty"`
	LastUpdatedBeforeFilter string   `json:"last_updated_before_filter,omitempty"`
}

// SearchResult is one ranked web result of the Search API.
type SearchResult struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Snippet     string `json:"snippet"`
	Date        string `json:"date,omitempty"`
	LastUpdated string `json:"last_updated,omitempty"`
}

// SearchResponse is the body of a successful POST /search.
type SearchResponse struct {
	ID         string        `json:"id"`
	Results    SearchResults `json:"results"`
	ServerTime string        `json:"server_time,omitempty"`
}

// SearchResults is the result list of a search. The API documents both a
// flat list and, for multi-query requests, one list per query; UnmarshalJSON
// accepts both and flattens the nested form in query order.
type SearchResults []SearchResult

// UnmarshalJSON implements [json.Unmarshaler].
func (r *SearchResults) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*r = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	out := make([]SearchResult, 0, len(raw))
	for _, item := range raw {
		item = bytes.TrimSpace(item)
		if len(item) > 0 && item[0] == '[' {
			var inner []SearchResult
			if err := json.Unmarshal(item, &inner); err != nil {
				return fmt.Errorf("results: %w", err)
			}
			out = append(out, inner...)
			continue
		}
		var one SearchResult
		if err := json.Unmarshal(item, &one); err != nil {
			return fmt.Errorf("results: %w", err)
		}
		out = append(out, one)
	}
	*r = out
	return nil
}

// Message is one chat message. Content is plain text; multi-part content is
// not used by this tool.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// WebSearchOptions is the web_search_options object of a chat request.
type WebSearchOptions struct {
	SearchContextSize string `json:"search_context_size,omitempty"`
	SearchType        string `json:"search_type,omitempty"`
}

// ChatRequest is the body of POST /chat/completions.
type ChatRequest struct {
	Model                  string            `json:"model"`
	Messages               []Message         `json:"messages"`
	Stream                 bool              `json:"stream,omitempty"`
	MaxTokens              int               `json:"max_tokens,omitempty"`
	Temperature            *float64          `json:"temperature,omitempty"`
	TopP                   *float64          `json:"top_p,omitempty"`
	ResponseFormat         json.RawMessage   `json:"response_format,omitempty"`
	SearchMode             string            `json:"search_mode,omitempty"`
	SearchDomainFilter     []string          `json:"search_domain_filter,omitempty"`
	SearchRecencyFilter    string            `json:"search_recency_filter,omitempty"`
	SearchAfterDateFilter  string            `json:"search_after_date_filter,omitempty"`
	SearchBeforeDateFilter string            `json:"search_before_date_filter,omitempty"`
	WebSearchOptions       *WebSearchOptions `json:"web_search_options,omitempty"`
}

// Choice is one completion choice. In streamed chunks the new text is in
// Delta; in a plain response it is in Message.
type Choice struct {
	Index        int     `json:"index"`
	FinishReason string  `json:"finish_reason,omitempty"`
	Message      Message `json:"message"`
	Delta        Message `json:"delta"`
}

// Cost is the billed amount of one chat request, in USD.
type Cost struct {
	InputTokensCost     float64 `json:"input_tokens_cost"`
	OutputTokensCost    float64 `json:"output_tokens_cost"`
	RequestCost         float64 `json:"request_cost"`
	TotalCost           float64 `json:"total_cost"`
	ReasoningTokensCost float64 `json:"reasoning_tokens_cost,omitempty"`
	CitationTokensCost  float64 `json:"citation_tokens_cost,omitempty"`
	SearchQueriesCost   float64 `json:"search_queries_cost,omitempty"`
}

// Usage is the token usage of one chat request. Cost is nil when the API
// did not report it.
type Usage struct {
	PromptTokens      int64  `json:"prompt_tokens"`
	CompletionTokens  int64  `json:"completion_tokens"`
	TotalTokens       int64  `json:"total_tokens"`
	SearchContextSize string `json:"search_context_size,omitempty"`
	CitationTokens    int64  `json:"citation_tokens,omitempty"`
	NumSearchQueries  int64  `json:"num_search_queries,omitempty"`
	ReasoningTokens   int64  `json:"reasoning_tokens,omitempty"`
	Cost              *Cost  `json:"cost,omitempty"`
}

// ChatSearchResult is one source the chat model used.
type ChatSearchResult struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Date        string `json:"date,omitempty"`
	LastUpdated string `json:"last_updated,omitempty"`
	Snippet     string `json:"snippet"`
	Source      string `json:"source,omitempty"`
}

// ChatResponse is the body of a chat completion, and the shape of each
// streamed chunk (with Object "chat.completion.chunk" or
// "chat.completion.done").
type ChatResponse struct {
	ID            string             `json:"id"`
	Model         string             `json:"model"`
	Created       int64              `json:"created"`
	Object        string             `json:"object"`
	Choices       []Choice           `json:"choices"`
	Usage         *Usage             `json:"usage,omitempty"`
	Citations     []string           `json:"citations,omitempty"`
	SearchResults []ChatSearchResult `json:"search_results,omitempty"`
}

// Content returns the text of the first choice: its message content, or
// for a streamed chunk its delta.
func (r *ChatResponse) Content() string {
	if len(r.Choices) == 0 {
		return ""
	}
	if c := r.Choices[0].Message.Content; c != "" {
		return c
	}
	return r.Choices[0].Delta.Content
}

// ErrorBody is the API's JSON error envelope:
// {"error":{"message":..., "type":..., "code":...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of [ErrorBody]. Code repeats the HTTP
// status; it is decoded leniently because some API versions send it as a
// string.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    FlexInt `json:"code"`
	Param   string  `json:"param,omitempty"`
}

// FlexInt is an integer that unmarshals from a JSON number or a string
// holding one. An unparsable string leaves it zero.
type FlexInt int

// UnmarshalJSON implements [json.Unmarshaler].
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, _ := strconv.Atoi(s)
		*n = FlexInt(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*n = FlexInt(v)
	return nil
}
