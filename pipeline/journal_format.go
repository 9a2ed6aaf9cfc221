package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The journal file (format 2) is a header line and a sequence of chunks,
// one per flush:
//
//	header  {"pplx_batch_journal":2} "\n"
//	chunk   u32 LE: length of the body
//	        u32 LE: CRC-32C of the body
//	        body:
//	          u8       flags (chunkEndsFrame)
//	          uvarint  number of entries, then each entry:
//	            u8       kind (entryOK, entryFailed, entryPending)
//	            uvarint  row
//	            uvarint  length, then the request hash
//	            pending: uvarint length, then the run id
//	            else:    uvarint length of the row's JSON in the stream
//	          the rest: zstd bytes
//
// The zstd bytes of all chunks, concatenated, are a sequence of zstd
// frames holding the JSON of every finished entry ([Result]), in entry
// order, without separators: each entry gives its length. A chunk is
// written with one write after a zstd flush, so it ends on a block
// boundary; a frame is ended at Close, or, after a crash, by an empty last
// block appended when the journal is opened again (frameTerminator). The
// index (rows, states, hashes) is in the chunk bodies outside the zstd
// bytes, so opening a journal reads it without decompressing anything.
const (
	journalMagic   = `{"pplx_batch_journal":2}`
	journalMagicV1 = `{"pplx_batch_journal":1}`
)

// Entry kinds.
const (
	entryOK byte = iota + 1
	entryFailed
	entryPending
)

// chunkEndsFrame says the chunk's zstd bytes end a zstd frame.
const chunkEndsFrame = 1

// frameTerminator is a zstd block header: last block, raw, zero bytes. It
// ends a frame that a crash left open.
var frameTerminator = []byte{0x01, 0x00, 0x00}

// Bounds of what a journal may hold, checked when reading.
const (
	maxChunkBody = 1 << 30
	maxEntryJSON = 256 << 20
	maxEntryText = 1 << 16 // request hash, run id
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entry is one entry of a chunk.
type entry struct {
	kind  byte
	row   int64
	hash  string
	runID string // entryPending
	n     int    // length of the JSON in the stream (not pending)
}

// appendEntry appends the encoding of e to b.
func appendEntry(b []byte, e entry) []byte {
	b = append(b, e.kind)
	b = binary.AppendUvarint(b, uint64(e.row))
	b = binary.AppendUvarint(b, uint64(len(e.hash)))
	b = append(b, e.hash...)
	if e.kind == entryPending {
		b = binary.AppendUvarint(b, uint64(len(e.runID)))
		return append(b, e.runID...)
	}
	return binary.AppendUvarint(b, uint64(e.n))
}

// appendChunk appends a chunk of entries and zstd bytes z to b.
func appendChunk(b []byte, flags byte, entries []entry, z []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, flags)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = appendEntry(b, e)
	}
	b = append(b, z...)
	body := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// chunk is one chunk read back. Its slices point into the reader's buffer
// and are valid until the next read.
type chunk struct {
	flags   byte
	entries []entry
	z       []byte
	size    int64 // bytes in the file, header included
}

// errTorn reports a chunk cut short at the end of the file.
var errTorn = errors.New("chunk cut short")

// chunkReader reads the chunks of a journal after its header line.
type chunkReader struct {
	r       *bufio.Reader
	left    int64 // bytes of the file after the position of r
	body    []byte
	entries []entry
	// keepText says whether entries get their hash and run id (load needs
	// them, Replay does not).
	keepText bool
}

// next reads the next chunk. It returns io.EOF at a clean end, errTorn
// when the file ends inside the chunk or its checksum fails with nothing
// after it, and another error for damage.
func (c *chunkReader) next() (chunk, error) {
	var h [8]byte
	n, err := io.ReadFull(c.r, h[:])
	c.left -= int64(n)
	switch {
	case err == io.EOF:
		return chunk{}, io.EOF
	case err != nil:
		if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
			return chunk{}, errTorn
		}
		return chunk{}, err
	}
	size := binary.LittleEndian.Uint32(h[:])
	if int64(size) > c.left {
		return chunk{}, errTorn // the file ends inside the chunk
	}
	if size == 0 || size > maxChunkBody {
		if c.atEnd() {
			return chunk{}, errTorn
		}
		return chunk{}, fmt.Errorf("chunk of %d bytes", size)
	}
	if cap(c.body) < int(size) {
		c.body = make([]byte, size)
	}
	c.body = c.body[:size]
	c.left -= int64(size)
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return chunk{}, errTorn
		}
		return chunk{}, err
	}
	if crc32.Checksum(c.body, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		if c.atEnd() {
			return chunk{}, errTorn
		}
		return chunk{}, errors.New("chunk checksum does not match")
	}
	ch, err := c.parse(c.body)
	ch.size = 8 + int64(size)
	return ch, err
}

// atEnd reports whether nothing but zero bytes is left: the end of a file
// whose last write was cut short (some file systems leave zeros).
func (c *chunkReader) atEnd() bool {
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return true
		}
		if b != 0 {
			return false
		}
	}
}

// parse decodes a chunk body whose checksum matched.
func (c *chunkReader) parse(b []byte) (chunk, error) {
	bad := func(what string) (chunk, error) { return chunk{}, fmt.Errorf("chunk: bad %s", what) }
	if len(b) < 2 {
		return bad("body")
	}
	ch := chunk{flags: b[0]}
	b = b[1:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return bad("entry count")
	}
	b = b[k:]
	c.entries = c.entries[:0]
	text := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > maxEntryText || l > uint64(len(b)-k) {
			return "", false
		}
		s := b[k : k+int(l)]
		b = b[k+int(l):]
		if !c.keepText {
			return "", true
		}
		return string(s), true
	}
	for range count {
		if len(b) == 0 {
			return bad("entry")
		}
		e := entry{kind: b[0]}
		if e.kind < entryOK || e.kind > entryPending {
			return bad("entry kind")
		}
		b = b[1:]
		row, k := binary.Uvarint(b)
		if k <= 0 || row == 0 || row > maxJournalRow {
			return bad("row number")
		}
		e.row, b = int64(row), b[k:]
		var ok bool
		if e.hash, ok = text(); !ok {
			return bad("request hash")
		}
		if e.kind == entryPending {
			if e.runID, ok = text(); !ok {
				return bad("run id")
			}
		} else {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > maxEntryJSON {
				return bad("entry length")
			}
			e.n, b = int(n), b[k:]
		}
		c.entries = append(c.entries, e)
	}
	ch.entries, ch.z = c.entries, b
	return ch, nil
}

// zstdSource feeds the zstd bytes of the chunks to a decoder and queues
// their entries, in file order, for Replay.
type zstdSource struct {
	cr    *chunkReader
	buf   []byte
	queue []entry
	head  int
	err   error // io.EOF at the end of the file
}

func (s *zstdSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// fill reads one more chunk.
func (s *zstdSource) fill() error {
	if s.err != nil {
		return s.err
	}
	if len(s.buf) == 0 {
		s.buf = nil
	}
	ch, err := s.cr.next()
	if err != nil {
		if errors.Is(err, errTorn) {
			err = io.EOF // load truncated it; a torn tail is a run in progress
		}
		s.err = err
		return err
	}
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	}
	s.queue = append(s.queue, ch.entries...)
	s.buf = append(s.buf, ch.z...) // ch.z is reused by the next read
	return nil
}

// pop returns the next entry, reading chunks as needed; ok is false at the
// end of the file.
func (s *zstdSource) pop() (entry, bool, error) {
	for s.head == len(s.queue) {
		if err := s.fill(); err != nil {
			if err == io.EOF {
				return entry{}, false, nil
			}
			return entry{}, false, err
		}
	}
	e := s.queue[s.head]
	s.head++
	return e, true, nil
}
