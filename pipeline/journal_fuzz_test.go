package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pplx-batch/pplx-batch/pipeline"
)

// FuzzJournalOpen opens arbitrary files as journals (format 2 chunks after
// the header, or format 1 lines): opening either fails with an error or
// gives a journal whose rows replay without failing, and Counts agrees
// with what Replay emits.
func FuzzJournalOpen(f *testing.F) {
	// A real journal: two rows, a pending run, then a crash (no frame end).
	dir := f.TempDir()
	path := filepath.Join(dir, "j")
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		f.Fatal(err)
	}
	j.Write(res(1, "ok", "aaaa000000000001", "one"))
	j.Submitted(2, "aaaa000000000002", "run-2")
	j.Write(res(3, "error", "aaaa000000000003", ""))
	j.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add([]byte(`{"pplx_batch_journal":2}` + "\n"))
	f.Add([]byte(`{"pplx_batch_journal":1}` + "\n" + `{"id":"1","row":1,"status":"ok","request_hash":"aaaa000000000001"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := pipeline.OpenJournal(path)
		if err != nil {
			return
		}
		ok, failed := j.Counts(0)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		var gotOK, gotFailed int64
		err = j.Replay(0, func(r pipeline.Result) error {
			if r.Status == "ok" {
				gotOK++
			} else {
				gotFailed++
			}
			return nil
		})
		if err != nil {
			return // damage inside the compressed bytes shows only now
		}
		if gotOK != ok || gotFailed != failed {
			t.Errorf("Counts = %d ok, %d failed; Replay gave %d and %d", ok, failed, gotOK, gotFailed)
		}
	})
}
