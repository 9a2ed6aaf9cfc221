package pplx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll returns every event of in (with Data copied) and the error that
// ended the stream.
func readAll(r io.Reader) ([]Event, error) {
	sr := NewSSEReader(r)
	var evs []Event
	for {
		ev, err := sr.Next()
		if err != nil {
			return evs, err
		}
		ev.Data = bytes.Clone(ev.Data)
		if ev.Data == nil {
			ev.Data = []byte{}
		}
		evs = append(evs, ev)
	}
}

// readers returns the ways the tests feed a stream to the reader: whole,
// one byte at a time, and half of each request.
func readers(in string) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":   strings.NewReader(in),
		"onebyte": iotest.OneByteReader(strings.NewReader(in)),
		"half":    iotest.HalfReader(strings.NewReader(in)),
		"dataerr": iotest.DataErrReader(strings.NewReader(in)),
	}
}

func ev(typ, data string) Event { return Event{Type: typ, Data: []byte(data)} }

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Event
		end  error
	}{
		{"empty", "", nil, io.EOF},
		{"one", "data: a\n\n", []Event{ev("", "a")}, io.EOF},
		{"no space", "data:a\n\n", []Event{ev("", "a")}, io.EOF},
		{"one space stripped", "data:  a \n\n", []Event{ev("", " a ")}, io.EOF},
		{"multi data lines", "data: a\ndata: b\ndata:\n\n", []Event{ev("", "a\nb\n")}, io.EOF},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []Event{ev("", "a"), ev("", "b")}, io.EOF},
		{"cr", "data: a\r\rdata: b\r\r", []Event{ev("", "a"), ev("", "b")}, io.EOF},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []Event{ev("", "a\nb\nc")}, io.EOF},
		{"cr then lf is one ending", "data: a\r\n\ndata: b\n\n", []Event{ev("", "a"), ev("", "b")}, io.EOF},
		{"comments", ": ping\n\n:\ndata: x\n: mid\n\n", []Event{ev("", "x")}, io.EOF},
		{"event type", "event: error\ndata: {\"a\":1}\n\n", []Event{ev("error", `{"a":1}`)}, io.EOF},
		{"event type no space", "event:error\ndata:x\n\n", []Event{ev("error", "x")}, io.EOF},
		{"type resets after dispatch", "event: e\ndata: 1\n\ndata: 2\n\n", []Event{ev("e", "1"), ev("", "2")}, io.EOF},
		{"type without data is dropped", "event: e\n\ndata: 2\n\n", []Event{ev("", "2")}, io.EOF},
		{"last type wins", "event: a\nevent: b\ndata: x\n\n", []Event{ev("b", "x")}, io.EOF},
		{"id and retry ignored", "id: 7\nretry: 100\ndata: x\n\n", []Event{ev("", "x")}, io.EOF},
		{"unknown field ignored", "foo: bar\ndata : x\ndata: y\n\n", []Event{ev("", "y")}, io.EOF},
		{"field without colon", "data\n\n", []Event{ev("", "")}, io.EOF},
		{"empty data line", "data:\n\n", []Event{ev("", "")}, io.EOF},
		{"colons in value", "data: {\"a\":\"b:c\"}\n\n", []Event{ev("", `{"a":"b:c"}`)}, io.EOF},
		{"blank lines only", "\n\n\r\n\r", nil, io.EOF},
		{"extra blank lines", "data: a\n\n\n\ndata: b\n\n", []Event{ev("", "a"), ev("", "b")}, io.EOF},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []Event{ev("", "a")}, io.EOF},
		{"bom only once", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n", []Event{ev("", "a")}, io.EOF},
		{"done", "data: {}\n\ndata: [DONE]\n\n", []Event{ev("", "{}"), ev("", "[DONE]")}, io.EOF},
		{"eof without blank line", "data: a\n\ndata: b\n", []Event{ev("", "a")}, io.ErrUnexpectedEOF},
		{"eof mid line", "data: a\n\ndata: {\"x", []Event{ev("", "a")}, io.ErrUnexpectedEOF},
		{"eof after comment", "data: a\n\n: bye", []Event{ev("", "a")}, io.ErrUnexpectedEOF},
		{"eof after complete comment", "data: a\n\n: bye\n", []Event{ev("", "a")}, io.EOF},
		{"eof after cr", "data: a\r\r", []Event{ev("", "a")}, io.EOF},
		{"utf8 and nul", "data: héllo\x00\n\n", []Event{ev("", "héllo\x00")}, io.EOF},
	}
	for _, tc := range tests {
		for rname, r := range readers(tc.in) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := readAll(r)
				if err != tc.end {
					t.Fatalf("got error %v, want %v", err, tc.end)
				}
				if len(got) == 0 && len(tc.want) == 0 {
					return
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got events %q, want %q", got, tc.want)
				}
			})
		}
	}
}

func TestSSEReaderStickyError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"eof", strings.NewReader("data: a\n\n"), io.EOF},
		{"read error", io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)), boom},
		{"timeout", iotest.TimeoutReader(strings.NewReader("data: a\n\ndata: b")), iotest.ErrTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sr := NewSSEReader(tc.r)
			if _, err := sr.Next(); err != nil {
				t.Fatalf("first event: got error %v, want nil", err)
			}
			for i := range 3 {
				if _, err := sr.Next(); !errors.Is(err, tc.want) {
					t.Fatalf("call %d: got error %v, want %v", i, err, tc.want)
				}
			}
		})
	}
}

// repeatReader returns b over and over.
type repeatReader struct{ b byte }

func (r repeatReader) Read(p []byte) (int, error) {
	var block [4096]byte
	if r.b != 0 {
		for i := range block {
			block[i] = r.b
		}
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], block[:])
	}
	return n, nil
}

func TestSSEReaderTooLarge(t *testing.T) {
	manyLines := func() io.Reader {
		// 2 MiB data lines: each line is fine, the event is not.
		line := "data: " + strings.Repeat("x", 2<<20) + "\n"
		return strings.NewReader(strings.Repeat(line, 9))
	}
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"endless line", io.MultiReader(strings.NewReader("data: "), repeatReader{'x'})},
		{"endless comment", io.MultiReader(strings.NewReader(":"), repeatReader{'x'})},
		{"large event", manyLines()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSSEReader(tc.r).Next()
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got error %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	// A line many times the read buffer, split across reads, is kept whole.
	long := strings.Repeat("0123456789", 20_000)
	in := "data: " + long + "\r\ndata: tail\r\n\r\n"
	for rname, r := range readers(in) {
		t.Run(rname, func(t *testing.T) {
			got, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("got error %v, want EOF", err)
			}
			if len(got) != 1 || string(got[0].Data) != long+"\ntail" {
				t.Fatalf("got %d events, want 1 with the long line", len(got))
			}
		})
	}
}

// refParse is an obviously-correct parser of a whole stream, per WHATWG:
// the reference of FuzzSSE. It returns the events and whether the input
// ended inside an event.
func refParse(in string) ([]Event, bool) {
	var lines []string
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			break
		}
		lines = append(lines, in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			in = in[i+2:]
		} else {
			in = in[i+1:]
		}
	}
	if len(lines) > 0 {
		lines[0] = strings.TrimPrefix(lines[0], "\xEF\xBB\xBF")
	}
	var (
		evs  []Event
		data strings.Builder
		typ  string
	)
	for _, l := range lines {
		if l == "" {
			if data.Len() > 0 {
				d := data.String()
				evs = append(evs, Event{Type: typ, Data: []byte(d[:len(d)-1])})
			}
			data.Reset()
			typ = ""
			continue
		}
		if l[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		}
	}
	return evs, in != "" || data.Len() > 0 || typ != ""
}

// chunkReader returns the input in pieces of the given sizes (cycled).
type chunkReader struct {
	b     []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]%16) + 1
		r.i++
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"event: error\ndata: {\"error\":{\"message\":\"x\"}}\n\n",
		"data: a\r\ndata: b\rdata: c\n\n",
		": comment\r\n\r\ndata:x\r\r",
		"\xEF\xBB\xBFdata: [DONE]\n\n",
		"data: a\n\ndata: b",
		"id: 1\nretry: 5\ndata\n\n",
		"data: a\r",
	} {
		f.Add([]byte(s), []byte{3, 1, 4})
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte) {
		want, unexpected := refParse(string(in))
		wantEnd := io.EOF
		if unexpected {
			wantEnd = io.ErrUnexpectedEOF
		}
		for name, r := range map[string]io.Reader{
			"whole":   bytes.NewReader(in),
			"onebyte": iotest.OneByteReader(bytes.NewReader(in)),
			"chunks":  &chunkReader{b: in, sizes: sizes},
		} {
			got, err := readAll(r)
			if err != wantEnd {
				t.Fatalf("%s: got error %v, want %v", name, err, wantEnd)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: got %d events %q, want %d %q", name, len(got), got, len(want), want)
			}
			for i := range got {
				if got[i].Type != want[i].Type || !bytes.Equal(got[i].Data, want[i].Data) {
					t.Fatalf("%s: event %d: got %q, want %q", name, i, got[i], want[i])
				}
				if bytes.IndexByte(got[i].Data, '\r') >= 0 || strings.ContainsAny(got[i].Type, "\r\n") {
					t.Fatalf("%s: event %d has a line break: %q", name, i, got[i])
				}
			}
		}
	})
}

// benchStream is a streamed chat answer of n chunks shaped like the API's.
func benchStream(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "data: {\"id\":\"8f1c9a4e-2b7d-4c1e-9f3a-6d5b2e8c7a10\",\"model\":\"sonar\",\"created\":1770768226,"+
			"\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"finish_reason\":null,"+
			"\"delta\":{\"role\":\"assistant\",\"content\":\"word%d and some more text \"}}]}\r\n\r\n", i)
		if i%50 == 0 {
			b.WriteString(": keep-alive\n\n")
		}
	}
	b.WriteString("data: {\"id\":\"8f1c9a4e\",\"object\":\"chat.completion.done\",\"choices\":[{\"index\":0," +
		"\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":6," +
		"\"completion_tokens\":1000,\"total_tokens\":1006,\"cost\":{\"total_cost\":0.00501}}}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func BenchmarkSSE(b *testing.B) {
	stream := benchStream(2000)
	b.Run("events", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		for b.Loop() {
			sr := NewSSEReader(bytes.NewReader(stream))
			for {
				if _, err := sr.Next(); err != nil {
					break
				}
			}
		}
	})
	b.Run("assemble", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		c := New("http://127.0.0.1", "k", Options{})
		for b.Loop() {
			resp := streamResponse(bytes.NewReader(stream))
			if _, err := c.readStream(b.Context(), resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
