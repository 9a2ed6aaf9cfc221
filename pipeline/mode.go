package pipeline

import (
	"context"
	"fmt"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
)

// Mode is the endpoint every row of a job calls.
type Mode string

// The modes of a job.
const (
	// ModeSearch calls the Search API (POST /search) with the row's text
	// as the query.
	ModeSearch Mode = "search"
	// ModeAgent calls the Agent API (POST /v1/agent) with the row's text
	// as the input.
	ModeAgent Mode = "agent"
	// ModeChat calls an OpenAI-compatible chat completions endpoint (POST
	// /chat/completions) with the row's text as the user message.
	// Perplexity retired its own on 2026-09-27.
	ModeChat Mode = "chat"
)

// Modes returns the modes a job may have, in the order help texts list
// them.
func Modes() []Mode { return []Mode{ModeSearch, ModeAgent, ModeChat} }

// Valid reports whether m is one of [Modes].
func (m Mode) Valid() bool { return m.endpoint() != nil }

// endpoint is everything that differs between modes: how a row's text
// becomes a request body, which rate-limit bucket paces it, and how one
// attempt is sent and its answer read into the output row. Adding a mode
// means one type implementing it and one case in Mode.endpoint.
type endpoint interface {
	// path is the endpoint's path, which request hashes include.
	path() string
	// build returns the request body of one row whose template rendered
	// text, and the name of the rate-limit bucket that paces it. hashed is
	// the same body as it counts for the request hash: what the answer
	// depends on, without the fields that only say how it travels.
	build(j *Job, text string) (body, hashed any, bucket string)
	// send makes one attempt with body and fills row with the answer.
	send(ctx context.Context, c *pplx.Client, body any, row *sink.Row) (sent, error)
}

// sent is what one attempt produced besides the row's answer.
type sent struct {
	meta *pplx.Meta
	// cost is the billed cost in USD; known is false when the API did not
	// report one (the estimate counts then).
	cost  float64
	known bool
	// tokens are the prompt, completion and total tokens the API reported.
	tokens [3]int64
	// run is the id of a background run that was submitted and must be
	// collected (agent mode with Background), or of the run of a stream
	// cut after it began (cut).
	run string
	cut bool
}

// endpoint returns the implementation of m, nil when m is not a mode.
func (m Mode) endpoint() endpoint {
	switch m {
	case ModeSearch:
		return searchMode{}
	case ModeAgent:
		return agentMode{}
	case ModeChat:
		return chatMode{}
	}
	return nil
}

// String implements [fmt.Stringer].
func (m Mode) String() string { return string(m) }

// errMode is returned for a Job whose Mode is not one of Modes.
func errMode(m Mode) error { return fmt.Errorf("pipeline: unknown mode %q", string(m)) }
