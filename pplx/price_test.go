package pplx_test

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// TestChatCostDocumented checks the example of Perplexity's changelog
// (July 2025): sonar-pro at low context, 8 input and 439 output tokens,
// reported request_cost 0.006 and total_cost 0.012609.
func TestChatCostDocumented(t *testing.T) {
	c, ok := pplx.ChatCost(&pplx.ChatRequest{Model: "sonar-pro"},
		pplx.Usage{PromptTokens: 8, CompletionTokens: 439, TotalTokens: 447, SearchContextSize: "low"})
	if !ok {
		t.Fatal("got ok false, want true")
	}
	if c.RequestCost != 0.006 {
		t.Errorf("got request_cost %v, want 0.006", c.RequestCost)
	}
	if c.TotalCost != 0.012609 {
		t.Errorf("got total_cost %v, want 0.012609", c.TotalCost)
	}
	if c.InputTokensCost != 0.000024 || c.OutputTokensCost != 0.006585 {
		t.Errorf("got input %v and output %v, want 0.000024 and 0.006585", c.InputTokensCost, c.OutputTokensCost)
	}
}

func TestChatCost(t *testing.T) {
	opts := func(size, typ string) *pplx.WebSearchOptions {
		return &pplx.WebSearchOptions{SearchContextSize: size, SearchType: typ}
	}
	tests := []struct {
		name   string
		req    *pplx.ChatRequest
		u      pplx.Usage
		want   pplx.Cost
		wantOK bool
	}{
		{"sonar default context", &pplx.ChatRequest{Model: "sonar"},
			pplx.Usage{PromptTokens: 6, CompletionTokens: 1},
			pplx.Cost{InputTokensCost: 0.000006, OutputTokensCost: 0.000001, RequestCost: 0.005, TotalCost: 0.005007}, true},
		{"empty model is sonar", &pplx.ChatRequest{},
			pplx.Usage{PromptTokens: 10, CompletionTokens: 0},
			pplx.Cost{InputTokensCost: 0.00001, RequestCost: 0.005, TotalCost: 0.00501}, true},
		{"nil request is sonar", nil,
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.005, TotalCost: 0.005}, true},
		{"sonar medium from the request", &pplx.ChatRequest{Model: "sonar", WebSearchOptions: opts("medium", "")},
			pplx.Usage{PromptTokens: 1000, CompletionTokens: 1000},
			pplx.Cost{InputTokensCost: 0.001, OutputTokensCost: 0.001, RequestCost: 0.008, TotalCost: 0.01}, true},
		{"sonar high", &pplx.ChatRequest{Model: "sonar"},
			pplx.Usage{SearchContextSize: "high"},
			pplx.Cost{RequestCost: 0.012, TotalCost: 0.012}, true},
		{"reported context wins over the request's", &pplx.ChatRequest{Model: "sonar", WebSearchOptions: opts("high", "")},
			pplx.Usage{SearchContextSize: "low"},
			pplx.Cost{RequestCost: 0.005, TotalCost: 0.005}, true},
		{"sonar-pro medium", &pplx.ChatRequest{Model: "sonar-pro"},
			pplx.Usage{PromptTokens: 100, CompletionTokens: 200, SearchContextSize: "medium"},
			pplx.Cost{InputTokensCost: 0.0003, OutputTokensCost: 0.003, RequestCost: 0.01, TotalCost: 0.0133}, true},
		{"sonar-pro pro search streamed", &pplx.ChatRequest{Model: "sonar-pro", Stream: true, WebSearchOptions: opts("low", "pro")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.014, TotalCost: 0.014}, true},
		{"sonar-pro pro search high", &pplx.ChatRequest{Model: "sonar-pro", Stream: true, WebSearchOptions: opts("high", "pro")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.022, TotalCost: 0.022}, true},
		{"sonar-pro auto is priced as pro", &pplx.ChatRequest{Model: "sonar-pro", Stream: true, WebSearchOptions: opts("medium", "auto")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.018, TotalCost: 0.018}, true},
		{"sonar-pro pro search not streamed falls back", &pplx.ChatRequest{Model: "sonar-pro", WebSearchOptions: opts("low", "pro")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.006, TotalCost: 0.006}, true},
		{"sonar-pro fast", &pplx.ChatRequest{Model: "sonar-pro", Stream: true, WebSearchOptions: opts("high", "fast")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.014, TotalCost: 0.014}, true},
		{"pro search type on sonar is ignored", &pplx.ChatRequest{Model: "sonar", Stream: true, WebSearchOptions: opts("", "pro")},
			pplx.Usage{},
			pplx.Cost{RequestCost: 0.005, TotalCost: 0.005}, true},
		{"sonar-reasoning-pro high", &pplx.ChatRequest{Model: "sonar-reasoning-pro"},
			pplx.Usage{PromptTokens: 500, CompletionTokens: 2500, SearchContextSize: "high"},
			pplx.Cost{InputTokensCost: 0.001, OutputTokensCost: 0.02, RequestCost: 0.014, TotalCost: 0.035}, true},
		{"deep research", &pplx.ChatRequest{Model: "sonar-deep-research"},
			pplx.Usage{PromptTokens: 19, CompletionTokens: 5000, CitationTokens: 20000, ReasoningTokens: 100000, NumSearchQueries: 25},
			pplx.Cost{InputTokensCost: 0.000038, OutputTokensCost: 0.04, CitationTokensCost: 0.04,
				ReasoningTokensCost: 0.3, SearchQueriesCost: 0.125, TotalCost: 0.505038}, true},
		{"citation tokens are free on sonar", &pplx.ChatRequest{Model: "sonar"},
			pplx.Usage{CitationTokens: 1000000, ReasoningTokens: 5, NumSearchQueries: 3},
			pplx.Cost{RequestCost: 0.005, TotalCost: 0.005}, true},
		{"negative counts count as zero", &pplx.ChatRequest{Model: "sonar"},
			pplx.Usage{PromptTokens: -5, CompletionTokens: -1},
			pplx.Cost{RequestCost: 0.005, TotalCost: 0.005}, true},
		{"unknown model", &pplx.ChatRequest{Model: "gpt-4o"},
			pplx.Usage{PromptTokens: 5}, pplx.Cost{}, false},
		{"removed model", &pplx.ChatRequest{Model: "sonar-reasoning"},
			pplx.Usage{PromptTokens: 5}, pplx.Cost{}, false},
		{"unknown context size", &pplx.ChatRequest{Model: "sonar", WebSearchOptions: opts("huge", "")},
			pplx.Usage{}, pplx.Cost{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := pplx.ChatCost(tc.req, tc.u)
			if ok != tc.wantOK {
				t.Fatalf("got ok %v, want %v", ok, tc.wantOK)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSearchRequestCost(t *testing.T) {
	tests := []struct {
		name string
		req  *pplx.SearchRequest
		want float64
	}{
		{"default is web", &pplx.SearchRequest{Query: pplx.Query{"a"}}, 0.005},
		{"web", &pplx.SearchRequest{Query: pplx.Query{"a"}, SearchType: "web"}, 0.005},
		{"fast", &pplx.SearchRequest{Query: pplx.Query{"a"}, SearchType: "fast"}, 0.001},
		{"people at the web price", &pplx.SearchRequest{Query: pplx.Query{"a"}, SearchType: "people"}, 0.005},
		{"multi-query billed once", &pplx.SearchRequest{Query: pplx.Query{"a", "b", "c", "d", "e"}}, 0.005},
		{"nil", nil, 0.005},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pplx.SearchRequestCost(tc.req); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEstimateChatUsage(t *testing.T) {
	user := func(s string) []pplx.Message { return []pplx.Message{{Role: "user", Content: s}} }
	tests := []struct {
		name string
		req  *pplx.ChatRequest
		want pplx.Usage
	}{
		{"nil", nil, pplx.Usage{}},
		{"sonar, 8 chars", &pplx.ChatRequest{Model: "sonar", Messages: user("abcdefgh")},
			pplx.Usage{PromptTokens: 2, CompletionTokens: 400, TotalTokens: 402, SearchContextSize: "low"}},
		{"rounds up", &pplx.ChatRequest{Model: "sonar", Messages: user("abcdefghi")},
			pplx.Usage{PromptTokens: 3, CompletionTokens: 400, TotalTokens: 403, SearchContextSize: "low"}},
		{"counts characters, not bytes", &pplx.ChatRequest{Model: "sonar", Messages: user("ééééüüüü")},
			pplx.Usage{PromptTokens: 2, CompletionTokens: 400, TotalTokens: 402, SearchContextSize: "low"}},
		{"system and user messages", &pplx.ChatRequest{Model: "sonar-pro", Messages: []pplx.Message{
			{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is Go?"}}},
			pplx.Usage{PromptTokens: 5, CompletionTokens: 400, TotalTokens: 405, SearchContextSize: "low"}},
		{"max tokens", &pplx.ChatRequest{Model: "sonar-pro", MaxTokens: 50, Messages: user("abcd"),
			WebSearchOptions: &pplx.WebSearchOptions{SearchContextSize: "high"}},
			pplx.Usage{PromptTokens: 1, CompletionTokens: 50, TotalTokens: 51, SearchContextSize: "high"}},
		{"reasoning", &pplx.ChatRequest{Model: "sonar-reasoning-pro", Messages: user("abcd")},
			pplx.Usage{PromptTokens: 1, CompletionTokens: 1500, TotalTokens: 1501, SearchContextSize: "low"}},
		{"deep research", &pplx.ChatRequest{Model: "sonar-deep-research", Messages: user("abcd")},
			pplx.Usage{PromptTokens: 1, CompletionTokens: 4000, TotalTokens: 4001, SearchContextSize: "low",
				CitationTokens: 20000, ReasoningTokens: 100000, NumSearchQueries: 20}},
		{"deep research with max tokens", &pplx.ChatRequest{Model: "sonar-deep-research", MaxTokens: 1000, Messages: user("abcd")},
			pplx.Usage{PromptTokens: 1, CompletionTokens: 1000, TotalTokens: 1001, SearchContextSize: "low",
				CitationTokens: 20000, ReasoningTokens: 100000, NumSearchQueries: 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pplx.EstimateChatUsage(tc.req); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEstimateCost(t *testing.T) {
	q := strings.Repeat("x", 40) // 10 prompt tokens
	chat := pplx.ChatRequest{Model: "sonar-pro", Messages: []pplx.Message{{Role: "user", Content: q}}}
	tests := []struct {
		name string
		body any
		want float64
	}{
		{"search", &pplx.SearchRequest{Query: pplx.Query{"a"}}, 0.005},
		{"search value", pplx.SearchRequest{Query: pplx.Query{"a"}, SearchType: "fast"}, 0.001},
		// 10*3e-6 + 400*15e-6 + 0.006
		{"sonar-pro", &chat, 0.01203},
		{"chat value", chat, 0.01203},
		// 10*1e-6 + 100*1e-6 + 0.012
		{"sonar high with max tokens", &pplx.ChatRequest{Model: "sonar", MaxTokens: 100, Messages: chat.Messages,
			WebSearchOptions: &pplx.WebSearchOptions{SearchContextSize: "high"}}, 0.01211},
		// 10*2e-6 + 4000*8e-6 + 20000*2e-6 + 100000*3e-6 + 20*0.005
		{"deep research", &pplx.ChatRequest{Model: "sonar-deep-research", Messages: chat.Messages}, 0.47202},
		{"unknown model", &pplx.ChatRequest{Model: "llama-3.1-sonar-small-128k-online", Messages: chat.Messages}, 0},
		{"nil search", (*pplx.SearchRequest)(nil), 0},
		{"nil chat", (*pplx.ChatRequest)(nil), 0},
		{"nil", nil, 0},
		{"other type", "a string", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pplx.EstimateCost(tc.body); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestChatPrices(t *testing.T) {
	if ok, _ := regexp.MatchString(`^20\d\d-(0[1-9]|1[0-2])$`, pplx.PricesAsOf); !ok {
		t.Errorf("got PricesAsOf %q, want YYYY-MM", pplx.PricesAsOf)
	}
	ps := pplx.ChatPrices()
	var models []string
	for _, p := range ps {
		models = append(models, p.Model)
		if p.InputPerM <= 0 || p.OutputPerM <= 0 {
			t.Errorf("%s: got token prices %v/%v, want both positive", p.Model, p.InputPerM, p.OutputPerM)
		}
		got, ok := pplx.LookupChatPrice(p.Model)
		if !ok || got != p {
			t.Errorf("LookupChatPrice(%q) = %+v, %v; want %+v, true", p.Model, got, ok, p)
		}
	}
	if got, want := strings.Join(models, ","), "sonar,sonar-pro,sonar-reasoning-pro,sonar-deep-research"; got != want {
		t.Errorf("got models %s, want %s", got, want)
	}
	ps[0].InputPerM = 1000
	if p, _ := pplx.LookupChatPrice(ps[0].Model); p.InputPerM == 1000 {
		t.Error("changing the slice ChatPrices returned changed the table")
	}
	if _, ok := pplx.LookupChatPrice("sonar-reasoning"); ok {
		t.Error("got the removed sonar-reasoning in the table, want it left out")
	}
}

// TestCostMatchesSim checks the price tables against the simulator, which
// bills its answers with the same prices: the cost ChatCost computes from
// the usage of each answer equals the cost the answer reports, and the
// search prices add up to what the simulator billed.
func TestCostMatchesSim(t *testing.T) {
	c, s := newSim(t, sim.Config{})
	questions := []string{"What is Go?", "Summarise the latest news about ASML in three bullet points.", "héllo wörld ünïcode"}
	var sum float64
	for _, p := range pplx.ChatPrices() {
		for _, size := range []string{"", "low", "medium", "high"} {
			for i, q := range questions {
				req := pplx.ChatRequest{Model: p.Model, Stream: i == 1,
					Messages: []pplx.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: q}}}
				if size != "" {
					req.WebSearchOptions = &pplx.WebSearchOptions{SearchContextSize: size}
				}
				t.Run(fmt.Sprintf("%s/%s/%d", p.Model, size, i), func(t *testing.T) {
					resp, _, err := c.Chat(t.Context(), &req)
					if err != nil {
						t.Fatalf("got error %v, want nil", err)
					}
					if resp.Usage == nil || resp.Usage.Cost == nil {
						t.Fatalf("got no usage.cost from the simulator: %+v", resp.Usage)
					}
					got, ok := pplx.ChatCost(&req, *resp.Usage)
					if !ok {
						t.Fatal("got ok false, want true")
					}
					if got != *resp.Usage.Cost {
						t.Errorf("usage %+v: got cost %+v\nwant (the simulator's) %+v", *resp.Usage, got, *resp.Usage.Cost)
					}
					sum += got.TotalCost
				})
			}
		}
	}
	for _, req := range []pplx.SearchRequest{
		{Query: pplx.Query{"acme"}},
		{Query: pplx.Query{"acme", "globex"}, SearchType: "fast"},
		{Query: pplx.Query{"initech"}, SearchType: "web", MaxResults: 3},
	} {
		if _, _, err := c.Search(t.Context(), &req); err != nil {
			t.Fatalf("search %v: got error %v, want nil", req.Query, err)
		}
		sum += pplx.SearchRequestCost(&req)
	}
	if got := s.Stats().CostUSD; math.Abs(got-sum) > 1e-12 {
		t.Errorf("got the simulator's billed total %v, want %v (the sum of our prices)", got, sum)
	}
}
