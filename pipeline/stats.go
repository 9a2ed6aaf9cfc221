package pipeline

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a run did.
type Stats struct {
	// Read counts the input rows read that belong to the job (its shard).
	// Rows is the number of rows written; OK and Failed split it. Skipped
	// counts the rows an earlier run had answered (see Pipeline.Resume).
	Read, Rows, OK, Failed, Skipped int64
	// LastRow is the number of the last input row read, whatever its
	// shard: when the input was read to its end, the input's row count.
	LastRow int64
	// Requests counts every HTTP attempt; RateLimited those answered 429;
	// Retries the attempts beyond the first of each row. InFlight is the
	// number of requests sent and not yet answered at the moment.
	Requests, RateLimited, Retries, InFlight int64
	// Token counts and cost as reported by the API (search requests are
	// priced from Perplexity's price list, pplx.EstimateCost).
	PromptTokens, CompletionTokens, TotalTokens int64
	CostUSD                                     float64
	// LatencyP50, P95 and P99 are percentiles of the attempts' time to
	// response headers.
	LatencyP50, LatencyP95, LatencyP99 time.Duration
	// Wall is the run's duration.
	Wall time.Duration
}

// maxLatencySamples bounds the memory kept for latency percentiles; past
// it, samples are kept by reservoir sampling.
const maxLatencySamples = 1 << 16

type counters struct {
	read, rows, ok, failed, skipped atomic.Int64
	lastRow                         atomic.Int64
	requests, rateLimited, retries  atomic.Int64
	inFlight                        atomic.Int64
	finished, finishedFailed        atomic.Int64 // rows finished by the workers
	prompt, completion, totalTokens atomic.Int64

	mu       sync.Mutex
	cost     float64       // spent, as reported or estimated
	reserved float64       // estimated cost of the requests in flight
	settled  chan struct{} // closed (and replaced) when a booking settles
	ledger   Ledger        // the job's books across processes; nil: these
	samples  []time.Duration
	seen     int64
}

func newCounters(l Ledger) *counters { return &counters{ledger: l} }

// addTokens adds the prompt, completion and total tokens of an answer.
func (c *counters) addTokens(t [3]int64) {
	c.prompt.Add(t[0])
	c.completion.Add(t[1])
	c.totalTokens.Add(t[2])
}

// reserve books est for a request about to be sent. With a budget (when
// positive) it fails with a *BudgetError when what was spent plus est
// would pass the budget; when only the bookings of the requests in flight
// would make it pass, it waits for them to settle, since they may cost
// less than booked. It returns ctx's cause if ctx ends first.
func (c *counters) reserve(ctx context.Context, est, budget float64) error {
	if c.ledger != nil {
		if err := c.ledger.Reserve(ctx, est, budget); err != nil {
			return err
		}
		c.mu.Lock()
		c.reserved += est
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for budget > 0 && c.cost+c.reserved+est > budget {
		if c.cost+est > budget || c.reserved == 0 {
			return &BudgetError{Budget: budget, Spent: c.cost, InFlight: c.reserved, Next: est}
		}
		if c.settled == nil {
			c.settled = make(chan struct{})
		}
		settled := c.settled
		c.mu.Unlock()
		select {
		case <-settled:
		case <-ctx.Done():
			c.mu.Lock()
			return context.Cause(ctx)
		}
		c.mu.Lock()
	}
	c.reserved += est
	return nil
}

// settle releases the booking est of a finished request and adds what it
// cost.
func (c *counters) settle(est, spent float64) {
	c.mu.Lock()
	c.reserved = max(0, c.reserved-est)
	c.cost += spent
	if c.settled != nil {
		close(c.settled) // wake the reservations waiting for this one
		c.settled = nil
	}
	c.mu.Unlock()
	if c.ledger != nil {
		c.ledger.Settle(est, spent)
	}
}

func (c *counters) latency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	if len(c.samples) < maxLatencySamples {
		c.samples = append(c.samples, d)
		return
	}
	// Reservoir sampling keeps a uniform sample of every latency seen.
	if j := randN(c.seen); j < maxLatencySamples {
		c.samples[j] = d
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Read: c.read.Load(), Rows: c.rows.Load(), OK: c.ok.Load(), Failed: c.failed.Load(), Skipped: c.skipped.Load(), LastRow: c.lastRow.Load(),
		Requests: c.requests.Load(), RateLimited: c.rateLimited.Load(), Retries: c.retries.Load(), InFlight: c.inFlight.Load(),
		PromptTokens: c.prompt.Load(), CompletionTokens: c.completion.Load(), TotalTokens: c.totalTokens.Load(),
	}
	c.mu.Lock()
	s.CostUSD = c.cost
	sorted := slices.Clone(c.samples)
	c.mu.Unlock()
	slices.Sort(sorted)
	s.LatencyP50 = percentile(sorted, 0.50)
	s.LatencyP95 = percentile(sorted, 0.95)
	s.LatencyP99 = percentile(sorted, 0.99)
	return s
}

// percentile returns the nearest-rank percentile q of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
