package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReserveWaitsForRequestsInFlight checks the budget's bookings: a
// request that fits the budget only once the requests in flight are
// settled waits for them; one that would pass it on what was spent alone
// fails at once.
func TestReserveWaitsForRequestsInFlight(t *testing.T) {
	tests := []struct {
		name          string
		spent, booked float64 // before the reservation
		est, budget   float64
		settleTo      float64 // what the booked request costs when it settles
		wantWait      bool
		wantErr       bool
	}{
		{"fits", 0.1, 0.1, 0.1, 1, 0, false, false},
		{"no budget", 5, 5, 5, 0, 0, false, false},
		{"spent alone passes it", 0.95, 0, 0.1, 1, 0, false, true},
		{"in flight would pass it: waits, then fits", 0.5, 0.45, 0.1, 1, 0.3, true, false},
		{"in flight would pass it: waits, then passes", 0.5, 0.45, 0.1, 1, 0.45, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCounters(nil)
			c.cost = tc.spent
			if tc.booked > 0 {
				if err := c.reserve(t.Context(), tc.booked, 0); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- c.reserve(t.Context(), tc.est, tc.budget) }()
			if tc.wantWait {
				// The reservation either returns or blocks waiting for a
				// settlement (c.settled made): wait for one of the two.
				for {
					c.mu.Lock()
					waiting := c.settled != nil
					c.mu.Unlock()
					if waiting {
						break
					}
					select {
					case err := <-done:
						t.Fatalf("reserve returned %v before the request in flight settled", err)
					case <-time.After(time.Millisecond):
					}
				}
				c.settle(tc.booked, tc.settleTo)
			}
			err := <-done
			var be *BudgetError
			if got := errors.As(err, &be); got != tc.wantErr {
				t.Fatalf("reserve: %v; want a BudgetError: %v", err, tc.wantErr)
			}
		})
	}
	t.Run("stopped while waiting", func(t *testing.T) {
		c := newCounters(nil)
		_ = c.reserve(t.Context(), 0.5, 0)
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("stop")
		cancel(cause)
		if err := c.reserve(ctx, 0.6, 1); !errors.Is(err, cause) {
			t.Errorf("got %v, want the stop's cause", err)
		}
	})
}
