#!/usr/bin/env bash
# tests/images/registry.sh start DIR [--htpasswd USER:PASS]
# tests/images/registry.sh stop DIR
#
# A throwaway Docker registry (Debian's docker-registry, distribution v2.8)
# for the tests and benchmarks: plain HTTP on 127.0.0.1 and a port the
# kernel picks (so parallel runs never collide), storage in DIR/data.
# `start` prints the port once the registry answers, and writes DIR/pid,
# DIR/port and DIR/log. With --htpasswd the registry wants HTTP Basic
# credentials (a bcrypt htpasswd file, the only kind distribution reads).
# `stop` ends the registry started in DIR and leaves the files.
set -euo pipefail

usage() {
	echo "usage: $0 start DIR [--htpasswd USER:PASS] | stop DIR" >&2
	exit 2
}

start() {
	local dir=$1 creds=${2:-}
	command -v docker-registry >/dev/null ||
		{ echo "registry.sh: docker-registry missing (apt-get install docker-registry)" >&2; exit 1; }
	mkdir -p "$dir/data"
	dir=$(cd "$dir" && pwd)
	local auth=""
	if [ -n "$creds" ]; then
		command -v htpasswd >/dev/null ||
			{ echo "registry.sh: htpasswd missing (apt-get install apache2-utils)" >&2; exit 1; }
		htpasswd -Bbn "${creds%%:*}" "${creds#*:}" >"$dir/htpasswd"
		auth="auth:
  htpasswd:
    realm: husk-test
    path: $dir/htpasswd"
	fi
	# Port 0: the kernel picks a free port, which the registry logs as
	# "listening on 127.0.0.1:PORT". A fixed secret keeps it quiet.
	cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: husk-test-secret
$auth
CONFIG
	docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	local pid=$! port=""
	echo "$pid" >"$dir/pid"
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "registry.sh: docker-registry did not start; its log:" >&2
		cat "$dir/log" >&2
		kill "$pid" 2>/dev/null || true
		exit 1
	fi
	echo "$port" >"$dir/port"
	# Listening is not yet serving: wait for /v2/ to answer (200 or 401).
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
		sleep 0.05
	done
	echo "registry.sh: registry on port $port does not answer" >&2
	kill "$pid" 2>/dev/null || true
	exit 1
}

# True while pid runs: a zombie (exited, not yet reaped by whoever
# inherited it) counts as gone.
running() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

stop() {
	local dir=$1 pid
	[ -f "$dir/pid" ] || return 0
	dir=$(cd "$dir" && pwd)
	pid=$(cat "$dir/pid")
	# Only the registry this script started: its command line names DIR.
	if grep -qF "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			running "$pid" || break
			sleep 0.02
		done
		running "$pid" && kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$dir/pid"
}

[ $# -ge 2 ] || usage
case $1 in
start)
	case ${3:-} in
	"") start "$2" ;;
	--htpasswd) [ -n "${4:-}" ] || usage; start "$2" "$4" ;;
	*) usage ;;
	esac
	;;
stop) stop "$2" ;;
*) usage ;;
esac
