package sink

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	var out countWriter
	benchWrite(b, NewJSONL[Row](&out), &out, benchRows(1024))
}

func BenchmarkParquet(b *testing.B) {
	for _, compression := range []string{"zstd", "snappy", "none"} {
		b.Run(compression, func(b *testing.B) {
			benchParquet(b, ParquetOptions{Compression: compression}, benchRows(1024))
		})
	}
}

// benchParquet writes b.N of rows, in turn, with a Parquet writer.
func benchParquet(b *testing.B, opt ParquetOptions, rows []Row) {
	var out countWriter
	w, err := NewParquet(&out, opt)
	if err != nil {
		b.Fatal(err)
	}
	benchWrite(b, w, &out, rows)
}

// benchWrite writes b.N of rows, in turn, with w, which writes to out,
// and closes it.
func benchWrite(b *testing.B, w interface {
	Write(Row) error
	Close() error
}, out *countWriter, rows []Row) {
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

// benchDataRows returns n agent rows with a structured answer of
// dataTestSchema's kind: strings, numbers, a list of structs, a date.
func benchDataRows(n int) []Row {
	rows := benchRows(n)
	for i := range rows {
		rows[i].Results = nil
		rows[i].Content = fmt.Sprintf(`{"name":"Company %d"}`, i)
		rows[i].Data = json.RawMessage(fmt.Sprintf(`{"name":"CEO of Company %d","n":%d,"score":%d.5,"ok":true,"size":"m",`+
			`"tags":["https://example.com/%d","https://example.org/%d"],"people":[{"who":"Ann","age":50,"roles":["ceo"]},{"who":"Bob"}],`+
			`"day":"2024-02-%02d","at":"2024-02-29T10:11:12Z","hq":{"city":"Paris","geo":{"lat":48.85,"lon":2.35}}}`, i, 1900+i%120, i, i, i, 1+i%28))
	}
	return rows
}

func BenchmarkParquetData(b *testing.B) {
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		b.Fatal(err)
	}
	benchParquet(b, ParquetOptions{Data: d}, benchDataRows(1024))
}

// BenchmarkCSV writes rows in an order far from row order (the worst case
// for Close, which reads each row back on its own) to a file, Close
// included.
func BenchmarkCSV(b *testing.B) {
	d, err := NewDataSchema([]byte(dataTestSchema))
	if err != nil {
		b.Fatal(err)
	}
	rows := benchDataRows(1024)
	name := filepath.Join(b.TempDir(), "out.csv")
	w, err := CreateCSV(name, CSVOptions{Data: d})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := rows[i%len(rows)]
		r.Row = int64(b.N - i)
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if fi, err := os.Stat(name); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(b.N), "out-B/row")
	}
}
