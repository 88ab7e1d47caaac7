#!/usr/bin/env bash
# `husk run` with husk-vmm, inside the KVM-capable test machine (nested
# SVM under QEMU TCG), as a user with hardware KVM would run it. The
# optimised build runs here: under emulation an ASan VMM is several times
# slower (docs/testing.md).
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" != --inside ]; then
	out=$(mktemp)
	"$here/scripts/testvm" --timeout 1500 --memory 2048 -- "$here/tests/tap/run_husk_vmm.sh" --inside >"$out" 2>&1
	rc=$?
	cat "$out"
	rm -f "$out"
	exit "$rc"
fi
BUILD="$here/build"
HUSK="$BUILD/bin/husk"
ROOTFS="$BUILD/share/husk/rootfs/busybox"
MODE=husk
RUN_TIMEOUT=90
export HUSK_CACHE_DIR=$(mktemp -d)
. "$here/tests/tap/run_checks.bash"
run_all
