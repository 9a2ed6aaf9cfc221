package limiter_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pplx-batch/pplx-batch/limiter"
)

func ExampleLimiter() {
	lim := limiter.New(limiter.Config{RPS: 200, MaxInFlight: 8})
	ctx := context.Background()
	for range 3 {
		ticket, err := lim.Acquire(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		// Send the request here, then hand back what happened.
		header := http.Header{"X-Ratelimit-Remaining": {"10"}, "X-Ratelimit-Reset": {"1"}}
		lim.Release(ticket, limiter.Outcome{Status: http.StatusOK, Header: header, Latency: 40 * time.Millisecond})
	}
	s := lim.Stats()
	fmt.Println(s.Acquired, s.Released, s.InFlight, s.Pauses)
	// Output: 3 3 0 0
}

func ExampleParseHeaders() {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("X-Ratelimit-Limit-Requests", "50")
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", "1m30s")
	h.Set("Retry-After", "7")
	info := limiter.ParseHeaders(h, now)
	fmt.Println(info.Dialect, info.Limit, info.Remaining, info.Reset, info.RetryAfter)
	// Output: x-ratelimit-requests 50 0 1m30s 7s
}

func ExampleSet() {
	set := limiter.NewSet(limiter.Config{RPS: 50})
	search := set.Get(limiter.SearchBucket)
	sonar := set.Get(limiter.ChatBucket("sonar"))
	fmt.Println(search == set.Get("search"), search == sonar, limiter.ChatBucket("sonar"))
	// Output: true false chat:sonar
}
