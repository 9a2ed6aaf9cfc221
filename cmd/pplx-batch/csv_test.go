package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/sim"
	"github.com/pplx-batch/pplx-batch/sink"
)

// trickyCSV returns a CSV input of n rows whose cells hold quotes, commas,
// line ends (\n and \r\n), leading and trailing space, unicode, leading
// zeros, numbers and booleans as text, and empty cells; and its records as
// encoding/csv reads them (the header first).
func trickyCSV(t *testing.T, n int) (string, [][]string) {
	t.Helper()
	cells := []string{`He said "hi", twice`, "line one\nline two", "crlf\r\nline", "  padded  ", "Ünïcødé 日本語 🎉",
		"", "007", "1e3", "TRUE", `\.`, "=SUM(A1)", `"`, "tab\there", "null"}
	header := []string{"name", "notes, long", `quote "q"`, "ünï", "empty", "num"}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	_ = w.Write(header)
	for i := range n {
		rec := []string{fmt.Sprintf("Company %d", i+1)}
		for j := 1; j < len(header); j++ {
			rec = append(rec, cells[(i*5+j)%len(cells)])
		}
		rec[4] = "" // a column of empty cells
		_ = w.Write(rec)
	}
	w.Flush()
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), recs
}

// readCSVFile reads a CSV output with encoding/csv.
func readCSVFile(t *testing.T, path string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(readFile(t, path))).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return recs
}

// checkCSVInput checks that the output holds the input's columns first,
// unchanged, in the input's row order, then status and error.
func checkCSVInput(t *testing.T, got, in [][]string, answer []string) {
	t.Helper()
	width := len(in[0])
	wantHeader := slices.Concat(in[0], []string{"status", "error"}, answer)
	if !slices.Equal(got[0], wantHeader) {
		t.Fatalf("header %q, want %q", got[0], wantHeader)
	}
	if len(got) != len(in) {
		t.Fatalf("%d rows, want %d", len(got)-1, len(in)-1)
	}
	for i := 1; i < len(in); i++ {
		if len(got[i]) != len(wantHeader) || !slices.Equal(got[i][:width], in[i]) {
			t.Errorf("row %d: input cells %q, want %q", i, got[i][:min(width, len(got[i]))], in[i])
		}
	}
}

// TestCSVOutput runs a chat job from a CSV input to a CSV output and checks
// every input cell unchanged, the answers equal to those of the same job
// written as JSONL, and the file in DuckDB's read_csv.
func TestCSVOutput(t *testing.T) {
	const n = 40
	input, in := trickyCSV(t, n)
	inPath := writeFile(t, "in.csv", input)
	dir := t.TempDir()
	ts, _ := startSim(t, sim.Config{})
	outputs := map[string]string{}
	for _, name := range []string{"out.csv", "out.jsonl"} {
		out := filepath.Join(dir, name)
		r := runMain(t, "", keyEnv(), "run", "--mode", "chat", "--input", inPath, "--output", out,
			"--prompt", "About {{.name}}", "--concurrency", "8", "--base-url", ts.URL)
		if r.code != exitOK {
			t.Fatalf("%s: exit %d; stderr:\n%s", name, r.code, r.stderr)
		}
		outputs[name] = out
	}
	got := readCSVFile(t, outputs["out.csv"])
	checkCSVInput(t, got, in, []string{"content", "citations"})
	rows := readJSONL[sink.Row](t, readFile(t, outputs["out.jsonl"]))
	slices.SortFunc(rows, func(a, b sink.Row) int { return int(a.Row - b.Row) })
	for i, r := range rows {
		citations, _ := json.Marshal(r.Citations)
		want := []string{sink.StatusOK, "", r.Content, string(citations)}
		if g := got[i+1][len(in[0]):]; !slices.Equal(g, want) || r.Content == "" {
			t.Errorf("row %d: answer cells %q, want %q", r.Row, g, want)
		}
	}

	// DuckDB reads the file with its header; every input column comes
	// back as it was (an empty cell as NULL).
	cols := make([]string, len(in[0]))
	for i, c := range in[0] {
		cols[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
	}
	drows := duckdbQuery(t, outputs["out.csv"], "SELECT "+strings.Join(cols, ", ")+" FROM FILE_TEXT")
	if drows == nil {
		return // no DuckDB
	}
	if len(drows) != n {
		t.Fatalf("read_csv: %d rows, want %d", len(drows), n)
	}
	for i, dr := range drows {
		for j, c := range in[0] {
			want := any(in[i+1][j])
			if want == "" {
				want = nil
			}
			if dr[c] != want {
				t.Errorf("read_csv row %d column %q: %q, want %q", i+1, c, dr[c], want)
			}
		}
	}
	if typed := duckdbQuery(t, outputs["out.csv"], "SELECT count(*) AS n, count(content) AS answered FROM FILE"); fmt.Sprint(typed) != fmt.Sprintf("[map[answered:%d n:%d]]", n, n) {
		t.Errorf("read_csv with its types: %v", typed)
	}
}

// TestCSVOutputResumed fails every row against a broken server (the CSV
// is written live), then resumes against a healthy one (the CSV is written
// from the journal).
func TestCSVOutputResumed(t *testing.T) {
	broken, _ := startSim(t, sim.Config{Faults: sim.Faults{P500: 1}})
	healthy, _ := startSim(t, sim.Config{})
	const n = 8 // fewer failures in a row than make an outage
	input, in := trickyCSV(t, n)
	inPath := writeFile(t, "in.csv", input)
	out := filepath.Join(t.TempDir(), "enriched.data")
	run := func(base string) result {
		return runMain(t, "", keyEnv(), "run", "--input", inPath, "--output", out, "--output-format", "csv",
			"--query", "{{.name}}", "--max-retries", "0", "--base-url", base)
	}
	if r := run(broken.URL); r.code != exitRowsFailed {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	got := readCSVFile(t, out)
	checkCSVInput(t, got, in, []string{"urls", "results"})
	for _, rec := range got[1:] {
		if st, e := rec[len(in[0])], rec[len(in[0])+1]; st != sink.StatusError || e == "" {
			t.Errorf("failed run: status %q error %q", st, e)
		}
	}

	if r := run(healthy.URL); r.code != exitOK {
		t.Fatalf("resume: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	got = readCSVFile(t, out)
	checkCSVInput(t, got, in, []string{"urls", "results"})
	for i, rec := range got[1:] {
		tail := rec[len(in[0]):]
		var urls []string
		var results []sink.SearchResult
		if tail[0] != sink.StatusOK || json.Unmarshal([]byte(tail[2]), &urls) != nil || json.Unmarshal([]byte(tail[3]), &results) != nil ||
			len(urls) == 0 || len(urls) != len(results) || urls[0] != results[0].URL {
			t.Errorf("row %d: answer cells %q", i+1, tail)
		}
	}
}

func TestCSVOutputFormat(t *testing.T) {
	in := writeFile(t, "in.csv", companies(2))
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", "-", "--output-format", "csv", "--query", "{{.company}}")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--output-format csv needs an output file") {
		t.Errorf("csv to stdout: exit %d:\n%s", r.code, r.stderr)
	}
}
