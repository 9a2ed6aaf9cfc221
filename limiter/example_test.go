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

func ExampleLimiter_adaptive() {
	lim := limiter.New(limiter.Config{}) // learns the server's limit
	ctx := context.Background()
	ticket, err := lim.Acquire(ctx) // the first request goes alone
	if err != nil {
		fmt.Println(err)
		return
	}
	// The server's bucket holds 50 requests and refills one in 20 ms.
	header := http.Header{
		"X-Ratelimit-Limit":     {"50"},
		"X-Ratelimit-Remaining": {"49"},
		"X-Ratelimit-Reset":     {"0.02"},
	}
	lim.Release(ticket, limiter.Outcome{Status: http.StatusOK, Header: header, Latency: 100 * time.Millisecond})
	s := lim.Stats()
	fmt.Printf("mode %s, rate %g/s, in flight up to %d\n", s.Mode, s.Rate, s.InFlightLimit)
	// Output: mode headers, rate 50/s, in flight up to 17
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
