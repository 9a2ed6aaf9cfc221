package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// member is one key and value of a JSON object, as slices of its text.
type member struct {
	rawKey []byte // the key as written, quotes and escapes included
	key    []byte // the key unquoted
	value  []byte // the value as written, without surrounding space
}

var (
	errInputJSON   = errors.New("input is not valid JSON")
	errInputObject = errors.New("input is not a JSON object")
)

// parseInput appends the members of the JSON object raw to dst, in order.
// Empty input and null have no members. Anything else that is not a JSON
// object is an error.
func parseInput(raw []byte, dst []member) ([]member, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return dst, nil
	}
	if !json.Valid(raw) {
		return dst, errInputJSON
	}
	if raw[0] != '{' {
		return dst, errInputObject
	}
	// raw is one valid JSON object: only its structure is left to find.
	i := 1
	for {
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
		if i >= len(raw) {
			return dst, errInputJSON
		}
		if raw[i] == '}' {
			return dst, nil
		}
		end := stringEnd(raw, i)
		if end < 0 {
			return dst, errInputJSON
		}
		m := member{rawKey: raw[i:end], key: unquote(raw[i:end])}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return dst, errInputJSON
		}
		i = skipSpace(raw, i+1)
		end = valueEnd(raw, i)
		if end < 0 {
			return dst, errInputJSON
		}
		m.value = raw[i:end]
		dst = append(dst, m)
		i = end
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index after the JSON string that starts at b[i],
// or -1 if there is none.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index after the JSON value that starts at b[i], or
// -1 if there is none. The value is assumed to be valid JSON.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}

// unquote returns the text of the JSON string s (quotes included). When s
// has no escapes and is valid UTF-8 the result aliases s; otherwise it is
// decoded as encoding/json does, invalid UTF-8 becoming U+FFFD.
func unquote(s []byte) []byte {
	if len(s) < 2 {
		return nil
	}
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner
	}
	var out string
	if err := json.Unmarshal(s, &out); err != nil {
		return bytes.ToValidUTF8(inner, []byte("\uFFFD"))
	}
	return []byte(out)
}
