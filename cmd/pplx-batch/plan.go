package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sink"
	"github.com/pplx-batch/pplx-batch/source"
)

const planUsage = `Usage: pplx-batch plan [flags]

Checks a job without calling the API and without an API key: validates the
flags (the same as pplx-batch run takes, from the command line or --config),
checks the template against the input's columns, renders the first three
requests, counts the rows (reading the whole input) and estimates the cost
and the duration at the rate limit.

  pplx-batch plan --config configs/nightly-search.yaml
  pplx-batch plan --config job.yaml --json | jq .cost

The cost is an estimate from the price table in the pplx package (its date is
printed): search requests at their fixed price; chat requests at one token
per four characters of the messages plus max_tokens (or a default per model)
completion tokens, plus the request fee; agent runs of a model at its token
prices (one token per four characters of the input, about 3,000 tokens of
search results per web search, max_output_tokens or 400 output tokens) plus
the tool fees, and runs of a preset at the cost observed per run. The duration
assumes the rate of --rps/--rpm when set, else Perplexity's documented limit:
50 requests/s for search, and for agent and chat the requests per minute of
usage tier 0 (--tier).

Exit codes: 0 the job is valid; 2 it is not (the reasons are on stderr);
130 interrupted.

Flags of plan:
  --json
    	print the plan as one JSON object instead of text
  --tier N
    	the account's usage tier, 0-5, for the documented agent and chat rate limits (default 0)

Flags shared with run:
`

// planSample is how many rendered requests plan shows; for JSONL input,
// whose columns are per row, these first rows also check the template.
const planSample = 3

// planExamples is how many malformed or unrenderable rows plan lists.
const planExamples = 5

// chatRPMByTier is the documented requests-per-minute limit of each chat
// model by usage tier 0-5 (perplexity-api.md §4.2, about 2026).
var chatRPMByTier = map[string][6]float64{
	"sonar":               {50, 150, 500, 1000, 4000, 4000},
	"sonar-pro":           {50, 150, 500, 1000, 4000, 4000},
	"sonar-reasoning-pro": {50, 150, 500, 1000, 4000, 4000},
	"sonar-deep-research": {5, 10, 20, 40, 60, 100},
}

// agentRPMByTier is the documented request limit of the Agent API, per
// organization across all models, by usage tier 0-5 (agent-api.md §7; the
// response headers of a real answer said 50 at tier 0).
var agentRPMByTier = [6]float64{50, 150, 500, 1000, 2000, 2000}

// searchRPS is the documented Search API limit, the same on every tier.
const searchRPS = 50

// planReport is what plan found; --json prints it as is.
type planReport struct {
	Mode         string   `json:"mode"`
	Model        string   `json:"model,omitempty"`
	Endpoint     string   `json:"endpoint"`
	URL          string   `json:"url"`
	Input        string   `json:"input"`
	InputFormat  string   `json:"input_format"`
	Output       string   `json:"output"`
	OutputFormat string   `json:"output_format"`
	Errors       string   `json:"errors,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	Columns      []string `json:"columns"`
	// DataColumns are the columns of the structured answers (--schema),
	// with their Parquet types.
	DataColumns []string `json:"data_columns,omitempty"`

	Rows struct {
		// Total counts every row of the input, or of the shard with
		// --shard; Requests those that render to a request; RenderFailed
		// and Malformed those that would go to the errors file without a
		// request. Shard is "I/N" with --shard.
		Total        int64  `json:"total"`
		Shard        string `json:"shard,omitempty"`
		Requests     int64  `json:"requests"`
		RenderFailed int64  `json:"render_failed"`
		Malformed    int64  `json:"malformed"`
	} `json:"rows"`
	// Requests are the first rendered requests.
	Requests []plannedRequest `json:"requests"`
	// Problems lists the first rows that would fail without a request.
	Problems []rowProblem `json:"problems,omitempty"`

	Cost struct {
		// Known is false when the model is not in the price table.
		Known         bool    `json:"known"`
		TotalUSD      float64 `json:"total_usd"`
		PerRequestUSD float64 `json:"per_request_usd"`
		PricesAsOf    string  `json:"prices_as_of"`
		Basis         string  `json:"basis"`
		MaxCostUSD    float64 `json:"max_cost_usd,omitempty"`
	} `json:"cost"`
	Rate struct {
		RequestsPerS float64 `json:"requests_per_s"`
		Source       string  `json:"source"`
		Tier         int     `json:"tier"`
	} `json:"rate"`
	DurationS float64  `json:"duration_s"`
	Warnings  []string `json:"warnings"`
}

type plannedRequest struct {
	Row    int64           `json:"row"`
	ID     string          `json:"id"`
	Method string          `json:"method"`
	URL    string          `json:"url"`
	Body   json.RawMessage `json:"body"`
}

type rowProblem struct {
	Row   int64  `json:"row"`
	Error string `json:"error"`
}

func planCommand(ctx context.Context, args []string, e env) int {
	var f runFlags
	var asJSON bool
	var tier int
	fs := newRunFlagSet(&f, e.stderr)
	fs.BoolVar(&asJSON, "json", false, "print the plan as one JSON object instead of text")
	fs.IntVar(&tier, "tier", 0, "the account's usage `tier`, 0-5, for the documented agent and chat rate limits")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, planUsage)
		// The shared flags with their defaults, from a flag set that has
		// not parsed anything.
		printDefaults(e.stderr, newRunFlagSet(&runFlags{}, io.Discard))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "pplx-batch plan: unexpected arguments %q (flags come as --name value)\n", fs.Args())
		return exitUsage
	}
	if f.config != "" {
		if err := applyConfig(fs, f.config, e.getenv); err != nil {
			fmt.Fprintf(e.stderr, "pplx-batch plan: %v\n", err)
			return exitUsage
		}
	}
	if tier < 0 || tier > 5 {
		fmt.Fprintf(e.stderr, "pplx-batch plan: --tier must be between 0 and 5, not %d\n", tier)
		return exitUsage
	}
	if _, _, _, err := newLogger(io.Discard, f.logLevel, f.logFormat); err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch plan: %v\n", err)
		return exitUsage
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if e.signals != nil {
		go func() {
			select {
			case <-e.signals:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	rep, err := makePlan(ctx, &f, e, tier)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "pplx-batch plan: interrupted")
			return exitInterrupted
		}
		fmt.Fprintf(e.stderr, "pplx-batch plan: %v\n", err)
		return exitUsage
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(e.stderr, "pplx-batch plan: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	printPlan(e.stdout, rep)
	return exitOK
}

// makePlan validates the job, reads the whole input and estimates the
// run. An error means the job is not valid (or ctx ended).
func makePlan(ctx context.Context, f *runFlags, e env, tier int) (*planReport, error) {
	j, err := prepare(f, e, false)
	if err != nil {
		return nil, err
	}
	src, err := openSource(f.input, j.inFormat, e)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := checkTemplate(j.pipe, src.Columns()); err != nil {
		return nil, err
	}

	rep := &planReport{
		Mode: f.mode, Input: f.input, Output: f.output, OutputFormat: j.outFormat,
		Errors: j.errorsPath, Summary: f.summary, Columns: src.Columns(),
		Requests: []plannedRequest{}, Warnings: []string{},
	}
	rep.Rows.Shard = j.pipe.Shard.String()
	rep.InputFormat = j.inFormat
	if rep.InputFormat == "" {
		rep.InputFormat = formatFromName(f.input)
	}
	rep.Endpoint = pplx.SearchPath
	switch j.pipe.Mode {
	case pipeline.ModeChat:
		rep.Endpoint = pplx.ChatPath
		rep.Model = j.pipe.Chat.Model
		if rep.Model == "" {
			rep.Model = pipeline.DefaultChatModel
		}
	case pipeline.ModeAgent:
		rep.Endpoint = pplx.AgentPath
		a := j.pipe.Agent
		switch {
		case a.Preset != "":
			rep.Model = "preset " + a.Preset
		case len(a.Models) > 0:
			rep.Model = strings.Join(a.Models, ", ")
		default:
			rep.Model = a.Model
		}
	}
	rep.URL = strings.TrimSuffix(j.baseURL, "/") + rep.Endpoint
	if sch := j.pipe.Schema; sch != nil {
		ds, err := sink.NewDataSchema(sch.JSON)
		if err != nil {
			return nil, usagef("--schema: %v", err)
		}
		rep.DataColumns = ds.Columns()
		for _, c := range ds.Text() {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("--schema: %s has no column type (oneOf, anyOf, free additionalProperties, a list of types...): it is kept as JSON text", c))
		}
	}
	warn := func(format string, a ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, a...)) }

	// For JSONL, whose columns are per row, the first rows stand for the
	// input: a template that fails on every one of them does not fit it.
	jsonl := src.Columns() == nil
	var sampleCols []string
	seenCol := map[string]bool{}
	var sampled, sampleFailed int
	var firstErr error

	var cost, promptTokens float64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := src.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *source.ParseError
		if err != nil && !errors.As(err, &pe) {
			return nil, usageError{err}
		}
		if !j.pipe.Shard.Takes(rec.Row) {
			continue
		}
		rep.Rows.Total++
		if err != nil {
			rep.Rows.Malformed++
			if len(rep.Problems) < planExamples {
				rep.Problems = append(rep.Problems, rowProblem{Row: rec.Row, Error: oneLineErr(err)})
			}
			continue
		}
		req, rerr := j.pipe.Request(rec)
		if jsonl && sampled < planSample {
			sampled++
			for _, c := range rec.Columns {
				if !seenCol[c] {
					seenCol[c] = true
					sampleCols = append(sampleCols, c)
				}
			}
			if rerr != nil {
				sampleFailed++
				if firstErr == nil {
					firstErr = rerr
				}
			}
			if sampleFailed == planSample {
				return nil, sampleError(firstErr, sampleCols)
			}
		}
		if rerr != nil {
			rep.Rows.RenderFailed++
			if len(rep.Problems) < planExamples {
				rep.Problems = append(rep.Problems, rowProblem{Row: rec.Row, Error: oneLineErr(rerr)})
			}
			continue
		}
		rep.Rows.Requests++
		body := req.Body
		cost += pplx.EstimateCost(body)
		if chat, ok := body.(*pplx.ChatRequest); ok {
			promptTokens += float64(pplx.EstimateChatUsage(chat).PromptTokens)
		}
		if len(rep.Requests) < planSample {
			b, err := marshalBody(body)
			if err != nil {
				return nil, fmt.Errorf("render row %d: %w", rec.Row, err)
			}
			rep.Requests = append(rep.Requests, plannedRequest{Row: rec.Row, ID: req.ID, Method: "POST", URL: rep.URL, Body: b})
		}
	}
	if jsonl {
		if sampled > 0 && sampleFailed == sampled {
			return nil, sampleError(firstErr, sampleCols)
		}
		rep.Columns = sampleCols
	}
	if rep.Columns == nil {
		rep.Columns = []string{}
	}

	// Cost.
	rep.Cost.PricesAsOf = pplx.PricesAsOf
	rep.Cost.MaxCostUSD = f.maxCost
	rep.Cost.TotalUSD = cost
	if rep.Rows.Requests > 0 {
		rep.Cost.PerRequestUSD = cost / float64(rep.Rows.Requests)
	}
	rep.Cost.Known = true
	switch j.pipe.Mode {
	case pipeline.ModeAgent:
		rep.Cost.Known, rep.Cost.Basis = agentBasis(&j.pipe.Agent)
		if !rep.Cost.Known {
			rep.Cost.TotalUSD, rep.Cost.PerRequestUSD = 0, 0
			warn("no cost estimate for %s: the price list of %s has no price for it; a run counts the cost the API bills", rep.Model, pplx.PricesAsOf)
		}
	case pipeline.ModeChat:
		avgPrompt := 0.0
		if rep.Rows.Requests > 0 {
			avgPrompt = promptTokens / float64(rep.Rows.Requests)
		}
		rep.Cost.Known, rep.Cost.Basis = chatBasis(&j.pipe.Chat, avgPrompt)
		if !rep.Cost.Known {
			rep.Cost.TotalUSD, rep.Cost.PerRequestUSD = 0, 0
		}
		if _, ok := pplx.LookupChatPrice(rep.Model); !ok {
			warn("model %q is not in the price table of %s: no cost estimate (the API may reject it)", rep.Model, pplx.PricesAsOf)
		}
		if onPerplexity(j.baseURL) {
			warn("Perplexity retired Sonar chat completions on 2026-09-27: %s answers --mode chat with 403. Use the Agent API: %s",
				j.baseURL, agentCommand(f))
		}
	default:
		rep.Cost.Basis = searchBasis(&j.pipe.Search)
	}
	if s := f.searchContextSize; s != "" && s != "low" && s != "medium" && s != "high" {
		warn("--search-context-size %q is not low, medium or high: the API will reject the requests", s)
	}
	if f.maxCost > 0 && rep.Cost.Known && rep.Rows.Requests > 0 && rep.Cost.TotalUSD > f.maxCost {
		n := int64(math.Floor(f.maxCost / rep.Cost.PerRequestUSD))
		warn("the estimate %s passes --max-cost %s: the run would stop (exit 3) after about %d of %d requests",
			usdString(rep.Cost.TotalUSD), usdString(f.maxCost), n, rep.Rows.Requests)
	}

	// Rate and duration.
	rep.Rate.Tier = tier
	rep.Rate.RequestsPerS, rep.Rate.Source = planRate(j, rep.Model, tier)
	if rep.Rate.RequestsPerS > 0 {
		rep.DurationS = float64(rep.Rows.Requests) / rep.Rate.RequestsPerS
	}

	// What would make the run fail or behave unexpectedly.
	if rep.Rows.Total == 0 {
		warn("the input has no rows")
	}
	if bad := rep.Rows.Malformed + rep.Rows.RenderFailed; bad > 0 {
		warn("%d of %d rows would fail without a request (they go to the errors file)", bad, rep.Rows.Total)
		pj := j.pipe
		if pj.AbortAfterFailures > 0 && bad >= pj.AbortAfterFailures {
			warn("--max-failures %s would abort the run (exit 3)", f.maxFailures)
		} else if pj.MaxFailureRate > 0 && rep.Rows.Total >= pipeline.MinRowsForRate && float64(bad) > pj.MaxFailureRate*float64(rep.Rows.Total) {
			warn("--max-failures %s would probably abort the run (exit 3)", f.maxFailures)
		}
	}
	if _, err := apiKey(f.apiKeyFile, e.getenv); err != nil {
		warn("%v (run needs a key; plan does not)", err)
	}
	if f.output != "-" && f.output != "" {
		if fi, err := os.Stat(filepath.Dir(f.output)); err != nil || !fi.IsDir() {
			warn("the output folder %s does not exist: run refuses to start until it does", filepath.Dir(f.output))
		}
		if _, err := os.Stat(f.output + ".journal"); err == nil {
			if f.restart {
				warn("%s.journal holds an unfinished run; --restart discards it and starts over", f.output)
			} else {
				warn("%s.journal holds an unfinished run: run resumes it and skips the rows already answered (--restart starts over)", f.output)
			}
		}
	}
	return rep, nil
}

// sampleError is the usage error of a JSONL input whose first rows all
// fail to render.
func sampleError(err error, columns []string) error {
	return usagef("template does not fit the input: %v (the columns of the first rows are: %s)", err, strings.Join(columns, ", "))
}

// marshalBody is the request body as the client sends it, indented.
func marshalBody(body any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	return unescapeHTML(bytes.TrimSpace(b.Bytes())), nil
}

// unescapeHTML turns the \u0026, \u003c and \u003e escapes that
// encoding/json writes for &, < and > back into the characters, for
// reading; the JSON means the same.
func unescapeHTML(js []byte) []byte {
	if !bytes.Contains(js, []byte(`\u00`)) {
		return js
	}
	out := make([]byte, 0, len(js))
	for i := 0; i < len(js); i++ {
		c := js[i]
		if c != '\\' || i+1 >= len(js) {
			out = append(out, c)
			continue
		}
		// An escape sequence: \uXXXX or a backslash and one character.
		if js[i+1] == 'u' && i+6 <= len(js) {
			switch string(js[i+2 : i+6]) {
			case "0026":
				out = append(out, '&')
			case "003c":
				out = append(out, '<')
			case "003e":
				out = append(out, '>')
			default:
				out = append(out, js[i:i+6]...)
			}
			i += 5
			continue
		}
		out = append(out, c, js[i+1])
		i++
	}
	return out
}

// planRate returns the rate the run can reach, in requests per second, and
// where it comes from: the documented limit of the endpoint (and usage
// tier, for chat), or --rps/--rpm when they are lower.
func planRate(j *job, model string, tier int) (float64, string) {
	rps, src := float64(searchRPS), "documented Search API limit, the same on every tier"
	switch j.pipe.Mode {
	case pipeline.ModeAgent:
		rps = agentRPMByTier[tier] / 60
		src = fmt.Sprintf("documented Agent API limit at usage tier %d, per organization across models", tier)
		if tier == 0 {
			src += "; --tier N for yours"
		}
	case pipeline.ModeChat:
		rpm, ok := chatRPMByTier[model]
		src = fmt.Sprintf("documented limit of %s at usage tier %d", model, tier)
		if !ok {
			rpm = chatRPMByTier["sonar"]
			src = fmt.Sprintf("documented limit of sonar at usage tier %d, assumed for %s", tier, model)
		}
		rps = rpm[tier] / 60
		if tier == 0 {
			src += "; --tier N for yours"
		}
	}
	if c := j.limiterConf.RPS; c > 0 && c < rps {
		return c, "the --rps/--rpm ceiling"
	}
	return rps, src
}

// rateString formats a rate per second, or per minute when that reads
// better.
func rateString(rps float64) string {
	if rps >= 1 {
		return strconv.FormatFloat(roundTo(rps, 2), 'f', -1, 64) + " requests/s"
	}
	return strconv.FormatFloat(roundTo(rps*60, 2), 'f', -1, 64) + " requests/min"
}

// searchBasis describes the price a search request is estimated at.
func searchBasis(req *pplx.SearchRequest) string {
	if req.SearchType == "fast" {
		return fmt.Sprintf("Search API (fast): $%g per 1,000 requests", pplx.FastSearchPricePerK)
	}
	return fmt.Sprintf("Search API: $%g per 1,000 requests", pplx.SearchPricePerK)
}

// agentBasis describes the prices and assumptions of an agent estimate;
// false when there is none.
func agentBasis(req *pplx.AgentRequest) (bool, string) {
	probe := *req
	probe.Input = ""
	if _, ok := pplx.EstimateAgentCost(&probe); !ok {
		return false, ""
	}
	if req.Preset != "" {
		return true, fmt.Sprintf("preset %s: the cost observed per run (presets may change model and tools)", req.Preset)
	}
	model := req.Model
	if model == "" && len(req.Models) > 0 {
		model = req.Models[0]
	}
	p, _ := pplx.LookupAgentModelPrice(model)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: $%g in / $%g out per 1M tokens", model, p.InputPerM, p.OutputPerM)
	out := "max_output_tokens"
	if req.MaxOutputTokens <= 0 {
		out = fmt.Sprintf("%d assumed, max_output_tokens unset", pplx.DefaultAgentOutputTokens)
	}
	fmt.Fprintf(&b, "; output tokens: %s", out)
	for _, t := range req.Tools {
		switch t.Type {
		case pplx.ToolWebSearch:
			fmt.Fprintf(&b, "; one web search per request ($%g per 1,000, ~%d tokens of results)", pplx.WebSearchPricePerK, pplx.SearchContextTokens)
		case pplx.ToolFetchURL:
			fmt.Fprintf(&b, "; one fetch_url per request ($%g per 1,000 plus its model pass)", pplx.FetchURLPricePerK)
		}
	}
	return true, b.String()
}

// chatBasis describes the prices and assumptions of a chat estimate;
// false when there is none: the model is not in the price table or the
// search context size is not one of low, medium and high.
func chatBasis(req *pplx.ChatRequest, avgPrompt float64) (bool, string) {
	model := req.Model
	if model == "" {
		model = "sonar"
	}
	p, ok := pplx.LookupChatPrice(model)
	if !ok {
		return false, ""
	}
	size := "low"
	if o := req.WebSearchOptions; o != nil && o.SearchContextSize != "" {
		size = o.SearchContextSize
	}
	ci := contextColumn(size)
	if ci < 0 {
		return false, ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: $%g in / $%g out per 1M tokens", model, p.InputPerM, p.OutputPerM)
	if p.RequestFeePerK[ci] > 0 {
		fmt.Fprintf(&b, " + $%g per 1,000 requests (%s context)", p.RequestFeePerK[ci], size)
	}
	u := pplx.EstimateChatUsage(req)
	completion := "max_tokens"
	if req.MaxTokens <= 0 {
		completion = "assumed, max_tokens unset"
	}
	fmt.Fprintf(&b, "; per request ~%.0f prompt tokens (4 characters each) and %d completion tokens (%s)",
		avgPrompt, u.CompletionTokens, completion)
	if p.ReasoningPerM > 0 {
		fmt.Fprintf(&b, ", assumed %d citation and %d reasoning tokens and %d searches",
			u.CitationTokens, u.ReasoningTokens, u.NumSearchQueries)
	}
	return true, b.String()
}

func contextColumn(size string) int {
	switch size {
	case "low":
		return 0
	case "medium":
		return 1
	case "high":
		return 2
	}
	return -1
}

// formatFromName names the input format the extension implies, for the
// report ("csv" or "jsonl"; "" when it does not tell).
func formatFromName(name string) string {
	n := strings.ToLower(name)
	for _, c := range []string{".gz", ".zst"} {
		n = strings.TrimSuffix(n, c)
	}
	switch filepath.Ext(n) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson":
		return "jsonl"
	}
	return ""
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// usdString formats an amount of USD: in cents from 10 cents up, else
// with the digits it needs (to a millionth).
func usdString(v float64) string {
	if v >= 0.1 || v == 0 {
		return fmt.Sprintf("$%.2f", v)
	}
	return "$" + strconv.FormatFloat(roundTo(v, 6), 'f', -1, 64)
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// durationString formats an estimated duration in seconds.
func durationString(s float64) string {
	if s < 1 {
		return "under a second"
	}
	return "~" + time.Duration(s*float64(time.Second)).Round(time.Second).String()
}

// printPlan writes the report for a person: the rendered requests, then a
// few aligned lines.
func printPlan(w io.Writer, r *planReport) {
	for i, q := range r.Requests {
		fmt.Fprintf(w, "request %d of %d (row %d, id %s)\n", i+1, r.Rows.Requests, q.Row, q.ID)
		fmt.Fprintf(w, "%s %s\n", q.Method, q.URL)
		var b bytes.Buffer
		if json.Indent(&b, q.Body, "", "  ") == nil {
			b.WriteTo(w)
		} else {
			w.Write(q.Body)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "row %d fails: %s\n", p.Row, p.Error)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	job := r.Mode
	if r.Model != "" {
		job += " with " + r.Model
	}
	fmt.Fprintf(tw, "job\t%s: %s (%s) -> %s (%s)\n", job, r.Input, r.InputFormat, r.Output, r.OutputFormat)
	if r.Errors != "" || r.Summary != "" {
		var parts []string
		if r.Errors != "" {
			parts = append(parts, "errors "+r.Errors)
		}
		if r.Summary != "" {
			parts = append(parts, "summary "+r.Summary)
		}
		fmt.Fprintf(tw, "files\t%s\n", strings.Join(parts, ", "))
	}
	cols := strings.Join(r.Columns, ", ")
	if r.InputFormat == "jsonl" {
		cols += " (in the first rows)"
	}
	fmt.Fprintf(tw, "columns\t%s\n", cols)
	for i, c := range r.DataColumns {
		label := ""
		if i == 0 {
			label = "data"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, c)
	}
	where := "the input"
	if r.Rows.Shard != "" {
		where = "shard " + r.Rows.Shard
	}
	fmt.Fprintf(tw, "rows\t%d in %s: %d requests, %d fail to render, %d malformed\n",
		r.Rows.Total, where, r.Rows.Requests, r.Rows.RenderFailed, r.Rows.Malformed)
	if r.Cost.Known {
		fmt.Fprintf(tw, "cost\t~%s in total, ~%s per request (prices as of %s)\n",
			usdString(r.Cost.TotalUSD), usdString(r.Cost.PerRequestUSD), r.Cost.PricesAsOf)
		fmt.Fprintf(tw, "priced\t%s\n", r.Cost.Basis)
	} else {
		fmt.Fprintf(tw, "cost\tunknown: no price for this model or search context size (prices as of %s)\n", r.Cost.PricesAsOf)
	}
	if r.Cost.MaxCostUSD > 0 {
		verdict := "the estimate fits"
		if r.Cost.Known && r.Cost.TotalUSD > r.Cost.MaxCostUSD {
			verdict = "the estimate passes it"
		}
		fmt.Fprintf(tw, "budget\t%s (--max-cost): %s\n", usdString(r.Cost.MaxCostUSD), verdict)
	}
	fmt.Fprintf(tw, "rate\t%s (%s)\n", rateString(r.Rate.RequestsPerS), r.Rate.Source)
	fmt.Fprintf(tw, "duration\t%s at that rate (latency and retries come on top)\n", durationString(r.DurationS))
	tw.Flush()
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
	fmt.Fprintln(w, "the job is valid; no API call was made")
}
