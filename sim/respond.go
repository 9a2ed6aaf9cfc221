package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

type fault int

const (
	faultNone fault = iota
	fault500
	fault503
	faultReset
	faultCut
	faultGarbage
)

// Purposes of the per-request draws.
const (
	drawFault  = 1
	drawJitter = 2
)

// draw returns a uniform number in [0, 1) determined by the seed, the
// request fingerprint, the number of earlier admissions of the same
// fingerprint and the purpose, so the outcome of a request does not depend
// on how concurrent requests interleave.
func (s *Server) draw(fp [16]byte, attempt uint32, purpose uint64) float64 {
	a := binary.BigEndian.Uint64(fp[:8])
	b := binary.BigEndian.Uint64(fp[8:])
	x := mix(mix(mix(s.seed^a)^b) ^ (uint64(attempt)<<8 | purpose))
	return float64(x>>11) / (1 << 53)
}

func (s *Server) fault(fp [16]byte, attempt uint32) fault {
	return fault(s.pick(s.faults[:], fp, attempt, drawFault))
}

// pick draws, for the attempt-th admission of request fp, which of the
// outcomes whose cumulative probabilities are thresholds happens: 1 for
// the first, and so on, or 0 for none.
func (s *Server) pick(thresholds []float64, fp [16]byte, attempt uint32, purpose uint64) int {
	if thresholds[len(thresholds)-1] <= 0 {
		return 0
	}
	u := s.draw(fp, attempt, purpose)
	for i, t := range thresholds {
		if u < t {
			return i + 1
		}
	}
	return 0
}

func (s *Server) delay(fp [16]byte, attempt uint32) time.Duration {
	d := s.latency
	if s.jitter > 0 {
		j := time.Duration(s.draw(fp, attempt, drawJitter) * float64(s.jitter))
		d += min(j, s.jitter-1)
	}
	return d
}

// marshal encodes v as one line of JSON without HTML escaping, as the API
// does. The values passed here always encode.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// writeError counts and writes a JSON error envelope.
func (s *Server) writeError(w http.ResponseWriter, status int, typ, msg string) {
	s.respond(status)
	writeEnvelope(w, status, typ, msg)
}

func writeEnvelope(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(pplx.ErrorBody{Error: pplx.ErrorDetail{Message: msg, Type: typ, Code: pplx.FlexInt(status)}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// record counts a complete 200 answer and bills it; it runs before the
// last bytes are written, so a client that has the answer sees it counted.
func (s *Server) record(fp [16]byte, micros int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Status[http.StatusOK]++
	s.stats.Answered++
	s.micros += micros
	if rc := s.requests[fp]; rc != nil {
		rc.answered++
	}
}

// countFault counts a cut or garbage answer (sent with status 200).
func (s *Server) countFault(f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Status[http.StatusOK]++
	if f == faultCut {
		s.stats.Cuts++
	} else {
		s.stats.Garbage++
	}
}

// answer writes the 200 answer of c, or its cut or garbage form.
func (s *Server) answer(w http.ResponseWriter, id string, c *call, f fault) {
	var (
		body   []byte
		micros int64
	)
	switch c.ep {
	case epSearch:
		body = marshal(pplx.SearchResponse{ID: id, Results: SearchResults(c.search.Query, c.search.MaxResults)})
		micros = searchMicros
		if c.search.SearchType == "fast" {
			micros = fastSearchMicros
		}
	default:
		resp, cost := chatAnswer(id, s.now().Unix(), c)
		if c.chat.Stream {
			s.stream(w, id, c, resp, cost, f)
			return
		}
		body = marshal(resp)
		micros = cost
	}
	s.writeJSON(w, body, `{"id":"`+id+`","object":`, f, func() { s.record(c.fp, micros) })
}

// writeJSON writes a 200 JSON body, or for fault f its cut form (half of
// it, then the connection closed) or its garbage form (prefix, then bytes
// that are not JSON); ok runs (to count the answer) just before a whole
// body is written.
func (s *Server) writeJSON(w http.ResponseWriter, body []byte, prefix string, f fault, ok func()) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch f {
	case faultGarbage:
		s.countFault(f)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, prefix+"\x00\x01 this is not json }")
	case faultCut:
		s.countFault(f)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		cut(w)
	default:
		ok()
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	}
}

// stream writes a chat answer as server-sent events.
func (s *Server) stream(w http.ResponseWriter, id string, c *call, full pplx.ChatResponse, micros int64, f fault) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	if f == faultGarbage {
		s.countFault(f)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `data: {"id":"`+id+`","object":"chat.completion.chunk","choices":[{"delta":{"content":`+"\x00garbage\n\n")
		io.WriteString(w, "data: [DONE]\n\n")
		rc.Flush()
		return
	}
	frames := streamFrames(full)
	last := len(frames) - 1 // the done frame
	if f == faultCut {
		s.countFault(f)
	}
	w.WriteHeader(http.StatusOK)
	for i, fr := range frames {
		if f == faultCut && i == max(1, last/2) {
			cut(w)
			return
		}
		if i == last {
			s.record(c.fp, micros)
		}
		buf := append([]byte("data: "), marshal(fr)...)
		buf = append(buf, "\n\n"...)
		if i == last {
			buf = append(buf, "data: [DONE]\n\n"...)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// reset drops the connection without a response, with SO_LINGER 0 on TCP
// so the peer sees a reset. Where the connection cannot be hijacked
// (HTTP/2), it aborts the handler with [http.ErrAbortHandler], which resets
// the stream.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// cut flushes what was written and closes the connection, so the client
// sees a body that ends early.
func cut(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}
