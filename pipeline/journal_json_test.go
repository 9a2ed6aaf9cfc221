package pipeline

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/pplx-batch/pplx-batch/sink"
)

// resultFrom builds a Result from fuzz arguments: shape picks which
// lists and pointers are nil, empty or filled.
func resultFrom(s1, s2, s3 string, n int64, raw1, raw2 []byte, cost float64, shape uint8) Result {
	r := Result{Row: sink.Row{
		ID: s1, Row: n, Status: s2, Error: s3, HTTPStatus: int(n % 1000), Attempts: int(n % 7), LatencyMS: -n,
		RequestID: s2 + s1, Content: s3 + s1, Model: s2,
	}, RequestHash: s3}
	if shape&1 != 0 {
		r.Input = raw1
	}
	if shape&2 != 0 {
		r.Data = raw2
	}
	switch shape >> 2 & 3 {
	case 1:
		r.Results = []sink.SearchResult{}
		r.Citations = []string{}
		r.SearchResults = []sink.Source{}
	case 2, 3:
		r.Results = []sink.SearchResult{{Title: s1, URL: s2, Snippet: s3, Date: s1, LastUpdated: s2}, {Snippet: s3}}
		r.Citations = []string{s1, "", s3}
		r.SearchResults = []sink.Source{{ID: n, Title: s1, URL: s2, Date: s3, Snippet: s1 + s3}, {}}
	}
	switch shape >> 4 & 3 {
	case 1:
		r.Usage = &sink.Usage{PromptTokens: n, CompletionTokens: n / 3, TotalTokens: -n}
	case 2, 3:
		r.Usage = &sink.Usage{PromptTokens: n, CostUSD: &cost}
	}
	return r
}

// checkAppendResult holds appendResult to json.Marshal: it fails when
// json.Marshal fails, and otherwise writes JSON that decodes to what
// json.Marshal's bytes decode to.
func checkAppendResult(t *testing.T, r Result) {
	t.Helper()
	want, wantErr := json.Marshal(r)
	got, err := appendResult([]byte("prefix"), &r)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("appendResult(%+v): error %v, json.Marshal's %v", r, err, wantErr)
	}
	if err != nil {
		return
	}
	if string(got[:6]) != "prefix" {
		t.Fatalf("appendResult did not append: %q", got)
	}
	got = got[6:]
	if !json.Valid(got) {
		t.Fatalf("appendResult(%+v) = %s, not JSON", r, got)
	}
	var a, b Result
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	// The raw fields hold the same JSON, escaped alike or not.
	for _, p := range [][2]*json.RawMessage{{&a.Input, &b.Input}, {&a.Data, &b.Data}} {
		var x, y any
		if (*p[0] == nil) != (*p[1] == nil) {
			t.Fatalf("raw field: %s, json.Marshal's %s", *p[0], *p[1])
		}
		if *p[0] != nil {
			if json.Unmarshal(*p[0], &x) != nil || json.Unmarshal(*p[1], &y) != nil || !reflect.DeepEqual(x, y) {
				t.Fatalf("raw field: %s, json.Marshal's %s", *p[0], *p[1])
			}
		}
		*p[0], *p[1] = nil, nil
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("appendResult(%+v)\n= %s\ndecodes to %+v\njson.Marshal's to %+v", r, got, a, b)
	}
}

func TestAppendResult(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Result
	}{
		{"zero", Result{}},
		{"search", resultFrom("co-1", "ok", "", 12, []byte(`{"company": "A&B <x>"}`), nil, 0, 1|2<<2)},
		{"agent", resultFrom("é\u2028\t\"\\", "failed", "x\x00\x1f\x7f", 3, []byte(` [1, "\u003c"] `), []byte(`{"n":1.5e3}`), 0.0123, 3|1<<2|2<<4)},
		{"invalid utf-8", resultFrom("a\xffb", "\xc3", "\xe2\x82", 1, []byte("\"\xff\""), nil, 1e-9, 1)},
		{"empty lists, usage without cost", resultFrom("", "", "", 0, nil, nil, 0, 1<<2|1<<4)},
		{"raw not JSON", resultFrom("a", "b", "c", 1, []byte(`{"a":`), nil, 0, 1)},
		{"data not JSON", resultFrom("a", "b", "c", 1, nil, []byte(`nul`), 0, 2)},
		{"NaN cost", resultFrom("a", "b", "c", 1, nil, nil, math.NaN(), 2<<4)},
		{"infinite cost", resultFrom("a", "b", "c", 1, nil, nil, math.Inf(-1), 2<<4)},
		{"large cost", resultFrom("a", "b", "c", 1, nil, nil, 1e300, 2<<4)},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAppendResult(t, tc.r) })
	}
}

func FuzzAppendResult(f *testing.F) {
	f.Add("co-1", "ok", "", int64(12), []byte(`{"company":"A&B"}`), []byte(`{"ceo":"x"}`), 0.5, uint8(0xff))
	f.Add("a\xffb", "\u2028", "\x00\"\\", int64(-1), []byte("\"\xff\""), []byte(`[1,2]`), math.NaN(), uint8(0x23))
	f.Add("", "", "", int64(0), []byte(nil), []byte(nil), 0.0, uint8(0))
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, n int64, raw1, raw2 []byte, cost float64, shape uint8) {
		checkAppendResult(t, resultFrom(s1, s2, s3, n, raw1, raw2, cost, shape))
	})
}
