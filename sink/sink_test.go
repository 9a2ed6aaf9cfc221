package sink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileWriter is what the atomicity tests need of both writers.
type fileWriter interface {
	Write(Row) error
	Close() error
	Abort() error
}

// writerKinds opens each kind of file writer.
var writerKinds = []struct {
	name   string
	create func(name string) (fileWriter, error)
	// valid reports whether data is a complete file of this kind holding
	// rows rows.
	valid func(t *testing.T, data []byte, rows int)
}{
	{
		name:   "jsonl",
		create: func(name string) (fileWriter, error) { return CreateJSONL[Row](name) },
		valid: func(t *testing.T, data []byte, rows int) {
			t.Helper()
			if got := len(decodeJSONL(t, data)); got != rows {
				t.Errorf("file has %d rows, want %d", got, rows)
			}
		},
	},
	{
		name:   "parquet",
		create: func(name string) (fileWriter, error) { return CreateParquet(name, ParquetOptions{RowGroupRows: 2}) },
		valid: func(t *testing.T, data []byte, rows int) {
			t.Helper()
			if got := len(readParquet(t, data).rows); got != rows {
				t.Errorf("file has %d rows, want %d", got, rows)
			}
		},
	},
}

func writeRows(t *testing.T, w fileWriter, n int) {
	t.Helper()
	for i := range n {
		r := sampleRows()[i%len(sampleRows())]
		r.Row = int64(i + 1)
		if err := w.Write(r); err != nil {
			t.Fatalf("Write row %d: %v", i+1, err)
		}
	}
}

// tempFiles returns the temporary files of name and fails unless there is
// exactly one.
func tempFiles(t *testing.T, name string) []string {
	t.Helper()
	tmps, err := TempFiles(name)
	if err != nil {
		t.Fatalf("TempFiles: %v", err)
	}
	if len(tmps) != 1 {
		t.Fatalf("TempFiles(%s): got %q, want one file", name, tmps)
	}
	return tmps
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func assertNoTempFiles(t *testing.T, name string) {
	t.Helper()
	tmps, err := TempFiles(name)
	if err != nil {
		t.Fatalf("TempFiles: %v", err)
	}
	if len(tmps) != 0 {
		t.Errorf("temp files left: %q, want none", tmps)
	}
}

func TestAtomicCloseRenames(t *testing.T) {
	for _, k := range writerKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "out."+k.name)
			w, err := k.create(name)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			writeRows(t, w, 5)
			if _, err := os.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("before Close: stat: got %v, want not exist", err)
			}
			tmp := tempFiles(t, name)[0]
			if base := filepath.Base(tmp); !strings.HasPrefix(base, ".out."+k.name+".tmp-") {
				t.Errorf("temp file %s: want name .out.%s.tmp-<random>", base, k.name)
			}
			if filepath.Dir(tmp) != dir {
				t.Errorf("temp file in %s, want %s", filepath.Dir(tmp), dir)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("after Close: %v", err)
			}
			k.valid(t, data, 5)
			assertNoTempFiles(t, name)
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o644 {
				t.Errorf("mode: got %v, want 0644", got)
			}
			if err := w.Abort(); err != nil {
				t.Errorf("Abort after Close: got %v, want nil", err)
			}
			if _, err := os.Stat(name); err != nil {
				t.Errorf("Abort after Close removed the file: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close: got %v, want nil", err)
			}
			if err := w.Write(Row{}); !errors.Is(err, ErrClosed) {
				t.Errorf("Write after Close: got %v, want ErrClosed", err)
			}
		})
	}
}

func TestAtomicReplaceKeepsPreviousUntilClose(t *testing.T) {
	for _, k := range writerKinds {
		t.Run(k.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "out."+k.name)
			w, err := k.create(name)
			if err != nil {
				t.Fatal(err)
			}
			writeRows(t, w, 2)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(name, 0o640); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}

			w, err = k.create(name)
			if err != nil {
				t.Fatal(err)
			}
			writeRows(t, w, 7)
			now, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if string(now) != string(before) {
				t.Errorf("before Close: the previous file changed")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			k.valid(t, data, 7)
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o640 {
				t.Errorf("mode: got %v, want 0640 (the replaced file's)", got)
			}
		})
	}
}

func TestAtomicAbort(t *testing.T) {
	for _, k := range writerKinds {
		t.Run(k.name, func(t *testing.T) {
			tests := []struct {
				name     string
				previous bool
			}{
				{"new file", false},
				{"replacing a file", true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					name := filepath.Join(t.TempDir(), "out."+k.name)
					if tt.previous {
						if err := os.WriteFile(name, []byte("previous"), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					w, err := k.create(name)
					if err != nil {
						t.Fatal(err)
					}
					writeRows(t, w, 3)
					if err := w.Abort(); err != nil {
						t.Fatalf("Abort: %v", err)
					}
					assertNoTempFiles(t, name)
					data, err := os.ReadFile(name)
					switch {
					case tt.previous && string(data) != "previous":
						t.Errorf("after Abort: got %q, %v, want the previous file", data, err)
					case !tt.previous && !errors.Is(err, fs.ErrNotExist):
						t.Errorf("after Abort: stat: got %v, want not exist", err)
					}
					if err := w.Abort(); err != nil {
						t.Errorf("second Abort: got %v, want nil", err)
					}
					if err := w.Close(); !errors.Is(err, ErrClosed) {
						t.Errorf("Close after Abort: got %v, want ErrClosed", err)
					}
					if err := w.Write(Row{}); !errors.Is(err, ErrClosed) {
						t.Errorf("Write after Abort: got %v, want ErrClosed", err)
					}
				})
			}
		})
	}
}

func TestCreateErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		contains []string
		is       error
	}{
		{"missing directory", filepath.Join(dir, "no", "such", "out"), []string{filepath.Join(dir, "no", "such")}, fs.ErrNotExist},
		{"directory is a file", filepath.Join(plain, "out"), []string{plain, "not a directory"}, nil},
		{"name is a directory", dir, []string{dir, "is a directory"}, nil},
		{"empty name", "", []string{"empty file name"}, nil},
	}
	for _, k := range writerKinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				_, err := k.create(tt.path)
				if err == nil {
					t.Fatalf("got nil error, want one")
				}
				for _, s := range tt.contains {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("got %q, want it to contain %q", err, s)
					}
				}
				if !strings.HasPrefix(err.Error(), "sink: ") {
					t.Errorf("got %q, want prefix \"sink: \"", err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("got %v, want errors.Is %v", err, tt.is)
				}
			})
		}
	}
}

func TestCloseFailureRemovesTemp(t *testing.T) {
	// The rename fails: the final name became a non-empty directory.
	for _, k := range writerKinds {
		t.Run(k.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "out")
			w, err := k.create(name)
			if err != nil {
				t.Fatal(err)
			}
			writeRows(t, w, 2)
			if err := os.MkdirAll(filepath.Join(name, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			err = w.Close()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("Close: got %v, want an error naming %s", err, name)
			}
			assertNoTempFiles(t, name)
		})
	}
}

func TestWriteFailureIsStickyAndRemovesTemp(t *testing.T) {
	big := Row{ID: "big", Content: strings.Repeat("x", 1<<20), Input: []byte(`{"a":"b"}`)}
	tests := []struct {
		name   string
		create func(name string) (fileWriter, *os.File, error)
	}{
		{"jsonl", func(name string) (fileWriter, *os.File, error) {
			w, err := CreateJSONL[Row](name)
			if err != nil {
				return nil, nil, err
			}
			return w, w.file.f, nil
		}},
		{"parquet", func(name string) (fileWriter, *os.File, error) {
			w, err := CreateParquet(name, ParquetOptions{RowGroupRows: 1})
			if err != nil {
				return nil, nil, err
			}
			return w, w.file.f, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "out")
			w, f, err := tt.create(name)
			if err != nil {
				t.Fatal(err)
			}
			f.Close() // every write to the file fails from now on
			var werr error
			for range 3 {
				if werr = w.Write(big); werr != nil {
					break
				}
			}
			if !errors.Is(werr, fs.ErrClosed) || !strings.Contains(werr.Error(), name) {
				t.Fatalf("Write: got %v, want a closed-file error naming %s", werr, name)
			}
			if err := w.Write(Row{ID: "small"}); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Write after the failure: got %v, want the same error", err)
			}
			if err := w.Close(); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Close: got %v, want the write error", err)
			}
			assertNoTempFiles(t, name)
			if _, err := os.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %s: got %v, want not exist", name, err)
			}
		})
	}
}

func TestTempFiles(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "a[1]*.jsonl")
	for _, f := range []string{".a[1]*.jsonl.tmp-1", ".a[1]*.jsonl.tmp-2", ".a[1]x.jsonl.tmp-3", "a[1]*.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := TempFiles(name)
	if err != nil {
		t.Fatalf("TempFiles: %v", err)
	}
	want := []string{filepath.Join(dir, ".a[1]*.jsonl.tmp-1"), filepath.Join(dir, ".a[1]*.jsonl.tmp-2")}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := TempFiles(filepath.Join(dir, "missing", "x")); err != nil || len(got) != 0 {
		t.Errorf("missing directory: got %q, %v, want none, nil", got, err)
	}
}
