package pipeline_test

import (
	"errors"
	"testing"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

func TestBudgetIsNeverPassedByMoreThanTheRequestsInFlight(t *testing.T) {
	const conc = 4
	tests := []struct {
		name     string
		estimate float64 // per chat request; the simulator bills about $0.0050
	}{
		{"estimate above the price", 0.006},
		{"estimate below the price", 0.001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, srv := newServer(t, sim.Config{})
			p := newPipeline(t, ts.URL, pipeline.Job{Mode: pipeline.ModeChat, Template: tmpl(t, "{{.company}}"),
				Concurrency: conc, MaxCostUSD: 0.1})
			p.Estimate = func(any) float64 { return tc.estimate }
			out := &rows[pipeline.Result]{}
			st, err := p.Run(t.Context(), csvSource(t, companiesCSV(200)), out)
			var be *pipeline.BudgetError
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a BudgetError", err)
			}
			spent := srv.Stats().CostUSD
			maxOne := 0.0051 // the most one of these answers costs
			if spent > 0.1+conc*maxOne {
				t.Errorf("the server billed $%.4f, more than the budget $0.10 plus %d requests in flight", spent, conc)
			}
			if tc.estimate >= maxOne && spent > 0.1 {
				t.Errorf("with an estimate above the price, the server billed $%.4f, over the budget", spent)
			}
			if st.CostUSD < spent*0.999 || st.CostUSD > spent*1.001 {
				t.Errorf("the pipeline counted $%.4f, the server billed $%.4f", st.CostUSD, spent)
			}
			if st.Rows == 0 || st.Rows >= 200 {
				t.Errorf("got %d rows, want some but not all", st.Rows)
			}
		})
	}
}

func TestTooManyFailuresStopTheJob(t *testing.T) {
	tests := []struct {
		name     string
		job      pipeline.Job
		wantRows int64 // rows written at most
	}{
		{"count", pipeline.Job{AbortAfterFailures: 4}, 4 + 4},
		{"rate", pipeline.Job{MaxFailureRate: 0.1}, pipeline.MinRowsForRate + 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, _ := newServer(t, sim.Config{})
			job := tc.job
			job.Mode, job.Template, job.Concurrency = pipeline.ModeChat, tmpl(t, "{{.company}}"), 4
			job.Chat = pplx.ChatRequest{Model: "no-such-model"} // every row fails with 400
			p := newPipeline(t, ts.URL, job)
			out := &rows[pipeline.Result]{}
			st, err := p.Run(t.Context(), csvSource(t, companiesCSV(500)), out)
			var fe *pipeline.FailuresError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FailuresError", err)
			}
			if st.Rows > tc.wantRows || st.Requests > tc.wantRows+4 {
				t.Errorf("wrote %d rows after %d requests; want at most %d: a broken job must stop early", st.Rows, st.Requests, tc.wantRows)
			}
		})
	}
}
