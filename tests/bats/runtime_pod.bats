#!/usr/bin/env bats
# Pods in husk-runtime (src/runtime/pod*.c), fast: the pod daemon runs the
# agent on the host (HUSK_RUNTIME_AGENT) instead of a microVM, so these
# check the daemon's life, the frame routing between members and the one
# agent, PID namespace sharing and the error paths. tests/tap/pod_vm.sh
# runs pods in real microVMs in the test machine.
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
	for _ in $(seq 50); do [ -e "$ROOT/.pods/p1" ] || [ -e "$ROOT/.pods/p2" ] || break; sleep 0.1; done
	rm -rf "$W"
}

# member NAME POD [PIDNS] -- ARGS...: create and start it
member() {
	local name=$1 pod=$2
	shift 2
	"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/$name" "$ROOTFS" "$pod" "$@"
	"${R[@]}" create --bundle "$W/$name" --pid-file "$W/$name.pid" "$name" </dev/null >"$W/$name.out" 2>&1
	"${R[@]}" start "$name"
}

# The pod daemon's agent: one per pod.
agents_of() {
	pgrep -f -- "--state-dir $ROOT/.pods/$1/agent" | wc -l
}

gone() {
	for _ in $(seq 100); do
		[ ! -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

@test "the members of a pod share one agent; the pod ends with its last member" {
	member a p1 -- sh -c 'echo a-up; sleep 1000'
	member b p1 -- sh -c 'echo b-up; sleep 1000'
	[ "$(agents_of p1)" = 1 ]
	! pgrep -f -- "--state-dir $ROOT/a/agent"
	run "${R[@]}" exec b sh -c 'echo in-b; exit 3'
	[ "$status" = 3 ]
	[ "$output" = in-b ]
	"${R[@]}" kill a KILL
	"${R[@]}" delete --force a
	# b runs on in the pod's agent
	[ "$(agents_of p1)" = 1 ]
	run "${R[@]}" exec b echo still
	[ "$output" = still ]
	"${R[@]}" delete --force b
	gone "$ROOT/.pods/p1"
	gone "$ROOT/.pods/p1.lock"
	[ "$(agents_of p1)" = 0 ]
	! pgrep -f -- "$ROOT/"
}

@test "two pods have two agents, and their containers do not see each other" {
	member a p1 -- sh -c 'sleep 1000'
	member c p2 -- sh -c 'sleep 1001'
	[ "$(agents_of p1)" = 1 ]
	[ "$(agents_of p2)" = 1 ]
	run "${R[@]}" exec c ps
	[[ "$output" == *"sleep 1001"* ]]
	[[ "$output" != *"sleep 1000"* ]]
}

@test "a member given the PID namespace of another sees its processes; one without does not" {
	member a p1 -- sh -c 'sleep 1000'
	pid=$(cat "$W/a.pid")
	member b p1 "/proc/$pid/ns/pid" -- sh -c 'sleep 1002'
	member c p1 -- sh -c 'sleep 1003'
	run "${R[@]}" exec b ps
	echo "$output"
	[[ "$output" == *"sleep 1000"* ]]
	[[ "$output" == *"sleep 1002"* ]]
	run "${R[@]}" exec a ps
	[[ "$output" == *"sleep 1002"* ]]
	run "${R[@]}" exec c ps
	[[ "$output" == *"sleep 1003"* ]]
	[[ "$output" != *"sleep 1000"* ]]
	# one pod, one agent
	[ "$(agents_of p1)" = 1 ]
}

@test "a member's exit status, stdio and a killed supervisor" {
	member a p1 -- sh -c 'sleep 1000'
	"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/b" "$ROOTFS" p1 -- sh -c 'read x; echo "got $x"; exit 6'
	run bash -c "echo hello | '$RUNTIME' --root '$ROOT' run --bundle '$W/b' b"
	[ "$status" = 6 ]
	[ "$output" = "got hello" ]
	member k p1 -- sh -c 'sleep 1004'
	kill -9 "$(cat "$W/k.pid")"
	# its processes go with it; the pod's other member stays
	for _ in $(seq 50); do "${R[@]}" exec a ps | grep -q "sleep 1004" || break; sleep 0.1; done
	run "${R[@]}" exec a ps
	[[ "$output" != *"sleep 1004"* ]]
	[ "$("${R[@]}" state k | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')" = stopped ]
	"${R[@]}" delete k
	run "${R[@]}" exec a echo alive
	[ "$output" = alive ]
}

@test "pod errors: a PID namespace outside the pod, a bad pod id, pause of a member" {
	member a p1 -- sh -c 'sleep 1000'
	pid=$(cat "$W/a.pid")
	"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/x" "$ROOTFS" p2 "/proc/$pid/ns/pid" -- true
	run "${R[@]}" create --bundle "$W/x" x
	[ "$status" = 1 ]
	[[ "$output" == *"is not a running container of pod p2"* ]]
	"$HUSK_REPO/tests/runtime/bundle.sh" "$W/y" "$ROOTFS" -- true
	python3 - "$W/y/config.json" "$pid" <<'P'
import json, sys
c = json.load(open(sys.argv[1]))
for ns in c["linux"]["namespaces"]:
    if ns["type"] == "pid":
        ns["path"] = "/proc/%s/ns/pid" % sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
P
	run "${R[@]}" create --bundle "$W/y" y
	[ "$status" = 1 ]
	[[ "$output" == *"needs both containers in one pod"* ]]
	"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/z" "$ROOTFS" "../p" -- true
	run "${R[@]}" create --bundle "$W/z" z
	[ "$status" = 1 ]
	[[ "$output" == *"is not a valid id"* ]]
	# a PID namespace path of another shape than /proc/PID/ns/pid
	for bad in /proc/self/ns/pid "/proc/$pid/ns/net" "/proc/$pid/ns/pid/x" /run/netns/x; do
		"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/v" "$ROOTFS" p1 "$bad" -- true
		run "${R[@]}" create --bundle "$W/v" v
		[ "$status" = 1 ]
		[[ "$output" == *"a VM can join only /proc/PID/ns/pid"* ]]
	done
	# linux.namespaces entries that are not objects
	"$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/w" "$ROOTFS" p1 -- true
	python3 - "$W/w/config.json" <<'P'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"]["namespaces"].append("pid")
json.dump(c, open(sys.argv[1], "w"))
P
	run "${R[@]}" create --bundle "$W/w" w
	[ "$status" = 1 ]
	[[ "$output" == *"linux.namespaces["*"] is not an object"* ]]
	run "${R[@]}" pause a
	[ "$status" = 1 ]
	[[ "$output" == *"not supported"* ]]
	[ ! -e "$ROOT/x" ] && [ ! -e "$ROOT/y" ] && [ ! -e "$ROOT/z" ] && [ ! -e "$ROOT/v" ] && [ ! -e "$ROOT/w" ]
	[ ! -e "$ROOT/.pods/p2" ]
}

@test "a member's bind mounts: read-write and read-only" {
	member a p1 -- sh -c 'sleep 1000'
	mkdir "$W/vol"
	echo from-host >"$W/vol/in"
	POD_BIND="$W/vol:/data" "$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/e" "$ROOTFS" p1 -- sh -c 'cat /data/in; echo from-e >/data/out'
	run "${R[@]}" run --bundle "$W/e" e </dev/null
	[ "$status" = 0 ]
	[ "$output" = from-host ]
	[ "$(cat "$W/vol/out")" = from-e ]
	POD_BIND="$W/vol:/data:ro" "$HUSK_REPO/tests/runtime/pod-bundle.sh" "$W/f" "$ROOTFS" p1 -- sh -c 'echo x >/data/ro'
	run "${R[@]}" run --bundle "$W/f" f </dev/null
	[ "$status" != 0 ]
	[ ! -e "$W/vol/ro" ]
}
