package pipeline_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/sink"
)

func res(row int64, status, hash, content string) pipeline.Result {
	return pipeline.Result{Row: sink.Row{ID: "x", Row: row, Status: status, Content: content, Input: []byte(`{"a":"b"}`)}, RequestHash: hash}
}

func replay(t *testing.T, j *pipeline.Journal, maxRow int64) []pipeline.Result {
	t.Helper()
	var out []pipeline.Result
	if err := j.Replay(maxRow, func(r pipeline.Result) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// reopen closes j and opens its file again, as the next run of a job
// does; the new journal is closed at the end of the test.
func reopen(t *testing.T, j *pipeline.Journal) *pipeline.Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := pipeline.OpenJournal(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func TestJournalResumeAndReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl.journal")
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []pipeline.Result{
		res(1, "ok", "aaaa000000000001", "one"),
		res(2, "error", "aaaa000000000002", ""),
		res(3, "ok", "aaaa000000000003", "three"),
		res(2, "ok", "aaaa000000000002", "two, retried"), // a later run answered row 2
		res(3, "ok", "bbbb000000000003", "three, new request"),
		res(4, "error", "", ""),
	} {
		if err := j.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	j = reopen(t, j)
	done := []struct {
		row  int64
		hash string
		want bool
	}{
		{1, "aaaa000000000001", true}, {1, "cccc000000000001", false}, {2, "aaaa000000000002", true}, {3, "aaaa000000000003", false}, {3, "bbbb000000000003", true},
		{4, "", false}, {5, "aaaa000000000005", false},
	}
	for _, d := range done {
		if got := j.Done(d.row, d.hash); got != d.want {
			t.Errorf("Done(%d, %q) = %v, want %v", d.row, d.hash, got, d.want)
		}
	}
	got := replay(t, j, 0)
	var contents []string
	for _, r := range got {
		contents = append(contents, r.Content)
	}
	if want := "one|two, retried|three, new request|"; strings.Join(contents, "|") != want {
		t.Errorf("replay gave %q, want %q", strings.Join(contents, "|"), want)
	}
	if ok, failed := j.Counts(0); ok != 3 || failed != 1 {
		t.Errorf("Counts = %d ok, %d failed; want 3 and 1", ok, failed)
	}
	if got := replay(t, j, 2); len(got) != 2 {
		t.Errorf("replay up to row 2 gave %d rows, want 2", len(got))
	}
}

// crashAndCut crashes j after flushing it and cuts the last cut bytes off
// the file, as a write torn by a crash would.
func crashAndCut(t *testing.T, j *pipeline.Journal, cut int64) {
	t.Helper()
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	j.Crash()
	fi, err := os.Stat(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(j.Path(), fi.Size()-cut); err != nil {
		t.Fatal(err)
	}
}

func TestJournalDropsATornTail(t *testing.T) {
	// Find how long the chunk of one row is, then cut every length off it.
	path := filepath.Join(t.TempDir(), "j")
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Write(res(1, "ok", "aaaa000000000001", "one"))
	j.Flush()
	fi, _ := os.Stat(path)
	before := fi.Size()
	j.Write(res(2, "ok", "aaaa000000000002", "two"))
	j.Flush()
	fi, _ = os.Stat(path)
	chunk := fi.Size() - before
	j.Close()

	for cut := int64(1); cut <= chunk; cut++ {
		path := filepath.Join(t.TempDir(), "j")
		j, err := pipeline.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		j.Write(res(1, "ok", "aaaa000000000001", "one"))
		j.Flush()
		j.Write(res(2, "ok", "aaaa000000000002", "two"))
		crashAndCut(t, j, cut)

		j, err = pipeline.OpenJournal(path)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if j.Done(2, "aaaa000000000002") {
			t.Errorf("cut %d: row 2 is done", cut)
		}
		if err := j.Write(res(3, "ok", "aaaa000000000003", "three")); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		got := replay(t, j, 0)
		if len(got) != 2 || got[0].Content != "one" || got[1].Content != "three" {
			t.Errorf("cut %d: replay gave %+v, want rows 1 and 3", cut, got)
		}
	}
}

func TestJournalCrashesAndReopens(t *testing.T) {
	// Several runs, each killed after flushing: every flushed row is kept,
	// and the frames the crashes left open do not hide later ones.
	path := filepath.Join(t.TempDir(), "j")
	var want []string
	for run := range 4 {
		j, err := pipeline.OpenJournal(path)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for i := range 50 {
			row := int64(run*50 + i + 1)
			content := strings.Repeat("answer ", i) + strconv.FormatInt(row, 10)
			if err := j.Write(res(row, "ok", "aaaa000000000001", content)); err != nil {
				t.Fatal(err)
			}
			want = append(want, content)
			if i%7 == 0 {
				j.Flush()
			}
		}
		if run == 3 {
			j.Close()
			break
		}
		crashAndCut(t, j, 0)
	}
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	var got []string
	for _, r := range replay(t, j, 0) {
		got = append(got, r.Content)
	}
	if !slices.Equal(got, want) {
		t.Errorf("replay gave %d rows, want %d", len(got), len(want))
	}
	if ok, _ := j.Counts(0); ok != 200 {
		t.Errorf("Counts = %d ok, want 200", ok)
	}
}

func TestJournalRefusesDamage(t *testing.T) {
	// A journal of two chunks with a byte of the first one changed.
	path := filepath.Join(t.TempDir(), "j")
	j, _ := pipeline.OpenJournal(path)
	j.Write(res(1, "ok", "aaaa000000000001", "one"))
	j.Flush()
	j.Write(res(2, "ok", "aaaa000000000002", "two"))
	j.Close()
	good, _ := os.ReadFile(path)
	damaged := slices.Clone(good)
	damaged[len(`{"pplx_batch_journal":2}`)+1+10] ^= 0x40

	tests := []struct{ name, content, want string }{
		{"not a journal", "id,company\n1,x\n", "not a pplx-batch journal"},
		{"damaged chunk", string(damaged), "chunk 1 at byte 25: chunk checksum does not match"},
		{"damaged middle of a format 1 journal", `{"pplx_batch_journal":1}` + "\n{broken\n" + `{"row":2,"status":"ok"}` + "\n", ":2:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, err := pipeline.OpenJournal(path)
			var je *pipeline.JournalError
			if !errors.As(err, &je) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--restart") {
				t.Errorf("got %v, want a JournalError with %q and a hint", err, tc.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Error("the damaged journal was changed")
			}
		})
	}
}

func TestJournalConvertsFormat1(t *testing.T) {
	const v1 = `{"pplx_batch_journal":1}
{"id":"1","row":1,"status":"ok","content":"one","input":{"a":"b"},"request_hash":"aaaa000000000001"}
{"id":"2","row":2,"status":"error","error":"boom","input":{"a":"b"},"request_hash":"aaaa000000000002"}
{"row":3,"request_hash":"aaaa000000000003","pending_run":"run-3"}
{"id":"2","row":2,"status":"ok","content":"two","input":{"a":"b"},"request_hash":"aaaa000000000002"}
`
	for _, tail := range []string{"", `{"id":"4","row":4,"status":"ok","con`, `{"id":"4","row":4,"status":"ok"}`, "\n\n"} {
		path := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(path, []byte(v1+tail), 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := pipeline.OpenJournal(path)
		if err != nil {
			t.Fatalf("tail %q: %v", tail, err)
		}
		if !j.Done(1, "aaaa000000000001") || !j.Done(2, "aaaa000000000002") || j.Done(4, "") {
			t.Errorf("tail %q: rows 1 and 2 should be done, row 4 not", tail)
		}
		if id, ok := j.Pending(3, "aaaa000000000003"); id != "run-3" || !ok {
			t.Errorf("tail %q: Pending(3) = %q, %v", tail, id, ok)
		}
		j.Close()
		var got []string
		for _, r := range replay(t, j, 0) {
			got = append(got, r.Content)
		}
		if strings.Join(got, ",") != "one,two" {
			t.Errorf("tail %q: replay gave %q", tail, got)
		}
		if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), `{"pplx_batch_journal":2}`) {
			t.Errorf("tail %q: not converted: %.40q", tail, b)
		}
		if _, err := os.Stat(path + ".convert"); !os.IsNotExist(err) {
			t.Errorf("tail %q: the conversion left %s.convert", tail, path)
		}
	}
}

// journalOp is one step of a pending-run test: a finished row (status), a
// submitted background run (runID), a crash that cuts the last cut bytes
// off the file then a reopen (crash), or a reopen.
type journalOp struct {
	row    int64
	hash   string
	status string // a finished row when not empty
	runID  string // a submitted run when not empty
	crash  bool
	cut    int64
	reopen bool
}

func TestJournalPendingRuns(t *testing.T) {
	const h1, h2 = "aaaa000000000001", "bbbb000000000001"
	type want struct {
		row   int64
		hash  string
		runID string // "" when Pending must say no
		done  bool
	}
	tests := []struct {
		name      string
		ops       []journalOp
		want      []want
		pending   []pipeline.PendingRun
		ok, fail  int64
		len       int
		replayIDs string // rows replayed, in order
	}{
		{
			name:    "pending",
			ops:     []journalOp{{row: 1, hash: h1, runID: "run-1"}},
			want:    []want{{1, h1, "run-1", false}, {1, h2, "", false}, {2, h1, "", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}},
		},
		{
			name:    "pending survives a reopen and a crash",
			ops:     []journalOp{{row: 2, hash: h1, runID: "run-2"}, {crash: true}, {row: 1, hash: h1, runID: "run-1"}, {reopen: true}},
			want:    []want{{1, h1, "run-1", false}, {2, h1, "run-2", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}, {Row: 2, RequestHash: h1, RunID: "run-2"}},
		},
		{
			name:      "pending then finished",
			ops:       []journalOp{{row: 1, hash: h1, runID: "run-1"}, {row: 1, hash: h1, status: "ok"}, {reopen: true}},
			want:      []want{{1, h1, "", true}},
			ok:        1,
			len:       1,
			replayIDs: "1",
		},
		{
			name:      "pending then failed",
			ops:       []journalOp{{row: 1, hash: h1, runID: "run-1"}, {row: 1, hash: h1, status: "error"}},
			want:      []want{{1, h1, "", false}},
			fail:      1,
			len:       1,
			replayIDs: "1",
		},
		{
			name:    "pending for a changed request is not pending",
			ops:     []journalOp{{row: 1, hash: h1, runID: "run-1"}, {reopen: true}},
			want:    []want{{1, h2, "", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}},
		},
		{
			name:    "the last pending run of a row wins",
			ops:     []journalOp{{row: 1, hash: h1, runID: "run-1"}, {row: 1, hash: h2, runID: "run-2"}, {reopen: true}},
			want:    []want{{1, h1, "", false}, {1, h2, "run-2", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h2, RunID: "run-2"}},
		},
		{
			// A failed row tried again in the background: until the run
			// is answered the output keeps the earlier failure.
			name:      "failed, then pending again",
			ops:       []journalOp{{row: 1, hash: h1, status: "error"}, {row: 2, hash: h1, status: "ok"}, {row: 1, hash: h1, runID: "run-1"}, {reopen: true}},
			want:      []want{{1, h1, "run-1", false}, {2, h1, "", true}},
			pending:   []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}},
			ok:        1,
			fail:      1,
			len:       2,
			replayIDs: "1,2",
		},
		{
			name:    "a torn pending entry is dropped",
			ops:     []journalOp{{row: 1, hash: h1, runID: "run-1"}, {row: 2, hash: h1, runID: "run-2"}, {crash: true, cut: 3}},
			want:    []want{{1, h1, "run-1", false}, {2, h1, "", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}},
		},
		{
			name:    "a torn finished entry leaves the run pending",
			ops:     []journalOp{{row: 1, hash: h1, runID: "run-1"}, {row: 1, hash: h1, status: "ok"}, {crash: true, cut: 5}},
			want:    []want{{1, h1, "run-1", false}},
			pending: []pipeline.PendingRun{{Row: 1, RequestHash: h1, RunID: "run-1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j, err := pipeline.OpenJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range tc.ops {
				switch {
				case op.reopen:
					j = reopen(t, j)
				case op.crash:
					crashAndCut(t, j, op.cut)
					if j, err = pipeline.OpenJournal(path); err != nil {
						t.Fatal(err)
					}
				case op.runID != "":
					if err := j.Submitted(op.row, op.hash, op.runID); err != nil {
						t.Fatal(err)
					}
				default:
					if err := j.Write(res(op.row, op.status, op.hash, "")); err != nil {
						t.Fatal(err)
					}
				}
			}
			defer j.Close()
			for _, w := range tc.want {
				id, ok := j.Pending(w.row, w.hash)
				if id != w.runID || ok != (w.runID != "") {
					t.Errorf("Pending(%d, %q) = %q, %v; want %q", w.row, w.hash, id, ok, w.runID)
				}
				if got := j.Done(w.row, w.hash); got != w.done {
					t.Errorf("Done(%d, %q) = %v, want %v", w.row, w.hash, got, w.done)
				}
			}
			if got := j.PendingRuns(); !slices.Equal(got, tc.pending) && len(got)+len(tc.pending) > 0 {
				t.Errorf("PendingRuns() = %+v, want %+v", got, tc.pending)
			}
			if ok, failed := j.Counts(0); ok != tc.ok || failed != tc.fail {
				t.Errorf("Counts = %d ok, %d failed; want %d and %d", ok, failed, tc.ok, tc.fail)
			}
			if got := j.Len(); got != tc.len {
				t.Errorf("Len() = %d, want %d", got, tc.len)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			var rows []string
			for _, r := range replay(t, j, 0) {
				rows = append(rows, strconv.FormatInt(r.Row.Row, 10))
			}
			if got := strings.Join(rows, ","); got != tc.replayIDs {
				t.Errorf("Replay gave rows %q, want %q", got, tc.replayIDs)
			}
		})
	}
}

// TestJournalReplayInOrder replays a journal of many decoding batches: the
// rows come in journal order (the last entry of each row), and an error of
// the callback ends the replay at once with that error.
func TestJournalReplayInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var want []string
	for i := range int64(n) {
		row := (i*7919)%n + 1 // every row once, out of row order
		if row%5 == 0 {
			// A failed first answer, replaced later by the second.
			if err := j.Write(res(row, "error", "", "")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := j.Write(res(row, "ok", "", fmt.Sprint("answer ", row))); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("answer ", row))
	}
	for row := int64(5); row <= n; row += 5 {
		if err := j.Write(res(row, "ok", "", fmt.Sprint("retried ", row))); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("retried ", row))
	}
	j = reopen(t, j)
	var got []string
	for _, r := range replay(t, j, 0) {
		got = append(got, r.Content)
	}
	if !slices.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("replay gave %d rows, want %d in journal order; they differ from row %d on", len(got), len(want), i)
	}
	stop := errors.New("stop")
	calls := 0
	err = j.Replay(0, func(pipeline.Result) error {
		if calls++; calls == 700 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 700 {
		t.Errorf("replay stopped by its callback: %v after %d calls, want the callback's error after 700", err, calls)
	}
}
