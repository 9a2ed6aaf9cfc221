// Package source reads the rows of a batch job from CSV or JSONL input.
//
// Every row becomes a [Record]: its 1-based row number, the line it starts
// on, its column names in input order, its values, and the same columns as
// one JSON object. A CSV file's first row is its header; its values are
// strings. A JSONL line is one JSON object; its values are decoded with
// numbers kept as [encoding/json.Number]. Blank JSONL lines are skipped and
// do not count as rows.
//
// [Open] reads a file (or stdin), [NewReader] an open stream; both return a
// [*Reader], whose Read returns one Record per call. Input is streamed, and
// gzip or zstd compression is undone on the fly. A UTF-8 byte order mark at
// the start of the input is dropped. CSV values are kept byte for byte; in
// Raw, invalid UTF-8 becomes U+FFFD as encoding/json would make it. CSV
// column names must be valid UTF-8.
//
// A row that cannot be parsed (a CSV row with the wrong number of fields or
// a quoting error, a JSONL line that is not one JSON object or is too long)
// is reported by Read as a [*ParseError] with the file, line and, where
// known, column; it still takes a row number, and the next Read continues
// with the next row. (A CSV quoted field that is never closed takes the
// rest of the input with it, as one bad row.) Any other error, such as a
// failed read or corrupt compressed data, is fatal.
package source

import "encoding/json"

// Record is one input row.
type Record struct {
	// Row is the 1-based position of the row among the data rows of the
	// input (the CSV header and blank JSONL lines do not count).
	Row int64
	// Line is the 1-based line of the input on which the row starts.
	Line int
	// Columns holds the column names in input order.
	Columns []string
	// Values maps each column name to its value: a string for CSV; for
	// JSONL the decoded JSON value (string, json.Number, bool, nil,
	// []any or map[string]any).
	Values map[string]any
	// Raw is the row as one JSON object with the keys in input order. For
	// JSONL it is the line as read.
	Raw json.RawMessage
}
