// Package sink writes the output of a batch job: one [Row] per input row, as
// JSONL ([JSONL]), Parquet ([Parquet]) or CSV ([CSV]), and the errors file
// (a [JSONL] of any other row type). With a job's JSON Schema, [DataSchema]
// gives the structured answers their Parquet columns.
//
// Files are written atomically: a writer created with [CreateJSONL],
// [CreateParquet] or [CreateCSV] writes to a temporary file
// ".<name>.tmp-<random>" (a CSV writer uses two) in the
// directory of the final name and renames it into place only on a
// successful Close, after flushing it and syncing it to disk; the directory
// is synced after the rename. Until then the final name does not exist, or
// still holds the previous complete file. Abort removes the temporary file.
// A process killed before Close leaves its temporary file behind;
// [TempFiles] lists such files for a final name.
//
// The name "-" given to [CreateJSONL] means standard output: no temporary
// file and no rename, and Close flushes but does not close os.Stdout.
//
// Writers are not safe for concurrent use: one goroutine owns a writer.
package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// Stdout is the output name that means standard output.
const Stdout = "-"

// ErrClosed is returned (wrapped) by a writer's methods after Close or Abort.
var ErrClosed = errors.New("sink: writer is closed")

// ErrInvalidRow is returned (wrapped) by Write for a row that cannot be
// encoded, such as one whose Input is not a JSON object or a value that
// encoding/json rejects. Nothing of the row is written and the writer stays
// usable; every other error from Write is sticky: the writer returns it from
// every later call, and Close removes the temporary file.
var ErrInvalidRow = errors.New("sink: invalid row")

// tempInfix is in the temporary name ".<base>.tmp-<random>" of a file.
const tempInfix = ".tmp-"

// TempFiles returns the temporary files that writers for the final name
// left behind in its directory (for example when the process was killed
// before Close), sorted by name. It returns no files and no error when
// there are none or when the directory does not exist.
func TempFiles(name string) ([]string, error) {
	dir, base := filepath.Split(name)
	if base == "" || name == Stdout {
		return nil, nil
	}
	if dir == "" {
		dir = "."
	}
	matches, err := filepath.Glob(filepath.Join(dir, globEscape("."+base+tempInfix)+"*"))
	if err != nil {
		return nil, fmt.Errorf("sink: temp files of %s: %w", name, err)
	}
	return matches, nil
}

// globEscape escapes the characters that filepath.Match treats specially.
func globEscape(s string) string {
	if runtime.GOOS == "windows" {
		// Backslash is the path separator there; escape with classes.
		var b []byte
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case '*', '?', '[':
				b = append(b, '[', c, ']')
			default:
				b = append(b, c)
			}
		}
		return string(b)
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// atomicFile is a file written under a temporary name in the directory of
// its final name and renamed into place by commit.
type atomicFile struct {
	name string // final name
	dir  string
	tmp  string
	f    *os.File
}

// createAtomic creates the temporary file for the final name.
func createAtomic(name string) (*atomicFile, error) {
	if name == "" {
		return nil, errors.New("sink: empty file name")
	}
	dir, base := filepath.Split(name)
	if base == "" {
		return nil, fmt.Errorf("sink: create %s: not a file name", name)
	}
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("sink: create %s: is a directory", name)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sink: create %s: directory %s: %w", name, dir, unwrapPath(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sink: create %s: %s is not a directory", name, dir)
	}
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", name, err)
	}
	return &atomicFile{name: name, dir: dir, tmp: f.Name(), f: f}, nil
}

// unwrapPath drops the *fs.PathError wrapper (whose message repeats the
// path) and keeps its cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// commit syncs and closes the temporary file, gives it the mode of the file
// it replaces (0644 for a new file), renames it to the final name and syncs
// the directory. On failure it removes the temporary file.
func (a *atomicFile) commit() error {
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(a.name); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	err := a.f.Chmod(mode)
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.tmp, a.name)
	}
	if err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("sink: finish %s: %w", a.name, err)
	}
	if err := syncDir(a.dir); err != nil {
		return fmt.Errorf("sink: finish %s: sync directory: %w", a.name, err)
	}
	return nil
}

// abort closes and removes the temporary file.
func (a *atomicFile) abort() error {
	cerr := a.f.Close()
	if err := os.Remove(a.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sink: abort %s: %w", a.name, err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		return fmt.Errorf("sink: abort %s: %w", a.name, cerr)
	}
	return nil
}

// syncDir makes a rename in dir durable. Systems and file systems that
// cannot sync a directory are not an error.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// state is the life cycle of a writer.
type state uint8

const (
	open state = iota
	closed
	aborted
)
