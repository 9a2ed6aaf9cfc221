package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pplx-batch/pplx-batch/sim"
)

// openPTY opens a pseudo-terminal pair: stderr for the command (a
// terminal) and the master side the test reads what it shows from.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func TestProgressOnATerminal(t *testing.T) {
	master, tty := openPTY(t)
	screen := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // until the test closes the terminal
		screen <- b.String()
	}()
	ts, _ := startSim(t, sim.Config{Latency: 5 * time.Millisecond})
	in := writeFile(t, "in.csv", companies(120))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	code := Main(t.Context(), []string{"run", "--input", in, "--output", out, "--query", "{{.company}}",
		"--concurrency", "4", "--base-url", ts.URL},
		env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: tty, getenv: func(k string) string { return keyEnv()[k] }})
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	tty.Close()
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := <-screen
	for _, want := range []string{"/120 rows", "rows/s", "in flight", "429s", "retries", "120/120 rows 100%", "\r\x1b[K"} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal does not show %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, `"message":"progress"`) {
		t.Error("JSON progress lines on a terminal")
	}
	if strings.Contains(got, testKey) {
		t.Error("the terminal shows the API key")
	}
}

func TestProgressAsJSONLines(t *testing.T) {
	ts, _ := startSim(t, sim.Config{Latency: 20 * time.Millisecond})
	in := writeFile(t, "in.csv", companies(60))
	out := filepath.Join(t.TempDir(), "out.jsonl")
	r := runMain(t, "", keyEnv(), "run", "--input", in, "--output", out, "--query", "{{.company}}",
		"--concurrency", "2", "--progress-interval", "50ms", "--base-url", ts.URL)
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var progress []map[string]any
	for _, line := range strings.Split(r.stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "progress" {
			progress = append(progress, m)
		}
	}
	if len(progress) == 0 {
		t.Fatalf("no JSON progress line in stderr:\n%s", r.stderr)
	}
	last := progress[len(progress)-1]
	for _, k := range []string{"rows_done", "rows_per_s", "in_flight", "rate_limited", "retries", "cost_usd", "rows_total"} {
		if _, ok := last[k]; !ok {
			t.Errorf("progress line lacks %q: %v", k, last)
		}
	}
	if strings.Contains(r.stderr, "\x1b[K") {
		t.Error("terminal control codes in a non-terminal stderr")
	}
}
