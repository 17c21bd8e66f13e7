#!/usr/bin/env bash
# chromium.sh finds the Chromium that the console's browser tests drive
# (cmd/hookline/console_test.go, through chromedp), and installs Debian's
# `chromium` when it is missing and we are root.
#
#   scripts/chromium.sh path     # print the browser's path; exit 1 when there is none
#   scripts/chromium.sh ensure   # the same, installing chromium with apt-get first when
#                                # it is missing and this is root; exit 1 when still missing
#   scripts/chromium.sh version  # print the browser's version
#
# The tests read the path from HOOKLINE_TEST_CHROMIUM, e.g.
#   export HOOKLINE_TEST_CHROMIUM=$(scripts/chromium.sh ensure)
# A HOOKLINE_TEST_CHROMIUM already set to an executable is used as it is.
#
# Environment (optional):
#   HOOKLINE_CHROMIUM_DIR   where the apt-get log goes (default ${TMPDIR:-/tmp}/hookline-chromium)
set -euo pipefail

DIR=${HOOKLINE_CHROMIUM_DIR:-${TMPDIR:-/tmp}/hookline-chromium}

die() { echo "chromium.sh: $*" >&2; exit 1; }
log() { echo "chromium.sh: $*" >&2; }

# find_browser prints the first Chromium found: the one the environment
# names, then Debian's and other usual names on PATH and in /usr/bin.
find_browser() {
	local b
	for b in "${HOOKLINE_TEST_CHROMIUM:-}" \
		"$(command -v chromium 2>/dev/null || true)" /usr/bin/chromium \
		"$(command -v chromium-browser 2>/dev/null || true)" \
		"$(command -v google-chrome 2>/dev/null || true)"; do
		if [[ -n $b && -x $b && ! -d $b ]]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

install_browser() {
	[[ $(id -u) -eq 0 ]] || die "chromium is not installed and this is not root; run: sudo apt-get install -y chromium"
	command -v apt-get >/dev/null || die "chromium is not installed and apt-get is missing; install Chromium by hand and set HOOKLINE_TEST_CHROMIUM"
	mkdir -p "$DIR"
	log "installing chromium with apt-get (log in $DIR/apt.log)"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y chromium >"$DIR/apt.log" 2>&1; then
		log "apt-get install failed; running apt-get update and trying again"
		apt-get update >>"$DIR/apt.log" 2>&1 || die "apt-get update failed; see $DIR/apt.log"
		apt-get install -y chromium >>"$DIR/apt.log" 2>&1 ||
			die "apt-get install chromium failed; see $DIR/apt.log"
	fi
}

# works checks that the browser starts at all (a missing library shows here,
# not in the middle of a test).
works() {
	timeout 30 "$1" --headless --no-sandbox --version >/dev/null 2>&1
}

ensure() {
	local b
	if ! b=$(find_browser); then
		install_browser
		b=$(find_browser) || die "chromium is still missing after apt-get install"
	fi
	works "$b" || die "$b does not start: try '$b --headless --no-sandbox --version'"
	echo "$b"
}

case "${1:-}" in
path) find_browser || { log "no chromium found (install Debian's chromium, or set HOOKLINE_TEST_CHROMIUM)"; exit 1; } ;;
ensure) ensure ;;
version)
	b=$(find_browser) || die "no chromium found"
	"$b" --version 2>/dev/null
	;;
*) die "usage: $0 path|ensure|version" ;;
esac
