# Hookline: `make run` starts the whole product with embedded defaults,
# `make test` runs every test (starting ClickHouse for the integration tests).

GO        ?= go
BIN       ?= bin/hookline
# Flags are passed only when these are set, so that HOOKLINE_* variables of
# the environment (HOOKLINE_HTTP_ADDR=… make run) reach the binary; unset,
# the binary's defaults apply (data in ./data, the API on 127.0.0.1:8080,
# the receiver on 127.0.0.1:8090).
DATA_DIR  ?=
HTTP_ADDR ?=
RECEIVER_ADDR ?=
SECRET    ?=
# The walkthrough's receiver runs on this machine: allow loopback targets
# unless the environment says otherwise.
export HOOKLINE_ALLOW_PRIVATE_TARGETS ?= true
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: build run receiver test test-short screenshots clickhouse-start clickhouse-stop vet fmt clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hookline

## run: build and start hookline serve with the embedded broker and store
run: build
	$(BIN) serve $(if $(DATA_DIR),--data-dir '$(DATA_DIR)') $(if $(HTTP_ADDR),--http-addr '$(HTTP_ADDR)')

## receiver: a demo receiver that verifies signatures (SECRET=...) and prints deliveries
receiver: build
	$(BIN) receive $(if $(RECEIVER_ADDR),--addr '$(RECEIVER_ADDR)') $(if $(SECRET),--secret '$(SECRET)',)

## test: every test, with the race detector; installs and starts ClickHouse when it can
test:
	@bash scripts/test.sh

## test-short: unit tests only, no ClickHouse
test-short:
	$(GO) test -short ./...

## bench: end-to-end load test (hookline bench), then micro-benchmarks into bench/micro-new.txt,
## compared with bench/micro.txt by benchstat when it exists; BENCH_ARGS='--scenarios 1-webhook'
.PHONY: bench
bench:
	@GO=$(GO) bash scripts/bench.sh

## screenshots: the console's browser tests, saving PNGs of its pages into docs/ (needs chromium)
screenshots:
	HOOKLINE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -run Console -count=1 ./cmd/hookline/

clickhouse-start:
	@bash scripts/clickhouse.sh start

clickhouse-stop:
	@bash scripts/clickhouse.sh stop

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
