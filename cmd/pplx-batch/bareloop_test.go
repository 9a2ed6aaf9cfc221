//go:build profile

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

// TestBareLoop is the yardstick of the tool's overhead: a bare Go loop
// that posts the search bodies of PPLX_BATCH_BARE_ROWS rows (default
// 50000; the query "Company <i> Inc", as in the profile inputs) over
// PPLX_BATCH_BARE_CONNS connections (default 64) to the server at
// PPLX_BATCH_BARE_URL and reads each answer, without decoding it. It logs
// requests per second; compare with the run's rows per second:
//
//	pplx-batch sim --rps 0 --latency 0 --addr 127.0.0.1:18777 &
//	PPLX_BATCH_BARE_URL=http://127.0.0.1:18777 go test -tags profile -run TestBareLoop -count 1 -v ./cmd/pplx-batch
func TestBareLoop(t *testing.T) {
	url := os.Getenv("PPLX_BATCH_BARE_URL")
	if url == "" {
		t.Skip("PPLX_BATCH_BARE_URL is not set")
	}
	rows, conns := envInt("PPLX_BATCH_BARE_ROWS", 50000), envInt("PPLX_BATCH_BARE_CONNS", 64)
	bodies := make([][]byte, rows)
	for i := range bodies {
		b, err := json.Marshal(&pplx.SearchRequest{Query: pplx.Query{fmt.Sprintf("Company %d Inc", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	tr := pplx.NewTransport(conns)
	tr.MaxConnsPerHost = conns
	hc := &http.Client{Transport: tr}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(rows) {
					return
				}
				req, err := http.NewRequest(http.MethodPost, url+pplx.SearchPath, bytes.NewReader(bodies[i]))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer k")
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	t.Logf("%d requests over %d connections in %.2f s: %.0f requests/s, %d failed",
		rows, conns, el.Seconds(), float64(rows)/el.Seconds(), failed.Load())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
