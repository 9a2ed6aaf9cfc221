package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/pplx-batch/pplx-batch/sim"
)

const simUsage = `Usage: pplx-batch sim [flags]

Serves the built-in Perplexity API simulator with deterministic answers,
a server-side token bucket per key and bucket, rate-limit headers and 429s:

  POST /search
  POST /chat/completions, /v1/sonar     plain and streamed (403 with --retire-chat)
  POST /v1/agent, /v1/responses         the Agent API: plain, streamed (stream:true)
                                        or background (background:true); one
                                        rate-limit bucket per key for all models
  GET  /v1/agent/{id}                   poll a background run (takes no token)
  POST /v1/agent/{id}/cancel            cancel a background run
  GET  /_sim/stats                      counters, billed cost per key, timeline

It prints its base URL on the first line of standard output and serves
until interrupted. The real Agent API sends epoch-style headers:

  pplx-batch sim --addr 127.0.0.1:8080 --rps 50 --burst 50 --key demo-key --headers epoch

Flags:
`

func simCommand(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, simUsage)
		printDefaults(e.stderr, fs)
	}
	var (
		addr     = fs.String("addr", "127.0.0.1:0", "listen `address` (port 0 picks a free port)")
		rps      = fs.Float64("rps", 50, "server rate limit per key and bucket, requests per second (0: unlimited)")
		burst    = fs.Int("burst", 0, "server bucket capacity (0: the rate, at least 1)")
		latency  = fs.Duration("latency", 50*time.Millisecond, "base latency of each answer")
		jitter   = fs.Duration("jitter", 0, "extra random latency, uniform in [0, jitter)")
		key      = fs.String("key", "", "the API key accepted (empty: any non-empty key)")
		headers  = fs.String("headers", string(sim.HeadersSeconds), "rate-limit header `style`: none, none-at-all, seconds, epoch, duration, openai, ietf, rfc3339")
		inflight = fs.Int("max-in-flight", 0, "concurrent requests per key before 429 (0: no limit)")
		seed     = fs.Int64("seed", 1, "seed of every random choice (latency jitter, faults, ids)")
		p500     = fs.Float64("fault-500", 0, "share of requests answered 500")
		p503     = fs.Float64("fault-503", 0, "share of requests answered 503")
		pReset   = fs.Float64("fault-reset", 0, "share of requests whose connection is reset")
		pCut     = fs.Float64("fault-cut", 0, "share of answers cut off before their end (a streamed agent run cut after response.created goes on, is billed and can be polled)")
		pGarbage = fs.Float64("fault-garbage", 0, "share of 200 answers whose body is not JSON")
		schedule = fs.String("schedule", "", "limit changes, e.g. '30s=25,60s=100' (at=rps[/burst])")
		retire   = fs.Bool("retire-chat", false, "answer /chat/completions and /v1/sonar with the 403 of the retired Sonar chat API")
		pFailed  = fs.Float64("agent-failed", 0, "share of agent runs answered 200 with status failed")
		pIncompl = fs.Float64("agent-incomplete", 0, "share of agent runs answered 200 with status incomplete (half the answer)")
		pError   = fs.Float64("agent-error", 0, "share of streamed agent runs ended by a bare error event (failed when not streamed)")
		pInvalid = fs.Float64("agent-invalid", 0, "share of agent answers to a json_schema response_format that do not match the schema")
		bgDur    = fs.Duration("background-duration", sim.DefaultBackgroundDuration, "how long a background agent run takes from submit to its end")
		cancelD  = fs.Duration("cancel-delay", time.Second, "how long a cancelled background run still shows in progress")
		tailOpen = fs.Duration("tail-open", 0, "keep an agent stream open this long after its terminal event")
		outage   = fs.String("outage", "", "outages, e.g. '4s+8s,60s+2m' (at+for, from the start): every request answered 503 at once")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	style := sim.HeaderStyle(*headers)
	if !style.Valid() {
		fmt.Fprintf(e.stderr, "pplx-batch sim: unknown --headers %q\n", *headers)
		return exitUsage
	}
	changes, err := parseSchedule(*schedule)
	if err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch sim: --schedule: %v\n", err)
		return exitUsage
	}
	outs, err := sim.ParseOutages(*outage)
	if err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch sim: --outage: %v\n", err)
		return exitUsage
	}
	srv := sim.New(sim.Config{
		Key: *key, RPS: *rps, Burst: *burst, Latency: *latency, Jitter: *jitter,
		Headers: style, Schedule: changes, MaxInFlight: *inflight, Seed: *seed,
		Faults: sim.Faults{P500: *p500, P503: *p503, PReset: *pReset, PCut: *pCut, PGarbage: *pGarbage},
		Agent: sim.AgentConfig{PFailed: *pFailed, PIncomplete: *pIncompl, PError: *pError, PInvalid: *pInvalid,
			BackgroundDuration: *bgDur, CancelDelay: *cancelD, TailOpen: *tailOpen},
		RetireChat: *retire, Outages: outs,
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch sim: %v\n", err)
		return exitUsage
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stdout, "http://%s\n", ln.Addr())
	if f, ok := e.stdout.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		fmt.Fprintf(e.stderr, "pplx-batch sim: %v\n", err)
		return exitRowsFailed
	case <-ctx.Done():
	case <-e.signals:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	<-done
	fmt.Fprintf(e.stderr, "pplx-batch sim: served %d requests\n", srv.Stats().Requests)
	return exitOK
}

// parseSchedule parses "30s=25,60s=100/200": at 30 s the rate becomes 25/s,
// at 60 s 100/s with a burst of 200.
func parseSchedule(s string) ([]sim.Change, error) {
	var out []sim.Change
	for _, part := range splitList(s) {
		var at, spec string
		for i := 0; i < len(part); i++ {
			if part[i] == '=' {
				at, spec = part[:i], part[i+1:]
				break
			}
		}
		if at == "" || spec == "" {
			return nil, fmt.Errorf("%q: want at=rps or at=rps/burst", part)
		}
		d, err := time.ParseDuration(at)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		c := sim.Change{At: d}
		if _, err := fmt.Sscanf(spec, "%g/%d", &c.RPS, &c.Burst); err != nil {
			c.Burst = 0
			if _, err := fmt.Sscanf(spec, "%g", &c.RPS); err != nil {
				return nil, fmt.Errorf("%q: %v", part, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
