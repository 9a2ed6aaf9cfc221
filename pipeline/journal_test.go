package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
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
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j, err = pipeline.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
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

func TestJournalDropsATornLastLine(t *testing.T) {
	for _, tail := range []string{
		`{"id":"2","row":2,"status":"ok","con`, // cut mid-line
		`{"id":"2","row":2,"status":"ok"}`,     // complete JSON, newline missing
		"\n\n",                                 // blank lines
	} {
		path := filepath.Join(t.TempDir(), "j")
		j, err := pipeline.OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Write(res(1, "ok", "aaaa000000000001", "one")); err != nil {
			t.Fatal(err)
		}
		j.Close()
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(tail)
		f.Close()

		j, err = pipeline.OpenJournal(path)
		if err != nil {
			t.Fatalf("tail %q: %v", tail, err)
		}
		if err := j.Write(res(3, "ok", "aaaa000000000003", "three")); err != nil {
			t.Fatal(err)
		}
		j.Close()
		got := replay(t, j, 0)
		if len(got) != 2 || got[0].Row.Row != 1 || got[1].Row.Row != 3 || j.Done(2, "") {
			t.Errorf("tail %q: replay gave %d rows %+v, want rows 1 and 3", tail, len(got), got)
		}
	}
}

func TestJournalRefusesDamage(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"not a journal", "id,company\n1,x\n", ":1: not a pplx-batch journal"},
		{"damaged middle", `{"pplx_batch_journal":1}` + "\n{broken\n" + `{"row":2,"status":"ok"}` + "\n", ":2:"},
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
		})
	}
}
