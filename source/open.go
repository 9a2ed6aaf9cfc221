package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Input formats accepted in [Options.Format].
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

const (
	defaultMaxLineBytes = 64 << 20 // JSONL line limit when Options.MaxLineBytes is 0
	bufSize             = 64 << 10 // read buffer size
	stdinName           = "stdin"  // the name "-" is shown as
	acceptedExtensions  = ".csv, .jsonl or .ndjson, optionally followed by .gz or .zst"
)

// Options configures [Open] and [NewReader]. The zero value reads a file
// whose format comes from its name, with ',' as the CSV delimiter and a
// JSONL line limit of 64 MiB.
type Options struct {
	// Format is "csv" or "jsonl" ("ndjson" is accepted as a synonym for
	// "jsonl"; case is ignored). Empty means: from the file name's
	// extension. Required when the name is "-" (stdin).
	Format string
	// Comma is the CSV field delimiter; 0 means ','. It must be a valid
	// rune other than '"', '\r', '\n' and U+FFFD. Ignored for JSONL.
	Comma rune
	// MaxLineBytes is the longest JSONL line accepted, in bytes, not
	// counting the line terminator; 0 means 64 MiB. Longer lines are
	// reported as row errors and skipped. Negative values are invalid.
	// Ignored for CSV.
	MaxLineBytes int
}

// compression is how the input stream is compressed.
type compression int

const (
	compSniff compression = iota // look at the magic bytes
	compGzip
	compZstd
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	utf8BOM   = []byte{0xef, 0xbb, 0xbf}
)

// rowReader reads the rows of one format. Errors other than io.EOF and
// *ParseError are fatal.
type rowReader interface {
	read() (Record, error)
}

// Reader reads the rows of one CSV or JSONL input, one [Record] per call to
// [Reader.Read], streaming: it holds one row (and for CSV the header) at a
// time, never the whole input. Compressed input (gzip or zstd) is
// decompressed on the fly; zstd frames that ask for a window over 128 MiB
// are refused (a fatal error), as the zstd command does by default.
//
// A Reader is a single concrete type for both formats, chosen over one type
// per format so that callers need no type switch; [Reader.Columns] tells
// them apart where it matters.
//
// A Reader is not safe for concurrent use: one goroutine calls Read and
// then Close. The zero value is not usable; create Readers with [Open] or
// [NewReader].
type Reader struct {
	name    string
	rows    rowReader
	columns []string
	closers []func() error
	err     error // sticky: io.EOF or a fatal error
	closed  bool
}

// Open opens the named file, or stdin when name is "-", and returns a
// Reader over its rows.
//
// The format is opt.Format if set, else it comes from the extension: .csv,
// .jsonl or .ndjson, optionally followed by .gz (gzip) or .zst (zstd),
// which is then decompressed; case is ignored. For "-" opt.Format is
// required, and gzip or zstd input is recognised by its magic bytes (as it
// is for a file whose name has no compression extension). An unrecognised
// format gives an error wrapping [ErrUnknownFormat] that names the file and
// lists the accepted extensions; invalid options give an error before the
// file is opened.
//
// For CSV, Open reads the header row before it returns; a missing header,
// an empty, duplicate or not valid UTF-8 column name, or a quoting error in
// the header is a [*ParseError] with Row 0 and the line and column. In
// error messages and ParseError.File the input is called name, or "stdin"
// for "-".
//
// The caller must call [Reader.Close], which closes the file (never
// os.Stdin).
func Open(name string, opt Options) (*Reader, error) {
	display := name
	if name == "-" {
		display = stdinName
	}
	format, comp, err := formatOf(name, display, opt, true)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(opt); err != nil {
		return nil, err
	}
	if name == "-" {
		return newReader(os.Stdin, display, format, compSniff, opt, nil)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	r, err := newReader(f, display, format, comp, opt, f.Close)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// NewReader returns a Reader over the rows of an already open stream r.
// name is used in error messages and ParseError.File ("stdin" when name is
// "-", "input" when empty) and, when opt.Format is empty, to find the
// format from its extension as [Open] does. gzip and zstd input is always
// recognised by its magic bytes and decompressed.
//
// For CSV, NewReader reads the header row before it returns (see [Open]).
// [Reader.Close] releases the decompressor but does not close r.
func NewReader(r io.Reader, name string, opt Options) (*Reader, error) {
	switch name {
	case "-":
		name = stdinName
	case "":
		name = "input"
	}
	format, _, err := formatOf(name, name, opt, false)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(opt); err != nil {
		return nil, err
	}
	return newReader(r, name, format, compSniff, opt, nil)
}

// formatOf returns the format and, when byExt is set, the compression
// implied by name.
func formatOf(name, display string, opt Options, byExt bool) (string, compression, error) {
	lower := strings.ToLower(name)
	comp := compSniff
	if byExt {
		switch {
		case strings.HasSuffix(lower, ".gz"):
			comp, lower = compGzip, strings.TrimSuffix(lower, ".gz")
		case strings.HasSuffix(lower, ".zst"):
			comp, lower = compZstd, strings.TrimSuffix(lower, ".zst")
		}
	} else {
		lower = strings.TrimSuffix(strings.TrimSuffix(lower, ".gz"), ".zst")
	}
	if opt.Format != "" {
		switch strings.ToLower(strings.TrimSpace(opt.Format)) {
		case FormatCSV:
			return FormatCSV, comp, nil
		case FormatJSONL, "ndjson":
			return FormatJSONL, comp, nil
		}
		return "", 0, fmt.Errorf("%w %q for %s: want %q or %q", ErrUnknownFormat, opt.Format, display, FormatCSV, FormatJSONL)
	}
	if name != "-" {
		switch filepath.Ext(lower) {
		case ".csv":
			return FormatCSV, comp, nil
		case ".jsonl", ".ndjson":
			return FormatJSONL, comp, nil
		}
	}
	return "", 0, fmt.Errorf("%w for %s: want a name ending in %s, or an explicit format (%q or %q)",
		ErrUnknownFormat, display, acceptedExtensions, FormatCSV, FormatJSONL)
}

// checkOptions validates the format-specific options.
func checkOptions(opt Options) error {
	if c := opt.Comma; c != 0 && (c == '"' || c == '\r' || c == '\n' || !utf8.ValidRune(c) || c == utf8.RuneError) {
		return fmt.Errorf("source: invalid CSV delimiter %q", c)
	}
	if opt.MaxLineBytes < 0 {
		return fmt.Errorf("source: invalid JSONL line limit %d: want 0 (default) or more", opt.MaxLineBytes)
	}
	return nil
}

// newReader layers decompression, BOM removal and the format reader over
// src. closeSrc, if not nil, closes src; newReader calls it on failure.
func newReader(src io.Reader, name, format string, comp compression, opt Options, closeSrc func() error) (rd *Reader, err error) {
	r := &Reader{name: name}
	if closeSrc != nil {
		r.closers = append(r.closers, closeSrc)
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()

	raw := bufio.NewReaderSize(src, bufSize)
	if comp == compSniff {
		magic, err := raw.Peek(len(zstdMagic))
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("source: %s: %w", name, err)
		}
		switch {
		case bytes.HasPrefix(magic, gzipMagic):
			comp = compGzip
		case bytes.HasPrefix(magic, zstdMagic):
			comp = compZstd
		}
	}
	text := raw
	switch comp {
	case compGzip:
		zr, err := gzip.NewReader(raw)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("source: %s: %w", name, labelled("gzip", err))
		}
		// Its Close only repeats a decompression error that Read has
		// already reported.
		r.closers = append(r.closers, func() error { zr.Close(); return nil })
		text = bufio.NewReaderSize(labelReader{zr, "gzip"}, bufSize)
	case compZstd:
		// Synchronous decoding (no goroutines), and windows up to 128 MiB, the
		// zstd command's own default limit, so that a hostile header cannot
		// make us allocate more.
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, fmt.Errorf("source: %s: zstd: %w", name, err)
		}
		r.closers = append(r.closers, func() error { zr.Close(); return nil })
		text = bufio.NewReaderSize(labelReader{zr, "zstd"}, bufSize)
	}

	bom, err := text.Peek(len(utf8BOM))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("source: %s: %w", name, err)
	}
	if bytes.Equal(bom, utf8BOM) {
		text.Discard(len(utf8BOM))
	}

	switch format {
	case FormatCSV:
		comma := opt.Comma
		if comma == 0 {
			comma = ','
		}
		c, err := newCSVReader(text, name, comma)
		if err != nil {
			return nil, err
		}
		r.rows, r.columns = c, c.header
	default:
		max := opt.MaxLineBytes
		if max == 0 {
			max = defaultMaxLineBytes
		}
		r.rows = newJSONLReader(text, name, max)
	}
	return r, nil
}

// Read returns the next row. It blocks until the row has been read from
// the underlying stream.
//
// At the end of the input it returns io.EOF (unwrapped). When a row cannot
// be parsed it returns the Record with Row and Line set (Columns and Values
// nil) together with a [*ParseError]; the Reader stays usable and the next
// Read returns the next row. Any other error (reading or decompressing the
// input, or Read after Close) is fatal and wrapped with the input's name;
// once Read has returned io.EOF or a fatal error it returns the same error
// on every later call.
func (r *Reader) Read() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.rows.read()
	if err != nil {
		if _, ok := err.(*ParseError); !ok {
			r.err = err
		}
	}
	return rec, err
}

// Columns returns the CSV header (known once Open or NewReader has
// returned), or nil for JSONL, whose columns are per row. The slice is
// shared with every Record's Columns and must not be modified.
func (r *Reader) Columns() []string { return r.columns }

// Name returns the input's name as used in error messages: the name given
// to Open or NewReader, or "stdin" for "-".
func (r *Reader) Name() string { return r.name }

// Close releases the decompressor and closes the file that Open opened (not
// os.Stdin, and not the stream given to NewReader). Later calls to Read
// return an error; later calls to Close do nothing and return nil.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err == nil {
		r.err = fmt.Errorf("source: %s: %w", r.name, errClosed)
	}
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	r.closers = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("source: close %s: %w", r.name, err)
	}
	return nil
}

// labelReader prefixes the errors of a decompressor other than io.EOF
// with the compression's name, so that messages say where they come from.
type labelReader struct {
	r     io.Reader
	label string
}

func (l labelReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		err = labelled(l.label, err)
	}
	return n, err
}

// labelled prefixes err with label unless its message starts with it.
func labelled(label string, err error) error {
	if strings.HasPrefix(err.Error(), label+":") {
		return err
	}
	return fmt.Errorf("%s: %w", label, err)
}

// errClosed is the fatal error Read returns after Close.
var errClosed = errors.New("read after close")
