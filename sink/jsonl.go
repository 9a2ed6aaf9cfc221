package sink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// jsonlBufferSize is the size of the write buffer of a JSONL writer.
const jsonlBufferSize = 64 << 10

// JSONL writes values of type T as JSON Lines: one JSON object per line,
// encoded by encoding/json without HTML escaping. It is used for the output
// (T = [Row]) and for the errors file.
//
// Writes are buffered; Flush hands the buffer to the operating system so
// that the rows written so far survive a killed process. Errors are sticky,
// like those of encoding/csv's Writer: after a failed write or flush every
// later call returns the same error (except for [ErrInvalidRow]).
//
// The zero value is not usable; create a JSONL with [CreateJSONL] or
// [NewJSONL]. A JSONL is not safe for concurrent use.
type JSONL[T any] struct {
	name  string      // for messages
	file  *atomicFile // nil when not writing a file of our own
	bw    *bufio.Writer
	ew    errWriter
	enc   *json.Encoder
	err   error // sticky
	state state
	cerr  error // result of Close
}

// errWriter records the first error of the writer it wraps, so that a
// failed write can be told apart from a failed encoding.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// CreateJSONL creates a JSONL writer for the file name, written atomically
// (see the package documentation); name "-" ([Stdout]) writes to standard
// output instead. The error names the file.
func CreateJSONL[T any](name string) (*JSONL[T], error) {
	if name == Stdout {
		w := NewJSONL[T](os.Stdout)
		w.name = "stdout"
		return w, nil
	}
	f, err := createAtomic(name)
	if err != nil {
		return nil, err
	}
	w := NewJSONL[T](f.f)
	w.name = name
	w.file = f
	return w, nil
}

// NewJSONL returns a JSONL writer that writes to w. Close flushes the
// buffer but does not close w.
func NewJSONL[T any](w io.Writer) *JSONL[T] {
	j := &JSONL[T]{name: "jsonl"}
	j.bw = bufio.NewWriterSize(w, jsonlBufferSize)
	j.ew.w = j.bw
	j.enc = json.NewEncoder(&j.ew)
	j.enc.SetEscapeHTML(false)
	return j
}

// Write appends v as one line. A value that encoding/json cannot encode is
// not written, and the error wraps [ErrInvalidRow]; other errors are sticky.
func (j *JSONL[T]) Write(v T) error {
	if err := j.usable(); err != nil {
		return err
	}
	err := j.enc.Encode(v)
	if j.ew.err != nil {
		j.err = fmt.Errorf("sink: write %s: %w", j.name, j.ew.err)
		return j.err
	}
	if err != nil {
		// json.Encoder writes nothing when it fails to marshal.
		return fmt.Errorf("%w: %s: %w", ErrInvalidRow, j.name, err)
	}
	return nil
}

// Flush writes the buffered lines to the underlying file or writer (for a
// file: to the operating system, without syncing it to disk).
func (j *JSONL[T]) Flush() error {
	if err := j.usable(); err != nil {
		return err
	}
	return j.flush()
}

func (j *JSONL[T]) flush() error {
	if err := j.bw.Flush(); err != nil {
		j.err = fmt.Errorf("sink: write %s: %w", j.name, err)
		return j.err
	}
	return nil
}

// usable returns the error that forbids using j: the sticky error, or
// ErrClosed.
func (j *JSONL[T]) usable() error {
	if j.state != open {
		return fmt.Errorf("%w: %s", ErrClosed, j.name)
	}
	return j.err
}

// Close flushes the buffer and, for a file created by [CreateJSONL],
// syncs it and renames it into place. If that fails, or if an earlier
// write failed, Close removes the temporary file (a previous file of the
// same name stays) and returns the error. Close on a closed JSONL returns
// the result of the first Close; after Abort it returns [ErrClosed].
func (j *JSONL[T]) Close() error {
	switch j.state {
	case closed:
		return j.cerr
	case aborted:
		return fmt.Errorf("%w: %s", ErrClosed, j.name)
	}
	j.state = closed
	err := j.err
	if err == nil {
		err = j.flush()
	}
	if j.file == nil {
		j.cerr = err
		return err
	}
	if err != nil {
		j.file.abort()
		j.cerr = err
		return err
	}
	j.cerr = j.file.commit()
	return j.cerr
}

// Abort discards the output: for a file created by [CreateJSONL] it
// removes the temporary file, so the final name keeps its previous state;
// otherwise it drops the lines not yet flushed. Abort after Close or Abort
// does nothing and returns nil, so it can be deferred.
func (j *JSONL[T]) Abort() error {
	if j.state != open {
		return nil
	}
	j.state = aborted
	j.bw.Reset(io.Discard)
	if j.file == nil {
		return nil
	}
	return j.file.abort()
}
