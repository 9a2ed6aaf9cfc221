package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/source"
)

// ttyRefresh is how often the progress line on a terminal is redrawn.
const ttyRefresh = 250 * time.Millisecond

// statusWriter is stderr on a terminal: log lines scroll above one status
// line that is redrawn in place.
type statusWriter struct {
	mu   sync.Mutex
	w    io.Writer
	line string
}

// Write writes a log line above the status line.
func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		io.WriteString(s.w, "\r\x1b[K")
	}
	n, err := s.w.Write(p)
	if s.line != "" {
		io.WriteString(s.w, s.line)
	}
	return n, err
}

// status replaces the status line.
func (s *statusWriter) status(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, "\r\x1b[K"+line)
	s.line = line
}

// done ends the status line, leaving its last state on screen.
func (s *statusWriter) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		io.WriteString(s.w, "\n")
		s.line = ""
	}
}

// progress reports a running job: a redrawn line on a terminal, or a JSON
// log line every interval otherwise.
type progress struct {
	snap     func() pipeline.Stats
	total    atomic.Int64 // input rows, -1 while unknown
	start    time.Time
	tty      *statusWriter // nil when stderr is not a terminal
	log      zerolog.Logger
	interval time.Duration
}

func newProgress(snap func() pipeline.Stats, tty *statusWriter, log zerolog.Logger, interval time.Duration) *progress {
	p := &progress{snap: snap, start: time.Now(), tty: tty, log: log, interval: interval}
	p.total.Store(-1)
	return p
}

// countRows counts the rows of the input file in the background, so the
// progress can show a total and an ETA. Stdin cannot be read twice: its
// total stays unknown.
func (p *progress) countRows(ctx context.Context, path, format string) {
	if path == "-" {
		return
	}
	go func() {
		r, err := source.Open(path, source.Options{Format: format})
		if err != nil {
			return
		}
		defer r.Close()
		var n int64
		for ctx.Err() == nil {
			_, err := r.Read()
			if err == io.EOF {
				p.total.Store(n)
				return
			}
			if _, ok := err.(*source.ParseError); err != nil && !ok {
				return
			}
			n++
		}
	}()
}

// run reports until ctx ends.
func (p *progress) run(ctx context.Context) {
	every := p.interval
	if p.tty != nil {
		every = ttyRefresh
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.report()
		}
	}
}

// finish draws the last state of a terminal's progress line.
func (p *progress) finish() {
	if p.tty != nil {
		p.report()
		p.tty.done()
	}
}

type progressState struct {
	done, total             int64
	rate                    float64
	eta                     time.Duration
	inFlight, limited, retr int64
	cost                    float64
}

func (p *progress) state() progressState {
	s := p.snap()
	st := progressState{done: s.Rows + s.Skipped, total: p.total.Load(), inFlight: s.InFlight,
		limited: s.RateLimited, retr: s.Retries, cost: s.CostUSD, eta: -1}
	if el := time.Since(p.start).Seconds(); el > 0 {
		st.rate = float64(s.Rows) / el
	}
	if st.total >= 0 && st.rate > 0 {
		st.eta = time.Duration(float64(max(0, st.total-st.done)) / st.rate * float64(time.Second))
	}
	return st
}

func (p *progress) report() {
	s := p.state()
	if p.tty != nil {
		p.tty.status(s.line())
		return
	}
	ev := p.log.Info().Int64("rows_done", s.done).Float64("rows_per_s", round(s.rate, 2)).
		Int64("in_flight", s.inFlight).Int64("rate_limited", s.limited).Int64("retries", s.retr).
		Float64("cost_usd", round(s.cost, 6))
	if s.total >= 0 {
		ev = ev.Int64("rows_total", s.total)
	}
	if s.eta >= 0 {
		ev = ev.Float64("eta_s", round(s.eta.Seconds(), 1))
	}
	ev.Msg("progress")
}

// line renders the terminal's progress line.
func (s progressState) line() string {
	var b strings.Builder
	if s.total >= 0 {
		pct := 100.0
		if s.total > 0 {
			pct = 100 * float64(s.done) / float64(s.total)
		}
		fmt.Fprintf(&b, "%d/%d rows %3.0f%%", s.done, s.total, pct)
	} else {
		fmt.Fprintf(&b, "%d rows", s.done)
	}
	fmt.Fprintf(&b, " | %.1f rows/s", s.rate)
	if s.eta >= 0 {
		fmt.Fprintf(&b, " | ETA %s", s.eta.Round(time.Second))
	}
	fmt.Fprintf(&b, " | in flight %d | 429s %d | retries %d | $%.4f", s.inFlight, s.limited, s.retr, s.cost)
	return b.String()
}
