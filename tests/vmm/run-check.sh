#!/usr/bin/env bash
# tests/vmm/run-check.sh KERNEL CPUS [husk-vmm options...]
#
# Runs inside the KVM-capable test machine (tests/bats/vmm.bats): boots
# KERNEL under husk-vmm with the test guest (tests/vmm/guest_check.c), two
# disks (one read-only), virtio-rng and a console port named "check" whose
# host end a socat client drives. Prints the guest's lines, then what the
# host side verified, and exits with husk-vmm's status.
set -u
kernel=$1
cpus=$2
shift 2
build=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"; kill $(jobs -p) 2>/dev/null' EXIT

printf 'HUSK-DISK-0' >"$dir/disk0"
truncate -s 1M "$dir/disk0"
printf 'HUSK-DISK-1' >"$dir/disk1"
truncate -s 1M "$dir/disk1"
ro_before=$(sha256sum <"$dir/disk1")

# The host end of the port: connect as soon as husk-vmm listens, send one
# line, keep the connection open, record what the guest answers.
(
	for _ in $(seq 300); do
		[ -S "$dir/check.sock" ] && break
		sleep 0.1
	done
	(echo hello-from-host; sleep 60) | socat - "UNIX-CONNECT:$dir/check.sock" >"$dir/port.out"
) &

# A limit per VM, so that a VM that never ends says so here rather than
# using up the test machine's own limit.
timeout 150 "$build/bin/husk-vmm" --kernel "$kernel" --initrd "$build/tests/vmm/guest-check.cpio" \
	--cpus "$cpus" --memory 128 --disk "$dir/disk0" --disk "$dir/disk1,ro" --rng \
	--port "check=unix:$dir/check.sock" \
	--cmdline "console=ttyS0 reboot=k panic=-1 quiet husk.cpus=$cpus husk.mem_mib=128" "$@"
status=$?

[ "$status" = 124 ] && echo "host: husk-vmm did not finish within 150 s"
echo "host: husk-vmm exit status $status"
echo "host: port received: $(cat "$dir/port.out" 2>/dev/null)"
written=$(dd if="$dir/disk0" bs=1 skip=4096 count=16 2>/dev/null)
echo "host: disk0 at 4096: $written"
[ "$(sha256sum <"$dir/disk1")" = "$ro_before" ] && echo "host: read-only disk unchanged"
exit "$status"
