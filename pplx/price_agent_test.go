package pplx

import (
	"math"
	"testing"
)

func TestEstimateAgentCost(t *testing.T) {
	web := []AgentTool{{Type: ToolWebSearch}}
	tests := []struct {
		name   string
		req    *AgentRequest
		want   float64
		wantOK bool
	}{
		{"nil", nil, 0, false},
		// 8 input characters -> 2 tokens, + 3000 search context tokens at
		// $0.25/M; 400 output tokens at $2.50/M; one search at $2.50/1000.
		{"sonar with search", &AgentRequest{Model: "perplexity/sonar", Input: "12345678", Tools: web},
			3002*0.25/1e6 + 400*2.5/1e6 + 0.0025, true},
		{"sonar without tools, max output", &AgentRequest{Model: "perplexity/sonar", Input: "1234", MaxOutputTokens: 100},
			1*0.25/1e6 + 100*2.5/1e6, true},
		{"fetch_url fee", &AgentRequest{Model: "openai/gpt-6-luna", Input: "1234", Tools: []AgentTool{{Type: ToolFetchURL}}},
			1*0.10/1e6 + 400*0.5/1e6 + 0.0005, true},
		{"fallback list prices its first model", &AgentRequest{Models: []string{"perplexity/sonar", "x/y"}, Input: "1234"},
			1*0.25/1e6 + 400*2.5/1e6, true},
		{"preset", &AgentRequest{Preset: "fast", Input: "x"}, 0.00125, true},
		{"old preset name", &AgentRequest{Preset: "pro-search", Input: "x"}, 0.004, true},
		{"preset without an observed cost", &AgentRequest{Preset: "high", Input: "x"}, 0, false},
		{"unknown model", &AgentRequest{Model: "anthropic/claude-opus-5-5", Input: "x"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := EstimateAgentCost(tt.req)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
			if tt.req != nil && EstimateCost(tt.req) != got {
				t.Errorf("EstimateCost = %v, want %v", EstimateCost(tt.req), got)
			}
		})
	}
}

func TestSonarReplacement(t *testing.T) {
	tests := []struct{ model, want string }{
		{"sonar", "--model perplexity/sonar"},
		{"Sonar-Pro", "--preset low"},
		{"sonar-reasoning-pro", "--preset low"},
		{"sonar-deep-research", "--preset medium"},
		{"perplexity/sonar", ""},
		{"gpt-4o", ""},
	}
	for _, tt := range tests {
		got, ok := SonarReplacement(tt.model)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("SonarReplacement(%q) = %q, %v; want %q", tt.model, got, ok, tt.want)
		}
	}
}

func TestPresetName(t *testing.T) {
	for in, want := range map[string]string{"fast": "fast", "xhigh": "xhigh", "deep-research": "medium", "advanced-deep-research": "high", "sonar": ""} {
		if got := PresetName(in); got != want {
			t.Errorf("PresetName(%q) = %q, want %q", in, got, want)
		}
	}
}
