package source

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/pplx-batch/pplx-batch/internal/jsonstr"
)

// csvReader reads CSV rows with encoding/csv. After a syntax error
// (ErrQuote, ErrBareQuote) encoding/csv has consumed the bad record and
// continues with the next one, so such errors are row errors too.
type csvReader struct {
	r      *csv.Reader
	name   string
	header []string
	keys   [][]byte // header names JSON-encoded with the trailing ':'
	keyLen int      // sum of len(keys)
	row    int64
}

// newCSVReader reads and checks the header row.
func newCSVReader(src io.Reader, name string, comma rune) (*csvReader, error) {
	r := csv.NewReader(src)
	r.Comma = comma
	r.FieldsPerRecord = -1 // field counts are checked here, with positions
	c := &csvReader{r: r, name: name}

	header, err := r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, &ParseError{File: name, Line: 1, Err: fmt.Errorf("%w (empty input)", ErrNoHeader)}
		}
		return nil, c.wrap(err, 0)
	}
	seen := make(map[string]int, len(header))
	for i, h := range header {
		line, col := c.fieldPos(i, len(header))
		if strings.TrimSpace(h) == "" {
			return nil, &ParseError{File: name, Line: line, Column: col,
				Err: fmt.Errorf("%w: empty column name (field %d)", ErrBadHeader, i+1)}
		}
		if !utf8.ValidString(h) {
			return nil, &ParseError{File: name, Line: line, Column: col,
				Err: fmt.Errorf("%w: column name %q is not valid UTF-8 (field %d); convert the file to UTF-8", ErrBadHeader, h, i+1)}
		}
		if j, dup := seen[h]; dup {
			return nil, &ParseError{File: name, Line: line, Column: col,
				Err: fmt.Errorf("%w: duplicate column name %q (fields %d and %d)", ErrBadHeader, h, j+1, i+1)}
		}
		seen[h] = i
	}
	c.header = header
	c.keys = make([][]byte, len(header))
	for i, h := range header {
		k := make([]byte, 0, len(h)+4)
		k = jsonstr.Append(k, h)
		c.keys[i] = append(k, ':')
		c.keyLen += len(c.keys[i])
	}
	return c, nil
}

// fieldPos is r.FieldPos for a record of n fields, mapping an index out
// of range (which would make FieldPos panic) to (0, 0).
func (c *csvReader) fieldPos(i, n int) (line, col int) {
	if i < 0 || i >= n {
		return 0, 0
	}
	return c.r.FieldPos(i)
}

// wrap turns an encoding/csv error into a *ParseError, or a fatal error
// naming the input.
func (c *csvReader) wrap(err error, row int64) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{File: c.name, Line: pe.Line, Column: pe.Column, Row: row, Err: pe.Err}
	}
	return fmt.Errorf("source: %s: %w", c.name, err)
}

func (c *csvReader) read() (Record, error) {
	fields, err := c.r.Read()
	if err == io.EOF {
		return Record{}, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return Record{}, c.wrap(err, 0)
		}
		c.row++
		return Record{Row: c.row, Line: pe.StartLine}, c.wrap(err, c.row)
	}
	c.row++
	line, _ := c.fieldPos(0, len(fields))
	rec := Record{Row: c.row, Line: line}
	if got, want := len(fields), len(c.header); got != want {
		// Point at the first extra field, or at the last field present.
		i := want
		if got < want {
			i = got - 1
		}
		l, col := c.fieldPos(i, len(fields))
		if l == 0 {
			l = line
		}
		return rec, &ParseError{File: c.name, Line: l, Column: col, Row: c.row,
			Err: fmt.Errorf("%w (got %d, want %d)", csv.ErrFieldCount, got, want)}
	}

	values := make(map[string]any, len(fields))
	n := c.keyLen + 2
	for i, f := range fields {
		values[c.header[i]] = f
		n += len(f) + 3
	}
	raw := make([]byte, 0, n)
	raw = append(raw, '{')
	for i, f := range fields {
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = append(raw, c.keys[i]...)
		raw = jsonstr.Append(raw, f)
	}
	raw = append(raw, '}')
	rec.Columns, rec.Values, rec.Raw = c.header, values, raw
	return rec, nil
}
