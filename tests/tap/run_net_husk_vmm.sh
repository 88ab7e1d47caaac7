#!/usr/bin/env bash
# husk run's network with husk-vmm (virtio-net + libslirp), inside the
# KVM-capable test machine. The optimised build boots, as in
# run_husk_vmm.sh; HUSK_NET_BUILD picks another build directory.
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" != --inside ]; then
	out=$(mktemp)
	"$here/scripts/testvm" --timeout 900 --memory 2048 -- env HUSK_NET_BUILD="${HUSK_NET_BUILD:-}" NET_ONLY_TAP="${NET_ONLY_TAP:-0}" \
		"$here/tests/tap/run_net_husk_vmm.sh" --inside >"$out" 2>&1
	rc=$?
	cat "$out"
	rm -f "$out"
	exit "$rc"
fi
BUILD=${HUSK_NET_BUILD:-$here/build}
HUSK="$BUILD/bin/husk"
ROOTFS="$BUILD/share/husk/rootfs/busybox"
MODE=husk
RUN_TIMEOUT=90
export HUSK_CACHE_DIR=$(mktemp -d)
. "$here/tests/tap/run_checks.bash"
. "$here/tests/tap/net_checks.bash"
# The test machine is root with tun and bridge: the tap checks run too
# (NET_ONLY_TAP=1 runs only those).
NET_TAP=1
if [ "${NET_ONLY_TAP:-0}" = 1 ]; then
	check_net_tap_two_vms
	check_net_tap_errors
	echo "1..$n"
	[ "$fails" = 0 ]
	exit
fi
run_net_all
