#!/usr/bin/env bats
# husk-runtime's runc contract, fast: the agent runs on the host as the
# supervisor's child (HUSK_RUNTIME_AGENT) instead of inside a microVM, so
# these check the runtime's commands, state, stdio, exit statuses and error
# paths in seconds. tests/tap/runtime_docker.sh runs dockerd, containerd
# and podman against it with real microVMs in the test machine.
load helpers
bats_require_minimum_version 1.5.0

RUNTIME="$BUILD/bin/husk-runtime"
export RUNTIME
ROOTFS="$BUILD/share/husk/rootfs/busybox"

setup() {
	[ "$(id -u)" = 0 ] || skip "the host agent needs root for namespaces and mounts"
	export HUSK_RUNTIME_AGENT="$BUILD/bin/husk-agent"
	W=$(mktemp -d)
	ROOT="$W/state"
	R=("$RUNTIME" --root "$ROOT")
}

teardown() {
	for d in "$ROOT"/*/; do
		[ -d "$d" ] && "${R[@]}" delete --force "$(basename "$d")" 2>/dev/null
	done
	rm -rf "$W"
}

bundle() {
	"$HUSK_REPO/tests/runtime/bundle.sh" "$W/b" "$ROOTFS" "$@"
}

status_of() {
	"${R[@]}" state "$1" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'
}

@test "create, state, start, the pid file's process exits with the container's status, delete" {
	bundle -- sh -c 'echo out; echo err >&2; exit 7'
	run "$HUSK_REPO/tests/runtime/reap.py" "$RUNTIME" "$ROOT" c1 "$W/b"
	echo "$output"
	[[ "$output" == *out* ]]
	[[ "$output" == *err* ]]
	[[ "$output" == *"exit=7"* ]]
	[ "$(status_of c1)" = stopped ]
	run "${R[@]}" state c1
	[[ "$output" == *'"pid":0'* ]]
	[[ "$output" == *"\"bundle\":\"$W/b\""* ]]
	"${R[@]}" delete c1
	[ ! -e "$ROOT/c1" ]
}

@test "state goes created -> running -> stopped; kill delivers the signal" {
	bundle -- sh -c 'trap "echo got-usr1" USR1; trap "exit 9" TERM; echo ready; while :; do sleep 0.1; done'
	"${R[@]}" create --bundle "$W/b" --pid-file "$W/pid" c2 </dev/null >"$W/out" 2>&1
	[ "$(status_of c2)" = created ]
	pid=$(cat "$W/pid")
	kill -0 "$pid"
	"${R[@]}" state c2 | grep -q "\"pid\":$pid"
	"${R[@]}" start c2
	[ "$(status_of c2)" = running ]
	sleep 1
	"${R[@]}" kill c2 USR1
	sleep 1
	"${R[@]}" kill c2 SIGTERM
	for _ in $(seq 100); do [ "$(status_of c2)" = stopped ] && break; sleep 0.1; done
	[ "$(status_of c2)" = stopped ]
	grep -q got-usr1 "$W/out"
	"${R[@]}" delete c2
}

@test "run in the foreground relays stdin, stdout and the exit status, and removes the container" {
	bundle -- sh -c 'read line; echo "got $line"; exit 3'
	run bash -c "echo hello | '$RUNTIME' --root '$ROOT' run --bundle '$W/b' r1"
	[ "$status" -eq 3 ]
	[ "$output" = "got hello" ]
	[ ! -e "$ROOT/r1" ]
}

@test "exec runs in the container: output, exit status, -d with a pid file, a missing binary is 127" {
	bundle -- sleep 1000
	"${R[@]}" run -d --bundle "$W/b" e1 </dev/null >/dev/null 2>&1
	run "${R[@]}" exec e1 sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 5'
	echo "$output"
	[ "$status" -eq 5 ]
	[[ "$output" == *in-exec* ]]
	cat >"$W/process.json" <<'J'
{"args": ["sh", "-c", "echo from-process-json $FOO; pwd"], "env": ["FOO=bar"], "cwd": "/etc", "user": {"uid": 0, "gid": 0}}
J
	run "${R[@]}" exec --process "$W/process.json" e1
	[[ "$output" == *"from-process-json bar"* ]]
	[[ "$output" == *"/etc"* ]]
	# a malformed --process file is refused with the reason, as runc does
	for bad in '{"args": [' '[]' '{"args": "sh"}' '{"args": []}' '{"args": ["true"], "cwd": 5}' '{"args": [1]}'; do
		printf '%s' "$bad" >"$W/bad.json"
		run "${R[@]}" exec --process "$W/bad.json" e1
		echo "$bad -> $status $output"
		[ "$status" -eq 255 ]
		[[ "$output" == *"$W/bad.json"* ]]
		[[ "$output" == *"not valid JSON"* || "$output" == *"not a JSON object"* || "$output" == *"wrong type"* || "$output" == *"is empty"* || "$output" == *"not a string"* ]]
	done
	run "${R[@]}" exec --process "$W/none.json" e1
	[ "$status" -eq 255 ]
	[[ "$output" == *"none.json: No such file or directory"* ]]
	"${R[@]}" exec -d --pid-file "$W/epid" e1 sleep 100 </dev/null >/dev/null 2>&1
	kill -0 "$(cat "$W/epid")"
	run -127 "${R[@]}" exec e1 /no/such/binary
	[ "$status" -eq 127 ]
	[[ "$output" == *"/no/such/binary"* ]]
	run "${R[@]}" exec -u 1000:1000 e1 id -u
	[ "$output" = 1000 ]
	kill -9 "$(cat "$W/epid")"
	"${R[@]}" delete --force e1
	[ ! -e "$ROOT/e1" ]
}

@test "a terminal goes to --console-socket as runc sends it" {
	bundle terminal -- sh -c 'tty; echo DONE'
	run env HUSK_TEST_CONSOLE=1 "$HUSK_REPO/tests/runtime/reap.py" "$RUNTIME" "$ROOT" t1 "$W/b"
	echo "$output"
	[[ "$output" == *"console-name=/dev/pts/"* ]]
	[[ "$output" == *"/dev/pts/0"* ]]
	[[ "$output" == *"exit=0"* ]]
	run "${R[@]}" create --bundle "$W/b" t2 </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"console socket"* ]]
}

@test "list, ps, pause and resume, features and spec" {
	bundle -- sleep 1000
	"${R[@]}" run -d --bundle "$W/b" l1 </dev/null >/dev/null 2>&1
	run "${R[@]}" list --format json
	[[ "$output" == *'"id":"l1"'* ]]
	[[ "$output" == *'"status":"running"'* ]]
	run "${R[@]}" list
	[[ "$output" == *l1*running* ]]
	run "${R[@]}" ps --format json l1
	[[ "$output" =~ ^\[[0-9]+\]$ ]]
	"${R[@]}" pause l1
	[ "$(status_of l1)" = paused ]
	"${R[@]}" resume l1
	[ "$(status_of l1)" = running ]
	run "${R[@]}" features
	[[ "$output" == *ociVersionMax* ]]
	run "${R[@]}" spec --bundle "$W/b"
	[ "$status" -eq 1 ]
	[[ "$output" == *"File exists"* ]]
	"${R[@]}" delete --force l1
}

@test "errors as runc's: unknown id, double create, start twice, kill of a stopped container, delete of a running one" {
	for cmd in state start kill delete; do
		run "${R[@]}" $cmd nosuch
		[ "$status" -eq 1 ]
		[[ "$output" == *"container nosuch does not exist"* ]]
	done
	run "${R[@]}" exec nosuch true
	[ "$status" -ne 0 ]
	[[ "$output" == *"does not exist"* ]]
	bundle -- sh -c 'sleep 1000'
	"${R[@]}" create --bundle "$W/b" d1 </dev/null >/dev/null 2>&1
	run "${R[@]}" create --bundle "$W/b" d1 </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"container with id exists: d1"* ]]
	"${R[@]}" start d1
	run "${R[@]}" start d1
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot start an already running container"* ]]
	run "${R[@]}" delete d1
	[ "$status" -eq 1 ]
	[[ "$output" == *"not stopped: running"* ]]
	"${R[@]}" kill d1 KILL
	for _ in $(seq 100); do [ "$(status_of d1)" = stopped ] && break; sleep 0.1; done
	run "${R[@]}" kill d1 TERM
	[ "$status" -eq 1 ]
	[[ "$output" == *"container not running"* ]]
	run "${R[@]}" start d1
	[[ "$output" == *"cannot start a container that has stopped"* ]]
	run "${R[@]}" kill d1 NOTASIGNAL
	[ "$status" -eq 1 ]
	"${R[@]}" delete d1
	run "${R[@]}" create --bundle "$W/b" 'bad/id' </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"invalid container id"* ]]
}

@test "a malformed config.json or a missing root file system is refused with the reason, and leaves no state" {
	bundle -- true
	cp "$W/b/config.json" "$W/good.json"
	printf '{"process": ' >"$W/b/config.json"
	run "${R[@]}" --log "$W/log.json" --log-format json create --bundle "$W/b" m1 </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"not valid JSON"* ]]
	grep -q '"level":"error"' "$W/log.json"
	grep -q 'not valid JSON' "$W/log.json"
	sed 's/"args": \[/"args": 7, "x": [/' "$W/good.json" >"$W/b/config.json"
	run "${R[@]}" create --bundle "$W/b" m2 </dev/null
	[[ "$output" == *"process.args has the wrong type"* ]]
	python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["process"]["args"]=[]; json.dump(c,open(sys.argv[2],"w"))' "$W/good.json" "$W/b/config.json"
	run "${R[@]}" create --bundle "$W/b" m3 </dev/null
	[[ "$output" == *"process.args is empty"* ]]
	python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["process"]["cwd"]="relative"; json.dump(c,open(sys.argv[2],"w"))' "$W/good.json" "$W/b/config.json"
	run "${R[@]}" create --bundle "$W/b" m4 </dev/null
	[[ "$output" == *"is not absolute"* ]]
	echo '[1,2]' >"$W/b/config.json"
	run "${R[@]}" create --bundle "$W/b" m5 </dev/null
	[[ "$output" == *"not a JSON object"* ]]
	cp "$W/good.json" "$W/b/config.json"
	rm "$W/b/rootfs"
	run "${R[@]}" create --bundle "$W/b" m6 </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"root file system"* ]]
	run "${R[@]}" create --bundle "$W/nosuchbundle" m7 </dev/null
	[ "$status" -eq 1 ]
	[ -z "$(ls -A "$ROOT" 2>/dev/null)" ]
}

@test "a supervisor killed with -9 shows as stopped, and delete cleans up everything" {
	bundle -- sleep 1000
	"${R[@]}" create --bundle "$W/b" --pid-file "$W/pid" k1 </dev/null >/dev/null 2>&1
	"${R[@]}" start k1
	kill -9 "$(cat "$W/pid")"
	for _ in $(seq 100); do [ "$(status_of k1)" = stopped ] && break; sleep 0.1; done
	[ "$(status_of k1)" = stopped ]
	"${R[@]}" delete k1
	[ ! -e "$ROOT/k1" ]
	sleep 0.5
	! pgrep -f -- "--state-dir $ROOT/k1/agent"
}

@test "50 create/start/kill/delete cycles leave no process, mount, socket or state behind" {
	bundle -- sleep 1000
	mounts_before=$(wc -l </proc/self/mountinfo)
	for i in $(seq 50); do
		"${R[@]}" create --bundle "$W/b" --pid-file "$W/pid" "cy$i" </dev/null >/dev/null 2>&1
		"${R[@]}" start "cy$i"
		"${R[@]}" kill "cy$i" KILL
		for _ in $(seq 100); do [ "$(status_of "cy$i")" = stopped ] && break; sleep 0.05; done
		"${R[@]}" delete "cy$i"
	done
	[ -z "$(ls -A "$ROOT")" ]
	[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ]
	! pgrep -f -- "$ROOT/"
	! grep -q "$ROOT" /proc/net/unix
}

@test "the bundle's bind mounts become volumes: read-write, read-only, and a tmpfs" {
	bundle -- sh -c 'echo from-container >/data/out; cat /data/in; echo x >/ro/f || echo ro-refused; touch /scratch/t && echo tmpfs-ok'
	mkdir -p "$W/vol" "$W/rovol"
	echo from-host >"$W/vol/in"
	python3 - "$W/b/config.json" "$W/vol" "$W/rovol" <<'P'
import json, sys
c = json.load(open(sys.argv[1]))
c["mounts"] += [
    {"destination": "/data", "type": "bind", "source": sys.argv[2], "options": ["rbind", "rw"]},
    {"destination": "/ro", "type": "bind", "source": sys.argv[3], "options": ["rbind", "ro"]},
    {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
]
json.dump(c, open(sys.argv[1], "w"))
P
	run "$RUNTIME" --root "$ROOT" run --bundle "$W/b" v1 </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *from-host* ]]
	[[ "$output" == *ro-refused* ]]
	[[ "$output" == *tmpfs-ok* ]]
	[ "$(cat "$W/vol/out")" = from-container ]
	[ ! -e "$W/rovol/f" ]
}
