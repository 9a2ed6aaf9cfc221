package pipeline_test

import (
	"io"
	"testing"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// BenchmarkPipeline measures the pipeline's own overhead: a search job
// against a zero-latency, unlimited simulator on loopback, written to
// JSONL in memory. It reports rows per second and allocations per row.
func BenchmarkPipeline(b *testing.B) {
	for _, mode := range []pipeline.Mode{pipeline.ModeSearch, pipeline.ModeChat} {
		b.Run(string(mode), func(b *testing.B) {
			ts, _ := newServer(b, sim.Config{})
			job := pipeline.Job{Mode: mode, Template: tmpl(b, "{{.company}} headquarters"), Concurrency: 32,
				Search: pplx.SearchRequest{MaxResults: 5}}
			input := companiesCSV(b.N)
			p := newPipeline(b, ts.URL, job)
			out := sink.NewJSONL[pipeline.Result](io.Discard)
			b.ReportAllocs()
			b.ResetTimer()
			st, err := p.Run(b.Context(), csvSource(b, input), out)
			if err != nil {
				b.Fatal(err)
			}
			if st.OK != int64(b.N) {
				b.Fatalf("got %d ok rows, want %d", st.OK, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
