package limiter

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is a Clock whose time moves only when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	ch   chan time.Time
	done bool // fired or stopped
}

// t0 is the start of every fake clock: a realistic date, so that epoch
// headers are read as they would be in production.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		t.done = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(o *fakeTimer) bool { return o == t })
	return true
}

// Advance moves the time forward by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

func (c *fakeClock) fireLocked() {
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.when.After(c.now) {
			return false
		}
		t.done = true
		t.ch <- c.now
		return true
	})
}

// AdvanceToNext moves the time to the earliest pending timer and fires it;
// it reports false when no timer is pending.
func (c *fakeClock) AdvanceToNext() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return false
	}
	next := c.timers[0].when
	for _, t := range c.timers[1:] {
		if t.when.Before(next) {
			next = t.when
		}
	}
	if next.After(c.now) {
		c.now = next
	}
	c.fireLocked()
	return true
}

// Pending returns the number of timers neither fired nor stopped.
func (c *fakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	a := c.NewTimer(2 * time.Second)
	b := c.NewTimer(time.Second)
	z := c.NewTimer(0)
	if got := <-z.C(); !got.Equal(t0) {
		t.Errorf("zero timer: got %v, want %v", got, t0)
	}
	if got, want := c.Pending(), 2; got != want {
		t.Fatalf("Pending() = %d, want %d", got, want)
	}
	c.AdvanceToNext()
	if got := <-b.C(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("b fired at %v, want %v", got, t0.Add(time.Second))
	}
	if !a.Stop() {
		t.Errorf("a.Stop() = false, want true")
	}
	if a.Stop() {
		t.Errorf("second a.Stop() = true, want false")
	}
	if c.AdvanceToNext() {
		t.Errorf("AdvanceToNext() with no timers = true, want false")
	}
}

// inBubble runs f in a synctest bubble: goroutines blocked on the fake
// clock's timers count as durably blocked, so synctest.Wait tells when the
// Limiter has settled, and the bubble fails the test if any goroutine is
// left behind.
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// noJitter makes pauses end exactly.
func noJitter(time.Duration) time.Duration { return 0 }

// fullJitter makes every waiter take the whole jitter allowance.
func fullJitter(max time.Duration) time.Duration { return max }
