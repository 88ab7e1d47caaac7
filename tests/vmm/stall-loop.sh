#!/bin/bash
# tests/vmm/stall-loop.sh [RUNS]  (inside the test machine)
#
# Runs `husk run --vmm husk --rootfs BUSYBOX true` RUNS times (default 30)
# and prints each run's status and time; after a failed run it prints the
# guest console and husk-vmm's log, and stops after two. The diagnostic
# behind "A known flake of the emulated nested SVM" in docs/testing.md:
#   scripts/testvm --timeout 1400 --cpus 1 -- tests/vmm/stall-loop.sh
here=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-30}
rootfs=$here/build/share/husk/rootfs/busybox
export HUSK_CACHE_DIR=$(mktemp -d) TMPDIR=/tmp
ok=0 bad=0
for i in $(seq 1 "$runs"); do
	s=$(date +%s%N)
	timeout -k 5 60 "$here/build/bin/husk" run --debug --vmm husk --rootfs "$rootfs" true >"/tmp/stall.$i" 2>&1
	rc=$?
	echo "run $i rc=$rc $((($(date +%s%N) - s) / 1000000))ms"
	d=$(ls -td /tmp/husk-run-* 2>/dev/null | head -1)
	if [ "$rc" != 0 ]; then
		bad=$((bad + 1))
		echo "--- run $i: $d"
		tail -5 "/tmp/stall.$i"
		echo "--- console"
		tail -30 "$d/console.log"
		echo "--- vmm.log"
		tail -30 "$d/vmm.log"
		[ "$bad" -ge 2 ] && break
	else
		ok=$((ok + 1))
		rm -rf "$d"
	fi
done
echo "ok=$ok bad=$bad"
[ "$bad" = 0 ]
