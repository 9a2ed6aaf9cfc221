package pplx

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// searchSeeds are answers of the Search API, and malformed ones, for
// TestDecodeSearch and the seed corpus of FuzzDecodeSearch.
var searchSeeds = []string{
	`{"id":"a1","results":[{"title":"T","url":"https://x.test/1","snippet":"S","date":"2025-09-22","last_updated":"2025-10-14"}],"server_time":"0.1"}`,
	`{"id":"n","results":[[{"title":"q1","url":"u1"}],[{"title":"q2","url":"u2"}]]}`,
	`{"id":"m","results":[{"title":"a"},[{"title":"b"}]]}`,
	`{"id":"e","results":[]}`,
	`{"id":"z","results":null}`,
	`{"ID":"upper","Results":[{"TITLE":"case"}]}`,
	`{"id":"dup","id":"second","results":[{"title":"x","title":"y"}]}`,
	`{"id":"esc","results":[{"title":"\u00e9\ud83d\ude00 \"q\" \\ \/ \n","snippet":"\ud800 lone"}]}`,
	"{\"id\":\"bad utf8 \xff\xfe\",\"results\":[]}",
	`{"id":"extra","results":[],"other":{"deep":[1,2,{"x":null}]}}`,
	`{"id":1,"results":[]}`,
	`{"id":"t","results":[{"title":5}]}`,
	`{"id":"tr","results":[]} trailing`,
	`{"id":"x","results":[{"title":"a"}]`,
	`[]`,
	`null`,
	``,
}

func TestDecodeSearch(t *testing.T) {
	for _, s := range searchSeeds {
		checkDecodeSearch(t, []byte(s))
	}
	// The common forms take the scanner; the others encoding/json.
	for i, fast := range []bool{true, false, false, true, true, false, false, true, false, true, false, false, false, false, false, false, false} {
		if _, ok := scanSearch([]byte(searchSeeds[i])); ok != fast {
			t.Errorf("scanSearch(%q) took it: %v, want %v", searchSeeds[i], ok, fast)
		}
	}
	got, err := decodeSearch([]byte(searchSeeds[1]))
	if err != nil || len(got.Results) != 2 || got.Results[1].Title != "q2" {
		t.Errorf("nested results: got %+v, %v; want two results, flattened in query order", got, err)
	}
}

func FuzzDecodeSearch(f *testing.F) {
	for _, s := range searchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeSearch(t, b)
	})
}

// checkDecodeSearch holds decodeSearch to encoding/json's answer for b:
// the same value when encoding/json accepts b, an error when it refuses it.
func checkDecodeSearch(t *testing.T, b []byte) {
	t.Helper()
	var want SearchResponse
	wantErr := json.Unmarshal(b, &want)
	got, err := decodeSearch(b)
	switch {
	case wantErr != nil && err == nil:
		t.Fatalf("decodeSearch(%q) = %+v, want the error %v", b, got, wantErr)
	case wantErr == nil && err != nil:
		t.Fatalf("decodeSearch(%q): %v, want %+v", b, err, want)
	case wantErr == nil && !reflect.DeepEqual(normalSearch(got), normalSearch(want)):
		t.Fatalf("decodeSearch(%q) = %+v, want %+v", b, got, want)
	}
}

// normalSearch makes an empty result list nil, the two forms every
// consumer treats alike.
func normalSearch(r SearchResponse) SearchResponse {
	if len(r.Results) == 0 {
		r.Results = nil
	}
	return r
}

// BenchmarkDecodeSearch decodes the simulator's answer to a search, with
// the scanner and with encoding/json into the flat form.
func BenchmarkDecodeSearch(b *testing.B) {
	body := []byte(`{"id":"216df9ab-502f-4c04-bb7d-53fcecc4975c","results":[` +
		strings.Repeat(`{"title":"Acme - result 1","url":"https://sim.invalid/37036cd8/1","snippet":"Result 1 about Acme: yankee zulu uniform november tango \"quebec\".","date":"2025-09-22","last_updated":"2025-10-14"},`, 9) +
		`{"title":"Acme - result 10","url":"https://sim.invalid/37036cd8/10","snippet":"Result 10 about Acme \u2019s.","date":"2025-09-22","last_updated":"2025-10-14"}],"server_time":"0.01"}`)
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok := scanSearch(body); !ok {
				b.Fatal("the scanner did not take the answer")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var out struct { // the flat form, as the client decoded it before
				ID         string         `json:"id"`
				Results    []SearchResult `json:"results"`
				ServerTime string         `json:"server_time"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
