# pplx-batch: run `make demo` for a real job against the built-in simulator,
# `make test` for the whole test suite.

GO      ?= go
BIN     := bin/pplx-batch
DEMO    := demo-out
PKGS    := ./...

.PHONY: all build test demo bench bench-pipeline bench-sinks lint fmt fuzz clean

all: build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/pplx-batch

test:
	$(GO) test -race $(PKGS)

# demo starts the simulator on a free loopback port, runs a search job over
# testdata/companies.csv into JSONL and a streamed Agent API job over
# testdata/questions.jsonl into Parquet, and checks one ok row per input row.
demo: build
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@set -e; \
	$(BIN) sim --rps 50 --burst 50 --latency 40ms --jitter 40ms --key demo-key >$(DEMO)/sim.url 2>$(DEMO)/sim.log & sim=$$!; \
	trap 'kill $$sim 2>/dev/null || true' EXIT; \
	for i in $$(seq 100); do [ -s $(DEMO)/sim.url ] && break; sleep 0.1; done; \
	url=$$(head -n1 $(DEMO)/sim.url); echo "simulator at $$url"; \
	echo '$$ pplx-batch run --config configs/demo-search.yaml'; \
	PERPLEXITY_API_KEY=demo-key $(BIN) run --config configs/demo-search.yaml --base-url $$url --log-level warn; \
	echo '$$ pplx-batch run --config configs/demo-agent.yaml'; \
	PERPLEXITY_API_KEY=demo-key $(BIN) run --config configs/demo-agent.yaml --base-url $$url --log-level warn; \
	ok=$$(grep -c '"status":"ok"' $(DEMO)/companies.jsonl); \
	in=$$(($$(wc -l < testdata/companies.csv) - 1)); \
	echo "search: $$ok ok rows of $$in input rows in $(DEMO)/companies.jsonl"; \
	test "$$ok" -eq "$$in"; \
	echo "agent: answers in $(DEMO)/answers.parquet"; \
	echo "first search row:"; head -n1 $(DEMO)/companies.jsonl | cut -c1-400

# bench runs every Go benchmark; compare runs with benchstat.
bench:
	@mkdir -p bench
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./sink ./source ./pipeline ./pplx | tee bench/new.txt

# bench-limiter runs the real binary against `pplx-batch sim` in the
# rate-limit scenarios (every header style, with buckets of a second and of
# a quarter second, no headers, a limit halved and doubled, 1-second answers
# and the ramp to them, an 8-second outage, and 4 and 8 processes sharing
# one key through Redis, which needs redis-server), each in real time,
# about seven minutes in all, and prints a table of the allowed and
# achieved rate, the share of 429s, the retries and the time to follow a
# limit change, next to their bars; it fails when a bar is missed.
# SCENARIOS='burst 10 epoch,shared 4' runs a subset by name;
# SCENARIO_MATRIX=full adds bursts of 20 and processes that do not share;
# SCENARIO_DIR=dir keeps each run's files and logs.
.PHONY: bench-limiter
bench-limiter: build
	PPLX_BATCH_BIN=$(CURDIR)/$(BIN) $(GO) test -tags scenario -run '^TestScenarios$$' -count=1 -v -timeout 30m ./cmd/pplx-batch/

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: the files above need formatting" && false)
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

# fuzz runs each fuzz target for a while (FUZZTIME, default 30s).
FUZZTIME ?= 30s
fuzz:
	@$(GO) list -f '{{.ImportPath}} {{.Dir}}' ./... | while read pkg dir; do \
		for t in $$(cd $$dir && $(GO) test -list '^Fuzz' . 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin $(DEMO) bench
