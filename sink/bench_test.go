package sink

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchRows returns n realistic search-mode rows: an input of four columns
// and five search results each.
func benchRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		results := make([]SearchResult, 5)
		for j := range results {
			results[j] = SearchResult{
				Title:       fmt.Sprintf("Company %d – result %d: headquarters and history", i, j),
				URL:         fmt.Sprintf("https://example%d.com/companies/%d/about?ref=%d", j, i, j),
				Snippet:     fmt.Sprintf("Company %d is headquartered in Springfield. Founded in %d, it employs %d people across %d offices and reported revenue of $%d million last year.", i, 1900+i%120, 100+i%5000, 1+j, 10+i%900),
				Date:        "2025-03-14",
				LastUpdated: "2025-06-01",
			}
		}
		rows[i] = Row{
			ID:         fmt.Sprintf("c-%06d", i),
			Row:        int64(i + 1),
			Status:     StatusOK,
			Input:      json.RawMessage(fmt.Sprintf(`{"company":"Company %d","country":"US","employees":%d,"domain":"company%d.example"}`, i, 100+i%5000, i)),
			HTTPStatus: 200,
			Attempts:   1,
			LatencyMS:  int64(40 + i%200),
			RequestID:  fmt.Sprintf("req-%08x", i),
			Results:    results,
		}
	}
	return rows
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func BenchmarkJSONL(b *testing.B) {
	rows := benchRows(1024)
	var out countWriter
	w := NewJSONL[Row](&out)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := w.Write(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out.n)/float64(b.N), "out-B/row")
}

func BenchmarkParquet(b *testing.B) {
	for _, compression := range []string{"zstd", "snappy", "none"} {
		b.Run(compression, func(b *testing.B) {
			rows := benchRows(1024)
			var out countWriter
			w, err := NewParquet(&out, ParquetOptions{Compression: compression})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := w.Write(rows[i%len(rows)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out.n)/float64(b.N), "out-B/row")
		})
	}
}
