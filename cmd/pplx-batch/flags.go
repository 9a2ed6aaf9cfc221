package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// runFlags holds every flag of `pplx-batch run`.
type runFlags struct {
	config string

	input, inputFormat   string
	output, outputFormat string
	mode                 string
	query, prompt        string
	system, model        string
	preset, models       string
	stream, background   bool
	id                   string
	shard                string

	concurrency int
	rpm, rps    float64
	maxRetries  int
	timeout     time.Duration

	restart       bool
	grace         time.Duration
	maxRetryAfter time.Duration
	maxOutage     time.Duration

	baseURL    string
	apiKeyFile string
	errorsPath string
	summary    string

	logLevel, logFormat string
	progressInterval    time.Duration

	maxCost     float64
	maxFailures string

	sharedLimit string
	jobID       string

	// Request parameters.
	maxResults          int
	searchDomainFilter  string
	searchRecencyFilter string
	searchContextSize   string
	maxTokens           int
	temperature         float64
	responseFormat      string

	// Structured answers.
	schema        string
	schemaRetries int

	// Agent request parameters.
	noSearch         bool
	searchAfter      string
	searchBefore     string
	maxSearchResults int
	fetchURL         bool
	maxOutputTokens  int
	reasoningEffort  string
}

const runUsage = `Usage: pplx-batch run [flags]

Runs one request per input row against the Perplexity API and writes one
output row per input row.

  Search:  pplx-batch run --mode search --input companies.csv --output out.parquet \
             --query '{{.company}} headquarters'
  Agent:   pplx-batch run --mode agent --input questions.jsonl --output answers.parquet \
             --prompt 'Answer in one sentence: {{.question}}' --stream
  Chat:    pplx-batch run --mode chat --base-url https://llm.example/v1 --model gpt-x \
             --input questions.jsonl --output answers.jsonl --prompt '{{.question}}'

Agent mode calls Perplexity's Agent API (POST /v1/agent), by default with
--model perplexity/sonar and web search forced. Perplexity retired Sonar chat
completions on 2026-09-27: --mode chat is for OpenAI-compatible endpoints.

The API key comes from PERPLEXITY_API_KEY (or PPLX_API_KEY) or --api-key-file.
Templates are Go text/template over the row's columns: {{.column}}; a column
whose name is not an identifier is reached with {{index . "column name"}}.

Exit codes: 0 every row ok; 1 some rows failed (see the errors file);
2 usage or configuration error, nothing called; 3 aborted (authentication,
permission, quota, budget, too many failures, Sonar chat retired, or an API
outage longer than --max-outage; resumable); 130 interrupted (output valid).

With --schema FILE, answers are validated against a JSON Schema and land in
the data field as typed columns (Parquet) or one column per property (CSV).
With --shared-limit redis://..., processes on one API key share one rate
limit, and processes of one --job-id one --max-cost and --max-failures;
--shard I/N splits an input between processes.

Flags:
`

func newRunFlagSet(f *runFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		printDefaults(stderr, fs)
	}
	fs.StringVar(&f.config, "config", "", "YAML job file holding any of these flags (flag names as keys); flags given here win")
	fs.StringVar(&f.input, "input", "", "input `PATH`: .csv, .jsonl or .ndjson, optionally .gz or .zst; - is stdin")
	fs.StringVar(&f.inputFormat, "input-format", "", "input `FORMAT` (csv or jsonl) when the extension does not tell")
	fs.StringVar(&f.output, "output", "", "output `PATH`: .jsonl or .parquet; - is JSONL on stdout")
	fs.StringVar(&f.outputFormat, "output-format", "", "output `FORMAT` (jsonl, parquet or csv) when the extension does not tell")
	fs.StringVar(&f.mode, "mode", "search", "`endpoint` each row calls: search, agent or chat")
	fs.StringVar(&f.query, "query", "", "search: query `TEMPLATE`, e.g. '{{.company}} headquarters'")
	fs.StringVar(&f.prompt, "prompt", "", "agent, chat: input `TEMPLATE` (the user message)")
	fs.StringVar(&f.system, "system", "", "agent, chat: system `TEXT` (agent: the instructions)")
	fs.StringVar(&f.system, "instructions", "", "agent, chat: the same as --system")
	fs.StringVar(&f.model, "model", "", "agent: `provider/name` (default perplexity/sonar, web search forced); chat: model name (default sonar)")
	fs.StringVar(&f.preset, "preset", "", "agent: a `preset` instead of a model: fast, low, medium, high or xhigh")
	fs.StringVar(&f.models, "models", "", "agent: comma-separated fallback `list` of up to 5 models, instead of --model")
	fs.BoolVar(&f.stream, "stream", false, "agent, chat: stream the answer over server-sent events")
	fs.BoolVar(&f.background, "background", false, "agent: submit background runs and poll them (for long presets); pending runs resume, never resubmitted")
	fs.StringVar(&f.shard, "shard", "", "`I/N`: take only the input rows whose row number modulo N is I (0 <= I < N), e.g. one pod of N")
	fs.StringVar(&f.id, "id", "", "`COLUMN` that identifies a row (default: the row number)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "most requests in flight (0: automatic)")
	fs.Float64Var(&f.rpm, "rpm", 0, "ceiling of our own in requests per minute (0: learn the server's limit)")
	fs.Float64Var(&f.rps, "rps", 0, "ceiling of our own in requests per second (0: learn the server's limit)")
	fs.IntVar(&f.maxRetries, "max-retries", 5, "retries per row after the first attempt (429, 5xx, network errors)")
	fs.DurationVar(&f.timeout, "timeout", 120*time.Second, "time limit of each attempt")
	fs.DurationVar(&f.maxRetryAfter, "max-retry-after", 120*time.Second, "longest wait a server's Retry-After may ask for before a retry")
	fs.DurationVar(&f.maxOutage, "max-outage", 15*time.Minute, "when every answer is a server error or none, pause and probe the API; give up (exit 3, resumable) after this long")
	fs.BoolVar(&f.restart, "restart", false, "start over: forget the rows an earlier, unfinished run of this output answered")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish")
	fs.StringVar(&f.baseURL, "base-url", "", "API base `URL` (default $PERPLEXITY_BASE_URL or https://api.perplexity.ai)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "read the API key from this `file` instead of the environment")
	fs.StringVar(&f.errorsPath, "errors", "", "errors file `PATH`: one JSONL line per failed row (default: beside the output)")
	fs.StringVar(&f.summary, "summary", "", "write a JSON run summary to this `PATH`")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log `format`: auto (console on a terminal, else JSON), json, console")
	fs.DurationVar(&f.progressInterval, "progress-interval", 10*time.Second, "when stderr is not a terminal, log a JSON progress line this often (0: never)")
	fs.Float64Var(&f.maxCost, "max-cost", 0, "budget in `USD`: stop starting requests before the spend would pass it (exit 3, resumable)")
	fs.StringVar(&f.sharedLimit, "shared-limit", "", "redis://[:password@]host:port/db (or rediss://): processes on one API key share one rate limiter, and processes of one --job-id one --max-cost and --max-failures (default $PPLX_BATCH_SHARED_LIMIT)")
	fs.StringVar(&f.jobID, "job-id", "", "with --shared-limit: the `ID` of the job whose processes share --max-cost and --max-failures (default: a hash of the job's settings, the same for every shard)")
	fs.StringVar(&f.maxFailures, "max-failures", "", "abort (exit 3) when more than `N` rows fail, or more than N% of the finished rows (e.g. 50 or 2%)")
	fs.IntVar(&f.maxResults, "max-results", 0, "search: results per query, 1-20 (0: the API default)")
	fs.StringVar(&f.searchDomainFilter, "search-domain-filter", "", "comma-separated `domains` to search, or to exclude with a - prefix (not both; at most 20)")
	fs.StringVar(&f.searchDomainFilter, "search-domains", "", "the same as --search-domain-filter")
	fs.StringVar(&f.searchRecencyFilter, "search-recency-filter", "", "only sources from the last hour, day, week, month or year")
	fs.StringVar(&f.searchRecencyFilter, "search-recency", "", "the same as --search-recency-filter")
	fs.StringVar(&f.searchAfter, "search-after", "", "agent: only sources published after this `date` (MM/DD/YYYY; not with --search-recency)")
	fs.StringVar(&f.searchBefore, "search-before", "", "agent: only sources published before this `date` (MM/DD/YYYY; not with --search-recency)")
	fs.StringVar(&f.searchContextSize, "search-context-size", "", "how much of the sources the model reads: low, medium or high")
	fs.IntVar(&f.maxSearchResults, "max-search-results", 0, "agent: results per web search, 1-50 (0: the API default)")
	fs.BoolVar(&f.noSearch, "no-search", false, "agent: no web search (an explicit model answers from its own knowledge)")
	fs.BoolVar(&f.fetchURL, "fetch-url", false, "agent: let the model fetch web pages (the fetch_url tool)")
	fs.IntVar(&f.maxOutputTokens, "max-output-tokens", 0, "agent: most output `tokens` (0: the API default; required for anthropic/* models)")
	fs.StringVar(&f.reasoningEffort, "reasoning-effort", "", "agent: reasoning effort: minimal, low, medium, high or xhigh")
	fs.StringVar(&f.schema, "schema", "", "agent, chat: JSON Schema `FILE` of the answers (root an object); valid answers land in data as typed columns")
	fs.IntVar(&f.schemaRetries, "schema-retries", 1, "agent, chat: more requests for a row whose answer does not match --schema")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "chat: most completion tokens (0: the API default)")
	fs.Float64Var(&f.temperature, "temperature", -1, "agent, chat: sampling temperature 0-2 (-1: the API default)")
	fs.StringVar(&f.responseFormat, "response-format", "", "agent, chat: response_format as `JSON`, e.g. a json_schema")
	return fs
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// printDefaults lists the flags of fs GNU-style (--name), with their
// defaults.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "-1" {
			line += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintln(w, line)
	})
}
