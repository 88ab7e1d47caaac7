#!/usr/bin/env bats
# husk's container lifecycle (run -d, ps, logs, exec, stop, kill, wait,
# rm, start, restart, inspect) over husk-runtime, fast: the runtime's
# supervisor runs the agent on the host (HUSK_RUNTIME_AGENT) instead of
# booting a microVM. tests/tap/lifecycle_vm.sh does the same with a real
# VM in the test machine.
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
	rm -rf "$W"
}

# run -d with a container that says hello and exits 3 on SIGTERM
run_d() {
	"${H[@]}" run -d --rootfs "$ROOTFS" "$@"
}

TRAPPER='echo hello; trap "echo got-term; exit 3" TERM; trap "echo got-usr1" USR1; while :; do sleep 0.1; done'

state_of() {
	"${H[@]}" inspect "$1" | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["State"]; print(s["Status"], s["ExitCode"])'
}

@test "run -d prints an id; ps, logs, exec, stop with SIGTERM, ps -a shows Exited, wait" {
	run run_d --name web sh -c "$TRAPPER"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	id=$output
	run "${H[@]}" ps
	[[ "$output" == *"${id:0:12}"*"Up "*web* ]]
	sleep 0.5
	[ "$("${H[@]}" logs web)" = hello ]
	run "${H[@]}" exec web sh -c 'echo in-exec; cat /etc/hostname; exit 4'
	[ "$status" -eq 4 ]
	[ "${lines[0]}" = in-exec ]
	[ "${lines[1]}" = "${id:0:12}" ]
	run "${H[@]}" stop -t 5 web
	[ "$status" -eq 0 ]
	[ "$output" = web ]
	[[ "$("${H[@]}" logs web)" == *got-term* ]]
	run "${H[@]}" ps
	[[ "$output" != *web* ]]
	run "${H[@]}" ps -a
	[[ "$output" == *"Exited (3)"*web* ]]
	run "${H[@]}" ps -a --format json
	[[ "$output" == *'"Names":"web"'*'"State":"exited"'*'"ExitCode":3'* ]]
	[ "$("${H[@]}" wait web)" = 3 ]
	[ "$(state_of web)" = "exited 3" ]
}

@test "logs -f follows until the container exits; wait prints its code" {
	run_d --name f1 sh -c 'for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 7' >/dev/null
	run timeout 20 "${H[@]}" logs -f f1
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'line1\nline2\nline3')" ]
	[ "$("${H[@]}" wait f1)" = 7 ]
}

@test "kill -s delivers the signal; kill defaults to SIGKILL; kill of a stopped one fails" {
	run_d --name k1 sh -c "$TRAPPER" >/dev/null
	sleep 0.5
	"${H[@]}" kill -s USR1 k1
	sleep 0.5
	[[ "$("${H[@]}" logs k1)" == *got-usr1* ]]
	[ "$(state_of k1)" = "running 0" ]
	"${H[@]}" kill k1
	[ "$("${H[@]}" wait k1)" = 137 ]
	run "${H[@]}" kill k1
	[ "$status" -eq 1 ]
	[[ "$output" == *"is not running"* ]]
}

@test "rm refuses a running container, rm -f removes it and everything of it" {
	id=$(run_d --name r1 sleep 1000)
	run "${H[@]}" rm r1
	[ "$status" -eq 1 ]
	[[ "$output" == *"You cannot remove a running container $id"* ]]
	[ -d "$W/root/runtime/$id" ]
	run "${H[@]}" rm -f r1
	[ "$status" -eq 0 ]
	[ "$output" = r1 ]
	[ ! -e "$W/root/containers/$id" ]
	[ ! -e "$W/root/runtime/$id" ]
	run "${H[@]}" ps -a
	[[ "$output" != *r1* ]]
}

@test "start runs a stopped container again with its config; restart; logs keep both runs" {
	run_d --name s1 -e GREETING=hi sh -c 'echo $GREETING; sleep 1000' >/dev/null
	"${H[@]}" stop -t 1 s1 >/dev/null
	[ "$(state_of s1)" = "exited 137" ]
	run "${H[@]}" start s1
	[ "$output" = s1 ]
	[ "$(state_of s1)" = "running 0" ]
	"${H[@]}" restart -t 1 s1 >/dev/null
	[ "$(state_of s1)" = "running 0" ]
	sleep 0.5
	[ "$("${H[@]}" logs s1)" = "$(printf 'hi\nhi\nhi')" ]
}

@test "inspect shows the container's state, config and mounts; names, id prefixes, errors" {
	id=$(run_d --name i1 -w /tmp sleep 1000)
	run "${H[@]}" inspect i1
	[ "$status" -eq 0 ]
	python3 - "$output" "$id" <<'P'
import json, sys
c = json.loads(sys.argv[1])[0]
assert c["Id"] == sys.argv[2], c
assert c["Name"] == "/i1"
assert c["State"]["Status"] == "running" and c["State"]["Running"]
assert c["State"]["ExitCode"] == 0
assert c["Config"]["Cmd"] == ["sleep", "1000"]
assert c["Config"]["WorkingDir"] == "/tmp"
P
	[ "$("${H[@]}" exec "${id:0:6}" echo by-prefix)" = by-prefix ]
	[ "$("${H[@]}" exec "$id" echo by-id)" = by-id ]
	run "${H[@]}" exec nosuch true
	[ "$status" -eq 1 ]
	[ "$output" = "Error response from daemon: No such container: nosuch" ]
	run "${H[@]}" stop nosuch
	[ "$status" -eq 1 ]
	[[ "$output" == *"No such container: nosuch"* ]]
	run "${H[@]}" inspect nosuch
	[ "$status" -eq 1 ]
	run run_d --name i1 true
	[ "$status" -eq 125 ]
	[[ "$output" == *'The container name "/i1" is already in use'* ]]
	[ "$(ls "$W/root/containers" | wc -l)" -eq 1 ]
	# the host agent has no cgroups: a limit fails, and nothing is left
	run run_d --name lim -m 64m true
	[ "$status" -eq 125 ]
	[[ "$output" == *"cgroup"* ]]
	[ "$(ls "$W/root/containers" | wc -l)" -eq 1 ]
	run run_d --name 'bad/name' true
	[ "$status" -eq 125 ]
	[[ "$output" == *"Invalid container name"* ]]
	run "${H[@]}" run -d -t --rootfs "$ROOTFS" sh
	[ "$status" -eq 125 ]
}

@test "-v mounts a host directory read-write or read-only" {
	mkdir "$W/vol"
	echo from-host >"$W/vol/f"
	run_d --name v1 -v "$W/vol:/data" -v "$W/vol:/ro:ro" sleep 1000 >/dev/null
	[ "$("${H[@]}" exec v1 cat /data/f)" = from-host ]
	"${H[@]}" exec v1 sh -c 'echo from-container >/data/g'
	[ "$(cat "$W/vol/g")" = from-container ]
	run "${H[@]}" exec v1 sh -c 'echo x >/ro/h'
	[ "$status" -ne 0 ]
	[ ! -e "$W/vol/h" ]
	run run_d -v "$W/missing:/m" true
	[ "$status" -eq 125 ]
	[[ "$output" == *"bind source path does not exist"* ]]
}

@test "after kill -9 of the supervisor, ps -a shows it exited and rm cleans everything" {
	id=$(run_d --name z1 sleep 1000)
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$W/root/runtime/$id/state.json")
	kill -9 "$pid"
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	run "${H[@]}" ps -a
	[[ "$output" == *"Exited (137)"*z1* ]]
	run "${H[@]}" ps
	[[ "$output" != *z1* ]]
	"${H[@]}" rm z1
	[ ! -e "$W/root/containers/$id" ]
	[ ! -e "$W/root/runtime/$id" ]
}

@test "exec -t relays a terminal; top lists the container's processes" {
	run_d --name t1 sleep 1000 >/dev/null
	run "${H[@]}" exec -t t1 sh -c 'tty; exit 6'
	[ "$status" -eq 6 ]
	[[ "$output" == */dev/pts/* ]]
	run "${H[@]}" top t1
	[ "$status" -eq 0 ]
	[[ "$output" == *"sleep 1000"* ]]
}
