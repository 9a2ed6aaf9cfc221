package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
)

// modeFlags sets the request parameters of j's mode from the flags and
// returns the template flag of the mode and its text. Problems go to bad.
// Each mode's flags are checked in its own function below: a new mode adds
// one case here.
func modeFlags(f *runFlags, j *pipeline.Job, bad func(string, ...any)) (what, text string) {
	var only []modeOnly
	switch pipeline.Mode(f.mode) {
	case pipeline.ModeSearch:
		what, text = "--query", f.query
		j.Search = searchRequest(f)
	case pipeline.ModeAgent:
		what, text = "--prompt", f.prompt
		j.Agent = agentRequest(f, bad)
		only = append(only, modeOnly{"--query", f.query != ""}, modeOnly{"--max-tokens (agent mode takes --max-output-tokens)", f.maxTokens != 0})
	case pipeline.ModeChat:
		what, text = "--prompt", f.prompt
		j.Chat = chatRequest(f, bad)
	default:
		bad("--mode must be search, agent or chat, not %q", f.mode)
		return "", ""
	}
	// Flags of one mode given to another.
	m := pipeline.Mode(f.mode)
	if m != pipeline.ModeSearch {
		only = append(only, modeOnly{"--query", f.query != ""}, modeOnly{"--max-results", f.maxResults != 0})
		j.Schema, j.SchemaRetries = schemaFlags(f, bad)
	} else {
		only = append(only, modeOnly{"--schema", f.schema != ""})
		only = append(only, modeOnly{"--prompt", f.prompt != ""}, modeOnly{"--system", f.system != ""},
			modeOnly{"--model", f.model != ""}, modeOnly{"--stream", f.stream}, modeOnly{"--max-tokens", f.maxTokens != 0},
			modeOnly{"--temperature", f.temperature != -1}, modeOnly{"--response-format", f.responseFormat != ""})
	}
	if m != pipeline.ModeAgent {
		only = append(only, modeOnly{"--preset", f.preset != ""}, modeOnly{"--models", f.models != ""},
			modeOnly{"--background", f.background}, modeOnly{"--no-search", f.noSearch},
			modeOnly{"--search-after", f.searchAfter != ""}, modeOnly{"--search-before", f.searchBefore != ""},
			modeOnly{"--max-search-results", f.maxSearchResults != 0}, modeOnly{"--fetch-url", f.fetchURL},
			modeOnly{"--max-output-tokens", f.maxOutputTokens != 0}, modeOnly{"--reasoning-effort", f.reasoningEffort != ""})
	}
	seen := map[string]bool{}
	for _, o := range only {
		if o.set && !seen[o.flag] {
			seen[o.flag] = true
			bad("%s does not apply to --mode %s", o.flag, f.mode)
		}
	}
	if text == "" {
		bad("%s is required in --mode %s", what, f.mode)
	}
	return what, text
}

// schemaFlags reads --schema: a file, or (from a job file's schema:
// mapping) the schema's JSON itself.
func schemaFlags(f *runFlags, bad func(string, ...any)) (*pipeline.Schema, int) {
	if f.schema == "" {
		return nil, 0
	}
	if f.responseFormat != "" {
		bad("give --schema or --response-format, not both (--schema sends its own response_format)")
	}
	if f.schemaRetries < 0 {
		bad("--schema-retries must be at least 0")
	}
	name, raw := f.schema, []byte(f.schema)
	if t := strings.TrimSpace(f.schema); !strings.HasPrefix(t, "{") {
		b, err := os.ReadFile(f.schema)
		if err != nil {
			bad("--schema: %v", err)
			return nil, 0
		}
		raw = b
	} else {
		name = "schema"
		if f.config != "" {
			name = f.config + " (schema)"
		}
	}
	s, err := pipeline.CompileSchema(name, raw)
	if err != nil {
		bad("--schema: %v", err)
		return nil, 0
	}
	return s, f.schemaRetries
}

// modeOnly is a flag that only some modes take, and whether it was set.
type modeOnly struct {
	flag string
	set  bool
}

func searchRequest(f *runFlags) pplx.SearchRequest {
	return pplx.SearchRequest{
		MaxResults:          f.maxResults,
		SearchDomainFilter:  splitList(f.searchDomainFilter),
		SearchRecencyFilter: f.searchRecencyFilter,
		SearchContextSize:   f.searchContextSize,
	}
}

func chatRequest(f *runFlags, bad func(string, ...any)) pplx.ChatRequest {
	req := pplx.ChatRequest{
		Model:               f.model,
		Stream:              f.stream,
		MaxTokens:           f.maxTokens,
		SearchDomainFilter:  splitList(f.searchDomainFilter),
		SearchRecencyFilter: f.searchRecencyFilter,
	}
	if f.responseFormat != "" {
		if !json.Valid([]byte(f.responseFormat)) {
			bad("--response-format is not valid JSON")
		} else {
			req.ResponseFormat = json.RawMessage(f.responseFormat)
		}
	}
	if f.temperature != -1 {
		t := f.temperature
		req.Temperature = &t
	}
	if f.searchContextSize != "" {
		req.WebSearchOptions = &pplx.WebSearchOptions{SearchContextSize: f.searchContextSize}
	}
	return req
}

// Limits of the Agent API that it does not check itself, or checks only
// after a request was sent.
const (
	maxAgentModels  = 5
	maxSearchDomain = 20
	maxAgentResults = 50
)

// agentRequest builds the agent request of every row (without its input)
// from the flags, sending only what the user set: the API rejects unknown
// fields.
func agentRequest(f *runFlags, bad func(string, ...any)) pplx.AgentRequest {
	var req pplx.AgentRequest
	models := splitList(f.models)
	set := 0
	for _, given := range []bool{f.model != "", f.preset != "", f.models != ""} {
		if given {
			set++
		}
	}
	if set > 1 {
		bad("give one of --model, --preset and --models, not several")
	}
	switch {
	case f.preset != "":
		if pplx.PresetName(f.preset) == "" {
			bad("--preset must be one of %s, not %q", strings.Join(pplx.Presets(), ", "), f.preset)
		}
		req.Preset = f.preset
	case f.models != "":
		if len(models) > maxAgentModels {
			bad("--models lists %d models; the Agent API takes at most %d", len(models), maxAgentModels)
		}
		for _, m := range models {
			checkAgentModel("--models", m, bad)
		}
		req.Models = models
	default:
		req.Model = f.model
		if req.Model == "" {
			req.Model = pipeline.DefaultAgentModel
		}
		checkAgentModel("--model", req.Model, bad)
	}
	for _, m := range append([]string{req.Model}, req.Models...) {
		if strings.HasPrefix(m, "anthropic/") && f.maxOutputTokens == 0 {
			bad("%s needs --max-output-tokens: the Agent API refuses Anthropic models without max_output_tokens", m)
			break
		}
	}
	if f.maxOutputTokens < 0 {
		bad("--max-output-tokens must be at least 1")
	}
	req.MaxOutputTokens = f.maxOutputTokens
	if e := f.reasoningEffort; e != "" {
		switch e {
		case "minimal", "low", "medium", "high", "xhigh":
			req.Reasoning = &pplx.Reasoning{Effort: e}
		default:
			bad("--reasoning-effort must be minimal, low, medium, high or xhigh, not %q", e)
		}
	}
	if f.temperature != -1 {
		t := f.temperature
		req.Temperature = &t
	}
	if f.responseFormat != "" {
		var rf pplx.ResponseFmt
		if err := json.Unmarshal([]byte(f.responseFormat), &rf); err != nil || rf.Type == "" {
			bad(`--response-format must be JSON such as {"type":"json_schema","json_schema":{"name":"x","schema":{...}}}`)
		} else {
			req.ResponseFormat = &rf
		}
	}
	req.Stream, req.Background = f.stream, f.background
	if f.stream && f.background {
		bad("--stream and --background do not go together: a background run is polled, not streamed")
	}

	tool, filtered := webSearchTool(f, bad)
	switch {
	case f.noSearch && filtered:
		bad("--no-search turns web search off: the search options given with it would do nothing")
	case f.noSearch && req.Preset != "":
		bad("--no-search needs --model or --models: a preset brings its own web search")
	case f.noSearch:
	case req.Preset != "" && !filtered:
		// A preset brings its own tools; an explicit list may replace them.
	case req.Preset != "":
		req.Tools = append(req.Tools, tool)
	default:
		// An explicit model searches only when asked: force it, so that
		// answers are grounded like the old sonar's.
		req.Tools = append(req.Tools, tool)
		req.ToolChoice = &pplx.ToolChoice{Type: pplx.ToolWebSearch}
	}
	if f.fetchURL {
		req.Tools = append(req.Tools, pplx.AgentTool{Type: pplx.ToolFetchURL})
	}
	return req
}

// checkAgentModel refuses a model name the Agent API would refuse: a
// retired Sonar name (naming its replacement) or a name that is not
// provider/name.
func checkAgentModel(flag, m string, bad func(string, ...any)) {
	if repl, ok := pplx.SonarReplacement(m); ok {
		bad("%s %s: Sonar models were retired with Sonar chat completions on 2026-09-27, and the Agent API refuses their names; "+
			"Perplexity's migration guide maps %s to %s", flag, m, m, repl)
		return
	}
	if p := pplx.PresetName(m); p != "" {
		bad("%s %s: %s is a preset; give it as --preset %s", flag, m, m, p)
		return
	}
	provider, name, ok := strings.Cut(m, "/")
	if !ok || provider == "" || name == "" || strings.ContainsAny(m, " \t") {
		bad("%s %q: Agent API models are named provider/name, such as %s", flag, m, pipeline.DefaultAgentModel)
	}
}

// webSearchTool returns the web_search tool with the search options of
// the flags, and whether any option was set.
func webSearchTool(f *runFlags, bad func(string, ...any)) (pplx.AgentTool, bool) {
	t := pplx.AgentTool{Type: pplx.ToolWebSearch}
	var fl pplx.SearchFilters
	filtered := false
	if domains := splitList(f.searchDomainFilter); len(domains) > 0 {
		filtered = true
		if len(domains) > maxSearchDomain {
			bad("--search-domains lists %d domains; the Agent API takes at most %d", len(domains), maxSearchDomain)
		}
		deny := 0
		for _, d := range domains {
			host := strings.TrimPrefix(d, "-")
			if host != d {
				deny++
			}
			if strings.Contains(host, "://") || strings.ContainsAny(host, "/ ") || host == "" {
				bad("--search-domains: %q is not a domain name (give example.com, without a scheme or path)", d)
			} else if _, err := url.Parse("https://" + host); err != nil {
				bad("--search-domains: %q is not a domain name", d)
			}
		}
		if deny > 0 && deny < len(domains) {
			bad("--search-domains mixes domains to search and domains to exclude (with -): give one kind or the other")
		}
		fl.SearchDomainFilter = domains
	}
	if r := f.searchRecencyFilter; r != "" {
		filtered = true
		switch r {
		case "hour", "day", "week", "month", "year":
			fl.SearchRecencyFilter = r
		default:
			bad("--search-recency must be hour, day, week, month or year, not %q", r)
		}
		if f.searchAfter != "" || f.searchBefore != "" {
			bad("--search-recency cannot be combined with --search-after or --search-before")
		}
	}
	var after, before time.Time
	for _, d := range []struct {
		flag, val string
		dst       *string
		t         *time.Time
	}{{"--search-after", f.searchAfter, &fl.SearchAfterDateFilter, &after}, {"--search-before", f.searchBefore, &fl.SearchBeforeDateFilter, &before}} {
		if d.val == "" {
			continue
		}
		filtered = true
		t, err := time.Parse("01/02/2006", d.val)
		if err != nil {
			bad("%s %q: want a date as MM/DD/YYYY, such as 03/31/2026", d.flag, d.val)
			continue
		}
		*d.dst, *d.t = d.val, t
	}
	if !after.IsZero() && !before.IsZero() && !after.Before(before) {
		bad("--search-after %s is not before --search-before %s", f.searchAfter, f.searchBefore)
	}
	if fl.SearchDomainFilter != nil || fl.SearchRecencyFilter != "" || fl.SearchAfterDateFilter != "" || fl.SearchBeforeDateFilter != "" {
		t.Filters = &fl
	}
	if s := f.searchContextSize; s != "" {
		filtered = true
		if s != "low" && s != "medium" && s != "high" {
			bad("--search-context-size must be low, medium or high, not %q", s)
		}
		t.SearchContextSize = s
	}
	if n := f.maxSearchResults; n != 0 {
		filtered = true
		if n < 1 || n > maxAgentResults {
			bad("--max-search-results must be between 1 and %d", maxAgentResults)
		}
		t.MaxResults = n
	}
	return t, filtered
}

// agentCommand returns the `pplx-batch run --mode agent` command that
// does what a chat job on Perplexity did, for the message that tells
// Sonar chat was retired.
func agentCommand(f *runFlags) string {
	model := f.model
	if model == "" {
		model = pipeline.DefaultChatModel
	}
	repl, ok := pplx.SonarReplacement(model)
	if !ok {
		repl = "--model perplexity/sonar"
	}
	parts := []string{"pplx-batch run --mode agent", repl}
	for _, a := range []struct{ flag, val string }{
		{"--input", f.input}, {"--output", f.output}, {"--prompt", f.prompt}, {"--system", f.system},
	} {
		if a.val != "" {
			parts = append(parts, a.flag+" "+shellQuote(a.val))
		}
	}
	if f.stream {
		parts = append(parts, "--stream")
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == ',' || r == '=' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// onPerplexity reports whether base is Perplexity's own API host.
func onPerplexity(base string) bool {
	u, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Hostname(), "api.perplexity.ai")
}

// errRetiredChat explains a job stopped by the API's answer that Sonar
// chat completions were retired.
func errRetiredChat(f *runFlags) error {
	return fmt.Errorf("Perplexity retired Sonar chat completions on 2026-09-27 and now answers --mode chat with 403; "+
		"use the Agent API instead: %s", agentCommand(f))
}
