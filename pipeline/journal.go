package pipeline

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
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
// storage every DefaultSyncInterval. A row may appear more than once (a
// failed row answered by a later run, a row whose request changed); the
// last line of a row wins.
//
// A Journal implements [Writer] of [Result] for [Pipeline.Run] and
// [Resume]: a row is done when its last line is ok and was answered for
// the same request. Its methods are safe for concurrent use.
//
// A Journal also implements [Runs]: a background run's id is written (and
// handed to the operating system) as a pending entry of its row before the
// run is polled, so a killed job resumes by polling it. A later finished
// [Result] of the row replaces the pending entry. Pending entries are not
// output rows: Replay skips them, and Done, Counts and Len look past them
// to the row's last finished entry, if any.
//
// Memory: the index holds 7 bytes per input row (part of the request hash,
// the state, the number of lines); pending runs, at most the requests in
// flight, are kept in a map; the answers themselves stay on disk.
type Journal struct {
	path string

	mu       sync.RWMutex
	f        *os.File
	w        *bufio.Writer
	size     int64
	index    rowIndex
	pending  map[int64]PendingRun // rows whose last entry is a pending run
	dirty    bool                 // written since the last sync
	stopSync chan struct{}        // closed by Close to end syncLoop
	synced   chan struct{}        // closed when syncLoop has ended
	err      error
}

var (
	_ Resume         = (*Journal)(nil)
	_ Runs           = (*Journal)(nil)
	_ Writer[Result] = (*Journal)(nil)
)

// maxJournalRow bounds the row numbers a journal may hold.
const maxJournalRow = 1 << 31

// rowIndex says, for each row number (dense from 1), what the last line of
// the row in the journal holds, in 7 bytes a row.
type rowIndex struct {
	hash  []uint32 // the first 32 bits of the request hash
	state []uint8  // rowPresent, rowOK, rowHashed bits
	lines []uint16 // lines of the row, saturating
	rows  int      // distinct rows
}

const (
	rowPresent = 1 << iota
	rowOK
	rowHashed
)

func (x *rowIndex) add(row int64, hash string, ok bool) {
	i := int(row - 1)
	if i >= len(x.state) {
		n := max(i+1, 2*len(x.state), 1024)
		x.hash = append(x.hash, make([]uint32, n-len(x.hash))...)
		x.state = append(x.state, make([]uint8, n-len(x.state))...)
		x.lines = append(x.lines, make([]uint16, n-len(x.lines))...)
	}
	if x.state[i] == 0 {
		x.rows++
	}
	st := uint8(rowPresent)
	if ok {
		st |= rowOK
	}
	if h, ok := hash32(hash); ok {
		st |= rowHashed
		x.hash[i] = h
	}
	x.state[i] = st
	if x.lines[i] < 1<<16-1 {
		x.lines[i]++
	}
}

func (x *rowIndex) get(row int64) (hash uint32, state uint8, lines uint16) {
	i := row - 1
	if i < 0 || i >= int64(len(x.state)) {
		return 0, 0, 0
	}
	return x.hash[i], x.state[i], x.lines[i]
}

// PendingRun is a background run that was submitted for a row and is not
// yet answered: the row's last journal entry.
type PendingRun struct {
	Row         int64
	RequestHash string
	RunID       string
}

// journalLine is one line of the journal: a finished [Result], or, when
// PendingRun is set, a pending background run of the row (then only Row,
// RequestHash and PendingRun are written).
type journalLine struct {
	Result
	PendingRun string `json:"pending_run,omitempty"`
}

// pendingLine is the JSON form of a pending entry.
type pendingLine struct {
	Row         int64  `json:"row"`
	RequestHash string `json:"request_hash"`
	PendingRun  string `json:"pending_run"`
}

// hash32 reads the first 32 bits of a hex request hash.
func hash32(h string) (uint32, bool) {
	if len(h) < 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(h[:8], 16, 32)
	return uint32(v), err == nil
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
	j := &Journal{path: path, f: f}
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
	j.stopSync, j.synced = make(chan struct{}), make(chan struct{})
	go j.syncLoop(DefaultSyncInterval)
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
		var res journalLine
		if err := json.Unmarshal(b, &res); err != nil || res.Row.Row <= 0 || res.Row.Row > maxJournalRow {
			if torn || isLastLine(r) {
				break // cut short by a crash: the row was never finished
			}
			if err == nil {
				err = errors.New("line has no valid row number")
			}
			return &JournalError{j.path, line, err}
		}
		if torn {
			break // complete JSON but no newline: the write was cut short
		}
		if res.PendingRun != "" {
			j.setPending(PendingRun{Row: res.Row.Row, RequestHash: res.RequestHash, RunID: res.PendingRun})
		} else {
			j.finished(res.Result)
		}
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

// finished records r in the index; it replaces a pending run of the row.
// The caller holds j.mu (or is load).
func (j *Journal) finished(r Result) {
	j.index.add(r.Row.Row, r.RequestHash, r.Status == sink.StatusOK)
	delete(j.pending, r.Row.Row)
}

// setPending records a pending run. The caller holds j.mu (or is load).
func (j *Journal) setPending(p PendingRun) {
	if j.pending == nil {
		j.pending = make(map[int64]PendingRun)
	}
	j.pending[p.Row] = p
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Len returns the number of distinct rows that have a finished entry in
// the journal. A row whose only entries are pending runs does not count; a
// row answered earlier and now pending again counts once.
func (j *Journal) Len() int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.index.rows
}

// Counts returns how many distinct rows the journal holds as ok and as
// failed (by their last finished entry), among rows 1 to maxRow (all rows
// when maxRow <= 0). Pending runs are not counted: a row whose only
// entries are pending runs counts in neither; a row that was finished by
// an earlier run and is pending again counts as it was finished, as
// [Journal.Replay] emits it.
func (j *Journal) Counts(maxRow int64) (ok, failed int64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	st := j.index.state
	if maxRow > 0 && maxRow < int64(len(st)) {
		st = st[:maxRow]
	}
	for _, s := range st {
		switch {
		case s&rowOK != 0:
			ok++
		case s&rowPresent != 0:
			failed++
		}
	}
	return ok, failed
}

// Done implements [Resume]: the row's last entry is ok and was answered
// for a request with the same hash. A row whose last entry is a pending run
// is not done.
func (j *Journal) Done(row int64, requestHash string) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if _, ok := j.pending[row]; ok {
		return false
	}
	h, st, _ := j.index.get(row)
	want, ok := hash32(requestHash)
	return ok && st&rowOK != 0 && st&rowHashed != 0 && h == want
}

// Write appends one finished row and hands it to the operating system. It
// replaces a pending run of the row.
func (j *Journal) Write(r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal: row %d: %w", r.Row.Row, err)
	}
	return j.append(r.Row.Row, b, func() { j.finished(r) })
}

// Submitted records that row's request (identified by requestHash) was
// submitted as the background run runID and is not yet answered. It is
// written and handed to the operating system before it returns, so a
// killed process resumes by polling runID instead of submitting again. A
// later [Journal.Write] of the row replaces it.
func (j *Journal) Submitted(row int64, requestHash, runID string) error {
	if runID == "" {
		return fmt.Errorf("journal: row %d: empty run id", row)
	}
	b, err := json.Marshal(pendingLine{Row: row, RequestHash: requestHash, PendingRun: runID})
	if err != nil {
		return fmt.Errorf("journal: row %d: %w", row, err)
	}
	return j.append(row, b, func() { j.setPending(PendingRun{Row: row, RequestHash: requestHash, RunID: runID}) })
}

// Pending returns the run id recorded for row when the row's last journal
// entry is a pending run of the same request (the same requestHash). A
// pending run of another request (the row's request changed) is not
// returned.
func (j *Journal) Pending(row int64, requestHash string) (runID string, ok bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	p, ok := j.pending[row]
	if !ok || p.RequestHash != requestHash {
		return "", false
	}
	return p.RunID, true
}

// PendingRuns lists the rows whose last entry is a pending run, by row
// number.
func (j *Journal) PendingRuns() []PendingRun {
	j.mu.RLock()
	defer j.mu.RUnlock()
	out := make([]PendingRun, 0, len(j.pending))
	for _, p := range j.pending {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PendingRun) int { return cmp.Compare(a.Row, b.Row) })
	return out
}

// append writes one line for row, hands it to the operating system and
// then calls index (holding the lock) to record it.
func (j *Journal) append(row int64, b []byte, index func()) error {
	if row <= 0 || row > maxJournalRow {
		return fmt.Errorf("journal: row number %d out of range", row)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
		return j.err
	}
	j.size += int64(len(b)) + 1
	index()
	j.dirty = true
	return nil
}

// syncLoop forces what was written to stable storage every interval, so a
// power cut loses at most that much, without making any Write wait for the
// disk. It ends when Close closes stopSync.
func (j *Journal) syncLoop(interval time.Duration) {
	defer close(j.synced)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-j.stopSync:
			return
		case <-t.C:
		}
		j.mu.Lock()
		dirty := j.dirty && j.err == nil
		j.dirty = false
		j.mu.Unlock()
		if !dirty {
			continue
		}
		// The file stays open until Close, which waits for this loop: the
		// sync need not hold the lock, so writers never wait for the disk.
		if err := j.f.Sync(); err != nil {
			j.mu.Lock()
			j.err = fmt.Errorf("journal %s: %w", j.path, err)
			j.mu.Unlock()
		}
	}
}

// Close flushes and syncs the journal and closes its file.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.f == nil {
		j.mu.Unlock()
		return j.err
	}
	j.mu.Unlock()
	close(j.stopSync)
	<-j.synced
	j.mu.Lock()
	defer j.mu.Unlock()
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
// they were written, reading the file sequentially. It is meant for after
// Close; it must not run while rows are written.
func (j *Journal) Replay(maxRow int64, fn func(Result) error) error {
	j.mu.RLock()
	index := &j.index
	j.mu.RUnlock()
	f, err := os.Open(j.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	seen := make([]uint16, len(index.state))
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(r, maxJournalLine)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &JournalError{j.path, line, err}
		}
		if line == 1 {
			continue
		}
		var res journalLine
		if err := json.Unmarshal(b, &res); err != nil {
			return &JournalError{j.path, line, err}
		}
		if res.PendingRun != "" {
			continue // not an output row
		}
		row := res.Row.Row
		_, _, lines := index.get(row)
		if lines == 0 || (maxRow > 0 && row > maxRow) {
			continue
		}
		if seen[row-1] < 1<<16-1 {
			seen[row-1]++
		}
		if seen[row-1] != lines {
			continue // a later line of this row follows
		}
		if err := fn(res.Result); err != nil {
			return err
		}
	}
}
