package pplx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// A streamed Agent API call against the simulator: the answer's text,
// model and numbered sources, assembled from the events.
func ExampleClient_Agent_stream() {
	srv := httptest.NewServer(sim.New(sim.Config{Key: "pplx-example"}))
	defer srv.Close()
	c := pplx.New(srv.URL, "pplx-example", pplx.Options{})

	resp, _, err := c.Agent(context.Background(), &pplx.AgentRequest{
		Model:      "perplexity/sonar",
		Input:      "Who wrote Middlemarch?",
		Tools:      []pplx.AgentTool{{Type: pplx.ToolWebSearch, MaxResults: 2}},
		ToolChoice: &pplx.ToolChoice{Type: pplx.ToolWebSearch},
		Stream:     true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, resp.Model)
	fmt.Println(resp.Text() == sim.AgentContent("perplexity/sonar", "Who wrote Middlemarch?", 2))
	for _, s := range resp.Sources() {
		fmt.Printf("[%d] %s\n", s.ID, s.URL)
	}
	// Output:
	// completed perplexity/sonar
	// true
	// [1] https://sim.invalid/c745fd45/agent-1
	// [2] https://sim.invalid/c745fd45/agent-2
}

// A run that stops at max_output_tokens comes back with its partial
// answer and a *RunError saying why; it is a row failure, not retried.
func ExampleRunError() {
	srv := httptest.NewServer(sim.New(sim.Config{Key: "pplx-example", Agent: sim.AgentConfig{PIncomplete: 1}}))
	defer srv.Close()
	c := pplx.New(srv.URL, "pplx-example", pplx.Options{})

	resp, _, err := c.Agent(context.Background(), &pplx.AgentRequest{Preset: "fast", Input: "q"})
	if re, ok := errors.AsType[*pplx.RunError](err); ok {
		fmt.Println(re.Status, re.Reason, pplx.Classify(err), resp.Text() != "")
	}
	// Output:
	// incomplete max_output_tokens row true
}
