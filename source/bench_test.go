package source

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

const benchRows = 10000

func benchCSV() []byte {
	var b bytes.Buffer
	b.WriteString("id,company,country,question,notes\n")
	for i := range benchRows {
		fmt.Fprintf(&b, "%d,Company %d,US,\"Where is Company %d, Inc. headquartered?\",plain note %d\n", i, i, i, i)
	}
	return b.Bytes()
}

func benchJSONL() []byte {
	var b bytes.Buffer
	for i := range benchRows {
		fmt.Fprintf(&b, `{"id":%d,"company":"Company %d","country":"US","question":"Where is Company %d, Inc. headquartered?","score":%d.5,"tags":["a","b"]}`+"\n", i, i, i, i)
	}
	return b.Bytes()
}

// benchRead reads data to the end b.N times and reports rows per second
// and allocations per row.
func benchRead(b *testing.B, data []byte, format string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	rows := 0
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), "bench", Options{Format: format})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

func BenchmarkCSV(b *testing.B)   { benchRead(b, benchCSV(), "csv") }
func BenchmarkJSONL(b *testing.B) { benchRead(b, benchJSONL(), "jsonl") }
