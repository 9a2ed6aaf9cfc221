package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

// planJSON runs plan with --json and decodes its report.
func planJSON(t *testing.T, envv map[string]string, args ...string) (planReport, result) {
	t.Helper()
	r := runMain(t, "", envv, append([]string{"plan", "--json"}, args...)...)
	var rep planReport
	if r.code == exitOK {
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
		}
	}
	return rep, r
}

// noRequests fails the test if the simulator saw any request.
func noRequests(t *testing.T, srv *sim.Server) {
	t.Helper()
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}

// TestPlanExampleConfigs runs plan on each example job file from the repo
// root, as `pplx-batch plan --config configs/X.yaml` would, with the key
// in the environment and a simulator as the base URL, and checks that it
// renders three requests, counts the rows, estimates, and calls nothing.
func TestPlanExampleConfigs(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	t.Chdir(filepath.Join("..", ".."))
	tests := []struct {
		config   string
		ext      string // of the output
		rows     int64
		endpoint string
		model    string
		want     []string // in the text output
	}{
		{"configs/nightly-search.yaml", ".parquet", 200, pplx.SearchPath, "",
			[]string{`"query": "Apple chief executive"`, `"search_recency_filter": "week"`, "200 in the input: 200 requests",
				"~$1.00 in total", "$5 per 1,000 requests", "50 requests/s", "~4s", "$2.00 (--max-cost): the estimate fits"}},
		{"configs/enrich-agent.yaml", ".parquet", 40, pplx.AgentPath, "perplexity/sonar",
			[]string{`"model": "perplexity/sonar"`, `"stream": true`, `"max_output_tokens": 300`, "Company: Johnson & Johnson.",
				`"search_recency_filter": "year"`, `"tool_choice": {`, "40 in the input: 40 requests",
				"perplexity/sonar: $0.25 in / $2.5 out per 1M tokens", "one web search per request ($2.5 per 1,000",
				"50 requests/min", "usage tier 0", "~48s"}},
		{"configs/ci-refresh.yaml", ".jsonl", 40, pplx.SearchPath, "",
			[]string{`"query": "What does Johnson & Johnson sell? Answer in two sentences."`, `"-pinterest.com"`,
				"40 in the input: 40 requests", "~$0.20 in total", "$1.00 (--max-cost): the estimate fits"}},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.config), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out"+tc.ext)
			summary := filepath.Join(dir, "summary.json")
			args := []string{"--config", tc.config, "--base-url", ts.URL, "--output", out, "--summary", summary}

			r := runMain(t, "", keyEnv(), append([]string{"plan"}, args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			for i := 1; i <= 3; i++ {
				if want := fmt.Sprintf("request %d of %d", i, tc.rows); !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			if n := strings.Count(r.stdout, "POST "+ts.URL+tc.endpoint+"\n"); n != 3 {
				t.Errorf("got %d rendered requests to %s, want 3:\n%s", n, tc.endpoint, r.stdout)
			}
			for _, want := range append(tc.want, "prices as of "+pplx.PricesAsOf, "no API call was made") {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "warning") {
				t.Errorf("got a warning for an example job, want none:\n%s", r.stdout)
			}

			rep, r := planJSON(t, keyEnv(), args...)
			if r.code != exitOK {
				t.Fatalf("--json: exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			if rep.Rows.Total != tc.rows || rep.Rows.Requests != tc.rows || rep.Rows.Malformed != 0 || rep.Rows.RenderFailed != 0 {
				t.Errorf("got rows %+v, want %d in total, all requests", rep.Rows, tc.rows)
			}
			if len(rep.Requests) != 3 {
				t.Fatalf("got %d requests, want 3", len(rep.Requests))
			}
			for i, q := range rep.Requests {
				if q.Row != int64(i+1) || q.Method != "POST" || q.URL != ts.URL+tc.endpoint || !json.Valid(q.Body) {
					t.Errorf("request %d: got %+v, want row %d, POST %s and a JSON body", i+1, q, i+1, ts.URL+tc.endpoint)
				}
			}
			if rep.Endpoint != tc.endpoint || rep.Model != tc.model {
				t.Errorf("got endpoint %q model %q, want %q %q", rep.Endpoint, rep.Model, tc.endpoint, tc.model)
			}
			if !rep.Cost.Known || rep.Cost.TotalUSD <= 0 || rep.Cost.PricesAsOf != pplx.PricesAsOf {
				t.Errorf("got cost %+v, want a known positive estimate as of %s", rep.Cost, pplx.PricesAsOf)
			}
			if got := rep.Cost.PerRequestUSD * float64(rep.Rows.Requests); math.Abs(got-rep.Cost.TotalUSD) > 1e-9 {
				t.Errorf("got per request %v × %d = %v, want the total %v", rep.Cost.PerRequestUSD, rep.Rows.Requests, got, rep.Cost.TotalUSD)
			}
			if rep.Rate.RequestsPerS <= 0 || rep.DurationS != float64(rep.Rows.Requests)/rep.Rate.RequestsPerS {
				t.Errorf("got rate %+v and duration %v s, want duration = requests / rate", rep.Rate, rep.DurationS)
			}
			for _, p := range []string{out, summary, defaultErrorsPath(out), out + ".journal", out + ".lock"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("plan created %s (stat: %v), want nothing written", p, err)
				}
			}
			for _, s := range []string{r.stdout, r.stderr} {
				if strings.Contains(s, testKey) {
					t.Errorf("the API key appears in plan's output:\n%s", s)
				}
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanNeedsNoKey(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", companies(5))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	base := []string{"--input", in, "--output", out, "--query", "{{.company}}", "--base-url", ts.URL}
	keyFile := writeFile(t, "key", testKey+"\n")
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantWarn bool
	}{
		{"no key", nil, nil, true},
		{"key in the environment", keyEnv(), nil, false},
		{"PPLX_API_KEY", map[string]string{"PPLX_API_KEY": testKey}, nil, false},
		{"key file", nil, []string{"--api-key-file", keyFile}, false},
		{"missing key file", nil, []string{"--api-key-file", filepath.Join(t.TempDir(), "nope")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, "", tc.env, append(append([]string{"plan"}, base...), tc.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			if got := strings.Contains(r.stdout, "warning: no API key") || strings.Contains(r.stdout, "warning: --api-key-file"); got != tc.wantWarn {
				t.Errorf("got a key warning %v, want %v:\n%s", got, tc.wantWarn, r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, testKey) {
				t.Errorf("the API key appears in plan's output:\n%s\n%s", r.stdout, r.stderr)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanMissingColumn(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	csvIn := writeFile(t, "in.csv", companies(3))
	jsonlIn := writeFile(t, "in.jsonl", `{"qid":"Q1","question":"a?"}`+"\n"+`{"qid":"Q2","question":"b?","extra":1}`+"\n"+
		`{"qid":"Q3","question":"c?"}`+"\n"+`{"qid":"Q4","name":"d"}`+"\n")
	short := writeFile(t, "short.jsonl", `{"qid":"Q1","question":"a?"}`+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"csv", []string{"--input", csvIn, "--query", "{{.name}}"},
			`map has no entry for key "name" (the columns are: company_id, company, country)`},
		{"csv id", []string{"--input", csvIn, "--query", "{{.company}}", "--id", "nope"},
			`--id "nope" is not a column of the input (the columns are: company_id, company, country)`},
		{"jsonl", []string{"--input", jsonlIn, "--mode", "chat", "--prompt", "{{.name}}"},
			`map has no entry for key "name" (the columns of the first rows are: qid, question, extra)`},
		{"jsonl id", []string{"--input", jsonlIn, "--query", "{{.question}}", "--id", "id"},
			`no id column "id" (the columns of the first rows are: qid, question, extra)`},
		{"jsonl shorter than the sample", []string{"--input", short, "--query", "{{.q}}"},
			`map has no entry for key "q" (the columns of the first rows are: qid, question)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"plan", "--output", filepath.Join(dir, "out.jsonl"), "--base-url", ts.URL}, tc.args...)
			r := runMain(t, "", keyEnv(), args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, exitUsage, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanCountsBadRows(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	jsonlIn := writeFile(t, "in.jsonl", strings.Join([]string{
		`{"id":1,"q":"first"}`,
		``,
		`{"id":2,"q":"second",}`,
		`[1,2,3]`,
		`{"id":3,"q":"third"}`,
		`{"id":4,"q":"   "}`,
		`{"id":5,"nested":{"b":1},"q":"fifth"}`,
		`{"id":6}`,
	}, "\n")+"\n")
	csvIn := writeFile(t, "in.csv", "id,company,country\n1,Acme,US\n2,Globex\n3,Initech,US,extra\n4,,UK\n5,Hooli,US\n")
	tests := []struct {
		name                           string
		args                           []string
		total, requests, render, parse int64
		problems                       []int64
	}{
		{"jsonl", []string{"--input", jsonlIn, "--query", "{{.q}}"}, 7, 3, 2, 2, []int64{2, 3, 5, 7}},
		{"csv", []string{"--input", csvIn, "--query", "{{.company}} ceo", "--id", "id", "--mode", "search"}, 5, 3, 0, 2, []int64{2, 3}},
		{"csv empty render", []string{"--input", csvIn, "--query", "{{.company}}"}, 5, 2, 1, 2, []int64{2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--output", out, "--base-url", ts.URL}, tc.args...)
			rep, r := planJSON(t, nil, args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			if rep.Rows.Total != tc.total || rep.Rows.Requests != tc.requests || rep.Rows.RenderFailed != tc.render || rep.Rows.Malformed != tc.parse {
				t.Errorf("got rows %+v, want total %d, requests %d, render failed %d, malformed %d",
					rep.Rows, tc.total, tc.requests, tc.render, tc.parse)
			}
			var rows []int64
			for _, p := range rep.Problems {
				rows = append(rows, p.Row)
			}
			if fmt.Sprint(rows) != fmt.Sprint(tc.problems) {
				t.Errorf("got problem rows %v, want %v (%+v)", rows, tc.problems, rep.Problems)
			}
			if got, want := rep.Cost.TotalUSD, float64(tc.requests)*0.005; math.Abs(got-want) > 1e-9 {
				t.Errorf("got cost %v, want %v (only rows that render cost)", got, want)
			}
			if !strings.Contains(strings.Join(rep.Warnings, "\n"), fmt.Sprintf("%d of %d rows would fail", tc.render+tc.parse, tc.total)) {
				t.Errorf("got warnings %q, want one counting the failing rows", rep.Warnings)
			}

			r = runMain(t, "", nil, append([]string{"plan"}, args...)...)
			if r.code != exitOK {
				t.Fatalf("text: exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			want := fmt.Sprintf("%d in the input: %d requests, %d fail to render, %d malformed", tc.total, tc.requests, tc.render, tc.parse)
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
			if n := strings.Count(r.stdout, "\nrow "); n != len(tc.problems) {
				t.Errorf("got %d 'row N fails' lines, want %d:\n%s", n, len(tc.problems), r.stdout)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanRate(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	csvIn := writeFile(t, "in.csv", companies(120))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	chat := []string{"--mode", "chat", "--prompt", "{{.company}}?"}
	tests := []struct {
		name   string
		args   []string
		rps    float64
		source string
	}{
		{"search", []string{"--query", "{{.company}}"}, 50, "Search API"},
		{"search above the ceiling", []string{"--query", "{{.company}}", "--rps", "80"}, 50, "Search API"},
		{"search below the ceiling", []string{"--query", "{{.company}}", "--rps", "4"}, 4, "--rps/--rpm"},
		{"sonar tier 0", chat, 50.0 / 60, "sonar at usage tier 0; --tier N"},
		{"sonar tier 3", append([]string{"--tier", "3"}, chat...), 1000.0 / 60, "sonar at usage tier 3"},
		{"sonar-pro tier 5", append([]string{"--tier", "5", "--model", "sonar-pro"}, chat...), 4000.0 / 60, "sonar-pro at usage tier 5"},
		{"deep research", append([]string{"--model", "sonar-deep-research"}, chat...), 5.0 / 60, "sonar-deep-research at usage tier 0"},
		{"deep research tier 5", append([]string{"--model", "sonar-deep-research", "--tier", "5"}, chat...), 100.0 / 60, "tier 5"},
		{"unknown model", append([]string{"--model", "sonar-max"}, chat...), 50.0 / 60, "assumed for sonar-max"},
		{"rpm ceiling", append([]string{"--rpm", "30"}, chat...), 0.5, "--rps/--rpm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--input", csvIn, "--output", out, "--base-url", ts.URL}, tc.args...)
			rep, r := planJSON(t, nil, args...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			if math.Abs(rep.Rate.RequestsPerS-tc.rps) > 1e-9 || !strings.Contains(rep.Rate.Source, tc.source) {
				t.Errorf("got rate %+v, want %v requests/s from %q", rep.Rate, tc.rps, tc.source)
			}
			if want := 120 / tc.rps; math.Abs(rep.DurationS-want) > 1e-6 {
				t.Errorf("got duration %v s, want %v s", rep.DurationS, want)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanEstimate(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	csvIn := writeFile(t, "in.csv", "id,q\n1,abcdefgh\n2,abcdefghijkl\n")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	base := []string{"--input", csvIn, "--output", out, "--base-url", ts.URL, "--mode", "chat", "--prompt", "{{.q}}"}
	tests := []struct {
		name  string
		args  []string
		total float64
		known bool
		warn  string
	}{
		// 2 and 3 prompt tokens, 400 completion tokens each, $5 per 1,000 requests.
		{"sonar", nil, 0.000005 + 0.0008 + 0.01, true, ""},
		// 2 and 3 prompt tokens at $3, 100 completion tokens each at $15, $10 per 1,000 requests.
		{"sonar-pro medium", []string{"--model", "sonar-pro", "--max-tokens", "100", "--search-context-size", "medium"},
			0.000015 + 0.003 + 0.02, true, ""},
		{"unknown model", []string{"--model", "sonar-max"}, 0, false, `model "sonar-max" is not in the price table`},
		{"bad context size", []string{"--search-context-size", "huge"}, 0, false, `--search-context-size "huge"`},
		{"over budget", []string{"--max-cost", "0.01"}, 0.000005 + 0.0008 + 0.01, true, "passes --max-cost $0.01: the run would stop (exit 3) after about 1 of 2 requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, r := planJSON(t, nil, append(base, tc.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			if math.Abs(rep.Cost.TotalUSD-tc.total) > 1e-12 || rep.Cost.Known != tc.known {
				t.Errorf("got cost %+v, want total %v known %v", rep.Cost, tc.total, tc.known)
			}
			if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, tc.warn) {
				t.Errorf("got warnings %q, want one with %q", rep.Warnings, tc.warn)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanFailureLimitWarning(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	in := writeFile(t, "in.csv", "id,q\n1,a\n2,b,extra\n3,c\n")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	for _, tc := range []struct{ limit, want string }{
		{"0", "--max-failures 0 would abort the run"},
		{"1", ""},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			rep, r := planJSON(t, nil, "--input", in, "--output", out, "--query", "{{.q}}", "--max-failures", tc.limit, "--base-url", ts.URL)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			w := strings.Join(rep.Warnings, "\n")
			if got := strings.Contains(w, "would abort"); got != (tc.want != "") || !strings.Contains(w, tc.want) {
				t.Errorf("got warnings %q, want %q", rep.Warnings, tc.want)
			}
		})
	}
	noRequests(t, srv)
}

func TestPlanUsageErrors(t *testing.T) {
	ts, srv := startSim(t, sim.Config{})
	dir := t.TempDir()
	in := writeFile(t, "in.csv", companies(3))
	out := filepath.Join(dir, "out.jsonl")
	base := []string{"plan", "--base-url", ts.URL}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"--output", out, "--query", "x"}, "--input is required"},
		{"no output", []string{"--input", in, "--query", "x"}, "--output is required"},
		{"bad mode", []string{"--input", in, "--output", out, "--mode", "sonar", "--query", "x"}, "--mode must be"},
		{"bad template", []string{"--input", in, "--output", out, "--query", "{{.company"}, "--query"},
		{"missing input file", []string{"--input", filepath.Join(dir, "nope.csv"), "--output", out, "--query", "x"}, "nope.csv"},
		{"bad tier", []string{"--input", in, "--output", out, "--query", "x", "--tier", "6"}, "--tier must be between 0 and 5"},
		{"bad max failures", []string{"--input", in, "--output", out, "--query", "x", "--max-failures", "lots"}, "--max-failures"},
		{"bad log level", []string{"--input", in, "--output", out, "--query", "x", "--log-level", "loud"}, "--log-level"},
		{"unknown flag", []string{"--input", in, "--output", out, "--query", "x", "--colour", "blue"}, "colour"},
		{"arguments", []string{"--input", in, "--output", out, "--query", "x", "extra"}, "unexpected arguments"},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.yaml")}, "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, "", keyEnv(), append(append([]string{}, base...), tc.args...)...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.code, exitUsage, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("got stdout %q for an invalid job, want none", r.stdout)
			}
		})
	}
	noRequests(t, srv)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("plan left an output file (stat: %v)", err)
	}
}

func TestPlanHelp(t *testing.T) {
	r := runMain(t, "", nil, "plan", "--help")
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	for _, want := range []string{"Usage: pplx-batch plan", "--json", "--tier N", "Flags shared with run:", "--max-cost", "--query"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "\n  --json"); n != 1 {
		t.Errorf("got --json listed %d times, want once", n)
	}
	if r = runMain(t, "", nil, "help"); !strings.Contains(r.stdout, "pplx-batch plan") {
		t.Errorf("the command's usage does not list plan:\n%s", r.stdout)
	}
}

// endlessCSV is an input that never ends; it sends a signal on sigs while
// the plan reads its 100th row.
type endlessCSV struct {
	n    int
	sigs chan<- os.Signal
}

func (c *endlessCSV) Read(p []byte) (int, error) {
	c.n++
	if c.n == 1 {
		return copy(p, "id,q\n"), nil
	}
	if c.n == 100 {
		c.sigs <- syscall.SIGINT // blocks until plan takes it
	}
	return copy(p, fmt.Sprintf("%d,question %d\n", c.n, c.n)), nil
}

func TestPlanInterrupted(t *testing.T) {
	sigs := make(chan os.Signal)
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"plan", "--input", "-", "--input-format", "csv", "--output", "-", "--query", "{{.q}}"}, env{
		stdin: &endlessCSV{sigs: sigs}, stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }, signals: sigs,
	})
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, errb.String())
	}
	if !strings.Contains(errb.String(), "interrupted") || out.Len() != 0 {
		t.Errorf("got stdout %q and stderr %q, want only an interrupted message", out.String(), errb.String())
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	code = Main(ctx, []string{"plan", "--input", "-", "--input-format", "csv", "--output", "-", "--query", "{{.q}}"}, env{
		stdin: strings.NewReader("id,q\n1,a\n"), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
	})
	if code != exitInterrupted {
		t.Errorf("with a cancelled context: exit %d, want %d", code, exitInterrupted)
	}
}

func TestUnescapeHTML(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"q":"a \u0026 b"}`, `{"q":"a & b"}`},
		{`{"q":"\u003ctag\u003e"}`, `{"q":"<tag>"}`},
		{`{"q":"\\u0026"}`, `{"q":"\\u0026"}`},
		{`{"q":"\\\u0026"}`, `{"q":"\\&"}`},
		{`{"q":"\u00e9 \"x\" \n"}`, `{"q":"\u00e9 \"x\" \n"}`},
		{`{"q":"no escapes"}`, `{"q":"no escapes"}`},
		{`"\u00`, `"\u00`},
		{`\`, `\`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := string(unescapeHTML([]byte(tc.in))); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// FuzzUnescapeHTML checks that unescapeHTML never changes what a JSON
// document means, and never panics on any input.
func FuzzUnescapeHTML(f *testing.F) {
	for _, s := range []string{"a & b", "<script>", `\u0026`, `back\slash & "quotes"`, "é\u2028", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = unescapeHTML(b) // any bytes: no panic
		js, err := json.Marshal(map[string]string{"q": string(b)})
		if err != nil {
			t.Skip()
		}
		var got, want map[string]string
		if err := json.Unmarshal(js, &want); err != nil {
			t.Fatal(err)
		}
		un := unescapeHTML(js)
		if err := json.Unmarshal(un, &got); err != nil {
			t.Fatalf("unescapeHTML(%s) = %s: not JSON: %v", js, un, err)
		}
		if got["q"] != want["q"] {
			t.Errorf("unescapeHTML(%s) = %s: got %q, want %q", js, un, got["q"], want["q"])
		}
	})
}
