package sink

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// CSVOptions configures a [CSV] writer. The zero value writes the answer
// columns of agent and chat rows without a schema.
type CSVOptions struct {
	// Data, when not nil, is the layout of the rows' structured answers:
	// the answer columns are then the top-level properties of its schema.
	Data *DataSchema
	// Search says that the rows are Search API results.
	Search bool
}

// CSV writes [Row] values as a CSV file (RFC 4180, written by
// encoding/csv: comma separated, fields quoted where needed, lines ending
// in \n) with a header: the input's table, wider. Its columns are
//
//   - the input columns: the keys of Row.Input in the order they are first
//     seen (for a CSV input, its header; a key that a later row brings is
//     appended to them, and rows without it have an empty cell there);
//   - status and error;
//   - the answer columns: with CSVOptions.Data, one per top-level property
//     of the schema, in its order; for search rows (CSVOptions.Search),
//     urls (the results' URLs as a JSON array) and results (the results as
//     a JSON array of objects with title, url, snippet, date and
//     last_updated); otherwise content and citations (a JSON array of
//     URLs).
//
// Column names are written as they are: a schema property named like an
// input column gives two columns of that name.
//
// Input values are written unchanged: a JSON string as its text, byte for
// byte; a number, boolean, array or object as its JSON text as written in
// the input; null, and a missing key, as an empty cell (as is an empty
// string: CSV does not tell them apart). An answer value is written the
// same way: a string as itself, anything else as compact JSON text, null
// or missing as an empty cell; a row without an answer (a failed row) has
// empty answer cells. Invalid UTF-8 is replaced by U+FFFD.
//
// Rows are in the order of Row.Row, whatever the order they are written
// in. To get there, and to know every input column before the header is
// written, rows are kept in a second temporary file beside the output
// until Close, which writes the file in one pass over them. Memory holds
// 32 bytes per row; at most 1,000 input columns are kept, and further
// keys are left out.
//
// The file is written atomically (see the package documentation). The
// zero value is not usable; create a CSV with [CreateCSV]. A CSV is not
// safe for concurrent use.
type CSV struct {
	name  string
	opt   CSVOptions
	spool *atomicFile // the rows as written, in a temporary file
	bw    *bufio.Writer
	off   int64 // bytes written to the spool

	keys     []string       // input columns
	keyIndex map[string]int // position in keys
	maxKeys  int
	answer   []string // names of the answer columns
	entries  []csvEntry
	sorted   bool // entries are in row order

	// Scratch space reused by every Write.
	members []member
	cells   []string
	rec     bytes.Buffer
	cw      *csv.Writer

	err   error // sticky
	state state
	cerr  error // result of Close
}

// csvEntry locates one row in the spool: its input cells (a CSV record of
// keys fields without its line end, or nothing when keys is 0) followed by
// its status, error and answer cells (another such record).
type csvEntry struct {
	row       int64
	off       int64
	inputLen  uint32
	answerLen uint32
	keys      uint32
}

// CreateCSV creates a CSV writer for the file name, written atomically
// (see the package documentation). The error names the file. Standard
// output is not supported.
func CreateCSV(name string, opt CSVOptions) (*CSV, error) {
	if name == Stdout {
		return nil, fmt.Errorf("sink: %s: csv cannot be written to standard output", name)
	}
	spool, err := createAtomic(name)
	if err != nil {
		return nil, err
	}
	c := &CSV{
		name: name, opt: opt, spool: spool, bw: bufio.NewWriterSize(spool.f, jsonlBufferSize),
		keyIndex: map[string]int{}, maxKeys: maxInputColumns, sorted: true,
	}
	c.cw = csv.NewWriter(&c.rec)
	switch {
	case opt.Data != nil:
		for _, f := range opt.Data.root.fields {
			c.answer = append(c.answer, f.name)
		}
	case opt.Search:
		c.answer = []string{"urls", "results"}
	default:
		c.answer = []string{"content", "citations"}
	}
	return c, nil
}

// Columns returns the names of the columns as they are so far: the input
// columns seen, then status, error and the answer columns.
func (c *CSV) Columns() []string {
	return slices.Concat(c.keys, []string{"status", "error"}, c.answer)
}

// Write appends r. A row whose Input is neither a JSON object nor null is
// not written, and the error wraps [ErrInvalidRow]; other errors are
// sticky. Write does not retain r.
func (c *CSV) Write(r Row) error {
	if c.state != open {
		return fmt.Errorf("%w: %s", ErrClosed, c.name)
	}
	if c.err != nil {
		return c.err
	}
	members, err := parseInput(r.Input, c.members[:0])
	c.members = members[:0]
	if err != nil {
		return fmt.Errorf("%w: %s: row %d: %w", ErrInvalidRow, c.name, r.Row, err)
	}
	if len(r.Data) > 0 && !dataValid(r.Data) {
		return fmt.Errorf("%w: %s: row %d: data is not valid JSON", ErrInvalidRow, c.name, r.Row)
	}

	cells := c.cells[:0]
	for range c.keys {
		cells = append(cells, "")
	}
	for _, m := range members {
		i, ok := c.keyIndex[string(m.key)]
		if !ok {
			if len(c.keys) == c.maxKeys {
				continue
			}
			i = len(c.keys)
			c.keyIndex[string(m.key)] = i
			c.keys = append(c.keys, string(m.key))
			cells = append(cells, "")
		}
		v, _ := inputValue(m.value)
		cells[i] = string(v)
	}
	e := csvEntry{row: r.Row, off: c.off, keys: uint32(len(cells))}
	c.rec.Reset()
	if len(cells) > 0 {
		c.record(cells)
		e.inputLen = uint32(c.rec.Len())
	}
	cells = append(cells[:0], validText(r.Status), validText(r.Error))
	cells = c.answerCells(cells, &r)
	c.cells = cells[:0]
	c.record(cells)
	n := c.rec.Len()
	if int64(n) > math.MaxUint32 {
		return fmt.Errorf("%w: %s: row %d: a row of %d bytes is too long", ErrInvalidRow, c.name, r.Row, n)
	}
	e.answerLen = uint32(n) - e.inputLen
	if _, err := c.bw.Write(c.rec.Bytes()); err != nil {
		c.err = fmt.Errorf("sink: write %s: %w", c.name, err)
		return c.err
	}
	c.off += int64(n)
	if k := len(c.entries); k > 0 && c.entries[k-1].row > e.row {
		c.sorted = false
	}
	c.entries = append(c.entries, e)
	return nil
}

// record appends the CSV record of cells to c.rec, without its line end.
func (c *CSV) record(cells []string) {
	start := c.rec.Len()
	_ = c.cw.Write(cells) // writes to a bytes.Buffer: no error
	c.cw.Flush()
	// A record of one empty field is an empty line: keep it empty.
	c.rec.Truncate(max(start, c.rec.Len()-1))
}

// answerCells appends the answer cells of r.
func (c *CSV) answerCells(cells []string, r *Row) []string {
	switch {
	case c.opt.Data != nil:
		start := len(cells)
		for range c.answer {
			cells = append(cells, "")
		}
		raw := bytes.TrimSpace(r.Data)
		if len(raw) == 0 || raw[0] != '{' {
			return cells // no answer, or one that is not an object
		}
		members, err := parseInput(raw, c.members[:0])
		c.members = members[:0]
		if err != nil {
			return cells
		}
		for _, m := range members {
			if i, ok := c.opt.Data.root.index[string(m.key)]; ok {
				cells[start+i] = answerText(m.value)
			}
		}
		return cells
	case c.opt.Search:
		if r.Results == nil {
			return append(cells, "", "")
		}
		urls := make([]string, len(r.Results))
		for i, s := range r.Results {
			urls[i] = s.URL
		}
		return append(cells, jsonText(urls), jsonText(r.Results))
	}
	citations := ""
	if r.Citations != nil {
		citations = jsonText(r.Citations)
	}
	return append(cells, validText(r.Content), citations)
}

// answerText is the cell of a raw JSON value of an answer: a string as
// itself, null as empty, anything else as compact JSON.
func answerText(raw []byte) string {
	switch {
	case string(raw) == "null":
		return ""
	case raw[0] == '"':
		return string(unquote(raw))
	case raw[0] == '{' || raw[0] == '[':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			raw = b.Bytes()
		}
	}
	return validText(string(raw))
}

// jsonText is the JSON text of v without HTML escaping.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// validText replaces invalid UTF-8 in s.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Close writes the file (the header, then the rows in row order) and
// renames it into place. If that fails, or if an earlier write failed,
// Close removes the temporary files (a previous file of the same name
// stays) and returns the error. Close on a closed CSV returns the result
// of the first Close; after Abort it returns [ErrClosed].
func (c *CSV) Close() error {
	switch c.state {
	case closed:
		return c.cerr
	case aborted:
		return fmt.Errorf("%w: %s", ErrClosed, c.name)
	}
	c.state = closed
	err := c.err
	if err == nil {
		if err = c.bw.Flush(); err != nil {
			err = fmt.Errorf("sink: write %s: %w", c.name, err)
		}
	}
	if err == nil {
		err = c.writeFile()
	}
	if aerr := c.spool.abort(); err == nil {
		err = aerr
	}
	c.entries = nil
	c.cerr = err
	return err
}

// writeFile writes the output file from the spool and commits it.
func (c *CSV) writeFile() error {
	out, err := createAtomic(c.name)
	if err != nil {
		return err
	}
	if err := c.copyRows(out); err != nil {
		_ = out.abort()
		return fmt.Errorf("sink: write %s: %w", c.name, err)
	}
	return out.commit()
}

// copyRows writes the header and the rows to out.
func (c *CSV) copyRows(out *atomicFile) error {
	w := bufio.NewWriterSize(out.f, jsonlBufferSize)
	hw := csv.NewWriter(w)
	if err := hw.Write(c.Columns()); err != nil {
		return err
	}
	hw.Flush()
	if err := hw.Error(); err != nil {
		return err
	}
	// Sequential reads when the rows came in order; else one read a row.
	var next func(e csvEntry, buf []byte) error
	if c.sorted {
		r := bufio.NewReaderSize(io.NewSectionReader(c.spool.f, 0, c.off), jsonlBufferSize)
		next = func(_ csvEntry, buf []byte) error {
			_, err := io.ReadFull(r, buf)
			return err
		}
	} else {
		slices.SortStableFunc(c.entries, func(a, b csvEntry) int {
			switch {
			case a.row < b.row:
				return -1
			case a.row > b.row:
				return 1
			}
			return 0
		})
		next = func(e csvEntry, buf []byte) error {
			_, err := c.spool.f.ReadAt(buf, e.off)
			return err
		}
	}
	width := len(c.keys)
	var buf []byte
	for _, e := range c.entries {
		n := int(e.inputLen + e.answerLen)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if err := next(e, buf); err != nil {
			return fmt.Errorf("read back rows: %w", err)
		}
		// The row's input cells, empty cells for the input columns that
		// came after it, then its status, error and answer cells.
		first := true
		sep := func() {
			if !first {
				w.WriteByte(',')
			}
			first = false
		}
		if e.keys > 0 {
			sep()
			w.Write(buf[:e.inputLen])
		}
		for range width - int(e.keys) {
			sep()
		}
		sep()
		w.Write(buf[e.inputLen:])
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return w.Flush()
}

// Abort discards the output: it removes the temporary file, so the final
// name keeps its previous state. Abort after Close or Abort does nothing
// and returns nil, so it can be deferred.
func (c *CSV) Abort() error {
	if c.state != open {
		return nil
	}
	c.state = aborted
	c.entries = nil
	return c.spool.abort()
}
