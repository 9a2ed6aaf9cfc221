package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// Search limits of the API.
const (
	// DefaultMaxResults is the number of results per query when a search
	// request has no max_results.
	DefaultMaxResults = 10
	// MaxMaxResults is the most results per query; larger max_results
	// values are clamped to it, as the real API may do.
	MaxMaxResults = 20
	// MaxQueries is the most queries one search request may carry.
	MaxQueries = 5
)

// vocabulary is read-only: the filler words of the deterministic answers.
var vocabulary = [32]string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
	"quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
	"yankee", "zulu", "amber", "basalt", "cobalt", "dune", "ember", "fjord",
}

// fillerWords returns n vocabulary words chosen by h from offset off on.
func fillerWords(h [32]byte, off, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocabulary[h[(off+i)%len(h)]%byte(len(vocabulary))])
	}
	return b.String()
}

// dates returns the publication and last-updated dates of result i, both
// in 2025, the second not before the first.
func dates(h [32]byte, i int) (date, updated string) {
	d := (int(h[(2*i)%32])<<8 | int(h[(2*i+1)%32])) % 300
	u := d + int(h[(i+17)%32])%60
	base := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	return base.AddDate(0, 0, d).Format(time.DateOnly), base.AddDate(0, 0, u).Format(time.DateOnly)
}

func resultsPerQuery(maxResults int) int {
	switch {
	case maxResults <= 0:
		return DefaultMaxResults
	case maxResults > MaxMaxResults:
		return MaxMaxResults
	}
	return maxResults
}

// SearchResults returns the results the server answers for a search with
// queries q and the given max_results: for each query in order,
// n = maxResults results (DefaultMaxResults when maxResults <= 0, at most
// MaxMaxResults), concatenated into one flat list. Result i (from 1) of
// query x has the title "x - result i", the URL
// "https://sim.invalid/<first 8 hex digits of sha256(x)>/i", a snippet
// naming x, and date and last_updated in 2025 derived from the hash. It is
// a pure function.
func SearchResults(q pplx.Query, maxResults int) []pplx.SearchResult {
	n := resultsPerQuery(maxResults)
	out := make([]pplx.SearchResult, 0, n*len(q))
	for _, query := range q {
		h := sha256.Sum256([]byte(query))
		tag := hex.EncodeToString(h[:4])
		for i := 1; i <= n; i++ {
			date, updated := dates(h, i)
			out = append(out, pplx.SearchResult{
				Title:       fmt.Sprintf("%s - result %d", query, i),
				URL:         fmt.Sprintf("https://sim.invalid/%s/%d", tag, i),
				Snippet:     fmt.Sprintf("Result %d about %s: %s.", i, query, fillerWords(h, 3*i, 6)),
				Date:        date,
				LastUpdated: updated,
			})
		}
	}
	return out
}

// lastUser returns the content of the last message with role "user", or
// "" if there is none.
func lastUser(messages []pplx.Message) string {
	for i := len(messages) - 1; i >= 0; i-- {
		if messages[i].Role == "user" {
			return messages[i].Content
		}
	}
	return ""
}

// ChatSearchResults returns the sources of the server's chat answer: two or
// three results derived from the last user message m (chosen by its hash),
// with the title "m - source i", the URL
// "https://sim.invalid/<first 8 hex digits of sha256(m)>/source-i", a
// snippet naming m, dates in 2025 and source "web". The answer's citations
// are their URLs, in order. It is a pure function.
func ChatSearchResults(messages []pplx.Message) []pplx.ChatSearchResult {
	m := lastUser(messages)
	h := sha256.Sum256([]byte(m))
	tag := hex.EncodeToString(h[:4])
	n := 2 + int(h[0]%2)
	out := make([]pplx.ChatSearchResult, n)
	for i := range out {
		date, updated := dates(h, i+1)
		out[i] = pplx.ChatSearchResult{
			Title:       fmt.Sprintf("%s - source %d", m, i+1),
			URL:         fmt.Sprintf("https://sim.invalid/%s/source-%d", tag, i+1),
			Date:        date,
			LastUpdated: updated,
			Snippet:     fmt.Sprintf("Source %d on %s: %s.", i+1, m, fillerWords(h, 5*i+2, 5)),
			Source:      "web",
		}
	}
	return out
}

// ChatContent returns the text of the server's chat answer for model and
// messages: "Answer from <model> to: <m> [1][2]." (one marker per source of
// [ChatSearchResults]) followed by eight filler words derived from model
// and m, where m is the last user message. For sonar-reasoning-pro the text
// starts with a "<think>...</think>" block, as the real model's does. It is
// a pure function.
func ChatContent(model string, messages []pplx.Message) string {
	m := lastUser(messages)
	hm := sha256.Sum256([]byte(m))
	var b strings.Builder
	if model == "sonar-reasoning-pro" {
		fmt.Fprintf(&b, "<think>\nThe user asks: %s\n</think>\n", m)
	}
	fmt.Fprintf(&b, "Answer from %s to: %s ", model, m)
	for i := range 2 + int(hm[0]%2) {
		fmt.Fprintf(&b, "[%d]", i+1)
	}
	h := sha256.Sum256([]byte(model + "\x00" + m))
	fmt.Fprintf(&b, ". %s.", fillerWords(h, 0, 8))
	return b.String()
}

// price is a model's price: micro-USD per token in and out (numerically the
// USD price per million tokens), and the request fee in micro-USD at low,
// medium and high search context.
type price struct {
	in, out int64
	fee     [3]int64
}

// priceOf returns the price of a known model.
func priceOf(model string) (price, bool) {
	switch model {
	case "sonar":
		return price{1, 1, [3]int64{5000, 8000, 12000}}, true
	case "sonar-pro":
		return price{3, 15, [3]int64{6000, 10000, 14000}}, true
	case "sonar-reasoning-pro":
		return price{2, 8, [3]int64{6000, 10000, 14000}}, true
	case "sonar-deep-research":
		return price{2, 8, [3]int64{}}, true
	}
	return price{}, false
}

// costMicros returns the input, output and request cost of a chat answer
// in micro-USD (zero for an unknown model or context size).
func costMicros(model, contextSize string, promptTokens, completionTokens int64) (in, out, fee int64) {
	p, _ := priceOf(model)
	ci, _ := contextIndex(contextSize)
	return promptTokens * p.in, completionTokens * p.out, p.fee[ci]
}

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

// Search prices in micro-USD per answered request.
const (
	searchMicros     = 5000
	fastSearchMicros = 1000
)

func usd(micros int64) float64 { return float64(micros) / 1e6 }

func countWords(messages []pplx.Message) int64 {
	var n int64
	for _, m := range messages {
		n += int64(len(strings.Fields(m.Content)))
	}
	return n
}

// call is a parsed, valid request.
type call struct {
	ep     endpoint
	bucket string
	fp     [16]byte
	search pplx.SearchRequest
	chat   pplx.ChatRequest
	ctx    string // chat search context size
}

// badRequest describes a 400 answer; bucket names the bucket whose state
// the rate-limit headers show.
type badRequest struct {
	typ, msg, bucket string
}

// parseCall decodes and validates a request body.
func parseCall(ep endpoint, body []byte) (*call, *badRequest) {
	c := &call{ep: ep}
	switch ep {
	case epSearch:
		c.bucket = "search"
		bad := func(typ, msg string) (*call, *badRequest) { return nil, &badRequest{typ, msg, c.bucket} }
		if err := json.Unmarshal(body, &c.search); err != nil {
			return bad("bad_request", "Invalid JSON in request body: "+err.Error())
		}
		q := c.search.Query
		switch {
		case len(q) == 0:
			return bad("invalid_request", "query is required")
		case len(q) > MaxQueries:
			return bad("invalid_request", fmt.Sprintf("query accepts at most %d queries, got %d", MaxQueries, len(q)))
		case c.search.MaxResults < 0:
			return bad("invalid_request", "max_results must be between 1 and 20")
		}
		for _, s := range q {
			if strings.TrimSpace(s) == "" {
				return bad("invalid_request", "query must not be empty")
			}
		}
		c.fp = searchKey(q)
	default:
		c.bucket = "chat:"
		bad := func(typ, msg string) (*call, *badRequest) { return nil, &badRequest{typ, msg, c.bucket} }
		if err := json.Unmarshal(body, &c.chat); err != nil {
			return bad("bad_request", "Invalid JSON in request body: "+err.Error())
		}
		model := c.chat.Model
		if model == "" {
			return bad("invalid_request", "model is required")
		}
		if _, ok := priceOf(model); !ok {
			if len(model) > 64 {
				model = model[:64] + "..."
			}
			return bad("invalid_model", fmt.Sprintf("Invalid model '%s'. Permitted models: sonar, sonar-pro, sonar-reasoning-pro, sonar-deep-research.", model))
		}
		c.bucket = "chat:" + model
		msgs := c.chat.Messages
		if len(msgs) == 0 {
			return bad("invalid_request", "messages is required")
		}
		if r := msgs[len(msgs)-1].Role; r != "user" && r != "tool" {
			return bad("invalid_request", "Last message must have role `user` or `tool`")
		}
		if c.chat.MaxTokens < 0 {
			return bad("bad_request", `["At body -> max_tokens: Input should be greater than 0"]`)
		}
		c.ctx = "low"
		if o := c.chat.WebSearchOptions; o != nil && o.SearchContextSize != "" {
			if _, ok := contextIndex(o.SearchContextSize); !ok {
				return bad("invalid_request", "web_search_options.search_context_size must be low, medium or high")
			}
			c.ctx = o.SearchContextSize
		}
		c.fp = chatKey(model, msgs)
	}
	return c, nil
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

func searchKey(q []string) [16]byte {
	h := sha256.New()
	writeField(h, "search")
	for _, s := range q {
		writeField(h, s)
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

func chatKey(model string, messages []pplx.Message) [16]byte {
	h := sha256.New()
	writeField(h, "chat")
	writeField(h, model)
	for _, m := range messages {
		writeField(h, m.Role)
		writeField(h, m.Content)
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

func fingerprintString(ep endpoint, k [16]byte) string {
	return ep.String() + ":" + hex.EncodeToString(k[:])
}

// Fingerprint returns the fingerprint the server files a request under for
// [Server.Answered]: "search:<32 hex digits>" from the queries of a search,
// "chat:<32 hex digits>" from the model and the messages (roles and
// contents) of a chat request. Other fields (max_results, stream, options)
// do not count, so retries of one row share a fingerprint.
//
// endpoint is a path ("/search", "/chat/completions", "/v1/sonar") or
// "search" or "chat". body is a pplx.SearchRequest or pplx.ChatRequest (or
// a pointer to one), raw JSON as []byte, json.RawMessage or string, or any
// value that marshals to the request's JSON. Fingerprint returns "" for an
// unknown endpoint or a body that does not decode as its request.
func Fingerprint(endpoint string, body any) string {
	ep := endpointFor(endpoint)
	if ep == epNone {
		switch strings.ToLower(endpoint) {
		case "search":
			ep = epSearch
		case "chat":
			ep = epChat
		default:
			return ""
		}
	}
	var raw []byte
	switch b := body.(type) {
	case pplx.SearchRequest:
		return searchFingerprint(ep, &b)
	case *pplx.SearchRequest:
		return searchFingerprint(ep, b)
	case pplx.ChatRequest:
		return chatFingerprint(ep, &b)
	case *pplx.ChatRequest:
		return chatFingerprint(ep, b)
	default:
		var ok bool
		if raw, ok = bodyJSON(body); !ok {
			return ""
		}
	}
	if ep == epSearch {
		var r pplx.SearchRequest
		if json.Unmarshal(raw, &r) != nil {
			return ""
		}
		return searchFingerprint(ep, &r)
	}
	var r pplx.ChatRequest
	if json.Unmarshal(raw, &r) != nil {
		return ""
	}
	return chatFingerprint(ep, &r)
}

func searchFingerprint(ep endpoint, r *pplx.SearchRequest) string {
	if ep != epSearch || r == nil || len(r.Query) == 0 {
		return ""
	}
	return fingerprintString(ep, searchKey(r.Query))
}

func chatFingerprint(ep endpoint, r *pplx.ChatRequest) string {
	if ep != epChat || r == nil || r.Model == "" || len(r.Messages) == 0 {
		return ""
	}
	return fingerprintString(ep, chatKey(r.Model, r.Messages))
}

// parseFingerprint is the inverse of fingerprintString.
// bodyJSON returns the JSON of a request body given as []byte,
// json.RawMessage, string or any value that marshals to it.
func bodyJSON(body any) ([]byte, bool) {
	switch b := body.(type) {
	case []byte:
		return b, true
	case json.RawMessage:
		return b, true
	case string:
		return []byte(b), true
	}
	raw, err := json.Marshal(body)
	return raw, err == nil
}

func parseFingerprint(fp string) ([16]byte, bool) {
	var k [16]byte
	ep, digits, ok := strings.Cut(fp, ":")
	if !ok || (ep != "search" && ep != "chat") || hex.DecodedLen(len(digits)) != len(k) {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(digits)); err != nil {
		return k, false
	}
	return k, true
}

// chatAnswer builds the complete chat answer and its billed cost.
func chatAnswer(id string, created int64, c *call) (pplx.ChatResponse, int64) {
	model, msgs := c.chat.Model, c.chat.Messages
	content := ChatContent(model, msgs)
	sources := ChatSearchResults(msgs)
	cites := make([]string, len(sources))
	for i, s := range sources {
		cites[i] = s.URL
	}
	pt, ct := countWords(msgs), int64(len(strings.Fields(content)))
	in, out, fee := costMicros(model, c.ctx, pt, ct)
	total := in + out + fee
	return pplx.ChatResponse{
		ID:      id,
		Model:   model,
		Created: created,
		Object:  "chat.completion",
		Choices: []pplx.Choice{{
			Index:        0,
			FinishReason: "stop",
			Message:      pplx.Message{Role: "assistant", Content: content},
			Delta:        pplx.Message{Role: "assistant"},
		}},
		Usage: &pplx.Usage{
			PromptTokens:      pt,
			CompletionTokens:  ct,
			TotalTokens:       pt + ct,
			SearchContextSize: c.ctx,
			Cost: &pplx.Cost{
				InputTokensCost:  usd(in),
				OutputTokensCost: usd(out),
				RequestCost:      usd(fee),
				TotalCost:        usd(total),
			},
		},
		Citations:     cites,
		SearchResults: sources,
	}, total
}

// splitChunks cuts s at spaces into at most n pieces whose concatenation
// is s.
func splitChunks(s string, n int) []string {
	parts := strings.SplitAfter(s, " ")
	n = min(n, len(parts))
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, strings.Join(parts[i*len(parts)/n:(i+1)*len(parts)/n], ""))
	}
	return out
}

// streamFrames returns the SSE chunks of a complete answer: content chunks
// with running usage and zero cost, then the "chat.completion.done" frame
// with the final usage and cost. "[DONE]" is not included.
func streamFrames(full pplx.ChatResponse) []pplx.ChatResponse {
	content := full.Choices[0].Message.Content
	pieces := splitChunks(content, 5)
	frames := make([]pplx.ChatResponse, 0, len(pieces)+1)
	var sofar strings.Builder
	for _, p := range pieces {
		sofar.WriteString(p)
		ct := int64(len(strings.Fields(sofar.String())))
		f := full
		f.Object = "chat.completion.chunk"
		f.Choices = []pplx.Choice{{
			Message: pplx.Message{Role: "assistant"},
			Delta:   pplx.Message{Role: "assistant", Content: p},
		}}
		f.Usage = &pplx.Usage{
			PromptTokens:      full.Usage.PromptTokens,
			CompletionTokens:  ct,
			TotalTokens:       full.Usage.PromptTokens + ct,
			SearchContextSize: full.Usage.SearchContextSize,
			Cost:              &pplx.Cost{},
		}
		frames = append(frames, f)
	}
	done := full
	done.Object = "chat.completion.done"
	done.Choices = []pplx.Choice{{
		FinishReason: "stop",
		Message:      pplx.Message{Role: "assistant"},
		Delta:        pplx.Message{Role: "assistant"},
	}}
	return append(frames, done)
}
