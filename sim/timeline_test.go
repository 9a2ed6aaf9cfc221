package sim

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pplx-batch/pplx-batch/pplx"
)

func TestTimeline(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Key: testKey, RPS: 2, Burst: 2, MaxInFlight: 1, Now: clock.Now})
	g := installGate(s)
	ts := start(t, s)
	t0 := clock.Now()
	at := func(d time.Duration) {
		clock.mu.Lock()
		clock.t = t0.Add(d)
		clock.mu.Unlock()
	}
	steps := []struct {
		at   time.Duration
		want int
	}{
		{0, 200}, {0, 200}, {100 * time.Millisecond, 429}, // second 0
		{2500 * time.Millisecond, 200}, // second 2; second 1 stays empty
	}
	for i, st := range steps {
		at(st.at)
		var wg sync.WaitGroup
		var r response
		wg.Go(func() { r = post(t, ts, pplx.SearchPath, `{"query":"q"}`) })
		if st.want == 200 {
			<-g.entered
			g.release <- struct{}{}
		}
		wg.Wait()
		if r.status != st.want {
			t.Fatalf("step %d: got status %d, want %d", i, r.status, st.want)
		}
	}
	// A concurrency 429 in second 3: one request held in flight, one more.
	at(3 * time.Second)
	var wg sync.WaitGroup
	wg.Go(func() { post(t, ts, pplx.SearchPath, `{"query":"held"}`) })
	<-g.entered
	if r := post(t, ts, pplx.SearchPath, `{"query":"q"}`); r.status != 429 {
		t.Fatalf("got status %d while one request is in flight, want 429", r.status)
	}
	g.release <- struct{}{}
	wg.Wait()

	want := []Second{
		{Admitted: 2, RateLimited: 1},
		{},
		{Admitted: 1},
		{Admitted: 1, ConcurrencyLimited: 1},
	}
	if got := s.Timeline(); !slices.Equal(got, want) {
		t.Errorf("got timeline %+v, want %+v", got, want)
	}

	// The endpoint: no key needed, not counted.
	before := s.Stats().Requests
	r := do(t, ts, http.MethodGet, StatsPath, "", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: got status %d, type %q; want 200 JSON", StatsPath, r.status, r.header.Get("Content-Type"))
	}
	rep := decode[StatsReport](t, r.body)
	if !slices.Equal(rep.Timeline, want) {
		t.Errorf("got timeline %+v from the endpoint, want %+v", rep.Timeline, want)
	}
	if rep.Requests != 6 || rep.RateLimited != 1 || rep.ConcurrencyLimited != 1 || rep.Status[429] != 2 || rep.Answered != 4 {
		t.Errorf("got report %+v, want 6 requests, 1 rate and 1 concurrency 429, 4 answered", rep)
	}
	if r := do(t, ts, http.MethodPost, StatsPath, testKey, "{}"); r.status != 405 || r.header.Get("Allow") != http.MethodGet {
		t.Errorf("POST %s: got status %d, Allow %q; want 405 and GET", StatsPath, r.status, r.header.Get("Allow"))
	}
	if got := s.Stats().Requests; got != before {
		t.Errorf("got %d requests after querying the stats, want %d (not counted)", got, before)
	}
}

func TestTimelineBounds(t *testing.T) {
	clock := newFakeClock()
	s := New(Config{Now: clock.Now})
	ts := start(t, s)
	clock.Advance(MaxTimeline * time.Second) // past the recorded range
	post(t, ts, pplx.SearchPath, `{"query":"q"}`)
	if got := len(s.Timeline()); got != 0 {
		t.Errorf("got %d timeline entries for a request after %d s, want 0", got, MaxTimeline)
	}
	if got := s.Stats().Requests; got != 1 {
		t.Errorf("got %d requests, want 1", got)
	}
}
