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

func Example() {
	s := sim.New(sim.Config{Key: "test-key", RPS: 2, Burst: 2})
	ts := httptest.NewServer(s)
	defer ts.Close()

	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+pplx.SearchPath,
			strings.NewReader(`{"query":"go fuzzing","max_results":2}`))
		req.Header.Set("Authorization", "Bearer test-key")
		resp, err := ts.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		var body pplx.SearchResponse
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, "remaining", resp.Header.Get("x-ratelimit-remaining"))
		for _, r := range body.Results {
			fmt.Println(" ", r.Title)
		}
	}
	fp := sim.Fingerprint("search", pplx.SearchRequest{Query: pplx.Query{"go fuzzing"}})
	fmt.Println("answered", s.Answered(fp), "billed", s.Stats().CostUSD)
	// Output:
	// 200 remaining 1
	//   go fuzzing - result 1
	//   go fuzzing - result 2
	// 200 remaining 0
	//   go fuzzing - result 1
	//   go fuzzing - result 2
	// 429 remaining 0
	// answered 2 billed 0.01
}

func ExampleChatContent() {
	msgs := []pplx.Message{{Role: "user", Content: "What is a token bucket?"}}
	fmt.Println(strings.HasPrefix(sim.ChatContent("sonar", msgs), "Answer from sonar to: What is a token bucket? [1][2]"))
	fmt.Println(len(sim.ChatSearchResults(msgs)) >= 2)
	// Output:
	// true
	// true
}
