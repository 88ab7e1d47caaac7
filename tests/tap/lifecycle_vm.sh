#!/usr/bin/env bash
# husk run -d, logs, exec, stop, rm with husk-vmm: each container in a real
# microVM inside the KVM-capable test machine (tests/bats/lifecycle.bats
# checks the rest fast, with the agent on the host). Also foreground
# `husk run -v`. BUILD defaults to the optimised build, as the other VM
# checks: under emulation an ASan VMM is several times slower.
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$here/build}
case "$BUILD" in /*) ;; *) BUILD="$here/$BUILD" ;; esac
if [ "${1:-}" != --inside ]; then
	[ "$(id -u)" = 0 ] || { echo "1..0 # skip needs root"; exit 0; }
	[ -x "$BUILD/bin/husk" ] || { echo "1..0 # skip no build in $BUILD"; exit 0; }
	exec "$here/scripts/testvm" --timeout 600 --memory 2048 -- \
		env BUILD="$BUILD" "$here/tests/tap/lifecycle_vm.sh" --inside
fi
set -u
W=$(mktemp -d)
export HUSK_CACHE_DIR="$W/cache" HUSK_RUNTIME_VMM=husk
H=("$BUILD/bin/husk" --root "$W/root")
ROOTFS="$BUILD/share/husk/rootfs/busybox"
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
echo "1..7"

mkdir "$W/vol"
id=$(timeout 240 "${H[@]}" run -d --vmm husk --name vm1 -m 64m -v "$W/vol:/data" --rootfs "$ROOTFS" \
	sh -c 'echo hello-vm; cat /sys/fs/cgroup/memory.max; trap "echo got-term; exit 3" TERM; while :; do sleep 0.1; done' 2>"$W/err")
if [[ "$id" =~ ^[0-9a-f]{64}$ ]]; then ok "run -d printed an id"; else no "run -d printed an id" "$id" "$(cat "$W/err")"; fi
sleep 1
out=$("${H[@]}" logs vm1 2>&1)
if [ "$out" = "$(printf 'hello-vm\n%s' $((64 << 20)))" ]; then ok "logs: the output and the memory limit"; else no "logs" "$out"; fi
out=$(timeout 60 "${H[@]}" exec vm1 sh -c 'echo x >/data/f; uname -r; exit 5' 2>&1)
rc=$?
if [ "$rc" = 5 ] && [ -n "$out" ] && [ "$(cat "$W/vol/f" 2>/dev/null)" = x ]; then ok "exec: status, output, volume write ($out)"; else no "exec" "rc=$rc" "$out"; fi
timeout 60 "${H[@]}" stop -t 10 vm1 >/dev/null 2>&1
out=$("${H[@]}" ps -a 2>&1)
if [[ "$out" == *"Exited (3)"*vm1* ]] && [[ "$("${H[@]}" logs vm1)" == *got-term* ]]; then ok "stop: SIGTERM, then Exited (3)"; else no "stop" "$out"; fi
rmout=$("${H[@]}" rm vm1 2>&1)
if [ -z "$(ls -A "$W/root/containers" "$W/root/runtime" 2>/dev/null | grep -v '^\.lock$' | grep -v ':$' | grep .)" ] && ! pgrep -f husk-vmm >/dev/null; then
	ok "rm: nothing left, no VMM running"
else
	no "rm" "$rmout" "$(ls -laR "$W/root/containers" "$W/root/runtime")" "$(pgrep -af husk-vmm)"
fi
echo from-host >"$W/vol/g"
out=$(timeout 120 "${H[@]}" run --rm --vmm husk -v "$W/vol:/v:ro" --rootfs "$ROOTFS" sh -c 'cat /v/g; { echo y >/v/h; } 2>/dev/null || echo refused' 2>&1)
if [[ "$out" == from-host*refused ]]; then ok "foreground run -v :ro"; else no "foreground run -v :ro" "$out"; fi
out=$(timeout 120 "${H[@]}" run --rm --vmm husk -v "$W/vol:/v" --rootfs "$ROOTFS" sh -c 'cat /v/g; echo y >/v/h' 2>&1)
if [ "$out" = from-host ] && [ "$(cat "$W/vol/h" 2>/dev/null)" = y ]; then ok "foreground run -v rw"; else no "foreground run -v rw" "$out"; fi
rm -rf "$W"
echo "# $n checks, $fails failed"
[ "$fails" = 0 ]
