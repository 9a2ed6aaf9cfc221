package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format 1 of the journal, written by earlier versions: JSON lines, the
// first {"pplx_batch_journal":1}, then one [Result] per line, or a pending
// run {"row":..,"request_hash":..,"pending_run":..}. OpenJournal converts
// such a journal to the current format, so that a job started by an
// earlier version resumes.

// maxJournalLine bounds one line of a format 1 journal.
const maxJournalLine = maxEntryJSON

// journalLine is one line of a format 1 journal.
type journalLine struct {
	Result
	PendingRun string `json:"pending_run,omitempty"`
}

// convertV1 rewrites the journal at path in the current format when it is
// a format 1 journal, dropping a last line cut short by a crash. The new
// journal is written beside it and renamed over it, so a crash while
// converting leaves the old journal as it was.
func convertV1(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	head, _ := r.Peek(len(journalMagicV1) + 1)
	if !bytes.Equal(bytes.TrimRight(head, "\r\n"), []byte(journalMagicV1)) {
		return nil
	}
	tmp := path + ".convert"
	_ = os.Remove(tmp)
	j, err := openJournal(tmp)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			j.Close()
			os.Remove(tmp)
		}
	}()
	for line := 1; ; line++ {
		b, err := readLine(r, maxJournalLine)
		if errors.Is(err, io.EOF) && len(b) == 0 {
			break
		}
		torn := errors.Is(err, io.EOF) // a last line without its newline
		if err != nil && !torn {
			return &JournalError{Path: path, Line: line, Err: err}
		}
		if line == 1 || len(bytes.TrimSpace(b)) == 0 && isLastLine(r) {
			continue
		}
		var l journalLine
		if err := json.Unmarshal(b, &l); err != nil || l.Row.Row <= 0 || l.Row.Row > maxJournalRow {
			if torn || isLastLine(r) {
				break // cut short by a crash: the row was never finished
			}
			if err == nil {
				err = errors.New("line has no valid row number")
			}
			return &JournalError{Path: path, Line: line, Err: err}
		}
		if torn {
			break // complete JSON but no newline: the write was cut short
		}
		if l.PendingRun != "" {
			err = j.Submitted(l.Row.Row, l.RequestHash, l.PendingRun)
		} else {
			err = j.Write(l.Result)
		}
		if err != nil {
			return err
		}
	}
	if err := j.Close(); err != nil {
		return err
	}
	ok = true
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: convert %s: %w", path, err)
	}
	return nil
}

// isLastLine reports whether r has nothing left but white space.
func isLastLine(r *bufio.Reader) bool {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return true
		}
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			_ = r.UnreadByte()
			return false
		}
	}
}

// readLine reads one line without its newline. It returns io.EOF with the
// bytes read when the input ends before a newline.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > limit {
			return nil, fmt.Errorf("line longer than %d bytes", limit)
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}
