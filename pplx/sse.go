package pplx

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// MaxEventBytes bounds one line, and the data of one event, read by an
// [SSEReader]. A longer line or event fails with an error wrapping
// [ErrTooLarge].
const MaxEventBytes = 16 << 20

// sseBufSize is the read buffer of an SSEReader.
const sseBufSize = 64 << 10

// Event is one server-sent event.
type Event struct {
	// Type is the value of the event's last "event:" line; "" when it had
	// none (a "message" event in WHATWG terms).
	Type string
	// Data is the event's "data:" lines joined by "\n". It aliases a buffer
	// of the reader and is valid only until the next call to Next.
	Data []byte
}

// SSEReader decodes a text/event-stream following the WHATWG
// server-sent-events parsing rules:
//
//   - lines end in "\n", "\r\n" or "\r", and may arrive split across reads
//     in any way;
//   - a line starting with ':' is a comment and is ignored;
//   - "field:value" and "field: value" are the same (one leading space of
//     the value is dropped); a line without ':' is a field with an empty
//     value;
//   - "event" sets the event type, "data" appends its value and a "\n" to
//     the data buffer; "id", "retry" and unknown fields are ignored;
//   - a blank line dispatches the event, without its final "\n", unless
//     no data line was seen since the last dispatch;
//   - at the end of input, an event not closed by a blank line is dropped
//     (as WHATWG says), and Next reports io.ErrUnexpectedEOF instead of
//     io.EOF.
//
// A leading UTF-8 byte order mark is skipped. An SSEReader is not safe for
// concurrent use. Its zero value is not usable; call [NewSSEReader].
type SSEReader struct {
	r      *bufio.Reader
	line   []byte // a line longer than what is buffered, being assembled
	data   []byte // the data buffer, each data line followed by '\n'
	typ    []byte // the event type buffer
	skipLF bool   // the last line ended in '\r': a leading '\n' is part of it
	begun  bool   // the first line (which may start with a byte order mark) was read
	err    error  // sticky error
}

// NewSSEReader returns an SSEReader that reads from r with its own buffer.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, sseBufSize)}
}

// Next blocks until it has read a whole event and returns it. At the end of
// input it returns io.EOF when the input ended at an event boundary, and
// io.ErrUnexpectedEOF when it ended inside an event (the event is dropped).
// A read error of the underlying reader is returned as is, and a line or
// event longer than [MaxEventBytes] gives an error wrapping
// [ErrTooLarge]. After an error every call returns the same error.
func (s *SSEReader) Next() (Event, error) {
	if s.err != nil {
		return Event{}, s.err
	}
	for {
		line, err := s.readLine()
		if err == nil && !s.begun {
			s.begun = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if err != nil {
			if err == io.EOF && (len(s.line) > 0 || len(s.data) > 0 || len(s.typ) > 0) {
				err = io.ErrUnexpectedEOF
			}
			s.err = err
			return Event{}, err
		}
		if len(line) == 0 {
			if len(s.data) == 0 {
				s.typ = s.typ[:0]
				continue
			}
			ev := Event{Data: s.data[:len(s.data)-1]}
			if len(s.typ) > 0 {
				ev.Type = string(s.typ)
			}
			// The next event reuses the buffers; Data stays valid until
			// the next call because nothing is written before then.
			s.data = s.data[:0]
			s.typ = s.typ[:0]
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			s.typ = append(s.typ[:0], value...)
		case "data":
			if len(s.data)+len(value)+1 > MaxEventBytes {
				s.err = fmt.Errorf("pplx: server-sent event over %d bytes: %w", MaxEventBytes, ErrTooLarge)
				return Event{}, s.err
			}
			s.data = append(s.data, value...)
			s.data = append(s.data, '\n')
		}
	}
}

// readLine returns the next line without its terminator. The slice is
// valid until the next call. At the end of input it returns io.EOF and
// leaves any unterminated line in s.line (an unterminated line is never
// processed).
func (s *SSEReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		if s.r.Buffered() == 0 {
			if _, err := s.r.Peek(1); err != nil {
				return nil, err
			}
		}
		buf, _ := s.r.Peek(s.r.Buffered())
		if s.skipLF {
			s.skipLF = false
			if buf[0] == '\n' {
				_, _ = s.r.Discard(1)
				continue
			}
		}
		i := bytes.IndexByte(buf, '\n')
		head := buf
		if i >= 0 {
			head = buf[:i]
		}
		if j := bytes.IndexByte(head, '\r'); j >= 0 {
			i = j
		}
		if i < 0 {
			if len(s.line)+len(buf) > MaxEventBytes {
				return nil, fmt.Errorf("pplx: server-sent event line over %d bytes: %w", MaxEventBytes, ErrTooLarge)
			}
			s.line = append(s.line, buf...)
			_, _ = s.r.Discard(len(buf))
			continue
		}
		if len(s.line)+i > MaxEventBytes {
			return nil, fmt.Errorf("pplx: server-sent event line over %d bytes: %w", MaxEventBytes, ErrTooLarge)
		}
		s.skipLF = buf[i] == '\r'
		var line []byte
		if len(s.line) == 0 {
			// The whole line is in the buffer: return it without a copy.
			// Discard does not overwrite it, and the next read happens
			// only on the next call.
			line = buf[:i]
		} else {
			s.line = append(s.line, buf[:i]...)
			line = s.line
		}
		_, _ = s.r.Discard(i + 1)
		return line, nil
	}
}
