package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
)

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		path   string
		body   string
		// check inspects the outcome: resp is nil when the request failed.
		check func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats)
	}{
		{"500", Faults{P500: 1}, pplx.SearchPath, `{"query":"q"}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 500 {
					t.Fatalf("got %v, %v; want status 500", resp, err)
				}
				e := decode[pplx.ErrorBody](t, body)
				if e.Error.Type != "internal_error" || e.Error.Code != 500 {
					t.Errorf("got error %+v, want internal_error 500", e.Error)
				}
				if st.Status[500] != 1 {
					t.Errorf("got status counts %v, want one 500", st.Status)
				}
			}},
		{"503", Faults{P503: 1}, pplx.ChatPath, `{"model":"sonar","messages":[{"role":"user","content":"q"}]}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 503 {
					t.Fatalf("got %v, %v; want status 503", resp, err)
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || json.Valid(body) || len(body) == 0 {
					t.Errorf("got Content-Type %q body %q, want plain text", resp.Header.Get("Content-Type"), body)
				}
			}},
		{"reset", Faults{PReset: 1}, pplx.SearchPath, `{"query":"q"}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if err == nil {
					t.Fatalf("got status %d, want a connection error", resp.StatusCode)
				}
				if st.Resets != 1 || len(st.Status) != 0 {
					t.Errorf("got stats %+v, want one reset and no response", st)
				}
			}},
		{"cut", Faults{PCut: 1}, pplx.SearchPath, `{"query":"q"}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 200 {
					t.Fatalf("got %v, %v; want status 200", resp, err)
				}
				if !errors.Is(readErr, io.ErrUnexpectedEOF) {
					t.Errorf("got read error %v, want unexpected EOF", readErr)
				}
				if len(body) == 0 || json.Valid(body) {
					t.Errorf("got body %q, want a partial answer", body)
				}
				if st.Cuts != 1 || st.Status[200] != 1 {
					t.Errorf("got stats %+v, want one cut counted as 200", st)
				}
			}},
		{"cut stream", Faults{PCut: 1}, pplx.ChatPath, `{"model":"sonar","stream":true,"messages":[{"role":"user","content":"q"}]}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("got %v, %v; want a 200 event stream", resp, err)
				}
				if readErr == nil {
					t.Errorf("got a clean end of stream, want a read error")
				}
				if !strings.HasPrefix(string(body), "data: {") || strings.Contains(string(body), "[DONE]") ||
					strings.Contains(string(body), "chat.completion.done") {
					t.Errorf("got body %q, want some chunks and no end", body)
				}
			}},
		{"garbage", Faults{PGarbage: 1}, pplx.SearchPath, `{"query":"q"}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 200 || readErr != nil {
					t.Fatalf("got %v, %v, %v; want status 200 and a whole body", resp, err, readErr)
				}
				if json.Valid(body) {
					t.Errorf("got valid JSON %q, want garbage", body)
				}
				if st.Garbage != 1 || st.Status[200] != 1 {
					t.Errorf("got stats %+v, want one garbage answer counted as 200", st)
				}
			}},
		{"garbage stream", Faults{PGarbage: 1}, pplx.ChatPath, `{"model":"sonar","stream":true,"messages":[{"role":"user","content":"q"}]}`,
			func(t *testing.T, resp *http.Response, body []byte, readErr, err error, st Stats) {
				if resp == nil || resp.StatusCode != 200 || readErr != nil {
					t.Fatalf("got %v, %v, %v; want status 200 and a whole body", resp, err, readErr)
				}
				frames := sseFrames(t, body)
				if len(frames) != 2 || json.Valid([]byte(frames[0])) || frames[1] != "[DONE]" {
					t.Errorf("got frames %q, want an invalid JSON frame then [DONE]", frames)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := New(Config{Key: testKey, RPS: 1, Burst: 1, Faults: tc.faults, Now: clock.Now})
			ts := start(t, s)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := ts.Client().Do(req)
			var body []byte
			var readErr error
			if err == nil {
				body, readErr = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.Header.Get("x-ratelimit-limit") != "1" || resp.Header.Get("x-ratelimit-remaining") != "0" {
					t.Errorf("got limit %q remaining %q, want rate headers 1 and 0 on a faulted answer",
						resp.Header.Get("x-ratelimit-limit"), resp.Header.Get("x-ratelimit-remaining"))
				}
			}
			ts.Close() // wait for the handler
			st := s.Stats()
			tc.check(t, resp, body, readErr, err, st)
			if st.Answered != 0 || st.CostUSD != 0 {
				t.Errorf("got %d answered, cost %g; want a faulted request neither answered nor billed", st.Answered, st.CostUSD)
			}
			if fp := Fingerprint(tc.path, tc.body); s.Answered(fp) != 0 {
				t.Errorf("got Answered %d, want 0", s.Answered(fp))
			}
			// The faulted request took the only token.
			ts2 := start(t, s)
			if r := post(t, ts2, tc.path, tc.body); r.status != 429 {
				t.Errorf("got status %d after a faulted request, want 429", r.status)
			}
		})
	}
}

// outcomes sends each body once to a fresh server with the given seed and
// returns the status per body ("reset" for a dropped connection).
func outcomes(t *testing.T, seed int64, bodies []string, concurrent bool) []string {
	t.Helper()
	s := New(Config{Seed: seed, Faults: Faults{P500: 0.25, P503: 0.15, PReset: 0.1}})
	ts := start(t, s)
	out := make([]string, len(bodies))
	one := func(i int) {
		r, err := tryDo(ts, http.MethodPost, pplx.SearchPath, "k", bodies[i])
		if err != nil {
			out[i] = "reset"
			return
		}
		out[i] = fmt.Sprint(r.status)
	}
	if !concurrent {
		for i := range bodies {
			one(i)
		}
		return out
	}
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Go(func() { one(i) })
	}
	wg.Wait()
	return out
}

func TestFaultsDeterministic(t *testing.T) {
	var bodies []string
	for i := range 40 {
		bodies = append(bodies, fmt.Sprintf(`{"query":"question %d"}`, i))
	}
	a := outcomes(t, 42, bodies, false)
	b := outcomes(t, 42, bodies, true)
	c := outcomes(t, 43, bodies, false)
	if !slices.Equal(a, b) {
		t.Errorf("got outcomes\n%v sequential and\n%v concurrent with one seed, want the same", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("got outcomes %v with two seeds, want different", a)
	}
	for _, want := range []string{"200", "500", "503", "reset"} {
		if !slices.Contains(a, want) {
			t.Errorf("got outcomes %v, want some %s", a, want)
		}
	}

	// Retries of one request draw afresh, and Answered counts the 200s.
	s := New(Config{Seed: 42, Faults: Faults{P500: 0.5}})
	ts := start(t, s)
	var twoHundreds int
	var seq []int
	for range 20 {
		r := post(t, ts, pplx.SearchPath, `{"query":"retried"}`)
		seq = append(seq, r.status)
		if r.status == 200 {
			twoHundreds++
		}
	}
	if twoHundreds == 0 || twoHundreds == 20 {
		t.Errorf("got statuses %v for 20 tries at P500=0.5, want a mix", seq)
	}
	if got := s.Answered(Fingerprint("search", `{"query":"retried"}`)); got != twoHundreds {
		t.Errorf("got Answered %d, want %d", got, twoHundreds)
	}
}

func TestFaultThresholds(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		want   [5]float64
	}{
		{"zero", Faults{}, [5]float64{}},
		{"cumulative", Faults{P500: 0.1, P503: 0.2, PReset: 0.3, PCut: 0.1, PGarbage: 0.1}, [5]float64{0.1, 0.3, 0.6, 0.7, 0.8}},
		{"clamped", Faults{P500: -1, P503: 2, PGarbage: 0.5}, [5]float64{0, 1, 1, 1, 1.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := New(Config{Faults: tc.faults}).faults
			for i := range got {
				if diff := got[i] - tc.want[i]; diff > 1e-12 || diff < -1e-12 {
					t.Errorf("got thresholds %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}
