package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jsonlReader reads one JSON object per line.
type jsonlReader struct {
	br   *bufio.Reader
	name string
	max  int    // longest line accepted, without its terminator
	buf  []byte // scratch for lines longer than br's buffer
	line int    // lines read so far
	row  int64  // rows (non-blank lines) read so far

	// dec decodes the lines fed to it through feed, one after the other
	// as one stream, so that it and its buffer are reused; fed counts the
	// bytes fed. dec is replaced after an error or a very long line.
	dec  *json.Decoder
	feed lineFeed
	fed  int64
}

// lineFeed is the stream under jsonlReader.dec: the current line, then
// io.EOF until the next one.
type lineFeed struct{ b []byte }

func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// keepBuf is the largest scratch buffer kept between lines; a larger one
// (left by a very long line) is dropped so it does not stay pinned.
const keepBuf = 1 << 20

func newJSONLReader(br *bufio.Reader, name string, max int) *jsonlReader {
	return &jsonlReader{br: br, name: name, max: max}
}

func (j *jsonlReader) read() (Record, error) {
	for {
		line, state, err := j.readLine()
		if err != nil {
			return Record{}, err
		}
		j.line++
		if state == lineBlank || (state == lineOK && isBlank(line)) {
			continue
		}
		j.row++
		rec := Record{Row: j.row, Line: j.line}
		if state == lineTooLong {
			return rec, &ParseError{File: j.name, Line: j.line, Row: j.row,
				Err: fmt.Errorf("%w (limit %d bytes)", ErrLineTooLong, j.max)}
		}
		cols, vals, perr := j.parse(line)
		if perr != nil {
			perr.File, perr.Line, perr.Row = j.name, j.line, j.row
			return rec, perr
		}
		rec.Columns, rec.Values = cols, vals
		rec.Raw = bytes.Clone(bytes.Trim(line, jsonSpace))
		return rec, nil
	}
}

// Line states returned by readLine.
const (
	lineOK      = iota
	lineTooLong // longer than the limit and not blank; its bytes are gone
	lineBlank   // longer than the limit but only whitespace
)

// readLine returns the next line without its "\n" or "\r\n". The line is
// only valid until the next call. A line that exceeds the limit is read
// to its end and dropped, and reported by state. At the end of the input
// it returns io.EOF; other errors are fatal.
func (j *jsonlReader) readLine() (line []byte, state int, err error) {
	if cap(j.buf) > keepBuf {
		j.buf = nil
	}
	j.buf = j.buf[:0]
	limit := j.max + 2 // room for "\r\n"
	long, blank, got := false, true, false
	for {
		frag, err := j.br.ReadSlice('\n')
		if len(frag) > 0 {
			got = true
		}
		switch {
		case long:
			blank = blank && isBlank(frag)
		case len(j.buf) == 0 && err != bufio.ErrBufferFull:
			line = frag // the whole line is in br's buffer
		case len(j.buf)+len(frag) > limit:
			long = true
			blank = isBlank(j.buf) && isBlank(frag)
			j.buf = j.buf[:0]
		default:
			j.buf = append(j.buf, frag...)
			line = j.buf
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("source: %s: %w", j.name, err)
		}
		if err == io.EOF && !got {
			return nil, 0, io.EOF
		}
		break
	}
	if long {
		if blank {
			return nil, lineBlank, nil
		}
		return nil, lineTooLong, nil
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > j.max {
		if isBlank(line) {
			return nil, lineBlank, nil
		}
		return nil, lineTooLong, nil
	}
	return line, lineOK, nil
}

// jsonSpace is the set of JSON whitespace characters.
const jsonSpace = " \t\r\n"

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// parse decodes a non-blank line that should hold one JSON object. On
// failure it returns a *ParseError with Column (when known) and Err set.
func (j *jsonlReader) parse(line []byte) ([]string, map[string]any, *ParseError) {
	start := len(line) - len(bytes.TrimLeft(line, jsonSpace))
	if line[start] != '{' {
		if json.Valid(line) {
			return nil, nil, &ParseError{Column: start + 1,
				Err: fmt.Errorf("%w (found %s)", ErrNotObject, kindOf(line[start]))}
		}
		return nil, nil, syntaxError(line)
	}
	if j.dec == nil || len(line) > keepBuf {
		j.dec = json.NewDecoder(&j.feed)
		j.dec.UseNumber()
		j.fed = 0
	}
	j.feed.b = line
	start64 := j.fed
	j.fed += int64(len(line))
	var values map[string]any
	if err := j.dec.Decode(&values); err != nil {
		j.dec = nil
		return nil, nil, syntaxError(line)
	}
	end := int(j.dec.InputOffset() - start64)
	if end < 0 || end > len(line) || !isBlank(line[end:]) {
		j.dec = nil
		return nil, nil, syntaxError(line) // trailing data
	}
	if len(line) > keepBuf {
		j.dec = nil // do not pin its buffer
	}
	j.feed.b = nil
	cols, err := objectKeys(line[:end], len(values))
	if err != nil || len(cols) != len(values) {
		// Not expected for input json.Decoder accepted.
		if err == nil {
			err = errors.New("key count mismatch")
		}
		return nil, nil, &ParseError{Err: fmt.Errorf("reading object keys: %w", err)}
	}
	return cols, values, nil
}

// syntaxError explains why line is not valid JSON, with the column from
// the *json.SyntaxError that json.Unmarshal reports (its Offset counts the
// bytes read up to and including the offending one).
func syntaxError(line []byte) *ParseError {
	var v json.RawMessage
	err := json.Unmarshal(line, &v)
	if err == nil {
		err = errors.New("invalid JSON")
	}
	pe := &ParseError{Err: err}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		pe.Column = int(min(max(se.Offset, 1), int64(len(line))+1))
	}
	return pe
}

// kindOf names the kind of JSON value that starts with c.
func kindOf(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// errBadObject reports that objectKeys was given something other than one
// valid JSON object; it does not happen for input json.Decoder accepted.
var errBadObject = errors.New("malformed object")

// objectKeys returns the top-level keys of the valid JSON object b in
// order, each once (at its first position). n is the expected number of
// keys, used to size the result.
func objectKeys(b []byte, n int) ([]string, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errBadObject
	}
	i++
	keys := make([]string, 0, n)
	var seen map[string]struct{} // used once there are many keys
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errBadObject
		}
		switch b[i] {
		case '}':
			if len(keys) == 0 {
				return nil, nil
			}
			return keys, nil
		case ',':
			i++
			continue
		case '"':
		default:
			return nil, errBadObject
		}
		end := scanString(b, i)
		if end < 0 {
			return nil, errBadObject
		}
		key, err := decodeKey(b[i:end])
		if err != nil {
			return nil, err
		}
		keys, seen = appendUnique(keys, seen, key)
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errBadObject
		}
		if i = skipValue(b, skipSpace(b, i+1)); i < 0 {
			return nil, errBadObject
		}
	}
}

// appendUnique appends key to keys unless it is there already. seen
// indexes keys once they are too many for a linear search.
func appendUnique(keys []string, seen map[string]struct{}, key string) ([]string, map[string]struct{}) {
	const linear = 16
	if seen == nil && len(keys) < linear {
		for _, k := range keys {
			if k == key {
				return keys, nil
			}
		}
		return append(keys, key), nil
	}
	if seen == nil {
		seen = make(map[string]struct{}, 2*linear)
		for _, k := range keys {
			seen[k] = struct{}{}
		}
	}
	if _, ok := seen[key]; ok {
		return keys, seen
	}
	seen[key] = struct{}{}
	return append(keys, key), seen
}

// decodeKey returns the value of the JSON string s (quotes included).
func decodeKey(s []byte) (string, error) {
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var k string
	if err := json.Unmarshal(s, &k); err != nil {
		return "", err
	}
	return k, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString returns the index just past the JSON string that starts at
// b[i] (a '"'), or -1.
func scanString(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		q += j
		// The quote is escaped if an odd number of backslashes precede it.
		k := q
		for k > i+1 && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return -1
}

// skipValue returns the index just past the JSON value that starts at b[i],
// or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end := scanString(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}
