#!/usr/bin/env bats
# husk-vmm: on this host (refusal, command line), and booting the guest
# kernel inside the KVM-capable test machine.
load helpers

VMM="$BUILD/bin/husk-vmm"
# Guests boot under the optimised build: every VM exit passes through the
# VMM, and under emulation an ASan build makes boots several times slower.
# The VMM's code runs under ASan/UBSan in the unit tests and fuzzers.
BOOT_BUILD="$HUSK_REPO/build"

guest_kernel() {
	"$HUSK_REPO/kernel/build.sh" --flavor guest --quiet
}

@test "husk-vmm refuses a PVM host clearly (exit 5), never hangs" {
	[ -d /sys/module/kvm_pvm ] || skip "this host's /dev/kvm is not PVM"
	run timeout 30 "$VMM" --kernel /nonexistent
	echo "$output"
	[ "$status" -eq 5 ]
	[[ "$output" == *"PVM (kvm_pvm)"* ]]
	[[ "$output" == *"qemu backend"* ]]
}

@test "husk-vmm rejects bad command lines (exit 1) with a reason" {
	run "$VMM"
	[ "$status" -eq 1 ]
	[[ "$output" == *"--kernel is required"* ]]
	run "$VMM" --kernel k --cpus 0
	[ "$status" -eq 1 ]
	[[ "$output" == *"--cpus '0'"* ]]
	run "$VMM" --kernel k --cpus 33
	[ "$status" -eq 1 ]
	run "$VMM" --kernel k --memory 12x
	[ "$status" -eq 1 ]
	[[ "$output" == *"--memory '12x'"* ]]
	run "$VMM" --kernel k --disk a,rw
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown or bad option 'rw'"* ]]
	run "$VMM" --kernel k --port noequals
	[ "$status" -eq 1 ]
	run "$VMM" --kernel k --port 'bad/name=unix:/x'
	[ "$status" -eq 1 ]
	[[ "$output" == *"use letters"* ]]
	run "$VMM" --kernel k --port a=fd:3 --port a=fd:4
	[ "$status" -eq 1 ]
	[[ "$output" == *"given twice"* ]]
	run "$VMM" --kernel k --share 'bad/tag=/tmp'
	[ "$status" -eq 1 ]
	[[ "$output" == *"--share tag 'bad/tag'"* ]]
	run "$VMM" --kernel k --share a=/tmp --share a=/tmp
	[ "$status" -eq 1 ]
	[[ "$output" == *"--share a given twice"* ]]
	run "$VMM" --kernel k --share a=/tmp,rx
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown option 'rx'"* ]]
	run "$VMM" --kernel k --bogus
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown or incomplete option"* ]]
	run "$VMM" --kernel k stray
	[ "$status" -eq 1 ]
	run "$VMM" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"exit status: 0 poweroff"* ]]
}

check_boot() {
	local kernel=$1 cpus=$2
	run "$TESTVM" --timeout 600 --cpus "$cpus" -- env BUILD="$BOOT_BUILD" \
		"$HUSK_REPO/tests/vmm/run-check.sh" "$kernel" "$cpus"
	# The emulated nested SVM of the test machine now and then loses a
	# guest's interrupt and the guest stalls (docs/testing.md). One more
	# try for that case only: a second stall, or any wrong result, fails.
	if [[ "$output" == *"husk-vmm did not finish within"* ]]; then
		echo "# first try stalled; trying once more" >&3
		run "$TESTVM" --timeout 600 --cpus "$cpus" -- env BUILD="$BOOT_BUILD" \
			"$HUSK_REPO/tests/vmm/run-check.sh" "$kernel" "$cpus"
	fi
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"GUEST-CHECK: PASS"* ]]
	[[ "$output" != *"CHECK FAIL"* ]]
	[[ "$output" == *"CHECK ok:   CPUs online: $cpus"* ]]
	[[ "$output" == *"CHECK ok:   virtio devices: 2 blk, 1 console, 1 rng"* ]]
	[[ "$output" == *"host: port received: guest-got:hello-from-host"* ]]
	[[ "$output" == *"host: disk0 at 4096: GUEST-WROTE-THIS"* ]]
	[[ "$output" == *"host: read-only disk unchanged"* ]]
}

@test "husk-vmm boots vmlinux with 1 vCPU: memory, CPUs, disks, port, entropy, poweroff" {
	check_boot "$(guest_kernel)/vmlinux" 1
}

@test "husk-vmm boots bzImage with 2 vCPUs and the guest sees both" {
	check_boot "$(guest_kernel)/bzImage" 2
}

share_boot() {
	"$TESTVM" --timeout 600 -- env BUILD="$BOOT_BUILD" \
		"$HUSK_REPO/tests/vmm/run-share.sh" "$(guest_kernel)/vmlinux"
}

@test "husk-vmm shares host directories over virtio-9p: read, write, rename, read-only refused" {
	run share_boot
	# A stall of the emulated nested SVM (see check_boot): once more.
	if [[ "$output" == *"husk-vmm did not finish within"* ]]; then
		echo "# first try stalled; trying once more" >&3
		run share_boot
	fi
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"GUEST-CHECK: PASS"* ]]
	[[ "$output" != *"CHECK FAIL"* ]]
	[[ "$output" == *"CHECK ok:   read the host's file: HOST-WROTE-THIS"* ]]
	[[ "$output" == *"CHECK ok:   the device refuses writes on the ro share"* ]]
	[[ "$output" == *"host: from-guest.txt: GUEST-WROTE-THIS"* ]]
	[[ "$output" == *"host: big.bin is 1 MiB"* ]]
	[[ "$output" == *"host: rename arrived"* ]]
	[[ "$output" == *"host: symlink untouched"* ]]
	[[ "$output" == *"host: read-only share unchanged"* ]]
}

exit_statuses() {
	"$TESTVM" --timeout 900 -- env BUILD="$BOOT_BUILD" \
		"$HUSK_REPO/tests/vmm/exit-statuses.sh" "$1" "$2"
}

@test "husk-vmm's exit status tells poweroff, reboot, triple fault, stop (signal, control socket) and a bad kernel apart" {
	local k init
	k="$(guest_kernel)/vmlinux"
	init="$BOOT_BUILD/tests/vmm/guest-check.cpio"
	run exit_statuses "$k" "$init"
	# A guest stalled by the emulated nested SVM (docs/testing.md) shows
	# as its VM's time limit (124): one more try in a fresh test machine.
	if [[ "$output" == *"=124"* ]]; then
		echo "# a VM stalled; its output, then once more:" >&3
		printf '%s\n' "$output" | sed 's/^/# /' >&3
		run exit_statuses "$k" "$init"
	fi
	echo "$output"
	[[ "$output" == *"poweroff=0"* ]]
	[[ "$output" == *"reboot=2"* ]]
	[[ "$output" == *"triple=3"* ]]
	[[ "$output" == *"stopped=6"* ]]
	[[ "$output" == *'{"state":"running","cpus":1,"memory_mib":128,"devices":0}'* ]]
	[[ "$output" == *'{"error":"unknown command"}'* ]]
	[[ "$output" == *'{"ok":true}'* ]]
	[[ "$output" == *"ctlstop=6"* ]]
	[[ "$output" == *"garbage=1"* ]]
	[[ "$output" == *"not a bzImage"* ]]
	[[ "$output" == *"truncated=1"* ]]
	[[ "$output" == *"toobig=1"* ]]
	[[ "$output" == *"does not fit"* ]]
}
