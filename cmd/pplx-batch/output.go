package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/pplx-batch/pplx-batch/pipeline"
	"github.com/pplx-batch/pplx-batch/sink"
)

// finalCounts describes the rows of the output as written at the end of a
// run, counting the rows an earlier run answered too.
type finalCounts struct {
	ok, failed int64
}

// outputs receives the pipeline's rows and, at the end, leaves the output
// file and the errors file in place.
//
// For a file output the rows go to a journal beside it (out.parquet →
// out.parquet.journal); finish writes the output and the errors file from
// the journal, atomically, whatever stopped the run. A run that ends with
// every row ok removes the journal; otherwise it stays, and the same
// command resumes from it. For stdout ("-") rows stream straight out and
// nothing is resumable.
//
// When the journal is empty at the start (a fresh run) the output is also
// written as the rows come (live), to its temporary file: the journal then
// holds exactly the rows of the output, in the same order, so finish only
// has to commit it instead of reading the journal back. A resumed run, or
// a live write that fails, falls back to writing from the journal.
type outputs struct {
	log        zerolog.Logger
	format     string           // jsonl, parquet or csv
	data       *sink.DataSchema // the layout of structured answers, or nil
	search     bool             // the rows are Search API results
	path       string
	errPath    string
	journal    *pipeline.Journal
	lock       *fileLock
	stdout     *sink.JSONL[sink.Row]
	errs       *lazyErrors
	counts     finalCounts
	streamOnly bool
	// live, when not nil, is the output written as rows come, with its
	// errors file and counts.
	live      rowSink
	liveErrs  *lazyErrors
	liveCount finalCounts
	// abandoned are the runs (background, or streamed and lost) still
	// pending in the journal that --restart discarded: the caller cancels
	// them.
	abandoned []pipeline.PendingRun
}

// pendingRuns returns the runs pending in the journal at path,
// if it exists and can be read.
func pendingRuns(path string) []pipeline.PendingRun {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	j, err := pipeline.OpenJournal(path)
	if err != nil {
		return nil // a damaged journal is discarded all the same
	}
	defer j.Close()
	return j.PendingRuns()
}

func openOutputs(f *runFlags, j *job, e env, log zerolog.Logger) (*outputs, error) {
	o := &outputs{log: log, format: j.outFormat, path: f.output, errPath: j.errorsPath,
		search: j.pipe.Mode == pipeline.ModeSearch}
	if sch := j.pipe.Schema; sch != nil && f.output != "-" {
		ds, err := sink.NewDataSchema(sch.JSON)
		if err != nil {
			return nil, usagef("--schema: %v", err)
		}
		o.data = ds
	}
	if f.output == "-" {
		o.streamOnly = true
		o.stdout = sink.NewJSONL[sink.Row](e.stdout)
		o.errs = &lazyErrors{path: j.errorsPath}
		return o, nil
	}
	if fi, err := os.Stat(filepath.Dir(f.output)); err != nil || !fi.IsDir() {
		return nil, usagef("--output %s: folder %s does not exist", f.output, filepath.Dir(f.output))
	}
	lock, err := lockFile(f.output + ".lock")
	if err != nil {
		return nil, usageError{err}
	}
	o.lock = lock
	// Holding the lock, no other run writes here: temporary files are
	// leftovers of a run that was killed while writing its output.
	for _, p := range append(tempFiles(f.output), tempFiles(j.errorsPath)...) {
		_ = os.Remove(p)
	}
	jpath := f.output + ".journal"
	if f.restart {
		o.abandoned = pendingRuns(jpath)
		if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.release()
			return nil, usageError{fmt.Errorf("--restart: %w", err)}
		}
	}
	jr, err := pipeline.OpenJournal(jpath)
	if err != nil {
		o.release()
		return nil, usageError{err}
	}
	o.journal = jr
	if n, pending := jr.Len(), len(jr.PendingRuns()); n > 0 || pending > 0 {
		ok, failed := jr.Counts(0)
		log.Info().Str("journal", jpath).Int64("ok", ok).Int64("failed", failed).Int("pending_runs", pending).
			Msg("resuming: rows already answered are skipped, failed rows are tried again (--restart to start over)")
	} else if live, err := o.createOutput(); err == nil {
		o.live, o.liveErrs = live, &lazyErrors{path: o.errPath}
	} else {
		log.Debug().Err(err).Msg("output not written live; it is written from the journal at the end")
	}
	return o, nil
}

// Write implements pipeline.Writer.
func (o *outputs) Write(r pipeline.Result) error {
	if o.streamOnly {
		if err := o.stdout.Write(r.Row); err != nil {
			return err
		}
		if r.Status != sink.StatusOK {
			o.counts.failed++
			return o.errs.Write(pipeline.NewErrorRow(r.Row))
		}
		o.counts.ok++
		return nil
	}
	if err := o.journal.Write(r); err != nil {
		return err
	}
	if o.live != nil {
		if err := o.writeLive(r); err != nil {
			o.log.Debug().Err(err).Msg("output not written live any more; it is written from the journal at the end")
			o.dropLive()
		}
	}
	return nil
}

// writeLive writes r to the live output and errors file.
func (o *outputs) writeLive(r pipeline.Result) error {
	if err := o.live.Write(r.Row); err != nil {
		return err
	}
	if r.Status == sink.StatusOK {
		o.liveCount.ok++
		return nil
	}
	o.liveCount.failed++
	return o.liveErrs.Write(pipeline.NewErrorRow(r.Row))
}

// dropLive discards the live output.
func (o *outputs) dropLive() {
	if o.live != nil {
		_ = o.live.Abort()
		_ = o.liveErrs.Abort()
		o.live, o.liveErrs = nil, nil
	}
}

// createOutput creates the writer of the output file.
func (o *outputs) createOutput() (rowSink, error) {
	switch o.format {
	case "parquet":
		return sink.CreateParquet(o.path, sink.ParquetOptions{Data: o.data})
	case "csv":
		return sink.CreateCSV(o.path, sink.CSVOptions{Data: o.data, Search: o.search})
	}
	return sink.CreateJSONL[sink.Row](o.path)
}

// Flush hands what is written to the operating system.
func (o *outputs) Flush() error {
	if o.streamOnly {
		if err := o.stdout.Flush(); err != nil {
			return err
		}
		return o.errs.Flush()
	}
	return o.journal.Flush()
}

// resume returns what the pipeline should skip, or nil.
func (o *outputs) resume() pipeline.Resume {
	if o.journal == nil {
		return nil
	}
	return o.journal
}

// runs returns where the pipeline records background runs, or nil.
func (o *outputs) runs() pipeline.Runs {
	if o.journal == nil {
		return nil
	}
	return o.journal
}

func (o *outputs) resumable() bool { return o.journal != nil }

// pendingCount counts the agent runs recorded and not collected: they go
// on (paid for) on the server until the next run of the job collects them.
func (o *outputs) pendingCount() int {
	if o.journal == nil {
		return 0
	}
	return len(o.journal.PendingRuns())
}

func (o *outputs) errorsPath() string { return o.errPath }

// finish writes the output and the errors file. complete says the run
// finished every row of the input, which had read rows; rows of an earlier
// run beyond the end of the input are then left out.
func (o *outputs) finish(complete bool, read int64) (finalCounts, error) {
	if o.streamOnly {
		if err := o.stdout.Close(); err != nil {
			_ = o.errs.Abort()
			return o.counts, fmt.Errorf("write output: %w", err)
		}
		if err := o.errs.Close(); err != nil {
			return o.counts, fmt.Errorf("write errors file: %w", err)
		}
		return o.counts, nil
	}
	if err := o.journal.Close(); err != nil {
		o.dropLive()
		return o.counts, err
	}
	maxRow := int64(0)
	if complete {
		maxRow = read
	}
	start := time.Now()
	var counts finalCounts
	var err error
	how := "output written from the journal"
	if o.live != nil {
		how = "output written as rows came, committed"
		// Every row of this run is in the live output, and no other: no
		// row of an earlier run, and a fresh run's rows are at most read.
		counts, err = o.commit(o.live, o.liveErrs, o.liveCount)
		o.live = nil
	} else {
		counts, err = o.writeFromJournal(maxRow)
	}
	if err != nil {
		return counts, err
	}
	o.counts = counts
	o.log.Debug().Str("output", o.path).Dur("took", time.Since(start)).Msg(how)
	if complete && counts.failed == 0 {
		if err := os.Remove(o.journal.Path()); err != nil {
			o.log.Warn().Err(err).Msg("remove journal")
		}
	}
	return counts, nil
}

// tempFiles lists the temporary files sink leaves for name when a process
// dies while writing it.
func tempFiles(name string) []string {
	if name == "" {
		return nil
	}
	files, _ := sink.TempFiles(name)
	return files
}

// rowSink is what writeFromJournal needs of an output file.
type rowSink interface {
	Write(sink.Row) error
	Close() error
	Abort() error
}

func (o *outputs) writeFromJournal(maxRow int64) (finalCounts, error) {
	var c finalCounts
	out, err := o.createOutput()
	if err != nil {
		return c, err
	}
	errs := &lazyErrors{path: o.errPath}
	err = o.journal.Replay(maxRow, func(r pipeline.Result) error {
		if err := out.Write(r.Row); err != nil {
			return err
		}
		if r.Status == sink.StatusOK {
			c.ok++
			return nil
		}
		c.failed++
		return errs.Write(pipeline.NewErrorRow(r.Row))
	})
	if err != nil {
		_ = out.Abort()
		_ = errs.Abort()
		return c, fmt.Errorf("write output %s: %w", o.path, err)
	}
	return o.commit(out, errs, c)
}

// commit closes the output and the errors file, putting them in place.
func (o *outputs) commit(out rowSink, errs *lazyErrors, c finalCounts) (finalCounts, error) {
	if err := out.Close(); err != nil {
		_ = out.Abort()
		_ = errs.Abort()
		return c, fmt.Errorf("write output %s: %w", o.path, err)
	}
	if err := errs.Close(); err != nil {
		return c, fmt.Errorf("write errors file: %w", err)
	}
	if c.failed == 0 && o.errPath != "" {
		// No failed row: an errors file left by an earlier run would only
		// mislead.
		_ = os.Remove(o.errPath)
	}
	return c, nil
}

// release discards a live output not committed and unlocks the output.
func (o *outputs) release() {
	o.dropLive()
	if o.lock != nil {
		o.lock.unlock()
		o.lock = nil
	}
}

// lazyErrors creates the errors file on the first failed row, so a run
// without failures leaves none.
type lazyErrors struct {
	path string
	w    *sink.JSONL[pipeline.ErrorRow]
}

func (l *lazyErrors) Write(r pipeline.ErrorRow) error {
	if l.path == "" {
		return nil
	}
	if l.w == nil {
		w, err := sink.CreateJSONL[pipeline.ErrorRow](l.path)
		if err != nil {
			return err
		}
		l.w = w
	}
	return l.w.Write(r)
}

func (l *lazyErrors) Flush() error {
	if l.w == nil {
		return nil
	}
	return l.w.Flush()
}

func (l *lazyErrors) Close() error {
	if l.w == nil {
		return nil
	}
	return l.w.Close()
}

func (l *lazyErrors) Abort() error {
	if l.w == nil {
		return nil
	}
	return l.w.Abort()
}
