package sink

import "encoding/json"

// Status values of a [Row].
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Row is one output row: the answer to one input row, or the reason there is
// none. Its field names are part of the tool's contract (JSONL keys and
// Parquet columns alike).
type Row struct {
	ID         string          `json:"id"`
	Row        int64           `json:"row"`
	Status     string          `json:"status"`
	Error      string          `json:"error"`
	Input      json.RawMessage `json:"input"`
	HTTPStatus int             `json:"http_status"`
	Attempts   int             `json:"attempts"`
	LatencyMS  int64           `json:"latency_ms"`
	RequestID  string          `json:"request_id"`

	// Search mode.
	Results []SearchResult `json:"results"`

	// Agent and chat modes.
	Content       string   `json:"content"`
	Citations     []string `json:"citations"`
	SearchResults []Source `json:"search_results"`
	Usage         *Usage   `json:"usage"`
	// Model is the model that served an agent answer.
	Model string `json:"model"`
	// Data is the structured answer, validated against the job's JSON
	// Schema: a JSON object, or nil without a schema.
	Data json.RawMessage `json:"data"`
}

// SearchResult is one result of the Search API.
type SearchResult struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Snippet     string `json:"snippet"`
	Date        string `json:"date"`
	LastUpdated string `json:"last_updated"`
}

// Source is one search result an agent or chat answer drew on. ID is the
// number that the answer's [n] markers point at (0 when the API gave none).
type Source struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Date    string `json:"date"`
	Snippet string `json:"snippet"`
}

// Usage is the token usage and cost of one agent or chat answer. CostUSD is nil when
// the API did not report a cost.
type Usage struct {
	PromptTokens     int64    `json:"prompt_tokens"`
	CompletionTokens int64    `json:"completion_tokens"`
	TotalTokens      int64    `json:"total_tokens"`
	CostUSD          *float64 `json:"cost_usd"`
}
