package pplx

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Agent sends one POST /v1/agent request and returns the run it
// describes. It blocks until the answer is read or ctx is done. The
// returned Meta is non-nil (see [Meta]); its RequestID is the run's id
// (resp_…) when the answer has one, else the x-request-id header.
//
// Failures of the run itself arrive as HTTP 200: when the decoded run's
// Status is [StatusFailed], [StatusCancelled] or [StatusIncomplete], Agent
// returns the response and a [*RunError]; for [StatusCompleted],
// [StatusQueued] (a background run), [StatusInProgress] and any status
// this package does not know the error is nil. A 2xx body with no status
// is a [*DecodeError]. On any other error the response is nil (Meta still
// names the run when its id was read). Other errors are described in the
// package documentation.
//
// When req.Stream is true, Agent reads the typed server-sent events up to
// the first terminal event (response.completed, .incomplete, .failed,
// .cancelled, or error) and assembles the response: the terminal event's
// response when it carries one, with the text of each message content
// part taken, first non-empty, from that response, the part's
// output_item.done, its output_text.done, or the concatenation of its
// deltas, so that the text is never doubled; without a terminal response
// the output is rebuilt from the output items (a search_web function_call
// that is later replaced at its index by a search_results item, as the API
// does, does not appear). Id, model and the other fields of the last
// snapshot (response.created, .in_progress) fill what the terminal event
// leaves out. Agent stops reading at the terminal event and does not wait
// for the server to close the connection. It tolerates null fields,
// unknown event types, "event:" lines, comments and blank keep-alives,
// gaps in sequence_number and data lines that are not JSON (they are
// skipped). A response.failed or error event without a response gives a
// run with Status failed and the event's error. A stream that ends (or
// sends "data: [DONE]") before its terminal event gives a [*StreamError];
// a terminal event that does not decode gives a [*DecodeError]. If the
// server answers with another Content-Type than text/event-stream, the
// body is decoded as plain JSON. A [Trace] in ctx (see [WithTrace]) hears
// when the stream starts and when its run is created.
func (c *Client) Agent(ctx context.Context, req *AgentRequest) (*AgentResponse, *Meta, error) {
	if req == nil {
		return nil, &Meta{}, errors.New("pplx: nil agent request")
	}
	resp, meta, err := c.post(ctx, AgentPath, req, req.Stream)
	if err != nil {
		return nil, meta, err
	}
	var out *AgentResponse
	if req.Stream && isEventStream(resp.Header) {
		traceOf(ctx).streamStarted(meta)
		out, err = c.readAgentStream(ctx, resp)
	} else {
		out, err = c.decodeRun(ctx, resp)
	}
	return c.runResult(out, meta, err)
}

// AgentRun polls a background run: GET /v1/agent/{id}. It returns the
// run's current snapshot under the same contract as [Client.Agent]: a nil
// error while the run is queued or in progress and once it completed, the
// snapshot and a [*RunError] once it failed, was cancelled or is
// incomplete. An unknown id, or a run stored with store:false, is an
// [*APIError] 404.
func (c *Client) AgentRun(ctx context.Context, id string) (*AgentResponse, *Meta, error) {
	if id == "" {
		return nil, &Meta{}, errors.New("pplx: empty agent run id")
	}
	resp, meta, err := c.send(ctx, http.MethodGet, AgentPath+"/"+url.PathEscape(id), nil, false)
	if err != nil {
		return nil, meta, err
	}
	out, err := c.decodeRun(ctx, resp)
	return c.runResult(out, meta, err)
}

// CancelAgent asks the API to stop a background run: POST
// /v1/agent/{id}/cancel, with no body. The answer normally has Status
// "cancelling"; polling the run later shows [StatusCancelled]. Cancelling
// a run that has already ended, or an unknown id, is an [*APIError] 400
// (the API does not tell the two apart). Meta.RequestID is the answer's
// response_id when it has one.
func (c *Client) CancelAgent(ctx context.Context, id string) (*CancelResponse, *Meta, error) {
	if id == "" {
		return nil, &Meta{}, errors.New("pplx: empty agent run id")
	}
	resp, meta, err := c.send(ctx, http.MethodPost, AgentPath+"/"+url.PathEscape(id)+"/cancel", nil, false)
	if err != nil {
		return nil, meta, err
	}
	var out CancelResponse
	if err := c.decodeBody(ctx, resp, &out); err != nil {
		return nil, meta, err
	}
	if out.ResponseID != "" {
		meta.RequestID = out.ResponseID
	}
	return &out, meta, nil
}

// decodeRun decodes a plain (not streamed) run object.
func (c *Client) decodeRun(ctx context.Context, resp *http.Response) (*AgentResponse, error) {
	var out AgentResponse
	if err := c.decodeBody(ctx, resp, &out); err != nil {
		return nil, err
	}
	if out.Status == "" {
		return nil, c.decodeError(resp, nil, errors.New("agent response has no status"))
	}
	return &out, nil
}

// runResult applies the return contract of Agent and AgentRun to a decoded
// run (or a partial one, with err).
func (c *Client) runResult(out *AgentResponse, meta *Meta, err error) (*AgentResponse, *Meta, error) {
	if out != nil && out.ID != "" {
		meta.RequestID = out.ID
	}
	if err != nil {
		return nil, meta, err
	}
	if re := c.runError(out); re != nil {
		return out, meta, re
	}
	return out, meta, nil
}

// runError returns the *RunError of a run that failed, was cancelled or is
// incomplete, and nil for any other status.
func (c *Client) runError(r *AgentResponse) *RunError {
	switch r.Status {
	case StatusFailed, StatusCancelled, StatusIncomplete:
	default:
		return nil
	}
	e := &RunError{ID: r.ID, Status: r.Status}
	if r.Error != nil {
		e.Code = c.redact(string(r.Error.Code))
		e.Type = c.redact(r.Error.Type)
		e.Message = c.redact(r.Error.Message)
	}
	if r.IncompleteDetails != nil {
		e.Reason = c.redact(r.IncompleteDetails.Reason)
	}
	return e
}

// RunError reports an Agent API run that did not complete: the API
// answered (HTTP 200) with a run whose status is failed, cancelled or
// incomplete, or a stream ended with a response.failed or error event.
// [Client.Agent] and [Client.AgentRun] return it together with the run,
// which may hold partial output (an incomplete run keeps the text written
// before it stopped).
//
// Its [Class] is:
//   - failed: [ClassRetry] (the run may succeed when submitted again),
//     except when Code is an HTTP client error status, which says the
//     request itself is wrong: 401, 402 and 403 are [ClassJob], other 4xx
//     but 408, 409 and 429 are [ClassRow]; and [ClassJob] when Code, Type
//     or Message name an exhausted quota or credit, as for an [*APIError];
//   - incomplete and cancelled: [ClassRow] (sending the same request again
//     would stop the same way, or the run was stopped on purpose).
//
// [Retryable] is true exactly for ClassRetry.
type RunError struct {
	// ID is the run's id (resp_…), "" when the stream ended before
	// naming it.
	ID string
	// Status is the run's status: [StatusFailed], [StatusCancelled] or
	// [StatusIncomplete].
	Status string
	// Code, Type and Message are the run's error (error.code, .type and
	// .message), "" when it has none. Code is text also when the API sent
	// a number.
	Code    string
	Type    string
	Message string
	// Reason is incomplete_details.reason, such as "max_output_tokens"
	// or "cancelled".
	Reason string
}

// Error returns one line: "pplx: run <id> <status>", then, for an
// incomplete run, ": <reason>", and for others ": <code>: <message>"
// (the type when there is no code), leaving out what is empty or only
// repeats the status. The message is shortened to about 512 bytes.
func (e *RunError) Error() string {
	var b strings.Builder
	b.WriteString("pplx: run ")
	if e.ID != "" {
		b.WriteString(oneLine(e.ID, 128))
		b.WriteByte(' ')
	}
	status := oneLine(e.Status, 64)
	if status == "" {
		status = StatusFailed
	}
	b.WriteString(status)
	var parts []string
	add := func(s string, n int) {
		s = oneLine(s, n)
		if s != "" && s != status && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	if e.Status == StatusIncomplete {
		add(e.Reason, 128)
	}
	add(cmp.Or(e.Code, e.Type), 128)
	add(e.Message, maxMessage)
	if e.Status == StatusCancelled {
		add(e.Reason, 128)
	}
	for _, p := range parts {
		b.WriteString(": ")
		b.WriteString(p)
	}
	return b.String()
}

// class returns the [Class] of the run error (see [RunError]).
func (e *RunError) class() Class {
	if e.Status != StatusFailed && e.Status != "" {
		return ClassRow
	}
	if quotaText(e.Code + " " + e.Type + " " + e.Message) {
		return ClassJob
	}
	switch n := FlexString(e.Code).Int(); {
	case n == http.StatusUnauthorized || n == http.StatusPaymentRequired || n == http.StatusForbidden:
		return ClassJob
	case n == http.StatusRequestTimeout || n == http.StatusConflict || n == http.StatusTooManyRequests:
		return ClassRetry
	case n >= 400 && n < 500:
		return ClassRow
	}
	return ClassRetry
}

// RetiredChat reports whether err is the API's refusal of the retired
// Sonar Chat Completions endpoints: an [*APIError] whose type is
// "chat_completions_not_available" or "agent_api_migration_required",
// whose error code is "agent_api_migration_required", or whose message
// starts with "Sonar is now the Agent API". The API answers it with HTTP
// 403 to every request; such an error is [ClassJob]. A caller can tell
// the user to move to the Agent API (--mode agent).
func RetiredChat(err error) bool {
	ae, ok := errors.AsType[*APIError](err)
	if !ok {
		return false
	}
	switch ae.Type {
	case "chat_completions_not_available", "agent_api_migration_required":
		return true
	}
	if strings.HasPrefix(strings.TrimSpace(ae.Message), "Sonar is now the Agent API") {
		return true
	}
	var env struct {
		Error struct {
			Code FlexString `json:"code"`
		} `json:"error"`
	}
	return strings.Contains(ae.Body, "agent_api_migration_required") &&
		json.Unmarshal([]byte(ae.Body), &env) == nil && env.Error.Code == "agent_api_migration_required"
}

// Text returns the answer: the text of the output_text parts of the
// message items of r's output, concatenated in order. It is "" for a nil
// r.
func (r *AgentResponse) Text() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for i := range r.Output {
		it := &r.Output[i]
		if it.Type != ItemMessage {
			continue
		}
		for _, p := range it.Content {
			if p.Type == "output_text" {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String()
}

// Sources returns the web results of all the search_results items of r's
// output, one per id, ordered by id: the [n] markers of the text point at
// these ids. When an id appears more than once, its first result is kept.
// Results without an id (0 or negative) follow the numbered ones in the
// order they came, one per URL. It returns nil when there are none.
func (r *AgentResponse) Sources() []AgentSearchResult {
	if r == nil {
		return nil
	}
	var out, noID []AgentSearchResult
	seen := map[FlexInt]bool{}
	urls := map[string]bool{}
	for i := range r.Output {
		it := &r.Output[i]
		if it.Type != ItemSearchResults {
			continue
		}
		for _, res := range it.Results {
			switch {
			case res.ID <= 0:
				if !urls[res.URL] {
					urls[res.URL] = true
					noID = append(noID, res)
				}
			case !seen[res.ID]:
				seen[res.ID] = true
				out = append(out, res)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b AgentSearchResult) int { return cmp.Compare(a.ID, b.ID) })
	return append(out, noID...)
}

// Citations returns the URLs of [AgentResponse.Sources], in the same
// order (so Citations()[i] is the URL of Sources()[i]). It returns nil
// when there are no sources.
func (r *AgentResponse) Citations() []string {
	src := r.Sources()
	if len(src) == 0 {
		return nil
	}
	out := make([]string, len(src))
	for i, s := range src {
		out[i] = s.URL
	}
	return out
}
