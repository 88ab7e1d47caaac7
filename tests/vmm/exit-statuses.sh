#!/usr/bin/env bash
# tests/vmm/exit-statuses.sh KERNEL INITRD
#
# Runs inside the KVM-capable test machine (tests/bats/vmm.bats): ends
# guests in each way husk-vmm tells apart and prints NAME=STATUS lines.
# Each guest's console goes to a file; when a guest does not end as
# expected its last lines are printed, so that a failure in CI says where
# the guest was (the kernel's messages are on: no "quiet").
set -u
k=$1
init=$2
build=${BUILD:-build}
vmm="$build/bin/husk-vmm"
dir=$(mktemp -d)
trap 'rm -rf "$dir"; kill $(jobs -p) 2>/dev/null' EXIT

# NAME EXPECTED CMDLINE-EXTRA: one guest, at most 120 s.
guest() {
	local name=$1 want=$2 extra=$3 status
	timeout 120 "$vmm" --kernel "$k" --initrd "$init" --memory 128 \
		--cmdline "console=ttyS0 panic=-1 $extra" >"$dir/$name.log" 2>&1
	status=$?
	echo "$name=$status"
	if [ "$status" != "$want" ]; then
		echo "# $name: the guest's last lines:"
		tail -n 25 "$dir/$name.log" | sed 's/^/#   /'
	fi
}

guest poweroff 0 'husk.action=poweroff'
guest reboot 2 'reboot=k husk.action=reboot'
guest triple 3 'reboot=t husk.action=reboot'

"$vmm" --kernel "$k" --initrd "$init" --memory 128 \
	--cmdline 'console=ttyS0 quiet husk.action=wait' >/dev/null &
pid=$!
sleep 5
kill -TERM $pid
wait $pid
echo stopped=$?

"$vmm" --kernel "$k" --initrd "$init" --memory 128 \
	--cmdline 'console=ttyS0 quiet husk.action=wait' --control "$dir/ctl.sock" >/dev/null &
pid=$!
for _ in $(seq 100); do
	[ -S "$dir/ctl.sock" ] && break
	sleep 0.1
done
echo state | socat - "UNIX-CONNECT:$dir/ctl.sock"
echo bogus | socat - "UNIX-CONNECT:$dir/ctl.sock"
echo stop | socat - "UNIX-CONNECT:$dir/ctl.sock"
wait $pid
echo ctlstop=$?

head -c 100000 /dev/urandom >"$dir/garbage"
timeout 120 "$vmm" --kernel "$dir/garbage"
echo garbage=$?
head -c 64 "$k" >"$dir/truncated"
timeout 120 "$vmm" --kernel "$dir/truncated"
echo truncated=$?
timeout 120 "$vmm" --kernel "$k" --memory 32 --initrd "$k"
echo toobig=$?
