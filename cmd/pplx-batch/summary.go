package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/pplx-batch/pplx-batch/pipeline"
)

// summary is the JSON run summary of DESIGN.md §1; CI scripts read its keys.
type summary struct {
	Rows struct {
		Total   int64 `json:"total"`
		OK      int64 `json:"ok"`
		Failed  int64 `json:"failed"`
		Skipped int64 `json:"skipped"`
	} `json:"rows"`
	Requests struct {
		Total       int64 `json:"total"`
		RateLimited int64 `json:"rate_limited"`
		Retries     int64 `json:"retries"`
	} `json:"requests"`
	LatencyMS struct {
		P50 int64 `json:"p50"`
		P95 int64 `json:"p95"`
		P99 int64 `json:"p99"`
	} `json:"latency_ms"`
	Throughput float64 `json:"throughput_rows_per_s"`
	Tokens     struct {
		Prompt     int64 `json:"prompt"`
		Completion int64 `json:"completion"`
		Total      int64 `json:"total"`
	} `json:"tokens"`
	CostUSD  float64 `json:"cost_usd"`
	WallS    float64 `json:"wall_s"`
	ExitCode int     `json:"exit_code"`
}

func newSummary(s pipeline.Stats, c finalCounts, code int) summary {
	var out summary
	out.Rows.Total, out.Rows.OK, out.Rows.Failed, out.Rows.Skipped = s.Read, c.ok, c.failed, s.Skipped
	out.Requests.Total, out.Requests.RateLimited, out.Requests.Retries = s.Requests, s.RateLimited, s.Retries
	out.LatencyMS.P50 = s.LatencyP50.Milliseconds()
	out.LatencyMS.P95 = s.LatencyP95.Milliseconds()
	out.LatencyMS.P99 = s.LatencyP99.Milliseconds()
	if sec := s.Wall.Seconds(); sec > 0 {
		out.Throughput = round(float64(s.Rows)/sec, 2)
	}
	out.Tokens.Prompt, out.Tokens.Completion, out.Tokens.Total = s.PromptTokens, s.CompletionTokens, s.TotalTokens
	out.CostUSD = round(s.CostUSD, 6)
	out.WallS = round(s.Wall.Seconds(), 3)
	out.ExitCode = code
	return out
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// writeSummary writes the JSON summary to path atomically.
func writeSummary(path string, s pipeline.Stats, c finalCounts, code int) error {
	b, err := json.MarshalIndent(newSummary(s, c, code), "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".summary-*.json")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("summary: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

// printSummary prints the one-line summary of a run.
func printSummary(w io.Writer, s pipeline.Stats, c finalCounts, code int, errorsPath string) {
	msg := fmt.Sprintf("pplx-batch: %d rows: %d ok, %d failed", s.Read, c.ok, c.failed)
	if s.Skipped > 0 {
		msg += fmt.Sprintf(" (%d answered by an earlier run)", s.Skipped)
	}
	if missing := s.Read - c.ok - c.failed; missing > 0 {
		msg += fmt.Sprintf(", %d not finished", missing)
	}
	msg += fmt.Sprintf("; %d requests, %d rate-limited (429), %d retries; %s",
		s.Requests, s.RateLimited, s.Retries, s.Wall.Round(time.Millisecond))
	if s.CostUSD > 0 {
		msg += fmt.Sprintf("; $%.4f", s.CostUSD)
	}
	if c.failed > 0 && errorsPath != "" {
		msg += "; failed rows in " + errorsPath
	}
	fmt.Fprintf(w, "%s (exit %d)\n", msg, code)
}
