#!/usr/bin/env bash
# tests/vmm/run-share.sh KERNEL [husk-vmm options...]
#
# Runs inside the KVM-capable test machine (tests/bats/vmm.bats): boots
# KERNEL under husk-vmm with the test guest in husk.action=share mode and
# two virtio-9p shares, "rw" and "ro" (read-only). Prints the guest's
# lines, then what the host side verified, and exits with husk-vmm's
# status.
set -u
kernel=$1
shift
build=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

mkdir "$dir/rw" "$dir/ro"
echo HOST-WROTE-THIS >"$dir/rw/from-host.txt"
ln -s / "$dir/rw/escape"
echo HOST-RO >"$dir/ro/from-host.txt"
ro_before=$(cd "$dir/ro" && ls -la --time-style=+%s . && sha256sum ./*)

timeout 150 "$build/bin/husk-vmm" --kernel "$kernel" --initrd "$build/tests/vmm/guest-check.cpio" \
	--memory 128 --share "rw=$dir/rw" --share "ro=$dir/ro,ro" \
	--cmdline "console=ttyS0 reboot=k panic=-1 quiet husk.action=share" "$@"
status=$?

[ "$status" = 124 ] && echo "host: husk-vmm did not finish within 150 s"
echo "host: husk-vmm exit status $status"
echo "host: from-guest.txt: $(cat "$dir/rw/from-guest.txt" 2>/dev/null)"
[ "$(stat -c %s "$dir/rw/big.bin" 2>/dev/null)" = 1048576 ] && echo "host: big.bin is 1 MiB"
[ -f "$dir/rw/newdir/renamed.txt" ] && [ ! -e "$dir/rw/tmp.txt" ] && echo "host: rename arrived"
[ "$(readlink "$dir/rw/escape")" = / ] && echo "host: symlink untouched"
[ "$(cd "$dir/ro" && ls -la --time-style=+%s . && sha256sum ./*)" = "$ro_before" ] && echo "host: read-only share unchanged"
exit "$status"
