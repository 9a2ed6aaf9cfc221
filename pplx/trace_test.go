package pplx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// A Trace hears a stream start (with the response's status and headers)
// before its run is created, and the run's id; plain answers run no hook.
func TestTrace(t *testing.T) {
	c, _ := newSim(t, sim.Config{})
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) (id string, err error)
		want func(id string) []string
	}{
		{"agent stream", func(ctx context.Context) (string, error) {
			r, _, err := c.Agent(ctx, &pplx.AgentRequest{Model: "perplexity/sonar", Input: "q", Stream: true})
			return idOf(r), err
		}, func(id string) []string { return []string{"started 200", "created " + id} }},
		{"agent", func(ctx context.Context) (string, error) {
			r, _, err := c.Agent(ctx, &pplx.AgentRequest{Model: "perplexity/sonar", Input: "q"})
			return idOf(r), err
		}, func(string) []string { return nil }},
		{"agent background", func(ctx context.Context) (string, error) {
			r, _, err := c.Agent(ctx, &pplx.AgentRequest{Model: "perplexity/sonar", Input: "q", Background: true})
			return idOf(r), err
		}, func(string) []string { return nil }},
		{"chat stream", func(ctx context.Context) (string, error) {
			r, _, err := c.Chat(ctx, &pplx.ChatRequest{Model: "sonar", Messages: []pplx.Message{{Role: "user", Content: "q"}}, Stream: true})
			if r == nil {
				return "", err
			}
			return r.ID, err
		}, func(string) []string { return []string{"started 200"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			ctx := pplx.WithTrace(t.Context(), &pplx.Trace{
				StreamStarted: func(m *pplx.Meta) {
					if m.Header.Get("Content-Type") == "" {
						t.Error("StreamStarted: no headers")
					}
					got = append(got, fmt.Sprint("started ", m.StatusCode))
				},
				RunCreated: func(id string) { got = append(got, "created "+id) },
			})
			id, err := tc.call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(id); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("hooks ran %q, want %q", got, want)
			}
		})
	}
}

func idOf(r *pplx.AgentResponse) string {
	if r == nil {
		return ""
	}
	return r.ID
}
