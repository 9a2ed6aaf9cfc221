package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
	"github.com/pplx-batch/pplx-batch/source"
)

const testKey = "pplx-test-key-0123456789"

// rows collects what the pipeline writes.
type rows[T any] struct {
	mu   sync.Mutex
	rows []T
	fail error
}

func (r *rows[T]) Write(x T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.rows = append(r.rows, x)
	return nil
}

func (r *rows[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rows)
}

// sorted returns the rows written, in input order.
func sorted(out *rows[pipeline.Result]) []sink.Row {
	var rs []sink.Row
	for _, r := range out.all() {
		rs = append(rs, r.Row)
	}
	slices.SortFunc(rs, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	return rs
}

// newServer starts the simulator on loopback.
func newServer(t testing.TB, cfg sim.Config) (*httptest.Server, *sim.Server) {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey
	}
	s := sim.New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s
}

func newPipeline(t testing.TB, url string, job pipeline.Job) *pipeline.Pipeline {
	t.Helper()
	return &pipeline.Pipeline{
		Job:      job,
		Client:   pplx.New(url, testKey, pplx.Options{MaxConns: 16}),
		Limiters: limiter.NewSet(limiter.Config{}),
		Sleep:    func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Rand:     func() float64 { return 0.5 },
	}
}

func tmpl(t testing.TB, text string) *template.Template {
	t.Helper()
	return template.Must(template.New("t").Option("missingkey=error").Parse(text))
}

func csvSource(t testing.TB, text string) *source.Reader {
	t.Helper()
	r, err := source.NewReader(strings.NewReader(text), "test.csv", source.Options{Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func jsonlSource(t testing.TB, text string) *source.Reader {
	t.Helper()
	r, err := source.NewReader(strings.NewReader(text), "test.jsonl", source.Options{Format: "jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func companiesCSV(n int) string {
	var b strings.Builder
	b.WriteString("id,company\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "C%03d,Company %d\n", i, i)
	}
	return b.String()
}

func TestSearchEveryRowAnswersItsOwnQuery(t *testing.T) {
	ts, _ := newServer(t, sim.Config{})
	p := newPipeline(t, ts.URL, pipeline.Job{
		Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}} headquarters"),
		IDColumn: "id", Search: pplx.SearchRequest{MaxResults: 3}, Concurrency: 8,
	})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(50)), out)
	if err != nil {
		t.Fatal(err)
	}
	got := sorted(out)
	if len(got) != 50 || st.Rows != 50 || st.OK != 50 || st.Failed != 0 {
		t.Fatalf("got %d rows, stats %+v; want 50 ok", len(got), st)
	}
	for i, r := range got {
		q := fmt.Sprintf("Company %d headquarters", i+1)
		if r.Row != int64(i+1) || r.ID != fmt.Sprintf("C%03d", i+1) || r.Status != sink.StatusOK {
			t.Fatalf("row %d: got row=%d id=%q status=%q", i+1, r.Row, r.ID, r.Status)
		}
		want := sim.SearchResults(pplx.Query{q}, 3)
		if len(r.Results) != len(want) {
			t.Fatalf("row %d: got %d results, want %d", r.Row, len(r.Results), len(want))
		}
		for k, w := range want {
			g := r.Results[k]
			if g.Title != w.Title || g.URL != w.URL || g.Snippet != w.Snippet || g.Date != w.Date {
				t.Errorf("row %d result %d: got %+v, want %+v", r.Row, k, g, w)
			}
		}
		var in map[string]string
		if err := json.Unmarshal(r.Input, &in); err != nil || in["company"] != fmt.Sprintf("Company %d", i+1) {
			t.Errorf("row %d: input %s, err %v", r.Row, r.Input, err)
		}
		if r.Attempts != 1 || r.HTTPStatus != 200 || r.RequestID == "" {
			t.Errorf("row %d: attempts %d status %d request id %q", r.Row, r.Attempts, r.HTTPStatus, r.RequestID)
		}
	}
	if st.Requests != 50 || st.Retries != 0 {
		t.Errorf("got %d requests %d retries, want 50 and 0", st.Requests, st.Retries)
	}
}

func TestChatPlainAndStreamed(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			ts, _ := newServer(t, sim.Config{})
			p := newPipeline(t, ts.URL, pipeline.Job{
				Mode: pipeline.ModeChat, Template: tmpl(t, "{{.question}}"), System: "Be brief.",
				IDColumn: "qid", Chat: pplx.ChatRequest{Model: "sonar-pro", Stream: stream},
			})
			var in strings.Builder
			for i := 1; i <= 12; i++ {
				fmt.Fprintf(&in, `{"qid":"Q%d","question":"What is %d squared?","n":%d}`+"\n", i, i, i)
				if i%4 == 0 {
					in.WriteString("\n") // blank lines are skipped
				}
			}
			out := &rows[pipeline.Result]{}
			st, err := p.Run(t.Context(), jsonlSource(t, in.String()), out)
			if err != nil {
				t.Fatal(err)
			}
			got := sorted(out)
			if len(got) != 12 || st.OK != 12 {
				t.Fatalf("got %d rows, %d ok; want 12", len(got), st.OK)
			}
			var cost float64
			for i, r := range got {
				msgs := []pplx.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: fmt.Sprintf("What is %d squared?", i+1)}}
				if want := sim.ChatContent("sonar-pro", msgs); r.Content != want {
					t.Errorf("row %d: content %q, want %q", r.Row, r.Content, want)
				}
				if r.ID != fmt.Sprintf("Q%d", i+1) {
					t.Errorf("row %d: id %q", r.Row, r.ID)
				}
				if len(r.SearchResults) == 0 || len(r.Citations) == 0 {
					t.Errorf("row %d: %d search results, %d citations; want some", r.Row, len(r.SearchResults), len(r.Citations))
				}
				if r.Usage == nil || r.Usage.TotalTokens == 0 || r.Usage.CostUSD == nil || *r.Usage.CostUSD <= 0 {
					t.Fatalf("row %d: usage %+v, want tokens and a cost", r.Row, r.Usage)
				}
				cost += *r.Usage.CostUSD
			}
			if st.TotalTokens == 0 || st.CostUSD < cost*0.999 || st.CostUSD > cost*1.001 {
				t.Errorf("stats tokens %d cost %g; want the rows' sum %g", st.TotalTokens, st.CostUSD, cost)
			}
		})
	}
}

func TestRowErrorsDoNotFailTheJob(t *testing.T) {
	ts, _ := newServer(t, sim.Config{})
	p := newPipeline(t, ts.URL, pipeline.Job{
		Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.q}}"),
	})
	input := strings.Join([]string{
		`{"q":"alpha"}`,
		`{"q": broken`,  // row 2: malformed line
		`{"other":"x"}`, // row 3: template names a missing key
		`{"q":""}`,      // row 4: renders an empty query
		`{"q":"omega"}`, // row 5
	}, "\n")
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), jsonlSource(t, input), out)
	if err != nil {
		t.Fatal(err)
	}
	got := sorted(out)
	wantStatus := []string{"ok", "error", "error", "error", "ok"}
	if len(got) != len(wantStatus) {
		t.Fatalf("got %d rows, want %d", len(got), len(wantStatus))
	}
	for i, r := range got {
		if r.Status != wantStatus[i] {
			t.Errorf("row %d: status %q (%s), want %q", r.Row, r.Status, r.Error, wantStatus[i])
		}
	}
	if !strings.Contains(got[1].Error, "test.jsonl:2") {
		t.Errorf("parse error %q does not name file and line", got[1].Error)
	}
	if !strings.Contains(got[2].Error, "q") {
		t.Errorf("template error %q does not name the key", got[2].Error)
	}
	if st.OK != 2 || st.Failed != 3 || st.Requests != 2 {
		t.Errorf("stats %+v; want 2 ok, 3 failed, 2 requests", st)
	}
	for _, r := range out.all() {
		if r.Status == sink.StatusError && r.RequestHash != "" {
			t.Errorf("row %d made no request but has request hash %q", r.Row.Row, r.RequestHash)
		}
	}
}

func TestRetriesCureTransientFaults(t *testing.T) {
	ts, srv := newServer(t, sim.Config{Seed: 3, Faults: sim.Faults{P500: 0.15, P503: 0.1, PGarbage: 0.05, PCut: 0.05}})
	p := newPipeline(t, ts.URL, pipeline.Job{
		Mode: pipeline.ModeChat, Template: tmpl(t, "{{.company}}"), MaxRetries: 12,
		Chat: pplx.ChatRequest{Stream: true}, Concurrency: 4,
	})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(60)), out)
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != 60 {
		for _, r := range sorted(out) {
			if r.Status != "ok" {
				t.Logf("row %d: %s", r.Row, r.Error)
			}
		}
		t.Fatalf("got %d ok rows, want 60", st.OK)
	}
	if st.Retries == 0 || st.Requests != 60+st.Retries {
		t.Errorf("got %d requests and %d retries; want retries > 0 and requests = 60 + retries", st.Requests, st.Retries)
	}
	for _, r := range sorted(out) {
		want := sim.ChatContent("sonar", []pplx.Message{{Role: "user", Content: fmt.Sprintf("Company %d", r.Row)}})
		if r.Content != want {
			t.Errorf("row %d: content %q, want %q", r.Row, r.Content, want)
		}
	}
	if got := srv.Stats().Requests; got != st.Requests {
		t.Errorf("server saw %d requests, pipeline counted %d", got, st.Requests)
	}
}

func TestRetriesExhausted(t *testing.T) {
	ts, _ := newServer(t, sim.Config{Faults: sim.Faults{P500: 1}})
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), MaxRetries: 2})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(3)), out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sorted(out) {
		if r.Status != sink.StatusError || r.Attempts != 3 || r.HTTPStatus != 500 || !strings.Contains(r.Error, "500") {
			t.Errorf("row %d: status %q attempts %d http %d error %q; want error after 3 attempts with 500",
				r.Row, r.Status, r.Attempts, r.HTTPStatus, r.Error)
		}
	}
	if st.Failed != 3 || st.Requests != 9 || st.Retries != 6 {
		t.Errorf("stats %+v; want 3 failed, 9 requests, 6 retries", st)
	}
}

func TestRateLimitedServer(t *testing.T) {
	// A small server bucket: the pipeline meets 429s, pauses and retries;
	// every row still ends ok.
	ts, _ := newServer(t, sim.Config{RPS: 400, Burst: 4})
	p := newPipeline(t, ts.URL, pipeline.Job{
		Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), MaxRetries: 50, Concurrency: 8,
	})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(40)), out)
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != 40 {
		t.Fatalf("got %d ok rows, want 40", st.OK)
	}
	if st.Requests != 40+st.Retries || st.RateLimited > st.Retries {
		t.Errorf("stats %+v: requests must be rows + retries, and every 429 retried", st)
	}
}

func TestWrongKeyAbortsTheJob(t *testing.T) {
	ts, srv := newServer(t, sim.Config{Key: "the-right-key"})
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), Concurrency: 4})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(500)), out)
	fe, ok := errors.AsType[*pipeline.FatalError](err)
	if !ok {
		t.Fatalf("got %v, want a *FatalError", err)
	}
	ae, ok := errors.AsType[*pplx.APIError](fe)
	if !ok || ae.StatusCode != 401 || ae.Type != "invalid_api_key" {
		t.Errorf("fatal error %v does not carry the API's 401", fe)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
	// Only the requests already started when the first 401 came back may
	// be sent: at most the concurrency, not 500.
	if n := srv.Stats().Requests; n > 4 || st.Requests > 4 {
		t.Errorf("server saw %d requests (pipeline counted %d), want at most 4", n, st.Requests)
	}
	if st.Rows != 0 {
		t.Errorf("got %d rows written, want 0: rows that met the bad key are not finished", st.Rows)
	}
}

func TestRowFatalErrorsAreNotRetried(t *testing.T) {
	ts, srv := newServer(t, sim.Config{})
	// An unknown model is a 400: the row fails at once, the job goes on.
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeChat, Template: tmpl(t, "{{.company}}"),
		Chat: pplx.ChatRequest{Model: "no-such-model"}, MaxRetries: 5})
	out := &rows[pipeline.Result]{}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(5)), out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 5 || st.Requests != 5 || srv.Stats().Requests != 5 {
		t.Errorf("stats %+v, server %d requests; want 5 failed rows after one request each", st, srv.Stats().Requests)
	}
	for _, r := range sorted(out) {
		if r.HTTPStatus != 400 || r.Attempts != 1 || !strings.Contains(r.Error, "400") {
			t.Errorf("row %d: http %d attempts %d error %q", r.Row, r.HTTPStatus, r.Attempts, r.Error)
		}
	}
}

// resumeFrom is a Resume built from the results of an earlier run.
type resumeFrom map[int64]string

func (r resumeFrom) Done(row int64, hash string) bool { h, ok := r[row]; return ok && h == hash }

func TestResumeSkipsAnsweredRows(t *testing.T) {
	ts, srv := newServer(t, sim.Config{})
	input := companiesCSV(20)
	first := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}")})
	out := &rows[pipeline.Result]{}
	if _, err := first.Run(t.Context(), csvSource(t, input), out); err != nil {
		t.Fatal(err)
	}
	done := resumeFrom{}
	for _, r := range out.all() {
		if r.RequestHash == "" {
			t.Fatalf("row %d: no request hash", r.Row.Row)
		}
		if r.Row.Row%2 == 0 { // pretend the odd rows were never finished
			done[r.Row.Row] = r.RequestHash
		}
	}
	tests := []struct {
		name        string
		template    string
		wantSkipped int64
	}{
		{"same job", "{{.company}}", 10},
		{"template changed", "{{.company}} ceo", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().Requests
			p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, tc.template)})
			p.Resume = done
			out := &rows[pipeline.Result]{}
			st, err := p.Run(t.Context(), csvSource(t, input), out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Skipped != tc.wantSkipped || st.Rows != 20-tc.wantSkipped || st.Read != 20 {
				t.Errorf("stats %+v; want %d skipped, %d written", st, tc.wantSkipped, 20-tc.wantSkipped)
			}
			if got := srv.Stats().Requests - before; got != 20-tc.wantSkipped {
				t.Errorf("server saw %d requests, want %d", got, 20-tc.wantSkipped)
			}
		})
	}
}

func TestStopFinishesRequestsInFlight(t *testing.T) {
	ts, srv := newServer(t, sim.Config{Latency: 5 * time.Millisecond})
	stop := make(chan struct{})
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), Concurrency: 8})
	p.Stop = stop
	out := &stopAfter{n: 10, stop: stop}
	st, err := p.Run(t.Context(), csvSource(t, companiesCSV(1000)), out)
	if !errors.Is(err, pipeline.ErrStopped) {
		t.Fatalf("got %v, want ErrStopped", err)
	}
	// Every request the server answered reached the output: a graceful
	// stop wastes nothing.
	if answered := srv.Stats().Answered; int64(answered) != st.Rows || st.Rows < 10 || st.Rows >= 1000 {
		t.Errorf("server answered %d, pipeline wrote %d rows; want equal, between 10 and 999", answered, st.Rows)
	}
	if st.Requests != st.Rows {
		t.Errorf("got %d requests for %d rows", st.Requests, st.Rows)
	}
}

type stopAfter struct {
	n, seen int
	stop    chan struct{}
}

func (s *stopAfter) Write(pipeline.Result) error {
	s.seen++
	if s.seen == s.n {
		close(s.stop)
	}
	return nil
}

func TestCancelStopsEveryStage(t *testing.T) {
	ts, _ := newServer(t, sim.Config{Latency: 20 * time.Millisecond})
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), Concurrency: 4})
	ctx, cancel := context.WithCancel(t.Context())
	out := &cancelAfter{n: 5, cancel: cancel}
	st, err := p.Run(ctx, csvSource(t, companiesCSV(500)), out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if st.Rows >= 500 || st.Rows < 5 {
		t.Errorf("got %d rows written, want between 5 and 499", st.Rows)
	}
}

type cancelAfter struct {
	n      int
	seen   int
	cancel func()
}

func (c *cancelAfter) Write(pipeline.Result) error {
	c.seen++
	if c.seen == c.n {
		c.cancel()
	}
	return nil
}

func TestOutputErrorStopsTheJob(t *testing.T) {
	ts, _ := newServer(t, sim.Config{})
	p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}")})
	out := &rows[pipeline.Result]{fail: errors.New("disk full")}
	_, err := p.Run(t.Context(), csvSource(t, companiesCSV(100)), out)
	if !errors.Is(err, pipeline.ErrOutput) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want ErrOutput wrapping the sink's error", err)
	}
}

// TestConcurrencyBoundsRequestsInFlight: the Job's Concurrency workers
// take every row, and never have more requests in flight than that.
func TestConcurrencyBoundsRequestsInFlight(t *testing.T) {
	for _, conc := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			ts, srv := newServer(t, sim.Config{Latency: 20 * time.Millisecond})
			p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeSearch, Template: tmpl(t, "{{.company}}"), Concurrency: conc})
			st, err := p.Run(t.Context(), csvSource(t, companiesCSV(40)), &rows[pipeline.Result]{})
			if err != nil || st.OK != 40 {
				t.Fatalf("got %+v, %v; want 40 rows ok", st, err)
			}
			// 20 ms answers and 40 rows: the workers overlap.
			if got := srv.Stats().MaxInFlight; got > conc || (conc > 1 && got < 2) {
				t.Errorf("at most %d requests in flight, want between 2 and %d", got, conc)
			}
		})
	}
}

// runLog is a pipeline.Runs that remembers every run recorded.
type runLog struct {
	mu   sync.Mutex
	runs map[int64][]string
}

func (l *runLog) Submitted(row int64, _, runID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs == nil {
		l.runs = map[int64][]string{}
	}
	l.runs[row] = append(l.runs[row], runID)
	return nil
}

func (l *runLog) Pending(int64, string) (string, bool) { return "", false }

// A streamed answer holds its limiter ticket only until its headers come:
// the server admitted it then, and its events may take minutes. With a
// limiter that lets one request out at a time, the workers' streams
// overlap (a plain request holds its ticket to the end), and
// each stream's run is recorded, once, as soon as response.created names
// it.
func TestStreamReleasesTicketAtHeaders(t *testing.T) {
	const n, workers = 8, 4
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			ts, srv := newServer(t, sim.Config{Latency: 300 * time.Millisecond})
			p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeAgent, Template: tmpl(t, "{{.company}}"),
				Agent: pplx.AgentRequest{Stream: stream}, Concurrency: workers})
			p.Limiters = limiter.NewSet(limiter.Config{MaxInFlight: 1})
			var runs runLog
			p.Runs = &runs
			var out rows[pipeline.Result]
			st, err := p.Run(t.Context(), csvSource(t, companiesCSV(n)), &out)
			if err != nil || st.OK != n {
				t.Fatalf("got %+v, %v; want %d rows ok", st, err, n)
			}
			got := srv.Stats().MaxInFlight
			switch {
			case stream && got < workers-1:
				// Held to the end, one stream could meet the next only as
				// it ends: 2 at once.
				t.Errorf("streams: at most %d in flight at once, want %d or %d; a stream kept its ticket after its headers", got, workers-1, workers)
			case !stream && got != 1:
				t.Errorf("plain requests: %d in flight at once under a limiter of one, want 1", got)
			}
			for _, r := range out.rows {
				ids := runs.runs[r.Row.Row]
				switch {
				case stream && (len(ids) != 1 || ids[0] != r.Row.RequestID):
					t.Errorf("row %d (run %s): runs recorded %v, want its run once", r.Row.Row, r.Row.RequestID, ids)
				case !stream && len(ids) != 0:
					t.Errorf("row %d, not streamed: runs recorded %v, want none", r.Row.Row, ids)
				}
			}
		})
	}
}
