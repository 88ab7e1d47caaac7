#!/usr/bin/env bash
# Pods with husk-vmm in the KVM-capable test machine: husk-runtime's
# members of one pod share one microVM (their roots through the pod's 9p
# share), see each other's processes when one joins the other's PID
# namespace, talk over localhost; two pods are two VMs; the last member's
# delete takes the VM and everything of the pod away.
# tests/bats/runtime_pod.bats checks the rest fast, with a host agent.
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$here/build}
case "$BUILD" in /*) ;; *) BUILD="$here/$BUILD" ;; esac
if [ "${1:-}" != --inside ]; then
	[ "$(id -u)" = 0 ] || { echo "1..0 # skip needs root"; exit 0; }
	[ -x "$BUILD/bin/husk-runtime" ] || { echo "1..0 # skip no build in $BUILD"; exit 0; }
	exec "$here/scripts/testvm" --timeout 900 --memory 3072 -- \
		env BUILD="$BUILD" "$here/tests/tap/pod_vm.sh" --inside
fi
set -u
W=$(mktemp -d)
export HUSK_CACHE_DIR="$W/cache" HUSK_RUNTIME_VMM=husk RUNTIME="$BUILD/bin/husk-runtime"
ROOT="$W/state"
R=("$RUNTIME" --root "$ROOT")
ROOTFS="$BUILD/share/husk/rootfs/busybox"
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
echo "1..9"

# member NAME POD [PIDNS] -- ARGS...: create and start it
member() {
	local name=$1 pod=$2
	shift 2
	"$here/tests/runtime/pod-bundle.sh" "$W/$name" "$ROOTFS" "$pod" "$@" &&
		timeout 200 "${R[@]}" create --bundle "$W/$name" --pid-file "$W/$name.pid" "$name" </dev/null >"$W/$name.out" 2>&1 &&
		timeout 60 "${R[@]}" start "$name"
}
vmms() { pgrep -x husk-vmm | wc -l; }
console() { tail -n 15 "$ROOT/.pods/$1/console.log" 2>/dev/null; cat "$ROOT/.pods/$1/daemon.log" 2>/dev/null; }

if member a p1 -- sh -c 'while :; do echo pong | nc -l -p 8080; done' 2>"$W/err" &&
	member b p1 "/proc/$(cat "$W/a.pid" 2>/dev/null)/ns/pid" -- sh -c 'sleep 1000' 2>>"$W/err"; then
	ok "two members of pod p1 created and started"
else
	no "two members of pod p1" "$(cat "$W/err" "$W/a.out" "$W/b.out" 2>/dev/null)" "$(console p1)"
fi
v=$(vmms)
if [ "$v" = 1 ]; then ok "one microVM for the pod"; else no "one microVM for the pod" "husk-vmm processes: $v"; fi
out=$(timeout 60 "${R[@]}" exec b ps 2>&1)
if [[ "$out" == *"nc -l -p 8080"* ]] && [[ "$out" == *"sleep 1000"* ]]; then ok "b joined a's PID namespace and sees its processes"; else no "shared PID namespace" "$out"; fi
out=$(timeout 60 "${R[@]}" exec b sh -c 'for i in 1 2 3 4 5; do nc 127.0.0.1 8080 </dev/null && exit 0; sleep 1; done; exit 1' 2>&1)
if [ "$out" = pong ]; then ok "b reaches a's server over localhost"; else no "localhost between members" "$out"; fi
b1=$(timeout 60 "${R[@]}" exec a cat /proc/sys/kernel/random/boot_id 2>&1)
member c p2 -- sh -c 'sleep 1001' 2>"$W/err"
v=$(vmms)
b2=$(timeout 60 "${R[@]}" exec c cat /proc/sys/kernel/random/boot_id 2>&1)
b3=$(timeout 60 "${R[@]}" exec b cat /proc/sys/kernel/random/boot_id 2>&1)
out=$(timeout 60 "${R[@]}" exec c ps 2>&1)
if [ "$v" = 2 ] && [ -n "$b1" ] && [ "$b1" = "$b3" ] && [ "$b1" != "$b2" ] && [[ "$out" != *"sleep 1000"* ]]; then
	ok "a second pod is a second microVM (boot ids: p1 $b1, p2 $b2)"
else
	no "two pods, two VMs" "vmms=$v b1=$b1 b2=$b2 b3=$b3" "$out" "$(cat "$W/err")" "$(console p2)"
fi
"$here/tests/runtime/pod-bundle.sh" "$W/d" "$ROOTFS" p1 -- sh -c 'echo from-d; exit 7' >/dev/null
out=$(timeout 120 "${R[@]}" run --bundle "$W/d" d </dev/null 2>&1)
rc=$?
if [ "$rc" = 7 ] && [ "$out" = from-d ]; then ok "run in the pod: output and exit status"; else no "run in the pod" "rc=$rc" "$out"; fi
mkdir -p "$W/vol" && echo from-host >"$W/vol/in"
POD_BIND="$W/vol:/data" "$here/tests/runtime/pod-bundle.sh" "$W/e" "$ROOTFS" p1 -- sh -c 'cat /data/in; echo from-e >/data/out' >/dev/null
POD_BIND="$W/vol:/data:ro" "$here/tests/runtime/pod-bundle.sh" "$W/f" "$ROOTFS" p1 -- sh -c '{ echo x >/data/ro; } 2>/dev/null || echo refused' >/dev/null
out=$(timeout 120 "${R[@]}" run --bundle "$W/e" e </dev/null 2>&1)
rc=$?
out2=$(timeout 120 "${R[@]}" run --bundle "$W/f" f </dev/null 2>&1)
rc2=$?
if [ "$rc/$out" = 0/from-host ] && [ "$rc2/$out2" = 0/refused ] && [ "$(cat "$W/vol/out" 2>/dev/null)" = from-e ] && [ ! -e "$W/vol/ro" ]; then
	ok "a member's bind mounts through the pod's share: read-write and read-only"
else
	no "pod member volumes" "e: rc=$rc $out" "f: rc=$rc2 $out2" "$(ls "$W/vol")" "$(cat "$W/f/config.json" | grep -A3 /data)"
fi
for c in a b c; do timeout 60 "${R[@]}" delete --force "$c" >/dev/null 2>&1; done
for _ in $(seq 100); do [ "$(vmms)" = 0 ] && [ ! -e "$ROOT/.pods/p1" ] && [ ! -e "$ROOT/.pods/p2" ] && break; sleep 0.1; done
left=$(ls -A "$ROOT" "$ROOT/.pods" 2>/dev/null | grep -v '^\.pods$' | grep -v ':$' | grep .)
if [ "$(vmms)" = 0 ] && [ -z "$left" ] && ! grep -q "$ROOT" /proc/mounts; then
	ok "deleting the last members ends both VMs and leaves nothing"
else
	no "nothing left" "vmms=$(vmms)" "$left" "$(grep "$ROOT" /proc/mounts)"
fi
# The same through the husk CLI: a --share-pid pod of two members.
H=("$BUILD/bin/husk" --root "$W/husk")
"${H[@]}" pod create --name web --share-pid >/dev/null 2>"$W/err" &&
	timeout 200 "${H[@]}" run -d --pod web --name srv --rootfs "$ROOTFS" sh -c 'while :; do echo hi-from-srv | nc -l -p 9090; done' >/dev/null 2>>"$W/err" &&
	timeout 200 "${H[@]}" run -d --pod web --name cli --rootfs "$ROOTFS" sleep 1000 >/dev/null 2>>"$W/err"
out=$(timeout 60 "${H[@]}" exec cli sh -c 'ps; for i in 1 2 3 4 5; do nc 127.0.0.1 9090 </dev/null && exit 0; sleep 1; done' 2>&1)
v=$(vmms)
timeout 120 "${H[@]}" pod rm -f web >/dev/null 2>>"$W/err"
for _ in $(seq 100); do [ "$(vmms)" = 0 ] && break; sleep 0.1; done
if [[ "$out" == *"nc -l -p 9090"* ]] && [[ "$out" == *hi-from-srv ]] && [ "$v" = 1 ] && [ "$(vmms)" = 0 ] &&
	[ -z "$(ls -A "$W/husk/runtime/.pods" 2>/dev/null)" ]; then
	ok "husk pod create --share-pid, run -d --pod twice: one VM, shared PIDs, localhost; pod rm -f ends it"
else
	no "husk CLI pod" "vmms while running=$v, after=$(vmms)" "$out" "$(cat "$W/err")" "$(ls -A "$W/husk/runtime/.pods" 2>&1)"
fi
rm -rf "$W"
echo "# $n checks, $fails failed"
[ "$fails" = 0 ]
