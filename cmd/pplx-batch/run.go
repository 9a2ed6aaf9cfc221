package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/internal/redisconn"

	"github.com/pplx-batch/pplx-batch/limiter"
	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/pplx"
	"github.com/pplx-batch/pplx-batch/source"
)

const defaultBaseURL = "https://api.perplexity.ai"

// usageError is a configuration problem found before anything was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func runCommand(ctx context.Context, args []string, e env) int {
	var f runFlags
	fs := newRunFlagSet(&f, e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "pplx-batch run: unexpected arguments %q (flags come as --name value)\n", fs.Args())
		return exitUsage
	}
	if f.config != "" {
		if err := applyConfig(fs, f.config, e.getenv); err != nil {
			fmt.Fprintf(e.stderr, "pplx-batch run: %v\n", err)
			return exitUsage
		}
	}
	log, sw, stderr, err := newLogger(e.stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch run: %v\n", err)
		return exitUsage
	}
	e.stderr = stderr // shared with the logger, whose goroutines may still write
	code, err := run(ctx, &f, e, log, sw)
	if err != nil {
		fmt.Fprintf(e.stderr, "pplx-batch run: %v\n", err)
	}
	return code
}

// job is everything run needs once the flags are checked.
type job struct {
	pipe        pipeline.Job
	apiKey      string
	baseURL     string
	inFormat    string
	outFormat   string
	errorsPath  string
	limiterConf limiter.Config
	sharedLimit string // a Redis URL, or ""
	jobID       string
}

// defaultJobID names a job by a hash of what it asks of each row: the
// same for every shard and output of one job, different for another job.
func defaultJobID(f *runFlags) string {
	h := sha256.New()
	for _, v := range []string{f.mode, f.input, f.query, f.prompt, f.system, f.model, f.preset, f.models, f.schema,
		f.searchDomainFilter, f.searchRecencyFilter, f.searchAfter, f.searchBefore, f.searchContextSize, f.id} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return "job-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// handleSignals turns the first SIGINT or SIGTERM into a graceful stop
// (no new requests; those in flight finish) and a second one, or the end of
// the grace period, into a cancellation of the requests in flight. It
// returns when ctx ends.
func handleSignals(ctx context.Context, e env, grace time.Duration, stop chan<- struct{}, cancel func(), log zerolog.Logger) {
	if e.signals == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case sig := <-e.signals:
		log.Warn().Str("signal", sig.String()).Dur("grace", grace).
			Msg("stopping: no new requests; waiting for the requests in flight (interrupt again to cancel them)")
		close(stop)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-e.signals:
		log.Warn().Msg("cancelling the requests in flight")
		cancel()
	case <-t.C:
		log.Warn().Msg("grace period over: cancelling the requests in flight")
		cancel()
	}
}

// prepare checks the flags and builds the job. Every problem it finds is a
// usage error: nothing has been called yet. needKey says whether the API
// key must be there (plan makes no call and needs none).
func prepare(f *runFlags, e env, needKey bool) (*job, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	j := &job{}
	if f.input == "" {
		bad("--input is required")
	}
	if f.output == "" {
		bad("--output is required")
	}
	what, text := modeFlags(f, &j.pipe, bad)
	var tmpl *template.Template
	if text != "" {
		t, err := template.New(what).Option("missingkey=error").Parse(text)
		if err != nil {
			bad("%s: %v", what, err)
		}
		tmpl = t
	}
	if f.concurrency < 0 {
		bad("--concurrency must be at least 0")
	}
	if f.rps < 0 || f.rpm < 0 {
		bad("--rps and --rpm must be at least 0")
	}
	if f.maxRetries < 0 {
		bad("--max-retries must be at least 0")
	}
	if f.timeout <= 0 {
		bad("--timeout must be positive")
	}
	if f.grace < 0 || f.maxRetryAfter < 0 {
		bad("--grace and --max-retry-after must not be negative")
	}
	if f.maxCost < 0 {
		bad("--max-cost must not be negative")
	}
	shard, err := parseShard(f.shard)
	if err != nil {
		errs = append(errs, err)
	}
	maxFail, maxRate, err := parseMaxFailures(f.maxFailures)
	if err != nil {
		errs = append(errs, err)
	}
	if f.restart && f.output == "-" {
		bad("--restart needs an output file: --output - is never resumed")
	}
	j.inFormat = strings.ToLower(f.inputFormat)
	if j.inFormat != "" && j.inFormat != "csv" && j.inFormat != "jsonl" {
		bad("--input-format must be csv or jsonl, not %q", f.inputFormat)
	}
	if f.input == "-" && j.inFormat == "" {
		bad("--input - (stdin) needs --input-format csv or jsonl")
	}
	if j.outFormat, err = outputFormat(f.output, f.outputFormat); err != nil && f.output != "" {
		errs = append(errs, err)
	}
	if f.maxResults < 0 || f.maxResults > 20 {
		bad("--max-results must be between 1 and 20")
	}
	if f.temperature != -1 && (f.temperature < 0 || f.temperature > 2) {
		bad("--temperature must be between 0 and 2")
	}

	j.baseURL = f.baseURL
	if j.baseURL == "" {
		j.baseURL = e.getenv("PERPLEXITY_BASE_URL")
	}
	if j.baseURL == "" {
		j.baseURL = defaultBaseURL
	}
	if !strings.HasPrefix(j.baseURL, "http://") && !strings.HasPrefix(j.baseURL, "https://") {
		bad("--base-url must start with http:// or https://, not %q", j.baseURL)
	}
	if needKey {
		key, err := apiKey(f.apiKeyFile, e.getenv)
		if err != nil {
			errs = append(errs, err)
		}
		j.apiKey = key
	}

	rps := f.rps
	if f.rpm > 0 && (rps == 0 || f.rpm/60 < rps) {
		rps = f.rpm / 60
	}
	if f.maxOutage <= 0 {
		bad("--max-outage must be positive")
	}
	j.limiterConf = limiter.Config{RPS: rps, MaxInFlight: f.concurrency, MaxOutage: f.maxOutage}

	j.sharedLimit = f.sharedLimit
	if j.sharedLimit == "" {
		j.sharedLimit = e.getenv("PPLX_BATCH_SHARED_LIMIT")
	}
	if j.sharedLimit != "" {
		if _, err := redisconn.Parse(j.sharedLimit); err != nil {
			errs = append(errs, fmt.Errorf("--shared-limit: %w", err))
		}
	}
	j.jobID = f.jobID
	if j.jobID == "" {
		j.jobID = defaultJobID(f)
	}

	j.errorsPath = f.errorsPath
	if j.errorsPath == "" && f.output != "-" && f.output != "" {
		j.errorsPath = defaultErrorsPath(f.output)
	}

	j.pipe.Mode = pipeline.Mode(f.mode)
	j.pipe.Template = tmpl
	j.pipe.System = f.system
	j.pipe.IDColumn = f.id
	j.pipe.Concurrency = f.concurrency
	j.pipe.MaxRetries = f.maxRetries
	j.pipe.Timeout = f.timeout
	j.pipe.MaxCostUSD = f.maxCost
	j.pipe.AbortAfterFailures = maxFail
	j.pipe.MaxFailureRate = maxRate
	j.pipe.Shard = shard
	if len(errs) > 0 {
		return nil, usageError{errors.Join(errs...)}
	}
	return j, nil
}

// parseShard parses --shard I/N.
func parseShard(s string) (pipeline.Shard, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return pipeline.Shard{}, nil
	}
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(strings.TrimSpace(is))
	n, nerr := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || ierr != nil || nerr != nil || n < 1 || i < 0 || i >= n {
		return pipeline.Shard{}, fmt.Errorf("--shard %q: want I/N with 0 <= I < N, such as 0/4", s)
	}
	return pipeline.Shard{Index: i, Count: n}, nil
}

// parseMaxFailures parses --max-failures: "" (no limit), a count ("50":
// the job stops at the 51st failed row) or a share of the finished rows
// ("2%"). It returns pipeline.Job's AbortAfterFailures and MaxFailureRate.
func parseMaxFailures(s string) (count int64, rate float64, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, 0, fmt.Errorf("--max-failures %q: want a count like 50 or a share like 2%%", s)
		}
		return 0, v / 100, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, 0, fmt.Errorf("--max-failures %q: want a count like 50 or a share like 2%%", s)
	}
	return v + 1, 0, nil // more than v failures stop the job
}

// apiKey reads the API key from keyFile, or else from the environment.
func apiKey(keyFile string, getenv func(string) string) (string, error) {
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return "", fmt.Errorf("--api-key-file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("--api-key-file %s is empty", keyFile)
		}
		return k, nil
	}
	for _, name := range []string{"PERPLEXITY_API_KEY", "PPLX_API_KEY"} {
		if k := strings.TrimSpace(getenv(name)); k != "" {
			return k, nil
		}
	}
	return "", errors.New("no API key: set PERPLEXITY_API_KEY (or PPLX_API_KEY), or give --api-key-file")
}

func outputFormat(path, format string) (string, error) {
	if format != "" {
		switch strings.ToLower(format) {
		case "jsonl", "ndjson":
			return "jsonl", nil
		case "parquet", "csv":
			if path == "-" {
				return "", fmt.Errorf("--output-format %s needs an output file: --output - writes JSONL", strings.ToLower(format))
			}
			return strings.ToLower(format), nil
		}
		return "", fmt.Errorf("--output-format must be jsonl, parquet or csv, not %q", format)
	}
	if path == "-" {
		return "jsonl", nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".parquet":
		return "parquet", nil
	case ".csv":
		return "csv", nil
	}
	return "", fmt.Errorf("--output %s: cannot tell the format from the extension (.jsonl, .ndjson, .parquet or .csv); give --output-format", path)
}

// defaultErrorsPath puts the errors file beside the output:
// out.parquet -> out.errors.jsonl.
func defaultErrorsPath(output string) string {
	ext := filepath.Ext(output)
	return strings.TrimSuffix(output, ext) + ".errors.jsonl"
}

func run(ctx context.Context, f *runFlags, e env, log zerolog.Logger, tty *statusWriter) (int, error) {
	j, err := prepare(f, e, true)
	if err != nil {
		return exitUsage, err
	}
	src, err := openSource(f.input, j.inFormat, e)
	if err != nil {
		return exitUsage, err
	}
	defer src.Close()
	if err := checkTemplate(j.pipe, src.Columns()); err != nil {
		return exitUsage, err
	}
	var ledger *pipeline.SharedLedger
	var sharedLim *limiter.Redis // nil: the limiter paces alone
	if j.sharedLimit != "" {
		redisconn.SetLogger(log)
		ledger, err = pipeline.NewSharedLedger(ctx, pipeline.SharedLedgerConfig{URL: j.sharedLimit, JobID: j.jobID, Log: log})
		if err != nil {
			return exitUsage, fmt.Errorf("--shared-limit: %w", err)
		}
		defer ledger.Close()
		if sharedLim, err = limiter.OpenRedis(ctx, limiter.RedisConfig{URL: j.sharedLimit, APIKey: j.apiKey, Log: log}); err != nil {
			return exitUsage, fmt.Errorf("--shared-limit: %w", err)
		}
		defer sharedLim.Close()
	}
	out, err := openOutputs(f, j, e, log)
	if err != nil {
		return exitUsage, err
	}
	defer out.release()

	// Keep a connection for every request the limiter may put in flight.
	conns := f.concurrency
	if conns == 0 {
		conns = pipeline.DefaultConcurrency
	}
	client := pplx.New(j.baseURL, j.apiKey, pplx.Options{MaxConns: conns})
	lc := j.limiterConf
	lc.Log = log
	stop := make(chan struct{})
	hard, cancel := context.WithCancel(ctx)
	defer cancel()
	go handleSignals(hard, e, f.grace, stop, cancel, log)
	p := &pipeline.Pipeline{
		Job:      j.pipe,
		Client:   client,
		Limiters: limiter.NewSet(lc, limiter.WithShared(sharedLim)),
		Backoff:  pplx.Backoff{MaxRetryAfter: f.maxRetryAfter},
		Resume:   out.resume(),
		Runs:     out.runs(),
		Ledger:   ledgerOrNil(ledger),
		Stop:     stop,
		Log:      log,
	}
	cancelAbandoned(hard, client, out.abandoned, log)
	log.Info().Str("input", f.input).Str("output", f.output).Str("mode", f.mode).
		Str("base_url", j.baseURL).Str("shard", j.pipe.Shard.String()).Msg("run started")
	prog := newProgress(p.Snapshot, tty, log, f.progressInterval)
	progCtx, stopProgress := context.WithCancel(hard)
	prog.countRows(progCtx, f.input, j.inFormat)
	progDone := make(chan struct{})
	go func() { defer close(progDone); prog.run(progCtx) }()
	stats, runErr := p.Run(hard, src, out)
	stopProgress()
	<-progDone
	prog.finish()
	// The shared stores log from goroutines of their own (Redis lost, Redis
	// back): stop them before the summary goes to the same stderr.
	if ledger != nil {
		if err := ledger.Close(); err != nil {
			log.Warn().Err(err).Msg("shared budget: close")
		}
	}
	if err := sharedLim.Close(); err != nil {
		log.Warn().Err(err).Msg("shared limit: close")
	}

	var fatal *pipeline.FatalError
	interrupted := errors.Is(runErr, pipeline.ErrStopped) || errors.Is(runErr, context.Canceled)
	aborted := errors.As(runErr, &fatal)
	complete := runErr == nil
	pending := out.pendingCount()
	// Write every finished row, whatever stopped the run.
	finishing := time.Now()
	final, err := out.finish(complete, stats.LastRow)
	stats.Wall += time.Since(finishing) // the summary's wall time counts writing the output
	if err != nil {
		return exitRowsFailed, err
	}

	code := exitOK
	switch {
	case aborted:
		code = exitAborted
	case interrupted:
		code = exitInterrupted
	case runErr != nil, final.failed > 0:
		code = exitRowsFailed
	}
	printSummary(e.stderr, stats, final, code, out.errorsPath())
	if f.summary != "" {
		if err := writeSummary(f.summary, stats, final, code); err != nil {
			log.Error().Err(err).Msg("write summary")
		}
	}
	if pending > 0 && !complete {
		runs := fmt.Sprintf("%d agent runs are", pending)
		if pending == 1 {
			runs = "1 agent run is"
		}
		fmt.Fprintf(e.stderr, "pplx-batch: %s still going on the server, paid for: the next run of the job collects them (--restart cancels them)\n", runs)
	}
	switch {
	case aborted:
		fmt.Fprintf(e.stderr, "pplx-batch: aborted: %v\n", fatal.Err)
		if pplx.RetiredChat(fatal.Err) {
			fmt.Fprintf(e.stderr, "pplx-batch: %v\n", errRetiredChat(f))
		}
		if out.resumable() {
			fmt.Fprintf(e.stderr, "pplx-batch: fix the cause and %s\n", resumeHint(f))
		}
		return code, nil
	case interrupted:
		if out.resumable() {
			fmt.Fprintf(e.stderr, "pplx-batch: interrupted; %s\n", resumeHint(f))
		} else {
			fmt.Fprintln(e.stderr, "pplx-batch: interrupted")
		}
		return code, nil
	case runErr != nil:
		return code, runErr
	}
	return code, nil
}

// ledgerOrNil keeps a nil *SharedLedger from becoming a non-nil Ledger.
func ledgerOrNil(l *pipeline.SharedLedger) pipeline.Ledger {
	if l == nil {
		return nil
	}
	return l
}

// cancelAbandoned cancels the background runs that --restart discarded
// from the journal, so that they stop costing; a run that already ended
// cannot be cancelled, which is fine.
func cancelAbandoned(ctx context.Context, c *pplx.Client, runs []pipeline.PendingRun, log zerolog.Logger) {
	for _, r := range runs {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, _, err := c.CancelAgent(cctx, r.RunID)
		cancel()
		ev := log.Info()
		if err != nil {
			ev = log.Warn().Err(err)
		}
		ev.Str("run", r.RunID).Int64("row", r.Row).Msg("--restart: cancelled the pending run")
	}
}

// resumeHint tells how to resume the run: the same command, unless it
// asked to start over.
func resumeHint(f *runFlags) string {
	if f.restart {
		return "run the same command with --restart=false to resume"
	}
	return "run the same command again to resume"
}

func openSource(path, format string, e env) (*source.Reader, error) {
	opt := source.Options{Format: format}
	if path == "-" {
		r, err := source.NewReader(e.stdin, "stdin", opt)
		if err != nil {
			return nil, usageError{err}
		}
		return r, nil
	}
	r, err := source.Open(path, opt)
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

// checkTemplate renders the job's template over a row of empty values with
// the input's columns, when they are known before reading (CSV), so a
// template naming a missing column fails before any request.
func checkTemplate(j pipeline.Job, columns []string) error {
	if columns == nil {
		return nil
	}
	row := make(map[string]any, len(columns))
	for _, c := range columns {
		row[c] = ""
	}
	if err := j.Template.Execute(io.Discard, row); err != nil {
		return usagef("template does not fit the input: %v (the columns are: %s)", err, strings.Join(columns, ", "))
	}
	if j.IDColumn != "" && !slices.Contains(columns, j.IDColumn) {
		return usagef("--id %q is not a column of the input (the columns are: %s)", j.IDColumn, strings.Join(columns, ", "))
	}
	return nil
}
