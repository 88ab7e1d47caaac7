#!/usr/bin/env bash
# husk run's network with the qemu backend (-netdev user) on this host.
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$here/build-san}
HUSK="$BUILD/bin/husk"
ROOTFS="$BUILD/share/husk/rootfs/busybox"
MODE=qemu
NET_PORT_BASE=18180
[ -e "$BUILD/share/husk/vmlinux" ] || { echo "1..0 # skip no guest kernel: run make kernels"; exit 0; }
export HUSK_CACHE_DIR=${HUSK_CACHE_DIR:-/var/cache/husk/rootfs}
. "$here/tests/tap/run_checks.bash"
. "$here/tests/tap/net_checks.bash"
run_net_all
