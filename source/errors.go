package source

import (
	"errors"
	"strconv"
)

// Sentinel errors. Callers test for them with [errors.Is]; all but
// ErrUnknownFormat arrive wrapped in a [*ParseError] that carries the
// position.
var (
	// ErrUnknownFormat is returned by [Open] and [NewReader] when the input
	// format is neither given in [Options.Format] nor recognisable from the
	// file name. The wrapping error names the file and the accepted
	// extensions.
	ErrUnknownFormat = errors.New("source: unknown input format")

	// ErrNoHeader reports a CSV input without a header row (an empty file,
	// or one holding only blank lines).
	ErrNoHeader = errors.New("missing CSV header row")

	// ErrBadHeader reports an empty (or whitespace-only), duplicate or
	// not valid UTF-8 CSV column name.
	ErrBadHeader = errors.New("bad CSV header")

	// ErrLineTooLong reports a JSONL line longer than
	// [Options.MaxLineBytes].
	ErrLineTooLong = errors.New("line too long")

	// ErrNotObject reports a JSONL line that is valid JSON but not an
	// object (an array, a string, a number, true, false or null).
	ErrNotObject = errors.New("not a JSON object")
)

// ParseError is a problem with the content of the input at a known
// position. It is returned by [Reader.Read] for a row that cannot be read
// (the reader stays usable and the next Read returns the next row) and by
// [Open] and [NewReader] for a bad CSV header (then there is no reader).
//
// Err is the cause: [encoding/csv.ErrFieldCount], [encoding/csv.ErrQuote],
// [encoding/csv.ErrBareQuote], a [*encoding/json.SyntaxError], or one of
// this package's sentinels, possibly wrapped with details; test it with
// [errors.Is] or [errors.As] on the ParseError itself.
type ParseError struct {
	// File is the input's name, as [Reader.Name] returns it.
	File string
	// Line is the 1-based line of the problem (for a multi-line CSV record
	// it can be later than the line the record starts on).
	Line int
	// Column is the 1-based byte column within Line, or 0 when unknown.
	Column int
	// Row is the 1-based data row the problem belongs to, or 0 for the
	// CSV header.
	Row int64
	// Err is the cause.
	Err error
}

// Error formats the error as "source: FILE:LINE:COLUMN: CAUSE", leaving out
// the column when it is 0.
func (e *ParseError) Error() string {
	b := make([]byte, 0, 64)
	b = append(b, "source: "...)
	b = append(b, e.File...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(e.Line), 10)
	if e.Column > 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(e.Column), 10)
	}
	b = append(b, ": "...)
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	} else {
		b = append(b, "parse error"...)
	}
	return string(b)
}

// Unwrap returns e.Err.
func (e *ParseError) Unwrap() error { return e.Err }
