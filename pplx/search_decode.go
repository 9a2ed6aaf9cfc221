package pplx

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeSearch decodes the body of a search answer.
//
// The common form (an object with a flat list of result objects, string
// fields, no key twice) takes a scanner written for it, about a quarter of
// encoding/json's time on the simulator's answers: decoding answers was
// the largest share of the client's CPU. Anything else (the nested lists
// of multi-query searches, keys in another case, a field of another type,
// null results, invalid UTF-8, malformed JSON) takes encoding/json and
// SearchResults' own path, so values and errors are encoding/json's.
// FuzzDecodeSearch holds the two paths to the same answers.
func decodeSearch(b []byte) (SearchResponse, error) {
	if out, ok := scanSearch(b); ok {
		return out, nil
	}
	var out SearchResponse
	err := json.Unmarshal(b, &out)
	return out, err
}

// scanSearch decodes b when it is a search answer in the common form, and
// reports whether it was.
func scanSearch(b []byte) (SearchResponse, bool) {
	if !utf8.Valid(b) {
		return SearchResponse{}, false
	}
	s := scanner{b: b}
	var out SearchResponse
	var seen [3]bool
	ok := s.object(func(key []byte) bool {
		n := -1
		switch string(key) {
		case "id":
			n = 0
		case "results":
			n = 1
		case "server_time":
			n = 2
		default:
			return s.other(key)
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		var ok bool
		switch n {
		case 0:
			out.ID, ok = s.stringOrNull()
		case 1:
			out.Results, ok = s.results()
		default:
			out.ServerTime, ok = s.stringOrNull()
		}
		return ok
	})
	if !ok {
		return SearchResponse{}, false
	}
	s.space()
	if s.i != len(s.b) {
		return SearchResponse{}, false
	}
	return out, true
}

// scanner reads JSON from b at i. Each method reports false when the input
// is not in the form it reads; the caller then gives the input to
// encoding/json.
type scanner struct {
	b []byte
	i int
}

// space skips JSON white space.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads an object, calling member for each key with the scanner
// at the value, which member reads.
func (s *scanner) object(member func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, ok := s.rawKey()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !member(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// rawKey reads a key without escapes and returns its bytes.
func (s *scanner) rawKey() ([]byte, bool) {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// fieldNames are the JSON keys of the answer types.
var fieldNames = [...]string{"id", "results", "server_time", "title", "url", "snippet", "date", "last_updated"}

// other skips the value of a key the answer type has no field for. A key
// that encoding/json might match to a field (it matches keys without
// regard to case, and with Unicode's folding outside ASCII) is left to
// encoding/json.
func (s *scanner) other(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, k := range fieldNames {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	start := s.i
	if !s.skip(0) {
		return false
	}
	return json.Valid(s.b[start:s.i])
}

// skip moves past one value, without checking it beyond its brackets and
// strings; other checks what it skipped.
func (s *scanner) skip(depth int) bool {
	if depth > 1000 {
		return false
	}
	switch c := s.peek(); c {
	case '"':
		for j := s.i + 1; j < len(s.b); j++ {
			switch s.b[j] {
			case '\\':
				j++
			case '"':
				s.i = j + 1
				return true
			}
		}
		return false
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		for {
			switch s.peek() {
			case end:
				s.i++
				return true
			case ',', ':':
				s.i++
			case 0:
				return false
			default:
				if !s.skip(depth + 1) {
					return false
				}
			}
		}
	case 0:
		return false
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}

// results reads the flat list of result objects, or null.
func (s *scanner) results() ([]SearchResult, bool) {
	switch s.peek() {
	case 'n':
		return nil, s.null()
	case '[':
	default:
		return nil, false
	}
	s.i++
	out := make([]SearchResult, 0, 10)
	if s.peek() == ']' {
		s.i++
		return out, true
	}
	for {
		var r SearchResult
		var seen [5]bool
		ok := s.object(func(key []byte) bool {
			var f *string
			n := -1
			switch string(key) {
			case "title":
				f, n = &r.Title, 0
			case "url":
				f, n = &r.URL, 1
			case "snippet":
				f, n = &r.Snippet, 2
			case "date":
				f, n = &r.Date, 3
			case "last_updated":
				f, n = &r.LastUpdated, 4
			default:
				return s.other(key)
			}
			if seen[n] {
				return false
			}
			seen[n] = true
			v, ok := s.stringOrNull()
			*f = v
			return ok
		})
		if !ok {
			return nil, false
		}
		out = append(out, r)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, true
		default:
			return nil, false
		}
	}
}

// null reads the literal null.
func (s *scanner) null() bool {
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// stringOrNull reads a string, or null as the empty string (encoding/json
// leaves a string field as it is for null, and the fields start empty).
func (s *scanner) stringOrNull() (string, bool) {
	switch s.peek() {
	case 'n':
		return "", s.null()
	case '"':
		return s.str()
	}
	return "", false
}

// str reads a string, unquoting it as encoding/json does: a \u escape of
// a lone surrogate becomes U+FFFD.
func (s *scanner) str() (string, bool) {
	start := s.i + 1
	j := start
	for ; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return string(s.b[start:j]), true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
	}
	buf := make([]byte, 0, j-start+16)
	buf = append(buf, s.b[start:j]...)
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(s.b) {
			return "", false
		}
		switch e := s.b[j+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(s.b, j+2)
			if !ok {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if j+1 < len(s.b) && s.b[j] == '\\' && s.b[j+1] == 'u' {
					r2, ok = hex4(s.b, j+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads the four hexadecimal digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	for _, c := range b[i : i+4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}
