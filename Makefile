# Hookline: `make run` starts the whole product with embedded defaults,
# `make test` runs every test (starting ClickHouse for the integration tests).

GO        ?= go
BIN       ?= bin/hookline
DATA_DIR  ?= ./data
HTTP_ADDR ?= 127.0.0.1:8080
RECEIVER_ADDR ?= 127.0.0.1:9000
SECRET    ?=
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: build run receiver test test-short clickhouse-start clickhouse-stop vet fmt clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hookline

## run: build and start hookline serve with the embedded broker and store
run: build
	$(BIN) serve --data-dir $(DATA_DIR) --http-addr $(HTTP_ADDR) --allow-private-targets

## receiver: a demo receiver that verifies signatures (SECRET=...) and prints deliveries
receiver: build
	$(BIN) receive --addr $(RECEIVER_ADDR) $(if $(SECRET),--secret '$(SECRET)',)

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
