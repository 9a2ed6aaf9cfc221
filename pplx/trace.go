package pplx

import "context"

// Trace holds hooks that a call made with [WithTrace] runs while it reads
// its answer, from the goroutine that made the call, as
// [net/http/httptrace.ClientTrace] does for HTTP. Any hook may be nil.
type Trace struct {
	// StreamStarted runs when the headers of a 2xx streamed answer arrive,
	// before its events are read, with the response's metadata (status,
	// headers, latency). A rate limiter is done with the request then:
	// the server admitted it, and the events may take minutes.
	StreamStarted func(meta *Meta)
	// RunCreated runs once, with the id of an Agent API run, as soon as
	// the stream's first snapshot (response.created) names it: the run
	// is paid for from then on and goes on if the stream is lost, so a
	// caller that records the id can collect it with [Client.AgentRun].
	RunCreated func(id string)
}

type traceKey struct{}

// WithTrace returns a copy of ctx that carries t to the calls made with
// it.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// traceOf returns the Trace of ctx; never nil.
func traceOf(ctx context.Context) *Trace {
	if t, ok := ctx.Value(traceKey{}).(*Trace); ok && t != nil {
		return t
	}
	return &Trace{}
}

// streamStarted runs t.StreamStarted, if set.
func (t *Trace) streamStarted(meta *Meta) {
	if t.StreamStarted != nil {
		t.StreamStarted(meta)
	}
}
