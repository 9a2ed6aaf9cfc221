package pipeline_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/sink"
)

// searchResult returns a finished search row like the simulator's answers:
// ten results, each with a title, URL, snippet of six random words and
// dates (about 2.4 kB of JSON).
func searchResult(rng *rand.Rand, row int64) pipeline.Result {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike " +
		"november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu basalt fjord dune")
	company := fmt.Sprintf("Company %d Inc", row)
	r := sink.Row{ID: fmt.Sprint(row), Row: row, Status: sink.StatusOK, HTTPStatus: 200, Attempts: 1,
		LatencyMS: rng.Int64N(200), RequestID: fmt.Sprintf("%08x-b52e-4f84-aebe-%012x", rng.Uint32(), rng.Uint64()>>16),
		Input: []byte(fmt.Sprintf(`{"id":"%d","company":%q}`, row, company))}
	site := rng.Uint32()
	for k := 1; k <= 10; k++ {
		var s strings.Builder
		for range 6 {
			s.WriteString(" " + words[rng.IntN(len(words))])
		}
		r.Results = append(r.Results, sink.SearchResult{
			Title:       fmt.Sprintf("%s - result %d", company, k),
			URL:         fmt.Sprintf("https://sim.invalid/%08x/%d", site, k),
			Snippet:     fmt.Sprintf("Result %d about %s:%s.", k, company, s.String()),
			Date:        fmt.Sprintf("2025-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
			LastUpdated: fmt.Sprintf("2025-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
		})
	}
	return pipeline.Result{Row: r, RequestHash: fmt.Sprintf("%016x", rng.Uint64())}
}

// BenchmarkJournalWrite writes search rows to a journal, flushed to the
// operating system after every row (the pipeline's idle flush, the worst
// case) or every 16 rows, and reports the bytes on disk per row.
func BenchmarkJournalWrite(b *testing.B) {
	for _, every := range []int{1, 16} {
		b.Run(fmt.Sprintf("flush=%d", every), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			rows := make([]pipeline.Result, 1000)
			for i := range rows {
				rows[i] = searchResult(rng, int64(i+1))
			}
			path := filepath.Join(b.TempDir(), "j")
			j, err := pipeline.OpenJournal(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := rows[i%len(rows)]
				r.Row.Row = int64(i + 1)
				if err := j.Write(r); err != nil {
					b.Fatal(err)
				}
				if (i+1)%every == 0 {
					if err := j.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			reportSize(b, path)
		})
	}
}

// BenchmarkJournalReplay reads back a journal of search rows, as the end
// of a resumed run does, and reports rows per second.
func BenchmarkJournalReplay(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j")
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b.N {
		if err := j.Write(searchResult(rng, int64(i+1))); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	j, err = pipeline.OpenJournal(path) // opening is part of resuming
	if err != nil {
		b.Fatal(err)
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	n := 0
	if err := j.Replay(0, func(pipeline.Result) error { n++; return nil }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("replayed %d rows, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	reportSize(b, path)
}

func reportSize(b *testing.B, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/float64(b.N), "disk-B/row")
}
