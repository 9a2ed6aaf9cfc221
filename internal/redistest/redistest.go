// Package redistest starts a real redis-server for tests: on a free
// loopback port, in the test's temporary directory, with no persistence,
// stopped when the test ends. A test can kill the server and start it
// again on the same port to play a Redis that goes away mid-run.
//
// When redis-server is not on PATH, Start skips the test with a line that
// says how to install it; with CI=true in the environment it fails the
// test instead, so CI never passes without having run these tests.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the name of the server program looked up on PATH.
const Binary = "redis-server"

// InstallHint is the line a test that needs Redis skips (or, in CI,
// fails) with when redis-server is missing.
const InstallHint = "redis-server not found on PATH; install it to run this test: apt-get install redis-server"

// startTimeout bounds how long Start waits for a server to answer PING.
const startTimeout = 10 * time.Second

// Options configure a server.
type Options struct {
	// Password, when not empty, is required from clients (requirepass).
	Password string
}

// Server is a redis-server process started by Start. Its methods may be
// called from the test's goroutine and from cleanup functions.
type Server struct {
	tb       testing.TB
	bin, dir string
	port     int
	password string

	mu     sync.Mutex
	proc   *os.Process // nil while stopped
	exited chan error  // receives the process's exit
	starts int         // how many times the server was started (names the log files)
}

// Path returns the path of redis-server. When it is not installed, it
// skips tb with InstallHint, or fails tb when the environment has CI=true.
func Path(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath(Binary)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true: the Redis tests must run)", InstallHint)
	}
	tb.Skip(InstallHint)
	return ""
}

// Start starts a redis-server with no password; see StartWith.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith starts a redis-server on a free port of 127.0.0.1 with its
// working directory in tb.TempDir(), no snapshots (--save "") and no
// append-only file, and waits until it answers PING. The server is killed
// when the test and its subtests end.
func StartWith(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: Path(tb), dir: tb.TempDir(), password: o.Password}
	tb.Cleanup(s.Kill)
	var err error
	for range 5 { // another process may take the free port before we bind it
		s.port, err = freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("redistest: %v", err)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port, which stays the same across Restart.
func (s *Server) Port() int { return s.port }

// URL returns redis://[:password@]host:port/db for database db.
func (s *Server) URL(db int) string {
	auth := ""
	if s.password != "" {
		auth = ":" + s.password + "@"
	}
	return fmt.Sprintf("redis://%s%s/%d", auth, s.Addr(), db)
}

// Running reports whether the server process is running (it was started
// and not killed).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to exit. Everything it held is lost. Killing a stopped server does
// nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart starts the server again on the same port, empty, after Kill (it
// kills a running server first), and waits until it answers PING. It fails
// the test if the server cannot start.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	var err error
	for range 50 { // the old socket may take a moment to free the port
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart on port %d: %v", s.port, err)
}

// start runs redis-server on s.port and waits for it to answer.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	s.starts++
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.starts))
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logPath,
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on port %d exited (%v): %s", s.port, err, lastLines(string(log), 5))
		default:
		}
		err := ping(s.Addr(), s.password)
		if err == nil {
			s.proc, s.exited = cmd.Process, exited
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %w", s.port, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends PING (after AUTH when password is set) on a new connection
// to addr and expects +PONG.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if password != "" {
		if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil {
			return err
		} else if !strings.HasPrefix(line, "+OK") {
			return errors.New("AUTH refused")
		}
	}
	if _, err := fmt.Fprint(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
