#!/usr/bin/env bash
# make bench: the end-to-end load test (hookline bench: the closed- and
# open-loop scenarios of --scenarios all, each on a fresh hookline serve, one
# table), then the micro-benchmarks of the pipeline and signing packages into
# bench/micro-new.txt, compared with bench/micro.txt when that baseline
# exists. BENCH_ARGS passes flags to hookline bench, e.g.
# BENCH_ARGS='--scenarios 1-webhook --events 20000', BENCH_ARGS='--scenarios
# burst --events 50000', BENCH_ARGS='--scenarios paced-healthy,paced-slow-dead'
# or BENCH_ARGS='--scenarios open' (docs/BENCHMARKS.md lists the scenarios).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

mkdir -p bin bench
"$GO" build -o bin/hookline ./cmd/hookline
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
bin/hookline bench ${BENCH_ARGS:-}

# The projector's batch insert into ClickHouse needs a server: start one
# when we can, else that benchmark skips.
if dsn=$(bash scripts/clickhouse.sh start); then
  export HOOKLINE_TEST_CLICKHOUSE_DSN="$dsn"
else
  echo "make bench: no ClickHouse; BenchmarkInsertAttempts/clickhouse will skip" >&2
fi
"$GO" test -run XXX -bench . -benchtime 1s -count 5 ./pipeline/... ./delivery/ ./condition/ ./payload/ ./signing/... ./projections/... | tee bench/micro-new.txt
if [ -f bench/micro.txt ]; then
  "$GO" run golang.org/x/perf/cmd/benchstat@latest bench/micro.txt bench/micro-new.txt
else
  echo "make bench: no bench/micro.txt baseline; keep bench/micro-new.txt as one to compare later runs with"
fi
