#!/usr/bin/env bash
# make test: gofmt, vet, staticcheck, the layering check, then every test
# with the race detector. ClickHouse
# integration tests need a server: scripts/clickhouse.sh starts one (and
# installs it when missing and we are root). Without one the tests skip with
# a loud message, except under CI=true, where they fail. The console's
# browser tests need Chromium: scripts/chromium.sh finds (or, as root,
# installs) it, with the same skip-or-fail rule.
set -euo pipefail
cd "$(dirname "$0")/.."

# A server that answers already (someone else's) is left running; one this
# run starts is stopped when it ends, however it ends.
already=""
if bash scripts/clickhouse.sh running 2>/dev/null; then already=1; fi
if dsn=$(bash scripts/clickhouse.sh start); then
  export HOOKLINE_TEST_CLICKHOUSE_DSN="$dsn"
  echo "make test: ClickHouse at $dsn"
  if [ -z "$already" ]; then
    trap 'bash scripts/clickhouse.sh stop' EXIT
  fi
else
  if [ "${CI:-}" = "true" ]; then
    echo "make test: ClickHouse could not be started and CI=true: failing." >&2
    exit 1
  fi
  cat >&2 <<'MSG'
################################################################################
#  ClickHouse is not available: its integration tests will be SKIPPED.         #
#  Run `make test` as root to install it, or install clickhouse-server.        #
################################################################################
MSG
fi

# The console's browser tests (cmd/hookline/console_test.go) drive a headless
# Chromium: scripts/chromium.sh finds it, or installs Debian's chromium when
# we are root. Without one they skip with a loud message, except under
# CI=true, where this fails.
if chromium=$(bash scripts/chromium.sh ensure); then
  export HOOKLINE_TEST_CHROMIUM="$chromium"
  echo "make test: Chromium at $chromium"
else
  if [ "${CI:-}" = "true" ]; then
    echo "make test: Chromium is not available and CI=true: failing." >&2
    exit 1
  fi
  cat >&2 <<'MSG'
################################################################################
#  Chromium is not available: the console's browser tests will be SKIPPED.     #
#  Run `make test` as root to install it, or: apt-get install -y chromium      #
#  (or set HOOKLINE_TEST_CHROMIUM to a Chrome/Chromium binary).                #
################################################################################
MSG
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "make test: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# staticcheck, pinned: the version is part of the check.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -race -shuffle=on -timeout 15m -count=1 ./...
# The sender's deterministic simulation runs on one goroutine: the race
# detector gains nothing there at five times the cost, so its 200 seeds
# (20 above) run without it.
go test -count=1 -timeout 10m -run '^TestSim$' ./pipeline/sender/ -args -sim.seeds=200
