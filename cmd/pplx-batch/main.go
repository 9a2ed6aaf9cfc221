// Command pplx-batch runs large batches of Perplexity API calls from CSV or
// JSONL datasets.
//
// Usage:
//
//	pplx-batch run   [flags]   run a job (see pplx-batch run --help)
//	pplx-batch sim   [flags]   serve the built-in Perplexity API simulator
//	pplx-batch plan  [flags]   check a job, render its first requests, estimate cost and time
//	pplx-batch version         print the version
//
// Each input row becomes one request (a Search API query, an Agent API
// answer, or a chat completion of an OpenAI-compatible endpoint) rendered
// from a Go text/template over the row's columns. The requests run as fast
// as the account's rate limit allows, and one output row per input row
// streams to JSONL, Parquet or CSV; with --schema, answers are validated
// and become typed columns.
//
// Exit codes: 0 every row ok; 1 the run finished but some rows failed (they
// are in the errors file); 2 usage or configuration error, nothing called;
// 3 aborted (authentication, permission or quota error, or budget reached);
// 130 interrupted by SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes of the command; cron jobs and CI read them.
const (
	exitOK          = 0
	exitRowsFailed  = 1
	exitUsage       = 2
	exitAborted     = 3
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := Main(context.Background(), os.Args[1:], env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, signals: sigs,
	})
	os.Exit(code)
}

// env is what the command reads from and writes to besides files, so tests
// can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// signals delivers SIGINT and SIGTERM; nil means none arrive.
	signals <-chan os.Signal
}

const usage = `pplx-batch runs large batches of Perplexity API calls from CSV or JSONL files.

Usage:
  pplx-batch run   [flags]   run a job (pplx-batch run --help lists the flags)
  pplx-batch sim   [flags]   serve the built-in Perplexity API simulator
  pplx-batch plan  [flags]   check a job, render its first requests, estimate cost and time; no API call
  pplx-batch version         print the version

Exit codes: 0 every row ok; 1 some rows failed; 2 usage or configuration
error; 3 aborted (authentication, permission, quota or budget); 130 interrupted.
`

// Main runs the command with args (without the program name) and returns
// the exit code.
func Main(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], e)
	case "sim":
		return simCommand(ctx, args[1:], e)
	case "plan":
		return planCommand(ctx, args[1:], e)
	case "version", "--version", "-version":
		fmt.Fprintln(e.stdout, "pplx-batch", versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "pplx-batch: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
}
