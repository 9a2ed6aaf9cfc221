package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

func ExampleAgentContent() {
	s := sim.New(sim.Config{Key: "test-key", RPS: 50, Headers: sim.HeadersEpoch})
	ts := httptest.NewServer(s)
	defer ts.Close()

	body := `{"model":"perplexity/sonar","input":"What is a token bucket?","tools":[{"type":"web_search","max_results":2}]}`
	req, _ := http.NewRequest(http.MethodPost, ts.URL+pplx.AgentPath, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-key")
	resp, err := ts.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var r pplx.AgentResponse
	json.NewDecoder(resp.Body).Decode(&r)

	results := r.Output[0].Results
	text := r.Output[1].Content[0].Text
	fmt.Println(r.Status, r.Model, len(results), "results, used", resp.Header.Get("x-ratelimit-used"))
	fmt.Println(text == sim.AgentContent("perplexity/sonar", "What is a token bucket?", len(results)))
	fmt.Println(text[:strings.Index(text, ".")+1])
	fmt.Println("billed", r.Usage.Cost.TotalCost == s.Stats().Agent.CostUSD)
	// Output:
	// completed perplexity/sonar 2 results, used 1
	// true
	// Answer from perplexity/sonar to: What is a token bucket? [1][2].
	// billed true
}
