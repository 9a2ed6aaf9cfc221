// Package source reads the rows of a batch job from CSV or JSONL input.
//
// Every row becomes a [Record]: its 1-based row number, the line it starts
// on, its column names in input order, its values, and the same columns as
// one JSON object. A CSV file's first row is its header; its values are
// strings. A JSONL line is one JSON object; its values are decoded with
// numbers kept as [encoding/json.Number]. Blank JSONL lines are skipped and
// do not count as rows.
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
