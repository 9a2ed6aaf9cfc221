// Package redisconn opens the Redis connection of --shared-limit from its
// URL (redis://[user:password@]host:port/db or rediss:// for TLS) and keeps
// the password out of every message: URLs are shown redacted and error
// texts are scrubbed of the password.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Timeouts applied when the URL does not set them (as dial_timeout,
// read_timeout, write_timeout, max_retries query parameters): short, so a
// Redis that went away is noticed in seconds rather than hanging a job.
const (
	DefaultDialTimeout = 2 * time.Second
	DefaultIOTimeout   = 2 * time.Second
	DefaultMaxRetries  = 1
)

// ErrMalformed says a URL does not parse.
var ErrMalformed = errors.New("malformed URL (a user or password with special characters must be percent-encoded)")

// Error is an error of the Redis at URL. URL is redacted and the message
// never holds the password.
type Error struct {
	// URL is the Redis URL with its password replaced by "xxxxx".
	URL string
	// Op says what failed, such as "connect" or "parse".
	Op  string
	Err error

	secret string // scrubbed from Err's text
}

// Error returns "redis URL: op: err" with the password scrubbed.
func (e *Error) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = Scrub(e.Err.Error(), e.secret)
	}
	return fmt.Sprintf("shared limit %s: %s: %s", e.URL, e.Op, msg)
}

// Unwrap returns the underlying error, for errors.Is and errors.As. Its
// own text is not scrubbed: print e, not what it wraps.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error for err of op against the Redis at rawURL.
func NewError(rawURL, op string, err error) *Error {
	return &Error{URL: Redact(rawURL), Op: op, Err: err, secret: password(rawURL)}
}

// Parse returns the client options of a redis:// or rediss:// URL, with
// the package's default timeouts where the URL sets none. Errors are
// *Error values.
func Parse(rawURL string) (*redis.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not err: net/url quotes the URL or pieces of it, which may be
		// pieces of the password.
		return nil, NewError(rawURL, "parse", ErrMalformed)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, NewError(rawURL, "parse", fmt.Errorf("want a redis:// or rediss:// URL, not %q", u.Scheme+"://"))
	}
	if u.Host == "" {
		return nil, NewError(rawURL, "parse", errors.New("no host"))
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, NewError(rawURL, "parse", err)
	}
	q := u.Query()
	if !q.Has("dial_timeout") {
		opt.DialTimeout = DefaultDialTimeout
	}
	if !q.Has("read_timeout") {
		opt.ReadTimeout = DefaultIOTimeout
	}
	if !q.Has("write_timeout") {
		opt.WriteTimeout = DefaultIOTimeout
	}
	if !q.Has("max_retries") {
		opt.MaxRetries = DefaultMaxRetries
	}
	opt.ContextTimeoutEnabled = true
	opt.DisableIdentity = true // no CLIENT SETINFO: older servers answer it with an error
	return opt, nil
}

// Open connects to the Redis at rawURL and checks it answers PING within
// ctx. Errors are *Error values naming the redacted URL.
func Open(ctx context.Context, rawURL string) (*redis.Client, error) {
	opt, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, NewError(rawURL, "connect", err)
	}
	return c, nil
}

// Redact returns rawURL with its password replaced by "xxxxx". A URL that
// does not parse is reduced to its scheme and host when they can be found,
// else to "(invalid URL)".
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err == nil && u.Scheme != "" && u.Host != "" {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "(invalid URL)"
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = "xxxxx@" + rest[i+1:]
	}
	return scheme + "://" + rest
}

// Scrub returns s with every occurrence of secret replaced by "xxxxx".
func Scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "xxxxx")
}

// password returns the password of rawURL, found even when the URL does
// not parse, or "".
func password(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		p, _ := u.User.Password()
		return p
	}
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return ""
	}
	i := strings.LastIndex(rest, "@")
	if i < 0 {
		return ""
	}
	_, p, _ := strings.Cut(rest[:i], ":")
	return p
}

// SetLogger sends the go-redis client's own messages (such as "connection
// pool: failed to dial") to log at debug level instead of stderr. go-redis
// keeps one logger per program, so main calls this once, before opening
// a client.
func SetLogger(log zerolog.Logger) { redis.SetLogger(logAdapter{log}) }

type logAdapter struct{ log zerolog.Logger }

func (a logAdapter) Printf(_ context.Context, format string, v ...any) {
	a.log.Debug().Str("component", "go-redis").Msg(fmt.Sprintf(format, v...))
}
