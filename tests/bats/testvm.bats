#!/usr/bin/env bats
# The KVM-capable test machine: QEMU TCG with -cpu max, our test kernel with
# kvm_amd built in, the host root read-only under a tmpfs overlay.
load helpers

setup_file() {
	testvm_kernel >/dev/null || skip "no test kernel: run make kernels"
}

setup() {
	tmp=$(mktemp -d)
}
teardown() {
	rm -rf "$tmp"
}

@test "testvm streams output and returns the command's exit status" {
	run "$TESTVM" --timeout 120 -- sh -c 'echo hello from the test machine; exit 3'
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"hello from the test machine"* ]]
}

@test "testvm passes environment and working directory, and sets up the machine" {
	cd "$tmp"
	HUSK_TEST_VALUE='a b$c' run "$TESTVM" --timeout 120 -- sh -c \
		'echo "value=$HUSK_TEST_VALUE"; echo "cwd=$(pwd)"; hostname;
		 cat /sys/class/net/lo/operstate; stat -fc %T /sys/fs/cgroup;
		 command -v ip mkfs.erofs >/dev/null && echo path-ok'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'value=a b$c'* ]]
	[[ "$output" == *"cwd=$tmp"* ]]
	[[ "$output" == *"husk-testvm"* ]]
	[[ "$output" == *"unknown"* || "$output" == *"up"* ]]
	[[ "$output" == *"cgroup2fs"* ]]
	[[ "$output" == *"path-ok"* ]]
}

@test "writes inside the test machine never reach the host" {
	echo original >"$tmp/file"
	run "$TESTVM" --timeout 120 -- sh -c "echo changed > $tmp/file; touch $tmp/new; cat $tmp/file"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"changed"* ]]
	[ "$(cat "$tmp/file")" = original ]
	[ ! -e "$tmp/new" ]
}

@test "a command killed by a signal gives 128+N" {
	run "$TESTVM" --timeout 120 -- sh -c 'kill -9 $$'
	[ "$status" -eq 137 ]
}

@test "a command that does not finish is stopped at the timeout (124)" {
	run "$TESTVM" --timeout 15 -- sleep 1000
	echo "$output"
	[ "$status" -eq 124 ]
	[[ "$output" == *"timed out after 15 s"* ]]
}

@test "testvm refuses a bad command line (125)" {
	run "$TESTVM"
	[ "$status" -eq 125 ]
	[[ "$output" == *"no command given"* ]]
	run "$TESTVM" --timeout abc -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"not a positive number: abc"* ]]
	run "$TESTVM" --bogus -- true
	[ "$status" -eq 125 ]
	run "$TESTVM" --initrd "$tmp/none" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"no init at"* ]]
}

@test "a kernel that never reports a status is a machine failure (125)" {
	# An init image that is not an init: the kernel panics, QEMU exits.
	echo garbage >"$tmp/bad.cpio"
	run "$TESTVM" --timeout 120 --initrd "$tmp/bad.cpio" -- true
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"without reporting a status"* ]]
}

@test "inside the test machine /dev/kvm is real KVM: a guest runs and exits as expected" {
	run "$TESTVM" --timeout 150 -- "$BUILD/tests/kvm_smoke"
	# Its guest is five instructions: a run that does not end is the
	# emulated nested SVM's stall (docs/testing.md), never a wrong
	# result. One more try in a fresh machine.
	if [ "$status" -eq 124 ]; then
		echo "# first try stalled; trying once more" >&3
		run "$TESTVM" --timeout 150 -- "$BUILD/tests/kvm_smoke"
	fi
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"exit 2: 2-byte MMIO write of 0x1336 at 0x9000"* ]]
	[[ "$output" == *"kvm_smoke: passed"* ]]
}

@test "inside the test machine the probe reports hardware KVM (kvm_amd)" {
	run "$TESTVM" --timeout 300 -- "$HUSK" check
	# A stall of the emulated nested SVM (docs/testing.md): one more try.
	if [[ "$output" == *"did not finish within"* ]]; then
		echo "# first try stalled; trying once more" >&3
		run "$TESTVM" --timeout 300 -- "$HUSK" check
	fi
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"/dev/kvm: hardware (module kvm_amd)"* ]]
	[[ "$output" == *"took an exception and an interrupt"* ]]
}

@test "a frozen machine (its heartbeat stops) is run once more, then is a machine failure (125); a slow one is not frozen" {
	HUSK_TESTVM_FROZEN_S=12 run "$TESTVM" --timeout 200 -- sh -c 'pkill -STOP -x heartbeat; echo stopped-it; sleep 150'
	echo "$output"
	[ "$status" -eq 125 ]
	[ "$(grep -c stopped-it <<<"$output")" = 2 ]
	[[ "$output" == *"froze (no heartbeat for 12 s"*"running the command once more"* ]]
	[[ "$output" == *"froze twice"* ]]
	# a command that sleeps well past the limit keeps its heartbeat (the
	# limit is wider here: under load a heartbeat can come late)
	# (its own exit status says it ran to the end)
	HUSK_TESTVM_FROZEN_S=25 run "$TESTVM" --timeout 200 -- sh -c 'sleep 60; exit 7'
	echo "$output"
	[ "$status" -eq 7 ]
	[[ "$output" != *froze* ]]
}
