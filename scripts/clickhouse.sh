#!/usr/bin/env bash
# clickhouse.sh starts or stops the ClickHouse server that the integration
# tests use. It never touches a system-wide server: its data, logs, config and
# pid file live under one directory of their own.
#
#   scripts/clickhouse.sh start   # ensure a server runs; prints its DSN
#   scripts/clickhouse.sh stop    # stop the server this script started
#   scripts/clickhouse.sh running # exit 0 when a server answers already
#   scripts/clickhouse.sh dsn     # print the DSN without starting anything
#
# Environment (all optional):
#   HOOKLINE_CLICKHOUSE_DIR        state directory (default ${TMPDIR:-/tmp}/hookline-clickhouse)
#   HOOKLINE_CLICKHOUSE_TCP_PORT   native protocol port (default 19000)
#   HOOKLINE_CLICKHOUSE_HTTP_PORT  HTTP port, used for /ping (default 18123)
#
# Tests read the printed DSN from HOOKLINE_TEST_CLICKHOUSE_DSN, e.g.
#   export HOOKLINE_TEST_CLICKHOUSE_DSN=$(scripts/clickhouse.sh start)
set -euo pipefail

DIR=${HOOKLINE_CLICKHOUSE_DIR:-${TMPDIR:-/tmp}/hookline-clickhouse}
TCP_PORT=${HOOKLINE_CLICKHOUSE_TCP_PORT:-19000}
HTTP_PORT=${HOOKLINE_CLICKHOUSE_HTTP_PORT:-18123}
PID_FILE=$DIR/clickhouse.pid
START_TIMEOUT_S=30

die() { echo "clickhouse.sh: $*" >&2; exit 1; }
log() { echo "clickhouse.sh: $*" >&2; }

dsn() { echo "clickhouse://127.0.0.1:${TCP_PORT}/default"; }

# ping_ok asks the server's /ping with bash alone, so that no HTTP client
# needs installing on a fresh machine.
ping_ok() {
	local out
	out=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf "GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' _ "$HTTP_PORT" 2>/dev/null) || return 1
	[[ $out == *$'\r\n\r\nOk.'* ]]
}

server_bin() {
	local b
	for b in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
		if [[ -n $b && -x $b ]]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

install_server() {
	[[ $(id -u) -eq 0 ]] || die "clickhouse-server is not installed and this is not root; run: sudo apt-get install -y clickhouse-server clickhouse-client"
	command -v apt-get >/dev/null || die "clickhouse-server is not installed and apt-get is missing; install ClickHouse by hand"
	log "installing clickhouse-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y clickhouse-server clickhouse-client >"$DIR/apt.log" 2>&1; then
		apt-get update >>"$DIR/apt.log" 2>&1 || die "apt-get update failed; see $DIR/apt.log"
		apt-get install -y clickhouse-server clickhouse-client >>"$DIR/apt.log" 2>&1 ||
			die "apt-get install clickhouse-server failed; see $DIR/apt.log"
	fi
}

write_config() {
	mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$DIR/log"
	# <yandex> is the root element 18.16 needs; current servers still accept it.
	cat >"$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/log/clickhouse-server.log</log>
        <errorlog>$DIR/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$TCP_PORT</tcp_port>
    <http_port>$HTTP_PORT</http_port>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
	cat >"$DIR/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML
}

# our_pid prints the pid from the pid file when that process is still a
# ClickHouse server, so that a recycled pid is never signalled.
our_pid() {
	[[ -f $PID_FILE ]] || return 1
	local pid
	pid=$(cat "$PID_FILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q clickhouse || return 1
	echo "$pid"
}

start() {
	if ping_ok; then
		log "reusing the server answering on 127.0.0.1:${HTTP_PORT}"
		dsn
		return 0
	fi
	mkdir -p "$DIR"
	local bin
	bin=$(server_bin) || { install_server; bin=$(server_bin) || die "clickhouse-server still missing after install"; }
	write_config
	log "starting $bin (state in $DIR)"
	# Detach stdio so that callers capturing our output, e.g. DSN=\$(...), do
	# not wait for the server to exit.
	nohup "$bin" --config-file="$DIR/config.xml" </dev/null >"$DIR/log/stdout.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$PID_FILE"
	local deadline=$((SECONDS + START_TIMEOUT_S))
	until ping_ok; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
			die "clickhouse-server exited during start-up; logs in $DIR/log"
		fi
		((SECONDS < deadline)) || die "clickhouse-server did not answer http://127.0.0.1:${HTTP_PORT}/ping within ${START_TIMEOUT_S}s; logs in $DIR/log"
		sleep 0.2
	done
	dsn
}

stop() {
	local pid
	if ! pid=$(our_pid); then
		rm -f "$PID_FILE"
		log "no server started by this script is running"
		return 0
	fi
	kill "$pid"
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "server $pid did not stop within 30s; killing it"
			kill -9 "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$PID_FILE"
	log "stopped server $pid"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
dsn) dsn ;;
running) ping_ok ;;
*) die "usage: $0 start|stop|dsn|running" ;;
esac
