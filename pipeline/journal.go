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
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pplx-batch/pplx-batch/sink"
)

// DefaultSyncInterval is how often a [Journal] forces its file to stable
// storage while rows are written: a power cut loses at most this much.
const DefaultSyncInterval = time.Second

// FlushInterval is the longest a row written to a [Journal] waits in
// memory before it is handed to the operating system when nobody calls
// Flush: a killed process loses at most that much.
const FlushInterval = 50 * time.Millisecond

// Rows are handed to the operating system in chunks of at most these many
// rows or bytes of JSON, whether or not Flush is called.
const (
	maxChunkRows  = 32
	maxChunkBytes = 1 << 20
)

// zstd settings of the journal: fast, a small window (neighbouring rows
// share most of what repeats), no checksum (chunks have their own).
const journalWindow = 256 << 10

// Journal is the record of a job's finished rows that makes a run
// resumable. It is an append-only file of zstd-compressed JSON (see
// journal_format.go): one entry per finished [Result]. Write buffers a row;
// Flush, or at the latest FlushInterval or maxChunkRows rows later, hands
// the rows written so far to the operating system as one chunk, so a killed
// process loses only rows finished a moment ago. The file is synced to
// stable storage every DefaultSyncInterval. A row may appear more than once
// (a failed row answered by a later run, a row whose request changed); the
// last entry of a row wins. A chunk cut short by a crash is dropped when
// the journal is opened again.
//
// A Journal implements [Writer] of [Result] for [Pipeline.Run] and
// [Resume]: a row is done when its last entry is ok and was answered for
// the same request. Its methods are safe for concurrent use.
//
// A Journal also implements [Runs]: a background run's id is written (and
// handed to the operating system) as a pending entry of its row before the
// run is polled, so a killed job resumes by polling it. A later finished
// [Result] of the row replaces the pending entry. Pending entries are not
// output rows: Replay skips them, and Done, Counts and Len look past them
// to the row's last finished entry, if any.
//
// A journal of format 1 (JSON lines, written by earlier versions) is
// converted to the current format when it is opened.
//
// Memory: the index holds 7 bytes per input row (part of the request hash,
// the state, the number of entries); pending runs, at most the requests in
// flight, are kept in a map; the answers themselves stay on disk.
type Journal struct {
	path string

	mu        sync.RWMutex
	f         *os.File
	size      int64
	index     rowIndex
	pending   map[int64]PendingRun // rows whose last entry is a pending run
	zw        *zstd.Encoder        // writes to zbuf
	zbuf      bytes.Buffer         // zstd bytes of the chunk being built
	zdata     bool                 // rows written to zw since its last flush
	frameOpen bool                 // a zstd frame was begun and not ended
	entries   []entry              // entries of the chunk being built
	jsonBytes int                  // JSON bytes in entries
	oldest    time.Time            // when the first of entries was written
	chunk     []byte               // scratch for a chunk
	scratch   []byte               // scratch for a row's JSON
	dirty     bool                 // written since the last sync
	stopSync  chan struct{}        // closed by Close to end syncLoop
	synced    chan struct{}        // closed when syncLoop has ended
	err       error
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
	// Line is the line of a format 1 journal; Chunk and Offset locate the
	// damage in a format 2 journal. Zero when unknown.
	Line   int
	Chunk  int
	Offset int64
	Err    error
}

func (e *JournalError) Error() string {
	where := ""
	switch {
	case e.Line > 0:
		where = ":" + strconv.Itoa(e.Line)
	case e.Chunk > 0:
		where = fmt.Sprintf(": chunk %d at byte %d", e.Chunk, e.Offset)
	}
	return fmt.Sprintf("journal %s%s: %v (delete it, or run with --restart, to start over)", e.Path, where, e.Err)
}

func (e *JournalError) Unwrap() error { return e.Err }

// OpenJournal opens the journal at path, creating it if it does not
// exist, and reads the rows it holds. A chunk cut short by a crash is
// dropped; any other damage is a *JournalError. A journal of format 1 is
// converted first.
func OpenJournal(path string) (*Journal, error) {
	if err := convertV1(path); err != nil {
		return nil, err
	}
	return openJournal(path)
}

func openJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{path: path, f: f}
	open, err := j.load()
	if err != nil {
		f.Close()
		return nil, err
	}
	fail := func(err error) (*Journal, error) {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := f.Seek(j.size, io.SeekStart); err != nil {
		return fail(err)
	}
	if j.size == 0 {
		if _, err := f.WriteString(journalMagic + "\n"); err != nil {
			return fail(err)
		}
		j.size = int64(len(journalMagic) + 1)
	}
	if open {
		// A crash left the last zstd frame open: end it, so that the next
		// frame can follow.
		b := appendChunk(nil, chunkEndsFrame, nil, frameTerminator)
		if _, err := f.Write(b); err != nil {
			return fail(err)
		}
		j.size += int64(len(b))
	}
	j.zw, err = zstd.NewWriter(&j.zbuf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithWindowSize(journalWindow), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return fail(err)
	}
	j.stopSync, j.synced = make(chan struct{}), make(chan struct{})
	go j.syncLoop(FlushInterval, DefaultSyncInterval)
	return j, nil
}

// load reads the journal, builds the index and truncates a torn last
// chunk. open says the last zstd frame was not ended.
func (j *Journal) load() (open bool, err error) {
	r := bufio.NewReaderSize(j.f, 256<<10)
	head, err := r.Peek(len(journalMagic) + 1)
	switch {
	case len(head) == 0:
		return false, j.truncate(0)
	case err != nil || string(head) != journalMagic+"\n":
		if bytes.HasPrefix([]byte(journalMagic+"\n"), head) {
			return false, j.truncate(0) // the header itself was cut short: start afresh
		}
		return false, &JournalError{Path: j.path, Err: errors.New("not a pplx-batch journal")}
	}
	fi, err := j.f.Stat()
	if err != nil {
		return false, fmt.Errorf("journal %s: %w", j.path, err)
	}
	r.Discard(len(head))
	off := int64(len(head))
	cr := &chunkReader{r: r, left: fi.Size() - off, keepText: true}
	for n := 1; ; n++ {
		ch, err := cr.next()
		if err == io.EOF || errors.Is(err, errTorn) {
			break
		}
		if err != nil {
			return false, &JournalError{Path: j.path, Chunk: n, Offset: off, Err: err}
		}
		for _, e := range ch.entries {
			switch e.kind {
			case entryPending:
				j.setPending(PendingRun{Row: e.row, RequestHash: e.hash, RunID: e.runID})
			default:
				j.index.add(e.row, e.hash, e.kind == entryOK)
				delete(j.pending, e.row)
			}
		}
		switch {
		case ch.flags&chunkEndsFrame != 0:
			open = false
		case len(ch.z) > 0:
			open = true
		}
		off += ch.size
	}
	return open, j.truncate(off)
}

func (j *Journal) truncate(size int64) error {
	j.size = size
	if err := j.f.Truncate(size); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
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

// Write adds one finished row; it replaces a pending run of the row. The
// row is handed to the operating system by the next Flush, or at the
// latest FlushInterval later.
func (j *Journal) Write(r Result) error {
	if r.Row.Row <= 0 || r.Row.Row > maxJournalRow {
		return fmt.Errorf("journal: row number %d out of range", r.Row.Row)
	}
	if len(r.RequestHash) > maxEntryText {
		return fmt.Errorf("journal: row %d: request hash of %d bytes", r.Row.Row, len(r.RequestHash))
	}
	kind := entryFailed
	if r.Status == sink.StatusOK {
		kind = entryOK
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	b, err := appendResult(j.scratch[:0], &r)
	if cap(b) <= 4*maxChunkBytes {
		j.scratch = b
	}
	if err != nil {
		return fmt.Errorf("journal: row %d: %w", r.Row.Row, err)
	}
	if len(b) > maxEntryJSON {
		return fmt.Errorf("journal: row %d: %d bytes of JSON", r.Row.Row, len(b))
	}
	if _, err := j.zw.Write(b); err != nil {
		return j.fail(err)
	}
	j.zdata, j.frameOpen = true, true
	j.add(entry{kind: kind, row: r.Row.Row, hash: r.RequestHash, n: len(b)}, len(b))
	j.finished(r)
	if len(j.entries) >= maxChunkRows || j.jsonBytes >= maxChunkBytes {
		return j.flushLocked(0)
	}
	return nil
}

// add queues e for the next chunk.
func (j *Journal) add(e entry, jsonBytes int) {
	if len(j.entries) == 0 {
		j.oldest = time.Now()
	}
	j.entries = append(j.entries, e)
	j.jsonBytes += jsonBytes
}

// Flush hands the rows written so far to the operating system.
func (j *Journal) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	return j.flushLocked(0)
}

// flushLocked writes the queued entries as one chunk; with flags
// chunkEndsFrame it ends the zstd frame. The caller holds j.mu.
func (j *Journal) flushLocked(flags byte) error {
	if flags&chunkEndsFrame != 0 {
		if !j.frameOpen {
			flags &^= chunkEndsFrame
		} else if err := j.zw.Close(); err != nil {
			return j.fail(err)
		}
		j.frameOpen, j.zdata = false, false
	} else if j.zdata {
		if err := j.zw.Flush(); err != nil {
			return j.fail(err)
		}
		j.zdata = false
	}
	if len(j.entries) == 0 && j.zbuf.Len() == 0 {
		return nil
	}
	j.chunk = appendChunk(j.chunk[:0], flags, j.entries, j.zbuf.Bytes())
	if _, err := j.f.Write(j.chunk); err != nil {
		return j.fail(err)
	}
	j.size += int64(len(j.chunk))
	j.entries, j.jsonBytes = j.entries[:0], 0
	j.zbuf.Reset()
	if cap(j.chunk) > 4*maxChunkBytes {
		j.chunk = nil // do not keep the room an outsized row needed
	}
	j.dirty = true
	return nil
}

// fail makes err sticky. The caller holds j.mu.
func (j *Journal) fail(err error) error {
	if j.err == nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
	}
	return j.err
}

// Submitted records that row's request (identified by requestHash) was
// submitted as the background run runID and is not yet answered. It is
// written and handed to the operating system before it returns, so a
// killed process resumes by polling runID instead of submitting again. A
// later [Journal.Write] of the row replaces it.
func (j *Journal) Submitted(row int64, requestHash, runID string) error {
	switch {
	case row <= 0 || row > maxJournalRow:
		return fmt.Errorf("journal: row number %d out of range", row)
	case runID == "":
		return fmt.Errorf("journal: row %d: empty run id", row)
	case len(runID) > maxEntryText || len(requestHash) > maxEntryText:
		return fmt.Errorf("journal: row %d: run id or request hash too long", row)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	j.add(entry{kind: entryPending, row: row, hash: requestHash, runID: runID}, 0)
	j.setPending(PendingRun{Row: row, RequestHash: requestHash, RunID: runID})
	return j.flushLocked(0)
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

// syncLoop hands rows waiting in memory to the operating system every
// flush interval, and forces what was written to stable storage every sync
// interval, so a power cut loses at most that much, without making any
// Write wait for the disk. It ends when Close closes stopSync.
func (j *Journal) syncLoop(flush, sync time.Duration) {
	defer close(j.synced)
	t := time.NewTicker(flush)
	defer t.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-j.stopSync:
			return
		case <-t.C:
		}
		j.mu.Lock()
		if len(j.entries) > 0 && time.Since(j.oldest) >= flush && j.err == nil {
			_ = j.flushLocked(0) // the error is sticky: the next Write returns it
		}
		dirty := j.dirty && j.err == nil && time.Since(lastSync) >= sync
		if dirty {
			j.dirty = false
		}
		j.mu.Unlock()
		if !dirty {
			continue
		}
		lastSync = time.Now()
		// The file stays open until Close, which waits for this loop: the
		// sync need not hold the lock, so writers never wait for the disk.
		if err := j.f.Sync(); err != nil {
			j.mu.Lock()
			j.fail(err)
			j.mu.Unlock()
		}
	}
}

// Close flushes the journal, ends its zstd frame, syncs it and closes its
// file.
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
	if j.err == nil {
		_ = j.flushLocked(chunkEndsFrame)
	}
	if err := j.f.Sync(); err != nil {
		j.fail(err)
	}
	if err := j.f.Close(); err != nil {
		j.fail(err)
	}
	j.f = nil
	return j.err
}

// Replay calls fn with the last entry of every row in the journal whose
// row number is at most maxRow (every row when maxRow <= 0), in the order
// they were written, reading the file sequentially. Pending runs are not
// rows of the output and are skipped. It is meant for after Close; it must
// not run while rows are written.
func (j *Journal) Replay(maxRow int64, fn func(Result) error) error {
	j.mu.RLock()
	index := &j.index
	j.mu.RUnlock()
	f, err := os.Open(j.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	r := bufio.NewReaderSize(f, 256<<10)
	if _, err := r.Discard(len(journalMagic) + 1); err != nil {
		return nil // an empty journal
	}
	src := &zstdSource{cr: &chunkReader{r: r, left: fi.Size() - int64(len(journalMagic)+1)}}
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(8*journalWindow))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer dec.Close()
	// One goroutine reads the entries in order, a few decode their JSON
	// (a single goroutine spent two thirds of its time there), and fn gets
	// the rows in order, here.
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	work := make(chan *replayBatch, workers)
	order := make(chan *replayBatch, 2*workers+2)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // the reader uses f and dec
	defer close(quit)
	wg.Go(func() {
		defer close(order)
		defer close(work)
		j.readReplay(src, dec, index, maxRow, work, order, quit)
	})
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.decode(j.path)
			}
		})
	}
	for b := range order {
		<-b.done
		for i := range b.res {
			if err := fn(b.res[i]); err != nil {
				return err
			}
		}
		if b.err != nil {
			return b.err
		}
	}
	return nil
}

// replayBatch is a run of journal entries that Replay decodes together.
type replayBatch struct {
	data []byte   // the entries' JSON, one after another
	ends []int    // where each entry ends in data
	nums []int    // each entry's number in the journal, for errors
	res  []Result // the decoded entries, up to the first that fails
	err  error    // a read or decode error after res
	done chan struct{}
}

// Entries and bytes of JSON in one replayBatch, at most.
const (
	replayBatchRows  = 256
	replayBatchBytes = 1 << 20
)

// decode decodes b's entries into b.res, up to the first error.
func (b *replayBatch) decode(path string) {
	defer close(b.done)
	start := 0
	b.res = make([]Result, 0, len(b.ends))
	for i, end := range b.ends {
		var res Result
		if err := json.Unmarshal(b.data[start:end], &res); err != nil {
			b.err = &JournalError{Path: path, Err: fmt.Errorf("entry %d: %w", b.nums[i], err)}
			return
		}
		b.res = append(b.res, res)
		start = end
	}
}

// readReplay reads the entries that Replay emits (the last entry of each
// row in index, up to maxRow when it is above 0) into batches, each sent
// to order and then to work; a read error ends the last batch, sent to
// order alone. It stops when quit is closed.
func (j *Journal) readReplay(src *zstdSource, dec io.Reader, index *rowIndex, maxRow int64, work, order chan<- *replayBatch, quit <-chan struct{}) {
	seen := make([]uint16, len(index.state))
	b := &replayBatch{done: make(chan struct{})}
	send := func(toWork bool) bool {
		select {
		case order <- b:
		case <-quit:
			return false
		}
		if toWork {
			select {
			case work <- b:
			case <-quit:
				return false
			}
		}
		b = &replayBatch{done: make(chan struct{})}
		return true
	}
	fail := func(err error) {
		// The entries before the error are decoded, then the error.
		b.decode(j.path)
		if b.err == nil {
			b.err = &JournalError{Path: j.path, Err: err}
		}
		send(false)
	}
	var buf bytes.Buffer
	for n := 1; ; n++ {
		e, ok, err := src.pop()
		if err != nil {
			fail(err)
			return
		}
		if !ok {
			if len(b.ends) > 0 {
				send(true)
			}
			return
		}
		if e.kind == entryPending {
			continue
		}
		// Grow the buffer as the bytes come, not by the length the
		// entry claims.
		buf.Reset()
		if m, err := io.CopyN(&buf, dec, int64(e.n)); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("%w after %d of %d bytes", io.ErrUnexpectedEOF, m, e.n)
			}
			fail(fmt.Errorf("entry %d: %w", n, err))
			return
		}
		row := e.row
		_, _, lines := index.get(row)
		if lines == 0 || (maxRow > 0 && row > maxRow) {
			continue
		}
		if seen[row-1] < 1<<16-1 {
			seen[row-1]++
		}
		if seen[row-1] != lines {
			continue // a later entry of this row follows
		}
		b.data = append(b.data, buf.Bytes()...)
		b.ends = append(b.ends, len(b.data))
		b.nums = append(b.nums, n)
		if len(b.ends) >= replayBatchRows || len(b.data) >= replayBatchBytes {
			if !send(true) {
				return
			}
		}
	}
}
