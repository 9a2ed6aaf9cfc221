package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// newLogger builds the zerolog logger on stderr: human-readable when
// format is "console", or "auto" and stderr is a terminal; JSON lines
// otherwise. On a terminal it also returns the status writer that keeps the
// progress line below the log lines (nil otherwise).
func newLogger(stderr io.Writer, level, format string) (zerolog.Logger, *statusWriter, io.Writer, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), nil, nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	var sw *statusWriter
	if isTerminal(stderr) {
		sw = &statusWriter{w: stderr}
	}
	// Workers log concurrently: every event must reach stderr in one
	// piece, whatever stderr is (statusWriter locks by itself), and so
	// must what the command prints itself (the summary) while goroutines
	// may still log: both go through out.
	var out io.Writer = &lockedWriter{w: stderr}
	if sw != nil {
		out = sw
	}
	w := out
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: sw == nil}
	case "auto", "":
		if sw != nil {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	default:
		return zerolog.Nop(), nil, nil, fmt.Errorf("--log-format must be auto, json or console, not %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), sw, out, nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
