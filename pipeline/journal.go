package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pplx-batch/pplx-batch/sink"
)

// journalMagic is the first line of every journal file.
const journalMagic = `{"pplx_batch_journal":1}`

// DefaultSyncInterval is how often a [Journal] forces its file to stable
// storage while rows are written: a power cut loses at most this much.
const DefaultSyncInterval = time.Second

// maxJournalLine bounds one journal line (one answer) when reading.
const maxJournalLine = 256 << 20

// Journal is the record of a job's finished rows that makes a run
// resumable. It is an append-only JSONL file: one line per finished
// [Result], written and handed to the operating system as soon as the row
// is finished, so a killed process loses no answer, and synced to stable
// storage at least every SyncInterval. A row may appear more than once (a
// failed row answered by a later run, a row whose request changed); the
// last line of a row wins.
//
// A Journal implements [Writer] of [Result] for [Pipeline.Run] and
// [Resume]: a row is done when its last line is ok and was answered for
// the same request. Its methods are safe for concurrent use.
//
// Memory: the index holds a few dozen bytes per row (row number, offset,
// request hash); the answers themselves stay on disk.
type Journal struct {
	// SyncInterval is the longest time between two syncs of the file to
	// stable storage while writing; 0 means DefaultSyncInterval.
	SyncInterval time.Duration

	path string

	mu       sync.RWMutex
	f        *os.File
	w        *bufio.Writer
	size     int64
	index    map[int64]journalEntry
	lastSync time.Time
	err      error
}

type journalEntry struct {
	off  int64
	hash string
	ok   bool
}

// JournalError reports a journal that cannot be read.
type JournalError struct {
	Path string
	Line int
	Err  error
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("journal %s:%d: %v (delete it, or run with --restart, to start over)", e.Path, e.Line, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }

// OpenJournal opens the journal at path, creating it if it does not
// exist, and reads the rows it holds. A last line cut short by a crash is
// dropped; any other damage is a *JournalError.
func OpenJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{path: path, f: f, index: map[int64]journalEntry{}}
	if err := j.load(); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(j.size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.w = bufio.NewWriterSize(f, 64<<10)
	if j.size == 0 {
		if _, err := j.w.WriteString(journalMagic + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
		j.size = int64(len(journalMagic) + 1)
	}
	j.lastSync = time.Now()
	return j, nil
}

// load reads the journal, builds the index and truncates a torn last line.
func (j *Journal) load() error {
	r := bufio.NewReaderSize(j.f, 64<<10)
	var off int64
	for line := 1; ; line++ {
		b, err := readLine(r, maxJournalLine)
		if errors.Is(err, io.EOF) && len(b) == 0 {
			break
		}
		torn := errors.Is(err, io.EOF) // a last line without its newline
		if err != nil && !torn {
			return &JournalError{j.path, line, err}
		}
		if line == 1 {
			if torn || !bytes.Equal(bytes.TrimSpace(b), []byte(journalMagic)) {
				if torn && bytes.HasPrefix([]byte(journalMagic), b) {
					break // the header itself was cut short: start afresh
				}
				return &JournalError{j.path, line, errors.New("not a pplx-batch journal")}
			}
			off += int64(len(b)) + 1
			continue
		}
		var res Result
		if err := json.Unmarshal(b, &res); err != nil || res.Row.Row <= 0 {
			if torn || isLastLine(r) {
				break // cut short by a crash: the row was never finished
			}
			if err == nil {
				err = errors.New("line has no row number")
			}
			return &JournalError{j.path, line, err}
		}
		if torn {
			break // complete JSON but no newline: the write was cut short
		}
		j.index[res.Row.Row] = journalEntry{off: off, hash: res.RequestHash, ok: res.Status == sink.StatusOK}
		off += int64(len(b)) + 1
	}
	j.size = off
	if err := j.f.Truncate(off); err != nil {
		return fmt.Errorf("journal: %w", err)
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

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Len returns the number of distinct rows in the journal.
func (j *Journal) Len() int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return len(j.index)
}

// Counts returns how many distinct rows the journal holds as ok and as
// failed (by their last line), among rows 1 to maxRow (all rows when
// maxRow <= 0).
func (j *Journal) Counts(maxRow int64) (ok, failed int64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	for row, e := range j.index {
		if maxRow > 0 && row > maxRow {
			continue
		}
		if e.ok {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}

// Done implements [Resume]: the row's last line is ok and was answered
// for a request with the same hash.
func (j *Journal) Done(row int64, requestHash string) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	e, ok := j.index[row]
	return ok && e.ok && requestHash != "" && e.hash == requestHash
}

// Write appends one finished row and hands it to the operating system.
func (j *Journal) Write(r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal: row %d: %w", r.Row.Row, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	off := j.size
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
		return j.err
	}
	j.size += int64(len(b)) + 1
	j.index[r.Row.Row] = journalEntry{off: off, hash: r.RequestHash, ok: r.Status == sink.StatusOK}
	interval := j.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	if time.Since(j.lastSync) >= interval {
		if err := j.f.Sync(); err != nil {
			j.err = fmt.Errorf("journal %s: %w", j.path, err)
			return j.err
		}
		j.lastSync = time.Now()
	}
	return nil
}

// Close flushes and syncs the journal and closes its file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return j.err
	}
	err := j.err
	if ferr := j.w.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if serr := j.f.Sync(); err == nil && serr != nil {
		err = serr
	}
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	j.f = nil
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
	}
	return j.err
}

// Replay calls fn with the last line of every row in the journal whose
// row number is at most maxRow (every row when maxRow <= 0), in the order
// they were written, reading the file sequentially. It may be called
// after Close.
func (j *Journal) Replay(maxRow int64, fn func(Result) error) error {
	j.mu.RLock()
	index := j.index
	j.mu.RUnlock()
	f, err := os.Open(j.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for line := 1; ; line++ {
		b, err := readLine(r, maxJournalLine)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &JournalError{j.path, line, err}
		}
		start := off
		off += int64(len(b)) + 1
		if line == 1 {
			continue
		}
		var res Result
		if err := json.Unmarshal(b, &res); err != nil {
			return &JournalError{j.path, line, err}
		}
		e, ok := index[res.Row.Row]
		if !ok || e.off != start || (maxRow > 0 && res.Row.Row > maxRow) {
			continue
		}
		if err := fn(res); err != nil {
			return err
		}
	}
}
