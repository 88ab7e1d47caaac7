#!/usr/bin/env bats
# Pods through the husk CLI with husk-runtime, fast: the runtime's pod
# daemon runs the agent on the host (HUSK_RUNTIME_AGENT) instead of a
# microVM, as lifecycle.bats does for single containers. pod_cli.bats
# covers what needs no runtime.
load helpers
bats_require_minimum_version 1.5.0

ROOTFS="$BUILD/share/husk/rootfs/busybox"

setup() {
	[ "$(id -u)" = 0 ] || skip "the host agent needs root for namespaces and mounts"
	export HUSK_RUNTIME_AGENT="$BUILD/bin/husk-agent"
	export HUSK_RUNTIME="$BUILD/bin/husk-runtime"
	W=$(mktemp -d)
	H=("$HUSK" --root "$W/root")
}

teardown() {
	for d in "$W"/root/containers/*/; do
		[ -d "$d" ] && "${H[@]}" rm -f "$(basename "$d")" >/dev/null 2>&1
	done
	for _ in $(seq 50); do [ -n "$(ls -A "$W/root/runtime/.pods" 2>/dev/null)" ] || break; sleep 0.1; done
	rm -rf "$W"
}

member() {
	"${H[@]}" run -d --rootfs "$ROOTFS" "$@"
}

runtime_pid() {
	"${H[@]}" inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["Pid"])'
}

pid_ns_of() {
	python3 -c 'import json,sys
ns = [n for n in json.load(open(sys.argv[1]))["linux"].get("namespaces", []) if n["type"] == "pid"]
print(ns[0].get("path", "own") if ns else "none")' "$W/root/containers/$1/config.json"
}

@test "--share-pid: members see each other's processes; a member of another pod does not" {
	pod=$("${H[@]}" pod create --name sp --share-pid)
	a=$(member --pod sp --name a1 sleep 1001)
	b=$(member --pod sp --name b1 sleep 1002)
	[ "$(pid_ns_of "$a")" = own ]
	[ "$(pid_ns_of "$b")" = "/proc/$(runtime_pid a1)/ns/pid" ]
	run "${H[@]}" exec b1 ps
	[[ "$output" == *"sleep 1001"* && "$output" == *"sleep 1002"* ]]
	run "${H[@]}" exec a1 ps
	[[ "$output" == *"sleep 1002"* ]]
	"${H[@]}" pod create --name own >/dev/null
	member --pod own --name c1 sleep 1003 >/dev/null
	d=$(member --pod own --name d1 sleep 1004)
	[ "$(pid_ns_of "$d")" = none ]
	run "${H[@]}" exec d1 ps
	[[ "$output" == *"sleep 1004"* && "$output" != *"sleep 1003"* && "$output" != *"sleep 1001"* ]]
	# a restarted member joins the running founder again
	"${H[@]}" restart -t 1 b1 >/dev/null
	run "${H[@]}" exec b1 ps
	[[ "$output" == *"sleep 1001"* && "$output" == *"sleep 1002"* ]]
	run "${H[@]}" pod inspect sp
	python3 -c 'import json,sys; p = json.loads(sys.argv[1])[0]
assert p["Id"] == sys.argv[2] and p["State"] == "Running", p
assert [c["Name"] for c in p["Containers"]] == ["a1", "b1"], p' "$output" "$pod"
}

@test "members share the pod's network; ps and inspect name the pod; ls counts members" {
	pod=$("${H[@]}" pod create --name net)
	port=$((20000 + RANDOM % 20000))
	member --pod net --name web nc -ll -p "$port" -e echo hello-from-web >/dev/null
	for _ in $(seq 50); do "${H[@]}" exec web netstat -ltn | grep -q ":$port " && break; sleep 0.1; done
	id=$(member --pod net --name client sh -c "nc 127.0.0.1 $port </dev/null; sleep 1000")
	for _ in $(seq 50); do [ -n "$("${H[@]}" logs client)" ] && break; sleep 0.1; done
	[ "$("${H[@]}" logs client)" = hello-from-web ]
	run "${H[@]}" ps --format json
	[[ "$output" == *'"Names":"client"'*'"Pod":"'"$pod"'"'* ]]
	[ "$("${H[@]}" inspect client | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Pod"])')" = "$pod" ]
	grep -q '"io.husk.pod":"'"$pod"'"' <(tr -d ' \n' <"$W/root/containers/$id/config.json")
	run "${H[@]}" pod ls
	[[ "${lines[1]}" =~ ^net\ +${pod:0:12}\ +Running\ +2\  ]]
	"${H[@]}" stop -t 1 web client >/dev/null
	run "${H[@]}" pod ls
	[[ "${lines[1]}" =~ ^net\ +${pod:0:12}\ +Exited\ +2\  ]]
}

@test "pod rm refuses a pod with members; -f removes them, the pod and the runtime's pod state" {
	pod=$("${H[@]}" pod create --name gone --share-pid)
	a=$(member --pod gone --name g1 sleep 1005)
	b=$(member --pod gone --name g2 sleep 1006)
	run "${H[@]}" pod rm gone
	[ "$status" -eq 1 ]
	[[ "$output" == *"pod gone has 2 containers"* ]]
	[ "$(runtime_pid g1)" -gt 0 ]
	run "${H[@]}" pod rm -f gone
	[ "$status" -eq 0 ]
	[ "$output" = "$pod" ]
	[ ! -e "$W/root/containers/$a" ] && [ ! -e "$W/root/containers/$b" ]
	[ ! -e "$W/root/runtime/$a" ] && [ ! -e "$W/root/runtime/$b" ]
	[ -z "$(ls -A "$W/root/runtime/.pods")" ]
	[ -z "$("${H[@]}" pod ls -q)" ]
	[ -z "$("${H[@]}" ps -aq)" ]
	! pgrep -f -- "$W/root/"
}

@test "foreground run --pod: output, exit code, stdin, signals; --rm removes it; logs stay without" {
	"${H[@]}" pod create --name fg >/dev/null
	member --pod fg --name bg sleep 1007 >/dev/null
	run "${H[@]}" run --pod fg --name once --rootfs "$ROOTFS" sh -c 'echo out; echo err >&2; exit 3'
	[ "$status" -eq 3 ]
	# stdout and stderr reach the log on two streams: in either order
	[ "$(sort <<<"$output")" = "$(printf 'err\nout')" ]
	[ "$("${H[@]}" logs once | sort)" = "$(printf 'err\nout')" ]
	run bash -c "echo piped | $(printf '%q ' "${H[@]}") run --rm -i --pod fg --rootfs '$ROOTFS' sh -c 'read x; echo \"got \$x\"; exit 4'"
	[ "$status" -eq 4 ]
	[ "$output" = "got piped" ]
	[ "$("${H[@]}" ps -aq | wc -l)" -eq 2 ]
	"${H[@]}" run --pod fg --name trapper --rootfs "$ROOTFS" \
		sh -c 'trap "echo got-int; exit 9" INT; echo ready; while :; do sleep 0.1; done' >"$W/out" &
	fg=$!
	for _ in $(seq 50); do grep -q ready "$W/out" && break; sleep 0.1; done
	kill -INT "$fg"
	st=0
	wait "$fg" || st=$?
	[ "$st" -eq 9 ]
	[ "$(cat "$W/out")" = "$(printf 'ready\ngot-int')" ]
}

@test "run --pod -v: a member reads and writes a host directory" {
	"${H[@]}" pod create --name vp >/dev/null
	mkdir "$W/vol"
	echo from-host >"$W/vol/in"
	run "${H[@]}" run --rm --pod vp -v "$W/vol:/data" --rootfs "$ROOTFS" sh -c 'cat /data/in; echo from-c >/data/out'
	[ "$status" = 0 ]
	[ "$output" = from-host ]
	[ "$(cat "$W/vol/out")" = from-c ]
}
