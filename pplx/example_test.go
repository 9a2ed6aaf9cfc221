package pplx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/sim"
)

func ExampleClient_Search() {
	srv := httptest.NewServer(sim.New(sim.Config{Key: "pplx-demo"}))
	defer srv.Close()

	c := pplx.New(srv.URL, "pplx-demo", pplx.Options{MaxConns: 8})
	resp, meta, err := c.Search(context.Background(), &pplx.SearchRequest{Query: pplx.Query{"golang"}, MaxResults: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(meta.StatusCode, len(resp.Results), resp.Results[0].Title)
	// Output: 200 2 golang - result 1
}

func ExampleClient_Chat_stream() {
	srv := httptest.NewServer(sim.New(sim.Config{}))
	defer srv.Close()

	c := pplx.New(srv.URL, "any-key", pplx.Options{})
	resp, _, err := c.Chat(context.Background(), &pplx.ChatRequest{
		Model:    "sonar",
		Stream:   true,
		Messages: []pplx.Message{{Role: "user", Content: "What is Go?"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(resp.Content(), "Answer from sonar to: What is Go?"), resp.Usage.Cost.TotalCost > 0)
	// Output: true true
}

func ExampleRetryDelay() {
	// A retry loop as the pipeline runs it (each attempt would first wait
	// on the rate limiter).
	clock := func() time.Time { return time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC) }
	srv := httptest.NewServer(sim.New(sim.Config{Key: "k", RPS: 0.5, Burst: 1, Headers: sim.HeadersNone, Now: clock}))
	defer srv.Close()
	c := pplx.New(srv.URL, "k", pplx.Options{})

	for i, q := range []string{"first", "second"} {
		_, _, err := c.Search(context.Background(), &pplx.SearchRequest{Query: pplx.Query{q}})
		if err == nil {
			fmt.Println(i, "ok")
			continue
		}
		var ae *pplx.APIError
		if errors.As(err, &ae) {
			fmt.Println(i, ae.StatusCode, pplx.Retryable(err), pplx.RetryDelay(0, err, nil))
		}
	}
	// Output:
	// 0 ok
	// 1 429 true 2s
}

func ExampleRetryAfter() {
	now := time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC)
	for _, h := range []http.Header{
		{"Retry-After-Ms": {"1500"}},
		{"Retry-After": {"2"}},
		{"Retry-After": {"Wed, 21 Oct 2026 07:28:30 GMT"}},
		{"Retry-After": {"soon"}},
	} {
		fmt.Println(pplx.RetryAfter(h, now))
	}
	// Output:
	// 1.5s true
	// 2s true
	// 30s true
	// 0s false
}

func ExampleSSEReader() {
	sr := pplx.NewSSEReader(strings.NewReader(": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: error\ndata: line 1\ndata: line 2\n\ndata: [DONE]\n\n"))
	for {
		ev, err := sr.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%q %q\n", ev.Type, ev.Data)
	}
	// Output:
	// "" "{\"a\":1}"
	// "error" "line 1\nline 2"
	// "" "[DONE]"
	// EOF
}
