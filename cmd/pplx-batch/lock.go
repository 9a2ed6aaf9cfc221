package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive lock on a file, held by one process at a time
// (flock), so two runs never write the same output.
type fileLock struct{ f *os.File }

// lockFile takes the lock at path without waiting; it fails with a clear
// message when another process holds it.
func lockFile(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another pplx-batch run is writing this output (it holds %s); wait for it to end", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &fileLock{f: f}, nil
}

// unlock removes the lock file and releases the lock.
func (l *fileLock) unlock() {
	_ = os.Remove(l.f.Name())
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
