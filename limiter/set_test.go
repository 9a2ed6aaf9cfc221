package limiter

import (
	"sync"
	"testing"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name string
		set  *Set
	}{
		{"NewSet", NewSet(Config{RPS: 10, MaxInFlight: 2})},
		{"zero Set", &Set{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.set
			search := s.Get(SearchBucket)
			if got := s.Get(SearchBucket); got != search {
				t.Errorf("second Get(%q) returned a different Limiter", SearchBucket)
			}
			sonar := s.Get(ChatBucket("sonar"))
			if sonar == search || sonar == s.Get(ChatBucket("sonar-pro")) {
				t.Errorf("different buckets share a Limiter")
			}
			l := mustAcquire(t, search)
			stats := s.Stats()
			if len(stats) != 3 {
				t.Errorf("got %d buckets in Stats, want 3", len(stats))
			}
			if got := stats[SearchBucket].InFlight; got != 1 {
				t.Errorf("got search InFlight %d, want 1", got)
			}
			if got := stats["chat:sonar"].Acquired; got != 0 {
				t.Errorf("got chat:sonar Acquired %d, want 0", got)
			}
			search.Release(l, Outcome{Status: 200})
		})
	}
}

func TestSetConcurrentGet(t *testing.T) {
	s := NewSet(Config{})
	const n = 16
	got := make([]*Limiter, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i] = s.Get(ChatBucket("sonar"))
			_ = s.Stats()
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if got[i] != got[0] {
			t.Fatalf("concurrent Get returned %d different Limiters, want 1", i+1)
		}
	}
}

func TestChatBucket(t *testing.T) {
	tests := []struct{ model, want string }{
		{"sonar", "chat:sonar"},
		{"sonar-deep-research", "chat:sonar-deep-research"},
		{"", "chat:"},
	}
	for _, tt := range tests {
		if got := ChatBucket(tt.model); got != tt.want {
			t.Errorf("ChatBucket(%q) = %q, want %q", tt.model, got, tt.want)
		}
	}
}
