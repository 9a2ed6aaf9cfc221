package limiter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds on the durations that [ParseHeaders] accepts. A header that would
// give a longer duration is rejected (reported in [Info.Invalid]) rather
// than clamped: a server asking for more than a day is more likely broken
// than right, and its value must not park the run.
const (
	// MaxReset bounds [Info.Reset].
	MaxReset = 24 * time.Hour
	// MaxRetryAfter bounds [Info.RetryAfter].
	MaxRetryAfter = time.Hour
	// MaxWindow bounds [Info.Window].
	MaxWindow = 24 * time.Hour
)

// maxInvalidValue is how much of a rejected header value is kept in
// [InvalidHeader.Value].
const maxInvalidValue = 64

// Dialects reported in [Info.Dialect]: which family of headers the limit,
// remaining and reset fields came from.
const (
	// DialectIETF is the structured RateLimit and RateLimit-Policy fields
	// (draft-ietf-httpapi-ratelimit-headers, drafts 07 and later).
	DialectIETF = "ratelimit"
	// DialectIETFDraft is the older RateLimit-Limit, RateLimit-Remaining
	// and RateLimit-Reset fields.
	DialectIETFDraft = "ratelimit-draft"
	// DialectOpenAI is x-ratelimit-{limit,remaining,reset}-requests.
	DialectOpenAI = "x-ratelimit-requests"
	// DialectXRateLimit is x-ratelimit-limit, -remaining, -reset and
	// -reset-after (GitHub, Discord and many others).
	DialectXRateLimit = "x-ratelimit"
	// DialectAnthropic is anthropic-ratelimit-requests-{limit,remaining,reset}.
	DialectAnthropic = "anthropic"
)

// Info is what a response's headers say about the server's request rate
// limit. Each value is valid only when its Has field is true; otherwise it
// is zero. The zero Info says nothing.
//
// Every duration is relative to the local time passed to [ParseHeaders]
// and lies within [0, MaxReset], [0, MaxRetryAfter] or [0, MaxWindow].
// When both are present, Remaining <= Limit.
type Info struct {
	// Limit is the number of requests allowed per window (> 0).
	Limit    float64
	HasLimit bool

	// Remaining is the number of requests left in the current window (>= 0).
	Remaining    float64
	HasRemaining bool

	// Reset is the time until the window resets or, for servers that
	// refill continuously (OpenAI style), until the bucket is full again.
	Reset    time.Duration
	HasReset bool

	// Window is the length of the quota window (the IETF w= parameter);
	// zero when unknown.
	Window time.Duration

	// RetryAfter is how long the server asked the client to wait, from
	// retry-after-ms (preferred) or Retry-After.
	RetryAfter    time.Duration
	HasRetryAfter bool

	// Dialect names the header family that Limit, Remaining and Reset came
	// from (one of the Dialect constants); empty when none was usable.
	Dialect string

	// Invalid lists the headers that were present but ignored because
	// their values made no sense; nil when there were none.
	Invalid []InvalidHeader
}

// InvalidHeader is a rate-limit header whose value [ParseHeaders] ignored.
type InvalidHeader struct {
	// Name is the canonical header name, e.g. "X-Ratelimit-Reset".
	Name string
	// Value is the header's value, cut to 64 bytes.
	Value string
	// Reason says why the value was ignored, e.g. "negative".
	Reason string
}

// Reasons used in [InvalidHeader.Reason].
const (
	reasonSyntax      = "unparseable"
	reasonNotFinite   = "not finite"
	reasonNegative    = "negative"
	reasonNotPositive = "not positive"
	reasonRange       = "out of range"
	reasonAboveLimit  = "remaining above limit"
)

// ParseHeaders reads the rate-limit headers of a response received at the
// local time now. It accepts:
//
//   - retry-after-ms (float milliseconds) and Retry-After (integer or
//     decimal seconds, or an HTTP date); retry-after-ms wins when both are
//     valid;
//   - the IETF structured fields RateLimit-Policy: "p";q=100;w=60 and
//     RateLimit: "p";r=50;t=30 (also token or integer policy items and the
//     draft-07 dictionary form RateLimit: limit=100, remaining=50, reset=5);
//     when RateLimit lists several policies the binding one (fewest
//     remaining, then longest reset) is used;
//   - the older draft RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset;
//   - x-ratelimit-{limit,remaining,reset}-requests (OpenAI);
//   - x-ratelimit-limit, -remaining, -reset and -reset-after;
//   - anthropic-ratelimit-requests-{limit,remaining,reset}.
//
// The first family in this order that yields a valid value supplies Limit,
// Remaining and Reset; the families are not mixed. Limit and Remaining take
// the first list member of their field ("100, 100;w=60" reads as 100).
//
// A reset is read as seconds until the reset (integer or decimal) when it
// is at most 86400; a larger number is a Unix epoch, in seconds or in
// milliseconds, whichever lies nearer the reference time below. A reset may
// also be a Go duration ("1s", "6m0s", "250ms", "1m30s"), an RFC 3339
// timestamp or an HTTP date.
//
// Absolute times (epochs, timestamps, dates) are taken on the server's
// clock: when the response carries a valid Date header (within 24 h of
// now), the duration is absolute − Date, so that a client–server clock
// offset cancels out, and the reset lies at now + (absolute − Date) on the
// local clock. Date has one-second resolution and is stamped before the
// response travels, so this errs late, by under a second plus the transit
// time, never early. Without a usable Date the duration is absolute − now.
// An absolute time already past gives 0, unless it is further back than the
// bound on its value (below), which makes it nonsense.
//
// Values that make no sense are ignored, never trusted, and listed in
// Info.Invalid: unparseable, NaN or infinite, negative, a limit of zero or
// less, Remaining above Limit (both are dropped), a reset further than
// [MaxReset], a retry delay longer than [MaxRetryAfter], a window longer
// than [MaxWindow]. ParseHeaders never panics; h may be nil.
func ParseHeaders(h http.Header, now time.Time) Info {
	p := parser{h: h, now: now, ref: now}
	p.parseDate()
	p.parseRetryAfter()
	policies := p.parsePolicies()
	if !p.parseRateLimit(policies) && !p.parseFamilies(policies) {
		p.usePolicy(policies)
	}
	info := &p.info
	if info.HasLimit && info.HasRemaining && info.Remaining > info.Limit {
		p.bad(p.remainingName, h.Get(p.remainingName), reasonAboveLimit)
		info.Limit, info.HasLimit = 0, false
		info.Remaining, info.HasRemaining = 0, false
	}
	if !info.HasLimit && !info.HasRemaining && !info.HasReset {
		info.Dialect = ""
		info.Window = 0
	}
	return p.info
}

// parser holds the state of one ParseHeaders call.
type parser struct {
	h    http.Header
	now  time.Time // local receive time
	ref  time.Time // the server's idea of now: Date when usable, else now
	info Info

	remainingName string // header that supplied Remaining, for reports
}

// bad records an ignored header.
func (p *parser) bad(name, value, reason string) {
	if len(value) > maxInvalidValue {
		value = value[:maxInvalidValue]
	}
	p.info.Invalid = append(p.info.Invalid, InvalidHeader{Name: name, Value: value, Reason: reason})
}

func (p *parser) parseDate() {
	const name = "Date"
	v := p.h.Get(name)
	if v == "" {
		return
	}
	t, err := http.ParseTime(v)
	if err != nil {
		p.bad(name, v, reasonSyntax)
		return
	}
	if d := t.Sub(p.now); d > MaxReset || d < -MaxReset {
		p.bad(name, v, reasonRange)
		return
	}
	p.ref = t
}

func (p *parser) parseRetryAfter() {
	const msName, name = "Retry-After-Ms", "Retry-After"
	if v := p.h.Get(msName); v != "" {
		ms, reason := parseNonNegative(v)
		if reason == "" && ms > float64(MaxRetryAfter/time.Millisecond) {
			reason = reasonRange
		}
		if reason == "" {
			p.info.RetryAfter = time.Duration(math.Round(ms * float64(time.Millisecond)))
			p.info.HasRetryAfter = true
		} else {
			p.bad(msName, v, reason)
		}
	}
	v := p.h.Get(name)
	if v == "" {
		return
	}
	var (
		d      time.Duration
		reason string
	)
	if isNumeric(v) {
		var s float64
		s, reason = parseNonNegative(v)
		if reason == "" && s > MaxRetryAfter.Seconds() {
			reason = reasonRange
		}
		d = seconds(s)
	} else if t, err := http.ParseTime(strings.TrimSpace(v)); err == nil {
		d, reason = p.until(t, MaxRetryAfter)
	} else {
		reason = reasonSyntax
	}
	if reason != "" {
		p.bad(name, v, reason)
		return
	}
	if !p.info.HasRetryAfter {
		p.info.RetryAfter, p.info.HasRetryAfter = d, true
	}
}

// policy is one quota policy of RateLimit-Policy.
type policy struct {
	name   string
	quota  float64 // > 0
	window time.Duration
}

// parsePolicies reads RateLimit-Policy, keeping only valid request policies.
func (p *parser) parsePolicies() []policy {
	const name = "Ratelimit-Policy"
	vals := p.h.Values(name)
	if len(vals) == 0 {
		return nil
	}
	var out []policy
	for _, v := range vals {
		for _, m := range splitOutsideQuotes(v, ',') {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			item, params := splitMember(m)
			pol := policy{name: item}
			q, hasQ := param(params, "q")
			if !hasQ {
				q, hasQ = param(params, "l") // draft 08 spelling
			}
			if !hasQ && isNumeric(item) { // draft 06/07: 100;w=60
				q, hasQ, pol.name = item, true, ""
			}
			if qu, ok := param(params, "qu"); ok && unquote(qu) != "requests" {
				continue // a quota of bytes or other units: not ours
			}
			if !hasQ {
				p.bad(name, m, reasonSyntax)
				continue
			}
			quota, reason := parseNonNegative(q)
			if reason == "" && quota == 0 {
				reason = reasonNotPositive
			}
			if reason != "" {
				p.bad(name, m, reason)
				continue
			}
			pol.quota = quota
			if w, ok := param(params, "w"); ok {
				s, reason := parseNonNegative(w)
				if reason == "" && (s == 0 || s > MaxWindow.Seconds()) {
					reason = reasonRange
				}
				if reason != "" {
					p.bad(name, m, reason)
				} else {
					pol.window = seconds(s)
				}
			}
			out = append(out, pol)
		}
	}
	return out
}

// parseRateLimit reads the structured RateLimit field and reports whether
// it gave a usable Remaining.
func (p *parser) parseRateLimit(policies []policy) bool {
	const name = "Ratelimit"
	vals := p.h.Values(name)
	if len(vals) == 0 {
		return false
	}
	type item struct {
		name      string
		remaining float64
		reset     time.Duration
		hasReset  bool
	}
	var (
		best  item
		found bool
		dict  = map[string]string(nil) // draft-07 dictionary form
	)
	for _, v := range vals {
		for _, m := range splitOutsideQuotes(v, ',') {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			itemName, params := splitMember(m)
			if k, val, ok := strings.Cut(itemName, "="); ok && len(params) == 0 {
				k = strings.ToLower(strings.TrimSpace(k))
				if k == "limit" || k == "remaining" || k == "reset" {
					if dict == nil {
						dict = map[string]string{}
					}
					dict[k] = strings.TrimSpace(val)
					continue
				}
			}
			r, ok := param(params, "r")
			if !ok {
				p.bad(name, m, reasonSyntax)
				continue
			}
			rem, reason := parseNonNegative(r)
			if reason != "" {
				p.bad(name, m, reason)
				continue
			}
			it := item{name: itemName, remaining: rem}
			if t, ok := param(params, "t"); ok {
				s, reason := parseNonNegative(t)
				if reason == "" && s > MaxReset.Seconds() {
					reason = reasonRange
				}
				if reason != "" {
					p.bad(name, m, reason)
				} else {
					it.reset, it.hasReset = seconds(s), true
				}
			}
			if !found || it.remaining < best.remaining ||
				(it.remaining == best.remaining && it.reset > best.reset) {
				best, found = it, true
			}
		}
	}
	if !found && dict != nil {
		// draft-07: RateLimit: limit=100, remaining=50, reset=5
		if r, ok := dict["remaining"]; ok {
			rem, reason := parseNonNegative(r)
			if reason != "" {
				p.bad(name, "remaining="+r, reason)
			} else {
				best, found = item{remaining: rem}, true
				if t, ok := dict["reset"]; ok {
					s, reason := parseNonNegative(t)
					if reason == "" && s > MaxReset.Seconds() {
						reason = reasonRange
					}
					if reason != "" {
						p.bad(name, "reset="+t, reason)
					} else {
						best.reset, best.hasReset = seconds(s), true
					}
				}
			}
		}
		if l, ok := dict["limit"]; ok && found {
			q, reason := parseNonNegative(l)
			if reason == "" && q == 0 {
				reason = reasonNotPositive
			}
			if reason != "" {
				p.bad(name, "limit="+l, reason)
			} else {
				p.info.Limit, p.info.HasLimit = q, true
			}
		}
	}
	if !found {
		return false
	}
	info := &p.info
	info.Dialect = DialectIETF
	info.Remaining, info.HasRemaining = best.remaining, true
	info.Reset, info.HasReset = best.reset, best.hasReset
	p.remainingName = name
	if pol, ok := matchPolicy(policies, unquote(best.name), info.Limit, info.HasLimit); ok {
		if !info.HasLimit {
			info.Limit, info.HasLimit = pol.quota, true
		}
		info.Window = pol.window
	}
	return true
}

// matchPolicy finds the policy named name, or else the one whose quota is
// limit, or else the only policy.
func matchPolicy(policies []policy, name string, limit float64, hasLimit bool) (policy, bool) {
	for _, pol := range policies {
		if name != "" && unquote(pol.name) == name {
			return pol, true
		}
	}
	if hasLimit {
		for _, pol := range policies {
			if pol.quota == limit {
				return pol, true
			}
		}
	}
	if len(policies) == 1 {
		return policies[0], true
	}
	return policy{}, false
}

// family is one dialect of separate limit/remaining/reset headers.
type family struct {
	dialect                 string
	limit, remaining, reset string
	resetAfter              string // relative reset, preferred when valid
	windowFromPolicy        bool
}

// parseFamilies reads the first header family with a valid value and
// reports whether there was one.
func (p *parser) parseFamilies(policies []policy) bool {
	families := [...]family{
		{DialectIETFDraft, "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "", true},
		{DialectOpenAI, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", "", false},
		{DialectXRateLimit, "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Reset-After", false},
		{DialectAnthropic, "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", "", false},
	}
	for _, f := range families {
		info := &p.info
		if v := p.h.Get(f.limit); v != "" {
			l, reason := parseNonNegative(firstMember(v))
			if reason == "" && l == 0 {
				reason = reasonNotPositive
			}
			if reason != "" {
				p.bad(f.limit, v, reason)
			} else {
				info.Limit, info.HasLimit = l, true
			}
		}
		if v := p.h.Get(f.remaining); v != "" {
			r, reason := parseNonNegative(firstMember(v))
			if reason != "" {
				p.bad(f.remaining, v, reason)
			} else {
				info.Remaining, info.HasRemaining = r, true
				p.remainingName = f.remaining
			}
		}
		if f.resetAfter != "" {
			if v := p.h.Get(f.resetAfter); v != "" {
				s, reason := parseNonNegative(firstMember(v))
				if reason == "" && s > MaxReset.Seconds() {
					reason = reasonRange
				}
				if reason != "" {
					p.bad(f.resetAfter, v, reason)
				} else {
					info.Reset, info.HasReset = seconds(s), true
				}
			}
		}
		if v := p.h.Get(f.reset); v != "" && !info.HasReset {
			d, reason := p.parseReset(v)
			if reason != "" {
				p.bad(f.reset, v, reason)
			} else {
				info.Reset, info.HasReset = d, true
			}
		}
		if info.HasLimit || info.HasRemaining || info.HasReset {
			info.Dialect = f.dialect
			if f.windowFromPolicy {
				if pol, ok := matchPolicy(policies, "", info.Limit, info.HasLimit); ok {
					info.Window = pol.window
				}
			}
			return true
		}
	}
	return false
}

// usePolicy takes Limit and Window from RateLimit-Policy alone: the policy
// with the lowest rate.
func (p *parser) usePolicy(policies []policy) {
	var best policy
	for _, pol := range policies {
		if best.quota == 0 || rateOf(pol) < rateOf(best) {
			best = pol
		}
	}
	if best.quota == 0 {
		return
	}
	p.info.Dialect = DialectIETF
	p.info.Limit, p.info.HasLimit = best.quota, true
	p.info.Window = best.window
}

// rateOf returns a policy's quota per second, or its quota when the window
// is unknown (such policies sort after the windowed ones only by chance,
// which is good enough to pick a conservative one).
func rateOf(pol policy) float64 {
	if pol.window <= 0 {
		return pol.quota
	}
	return pol.quota / pol.window.Seconds()
}

// parseReset reads a reset value in any of its forms (see ParseHeaders).
func (p *parser) parseReset(v string) (time.Duration, string) {
	if first := firstMember(v); isNumeric(first) {
		n, reason := parseNonNegative(first)
		if reason != "" {
			return 0, reason
		}
		if n <= MaxReset.Seconds() {
			return seconds(n), ""
		}
		return p.epoch(n)
	}
	s := strings.TrimSpace(v) // whole: an HTTP date holds a comma
	if d, err := time.ParseDuration(s); err == nil {
		switch {
		case d < 0:
			return 0, reasonNegative
		case d > MaxReset:
			return 0, reasonRange
		}
		return d, ""
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return p.until(t, MaxReset)
	}
	if t, err := http.ParseTime(s); err == nil {
		return p.until(t, MaxReset)
	}
	return 0, reasonSyntax
}

// epoch converts a Unix time in seconds or milliseconds, whichever is
// nearer the reference time, into the duration until it.
func (p *parser) epoch(n float64) (time.Duration, string) {
	ref := float64(p.ref.Unix()) + float64(p.ref.Nanosecond())/1e9
	d := n - ref
	if ms := n/1000 - ref; math.Abs(ms) < math.Abs(d) {
		d = ms
	}
	return clampPast(d, MaxReset)
}

// until returns the duration from the reference time to t.
func (p *parser) until(t time.Time, bound time.Duration) (time.Duration, string) {
	d := t.Sub(p.ref) // saturates, never overflows
	if d > bound || d < -bound {
		return 0, reasonRange
	}
	return max(d, 0), ""
}

// clampPast turns an offset in seconds into a duration within [0, bound]:
// past offsets no further back than bound give 0; others are out of range.
func clampPast(s float64, bound time.Duration) (time.Duration, string) {
	if s > bound.Seconds() || s < -bound.Seconds() {
		return 0, reasonRange
	}
	if s <= 0 {
		return 0, ""
	}
	return seconds(s), ""
}

// seconds converts non-negative seconds, small enough not to overflow, to a
// Duration, rounding to the nanosecond.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

// parseNonNegative parses a finite number >= 0, or returns a reason.
func parseNonNegative(s string) (float64, string) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && !isRangeErr(err):
		return 0, reasonSyntax
	case math.IsNaN(n) || math.IsInf(n, 0):
		return 0, reasonNotFinite
	case n < 0:
		return 0, reasonNegative
	}
	return n, ""
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// isNumeric reports whether s looks like a plain decimal number (so that
// "1s" or "2026-01-01T00:00:00Z" go to the other parsers).
func isNumeric(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	if l := strings.ToLower(s); l == "nan" || l == "inf" || l == "infinity" {
		return true
	}
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return digits
}

// firstMember returns the first member of a list-valued field, without its
// parameters: "100, 100;w=60" gives "100".
func firstMember(v string) string {
	v, _, _ = strings.Cut(v, ",")
	v, _, _ = strings.Cut(v, ";")
	return strings.TrimSpace(v)
}

// splitMember splits a structured-field list member into its item and its
// parameters (raw "key=value" strings).
func splitMember(m string) (string, []string) {
	parts := splitOutsideQuotes(m, ';')
	item := strings.TrimSpace(parts[0])
	return item, parts[1:]
}

// param returns the value of parameter key (case-sensitive, as structured
// fields are) among params.
func param(params []string, key string) (string, bool) {
	for _, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if strings.TrimSpace(k) == key {
			if !ok {
				return "", false // a boolean parameter: no number here
			}
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// unquote removes the quotes of a structured-field string, if any.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`), `\\`, `\`)
	}
	return s
}

// splitOutsideQuotes splits s at each sep that is not inside a quoted
// string; it always returns at least one element.
func splitOutsideQuotes(s string, sep byte) []string {
	var (
		out     []string
		start   int
		inQuote bool
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++ // skip the escaped byte
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
