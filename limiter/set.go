package limiter

import "sync"

// SearchBucket is the bucket name of the Search API.
const SearchBucket = "search"

// ChatBucket returns the bucket name of a chat model: "chat:" + model.
func ChatBucket(model string) string { return "chat:" + model }

// Set holds one [Limiter] per server-side rate-limit bucket: Perplexity
// limits the Search API and each chat model separately. It is safe for
// concurrent use. The zero Set is usable and makes Limiters with the zero
// [Config].
type Set struct {
	cfg   Config
	store SharedStore // nil: none

	mu   sync.Mutex
	lims map[string]*Limiter
}

// NewSet returns a Set whose Limiters are made with cfg; each Limiter gets
// its own ceiling bucket, pause and in-flight limit, learns its own
// server-side limit, and logs with a "bucket" field. cfg.RPS and
// cfg.MaxInFlight apply to each bucket separately. With [WithShared], each
// Limiter also shares its bucket's state with other processes.
func NewSet(cfg Config, opts ...SetOption) *Set {
	s := &Set{cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Get returns the Limiter of bucket, making it on first use. Bucket names
// are [SearchBucket] and [ChatBucket](model); any string works.
func (s *Set) Get(bucket string) *Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.lims[bucket]; ok {
		return l
	}
	if s.lims == nil {
		s.lims = make(map[string]*Limiter)
	}
	cfg := s.cfg
	cfg.Log = cfg.Log.With().Str("bucket", bucket).Logger()
	if s.store != nil {
		if b := s.store.Bucket(bucket); b != nil {
			cfg.Shared = b
		}
	}
	l := New(cfg)
	s.lims[bucket] = l
	return l
}

// Stats returns a snapshot of the counters of every Limiter made so far,
// by bucket name.
func (s *Set) Stats() map[string]Stats {
	s.mu.Lock()
	lims := make(map[string]*Limiter, len(s.lims))
	for name, l := range s.lims {
		lims[name] = l
	}
	s.mu.Unlock()
	out := make(map[string]Stats, len(lims))
	for name, l := range lims {
		out[name] = l.Stats()
	}
	return out
}
