package redistest_test

import (
	"net"
	"testing"

	"github.com/pplx-batch/pplx-batch/internal/redistest"
)

func TestKillRestartSamePort(t *testing.T) {
	for _, o := range []redistest.Options{{}, {Password: "s3cret"}} {
		t.Run("password="+o.Password, func(t *testing.T) {
			s := redistest.StartWith(t, o)
			port := s.Port()
			if !s.Running() {
				t.Fatal("not running after Start")
			}
			s.Kill()
			if s.Running() {
				t.Fatal("running after Kill")
			}
			if c, err := net.Dial("tcp", s.Addr()); err == nil {
				c.Close()
				t.Fatal("the port still accepts connections after Kill")
			}
			s.Kill() // a second Kill does nothing
			s.Restart()
			if s.Port() != port || !s.Running() {
				t.Fatalf("after Restart: port %d running %v, want port %d running", s.Port(), s.Running(), port)
			}
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatalf("dial after Restart: %v", err)
			}
			c.Close()
		})
	}
}

func TestURL(t *testing.T) {
	s := redistest.StartWith(t, redistest.Options{Password: "pw"})
	if got, want := s.URL(3), "redis://:pw@"+s.Addr()+"/3"; got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}
