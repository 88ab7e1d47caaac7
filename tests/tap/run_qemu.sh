#!/usr/bin/env bash
# `husk run` with the qemu backend on this host (TCG where /dev/kvm is not
# hardware KVM), booting the guest kernel and husk-agent for real.
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$here/build-san}
HUSK="$BUILD/bin/husk"
ROOTFS="$BUILD/share/husk/rootfs/busybox"
MODE=qemu
[ -e "$BUILD/share/husk/vmlinux" ] || { echo "1..0 # skip no guest kernel: run make kernels"; exit 0; }
export HUSK_CACHE_DIR=${HUSK_CACHE_DIR:-/var/cache/husk/rootfs}
. "$here/tests/tap/run_checks.bash"
run_all
