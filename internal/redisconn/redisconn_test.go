package redisconn_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"
	"github.com/pplx-batch/pplx-batch/internal/redistest"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://:hunter22@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"rediss://user:hunter22@h:6380/2", "rediss://user:xxxxx@h:6380/2"},
		{"redis://user:hun%ter@h/0", "redis://xxxxx@h/0"}, // does not parse
		{"no url at all", "(invalid URL)"},
	} {
		if got := redisconn.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		db        int
		tls       bool
		err       string
	}{
		{url: "redis://pplx-batch-redis:6379/0", addr: "pplx-batch-redis:6379"},
		{url: "redis://:pw@127.0.0.1:7000/3", addr: "127.0.0.1:7000", db: 3},
		{url: "rediss://u:pw@cache.example:6380/1", addr: "cache.example:6380", db: 1, tls: true},
		{url: "http://h:6379/0", err: "want a redis:// or rediss:// URL"},
		{url: "redis:///0", err: "no host"},
		{url: "redis://:s3cr3tpass@h:6379/x", err: "invalid database"},
		{url: "redis://:s3cr3tpass@h:port/0", err: "malformed URL"},
		{url: "redis://:s3cr%3tpass@h:6379/0", err: "malformed URL"},
	} {
		opt, err := redisconn.Parse(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", redisconn.Redact(tc.url), err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3tpass") {
				t.Errorf("Parse error shows the password: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.url, err)
			continue
		}
		if opt.Addr != tc.addr || opt.DB != tc.db || (opt.TLSConfig != nil) != tc.tls {
			t.Errorf("Parse(%q) = addr %q db %d tls %v, want %q %d %v", tc.url, opt.Addr, opt.DB, opt.TLSConfig != nil, tc.addr, tc.db, tc.tls)
		}
		if opt.DialTimeout != redisconn.DefaultDialTimeout || opt.MaxRetries != redisconn.DefaultMaxRetries || !opt.ContextTimeoutEnabled {
			t.Errorf("Parse(%q): defaults not applied: %+v", tc.url, opt)
		}
	}
}

func TestOpen(t *testing.T) {
	s := redistest.StartWith(t, redistest.Options{Password: "right-password"})
	ctx := context.Background()
	c, err := redisconn.Open(ctx, s.URL(0))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c.Close()

	wrong := strings.Replace(s.URL(0), "right-password", "wrong-password", 1)
	_, err = redisconn.Open(ctx, wrong)
	if _, ok := errors.AsType[*redisconn.Error](err); !ok || strings.Contains(err.Error(), "wrong-password") || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("Open with a wrong password: %v; want a *Error naming %s without the password", err, s.Addr())
	}

	s.Kill()
	_, err = redisconn.Open(ctx, s.URL(0))
	if err == nil || strings.Contains(err.Error(), "right-password") || !strings.Contains(err.Error(), "xxxxx@"+s.Addr()) {
		t.Errorf("Open of a stopped server: %v; want an error naming the redacted URL", err)
	}
}

// FuzzRedact checks that no URL, valid or not, gets its password into
// Redact's result (which comes out the same when only the password
// changes) or Parse's error.
func FuzzRedact(f *testing.F) {
	f.Add("user", "hunter22", "h:6379", "/0")
	f.Add("", "hunter22", "h:port", "/0")
	f.Add("u", "passw0rd", "[::1]:6379", "/x?dial_timeout=zz")
	f.Add("", "p4ssw0rd", "h", "")
	f.Fuzz(func(t *testing.T, user, pass, host, rest string) {
		if len(pass) < 6 || strings.TrimFunc(pass, isAlnum) != "" {
			t.Skip()
		}
		raw := "redis://" + user + ":" + pass + "@" + host + rest
		if u, err := url.Parse(raw); err == nil {
			if p, _ := u.User.Password(); p != pass {
				t.Skip() // the text after ':' is not the password (a '#' or '?' came first)
			}
		}
		other := "redis://" + user + ":" + strings.Repeat("Z", len(pass)) + "@" + host + rest
		if a, b := redisconn.Redact(raw), redisconn.Redact(other); a != b {
			t.Fatalf("Redact depends on the password: %q and %q", a, b)
		}
		if strings.Contains(user+host+rest, pass) {
			return // the password's text is also elsewhere in the URL
		}
		_, err := redisconn.Parse(raw)
		if err == nil {
			return
		}
		e, ok := errors.AsType[*redisconn.Error](err)
		if !ok {
			t.Fatalf("Parse(%q) error %T, want a *redisconn.Error", raw, err)
		}
		// The URL part is Redact's, checked above; escaping may make up the
		// password's text there.
		if msg := strings.TrimPrefix(err.Error(), "shared limit "+e.URL); strings.Contains(msg, pass) {
			t.Fatalf("Parse(%q) error %q shows the password", raw, err)
		}
	})
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
