#!/usr/bin/env bats
# husk pod create|ls|rm|inspect and `husk run --pod`'s checks: what the
# CLI decides on its own, with no VM, agent or runtime running a
# container. tests/bats/pod_lifecycle.bats runs pod members (host agent).
load helpers
bats_require_minimum_version 1.5.0

ROOTFS="$BUILD/share/husk/rootfs/busybox"

setup() {
	W=$(mktemp -d)
	H=("$HUSK" --root "$W/root")
	# `pod rm -f` asks the runtime to delete members; none of these ever
	# ran, so it has nothing to do and says so
	export HUSK_RUNTIME="$BUILD/bin/husk-runtime"
}

teardown() {
	rm -rf "$W"
}

pod_json() {
	"${H[@]}" pod ls --format json | python3 -c "$1"
}

# A member as `husk run -d --pod` records one before the runtime runs it:
# this checks the CLI's reading of membership without a runtime.
fake_member() {
	local id pod=$1
	id=$(printf '%064d' "$2")
	mkdir -p "$W/root/containers/$id"
	printf '{"id":"%s","name":"m%s","pod":"%s","command":["true"]}\n' \
		"$id" "$2" "$pod" >"$W/root/containers/$id/container.json"
	echo "$id"
}

@test "pod create prints an id; ls shows name, short id, status, members, age; -q; json" {
	run "${H[@]}" pod create --name web
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	id=$output
	run "${H[@]}" pod create
	[ "$status" -eq 0 ]
	anon=$output
	run "${H[@]}" pod ls
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "NAME"*"ID"*"STATUS"*"CONTAINERS"*"CREATED" ]]
	[[ "${lines[1]}" =~ ^web\ +${id:0:12}\ +Created\ +0\ +.*ago$ ]]
	[[ "${lines[2]}" =~ ^husk_${anon:0:12}\ +${anon:0:12}\ +Created\ +0 ]]
	[ "${#lines[@]}" -eq 3 ]
	run "${H[@]}" pod ps -q
	[ "$output" = "$(printf '%s\n%s' "${id:0:12}" "${anon:0:12}")" ]
	pod_json 'import json,sys
p = [json.loads(l) for l in sys.stdin]
assert [x["Name"] for x in p][0] == "web", p
assert p[0]["ID"] == "'"$id"'" and p[0]["Status"] == "Created", p
assert p[0]["Containers"] == 0 and p[0]["SharePid"] is False, p'
	"${H[@]}" pod create --name shared --share-pid >/dev/null
	run "${H[@]}" pod inspect shared
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys; p = json.loads(sys.argv[1])[0]
assert p["Name"] == "shared" and p["SharePid"] is True, p
assert p["NumContainers"] == 0 and p["Containers"] == [], p' "$output"
}

@test "pod names: validated as container names, one pod per name, free again after rm" {
	run "${H[@]}" pod create --name 'bad/name'
	[ "$status" -eq 125 ]
	[[ "$output" == *"Invalid pod name (bad/name)"* ]]
	run "${H[@]}" pod create --name x
	[ "$status" -eq 125 ]
	"${H[@]}" pod create --name db >/dev/null
	run "${H[@]}" pod create --name db
	[ "$status" -eq 125 ]
	[[ "$output" == *'The pod name "db" is already in use'* ]]
	[ "$(ls "$W/root/pods" | wc -l)" -eq 1 ]
	run "${H[@]}" pod create stray
	[ "$status" -eq 125 ]
	run "${H[@]}" pod rm db
	[ "$status" -eq 0 ]
	run "${H[@]}" pod create --name db
	[ "$status" -eq 0 ]
}

@test "pod rm: by name, id or prefix; unknown pods fail with 1 and the rest still go" {
	a=$("${H[@]}" pod create --name pa)
	b=$("${H[@]}" pod create --name pb)
	c=$("${H[@]}" pod create --name pc)
	run "${H[@]}" pod rm nosuch
	[ "$status" -eq 1 ]
	[ "$output" = "Error: no such pod: nosuch" ]
	run "${H[@]}" pod rm pa nosuch "${b:0:10}"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$a"* && "$output" == *"$b"* ]]
	[[ "$output" == *"no such pod: nosuch"* ]]
	run "${H[@]}" pod rm "$c"
	[ "$status" -eq 0 ]
	[ "$output" = "$c" ]
	[ -z "$("${H[@]}" pod ls -q)" ]
	[ -z "$(ls "$W/root/pods")" ]
	run "${H[@]}" pod rm
	[ "$status" -eq 125 ]
}

@test "pod rm refuses a pod with containers; -f removes them with it" {
	pod=$("${H[@]}" pod create --name busy)
	m1=$(fake_member "$pod" 1)
	m2=$(fake_member "$pod" 2)
	other=$(fake_member "" 3)
	run "${H[@]}" pod ls
	[[ "${lines[1]}" =~ ^busy\ +${pod:0:12}\ +Exited\ +2\  ]]
	run "${H[@]}" pod rm busy
	[ "$status" -eq 1 ]
	[ "$output" = "Error: pod busy has 2 containers: remove them first or use -f" ]
	[ -d "$W/root/containers/$m1" ]
	run "${H[@]}" pod ls -q
	[ "$output" = "${pod:0:12}" ]
	run "${H[@]}" pod rm -f busy
	[ "$status" -eq 0 ]
	[ "$output" = "$pod" ]
	[ ! -e "$W/root/containers/$m1" ] && [ ! -e "$W/root/containers/$m2" ]
	[ -d "$W/root/containers/$other" ]
	[ -z "$("${H[@]}" pod ls -q)" ]
}

@test "run --pod: -p, --network, -t and unknown pods are refused before anything is made" {
	"${H[@]}" pod create --name pp >/dev/null
	for opt in "-p 8080:80" "--network none" "-t"; do
		# shellcheck disable=SC2086
		run "${H[@]}" run --pod=pp $opt --rootfs "$ROOTFS" true
		[ "$status" -eq 125 ]
		[[ "$output" == *"--pod with "* ]]
		[ "$opt" = -t ] && continue # -d -t is refused as it is
		run "${H[@]}" run -d --pod pp $opt --rootfs "$ROOTFS" true
		[ "$status" -eq 125 ]
		[[ "$output" == *"--pod with "* ]]
	done
	run "${H[@]}" run -d --pod pp -p 80:80 --rootfs "$ROOTFS" true
	[[ "$output" == *"-p is not supported yet"* ]]
	run "${H[@]}" run -d --pod nosuch --rootfs "$ROOTFS" true
	[ "$status" -eq 125 ]
	[[ "$output" == *"no such pod: nosuch"* ]]
	run "${H[@]}" run -d --rootfs "$ROOTFS" --pod
	[ "$status" -eq 125 ]
	[[ "$output" == *"--pod needs a pod's name or id"* ]]
	[ -z "$(ls -A "$W/root/containers" 2>/dev/null | grep -v '^\.lock$')" ]
}

@test "run --pod is an option among the others, never a word of the command" {
	# options with values before it, as separate words, attached, in a cluster
	run "${H[@]}" run -d -e A=1 --name=n1 -w / -deB=2 -u 0 --pod nosuch --rootfs "$ROOTFS" true
	[ "$status" -eq 125 ]
	[[ "$output" == *"no such pod: nosuch"* ]]
	# after the command's first word it is the command's: the missing
	# root fails first, not the pod
	run "${H[@]}" run -d --rootfs "$W/missing" echo --pod nosuch
	[ "$status" -eq 125 ]
	[[ "$output" != *"no such pod"* ]]
	run "${H[@]}" run -d --rootfs "$W/missing" -- --pod nosuch
	[ "$status" -eq 125 ]
	[[ "$output" != *"no such pod"* ]]
	run "${H[@]}" run --help
	[[ "$output" == *"--pod POD"* ]]
}

@test "husk pod: usage, unknown subcommands, help" {
	run "${H[@]}" pod
	[ "$status" -eq 125 ]
	[[ "$output" == *"usage: husk pod COMMAND"* ]]
	run "${H[@]}" pod frob
	[ "$status" -eq 125 ]
	[[ "$output" == *"unknown command 'frob'"* ]]
	run "${H[@]}" pod help
	[ "$status" -eq 0 ]
	[[ "$output" == *create*ls*rm*inspect* ]]
	run "${H[@]}" pod inspect nosuch
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such pod: nosuch"* ]]
	run "${H[@]}" help
	[[ "$output" == *"pod "* ]]
}
