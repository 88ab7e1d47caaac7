#!/usr/bin/env bash
# tests/runtime/docker-checks.sh: inside the KVM-capable test machine,
# docker, containerd (ctr) and podman run containers with husk-runtime in
# real microVMs (husk-vmm). Prints TAP. BUILD is the build under test.
set -u
: "${BUILD:?}"
RUNTIME="$BUILD/bin/husk-runtime"
here=$(cd "$(dirname "$0")" && pwd)
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	printf '%s\n' "$2" | sed 's/^/#   /'
}
# check NAME EXPECTED-SUBSTRING... -- CMD...: runs CMD, passes when its
# output holds every expected string (EXIT=N matches its status).
check() {
	local name=$1; shift
	local want=()
	while [ "$1" != -- ]; do want+=("$1"); shift; done
	shift
	local out status
	# stdin from /dev/null: a command under timeout is in a background
	# process group, and one that reads the terminal would stop (SIGTTIN)
	out=$(timeout 300 "$@" 2>&1 </dev/null)
	status=$?
	out="$out
EXIT=$status"
	for w in "${want[@]}"; do
		if [[ "$out" != *"$w"* ]]; then
			not_ok "$name" "$out"
			return
		fi
	done
	ok "$name"
}

. "$here/dockerd.sh"
IMG=husk-test:busybox
D=(docker run --runtime husk --network none)

check "docker run --rm echo hi" "hi" "EXIT=0" -- "${D[@]}" --rm $IMG echo hi
check "docker run: the container's exit status and stderr" "to-err" "EXIT=3" -- \
	"${D[@]}" --rm $IMG sh -c 'echo to-err >&2; exit 3'
check "docker run -i: stdin reaches the container" "got piped" "EXIT=0" -- \
	sh -c "echo piped | docker run --rm -i --runtime husk --network none $IMG sh -c 'read l; echo got \$l'"
check "docker run -it: a terminal" "/dev/pts/0" "EXIT=0" -- \
	script -qec "docker run --rm -it --runtime husk --network none $IMG sh -c 'tty; exit 0'" /dev/null
check "docker run: a missing command is 127" "EXIT=127" -- "${D[@]}" --rm $IMG /no/such/cmd

docker run -d --name d1 --runtime husk --network none $IMG \
	sh -c 'echo started; trap "echo got-term; exit 0" TERM; while :; do sleep 1; done' >/dev/null
sleep 2
check "docker logs of a -d container" "started" -- docker logs d1
check "docker exec: output and status" "in-exec" "EXIT=4" -- docker exec d1 sh -c 'echo in-exec; exit 4'
check "docker exec -it" "/dev/pts/" "EXIT=0" -- script -qec "docker exec -it d1 tty" /dev/null
check "docker stop delivers SIGTERM" "EXIT=0" -- docker stop d1
check "the stopped container's logs and exit code" "got-term" "EXIT=0" -- docker logs d1
check "docker inspect: exit code 0" "0" -- docker inspect -f '{{.State.ExitCode}}' d1
check "docker rm" "EXIT=0" -- docker rm d1

mkdir -p /tmp/vol && echo from-host >/tmp/vol/in
check "docker run -v: the container reads and writes a host directory" "from-host" "EXIT=0" -- \
	"${D[@]}" --rm -v /tmp/vol:/data $IMG sh -c 'cat /data/in; echo from-container >/data/out'
check "the host sees the container's write" "from-container" -- cat /tmp/vol/out
check "docker run -v :ro refuses writes" "Read-only" -- \
	"${D[@]}" --rm -v /tmp/vol:/data:ro $IMG sh -c 'echo x >/data/x'

# containerd's own client, with husk-runtime as the runc binary
docker save $IMG -o /tmp/img.tar
ctr -a "$DK/containerd.sock" images import /tmp/img.tar >/dev/null 2>&1
check "ctr run --runc-binary husk-runtime" "hi-from-ctr" "EXIT=0" -- \
	ctr -a "$DK/containerd.sock" run --rm --runc-binary "$RUNTIME" \
	docker.io/library/$IMG c1 echo hi-from-ctr

if command -v podman >/dev/null; then
	P=(podman --root /var/lib/husk-dk/podman --runroot "$DK/podman" --storage-driver vfs
		--cgroup-manager cgroupfs --events-backend file --runtime "$RUNTIME")
	"${P[@]}" load -i /tmp/img.tar >/dev/null 2>&1
	check "podman --runtime husk-runtime run" "hi-from-podman" "EXIT=0" -- \
		"${P[@]}" run --rm --pull never --network none localhost/$IMG echo hi-from-podman
else
	n=$((n + 1)); echo "ok $n # skip podman is not installed"
fi

# 10 lifecycles of real microVMs through the runtime directly (the
# host-agent suite runs 50)
b=/tmp/cyc
mkdir -p $b
"$RUNTIME" spec --bundle $b
ln -sfn "$BUILD/share/husk/rootfs/busybox" $b/rootfs
sed -i 's/"terminal": true/"terminal": false/; s/"sh"\]/"sleep", "1000"]/' $b/config.json
for i in $(seq 10); do
	"$RUNTIME" --root /run/hc create --bundle $b "cy$i" </dev/null >/dev/null 2>&1
	"$RUNTIME" --root /run/hc start "cy$i"
	"$RUNTIME" --root /run/hc kill "cy$i" KILL
	for _ in $(seq 300); do
		"$RUNTIME" --root /run/hc state "cy$i" | grep -q '"status":"stopped"' && break
		sleep 0.1
	done
	"$RUNTIME" --root /run/hc delete "cy$i"
done
check "10 create/start/kill/delete cycles of microVMs leave no state" "EXIT=0" -- \
	test -z "$(ls -A /run/hc)"

dockerd_stop
sleep 2
check "nothing of husk is left running" "none-left" -- \
	sh -c 'pgrep -fa "husk-(vmm|runtime)" || echo none-left'
echo "1..$n"
exit $((fail > 0))
