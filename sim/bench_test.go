package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pplx-batch/pplx-batch/pplx"
)

func benchServe(b *testing.B, path, body string) {
	s := New(Config{RPS: 1e9, Burst: 1 << 30})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("got status %d, want 200", rec.Code)
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	benchServe(b, pplx.SearchPath, `{"query":"benchmark query","max_results":10}`)
}

func BenchmarkChat(b *testing.B) {
	benchServe(b, pplx.ChatPath, `{"model":"sonar","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"How fast is the simulator?"}]}`)
}

func BenchmarkChatStream(b *testing.B) {
	benchServe(b, pplx.ChatPath, `{"model":"sonar","stream":true,"messages":[{"role":"user","content":"How fast is the simulator?"}]}`)
}
