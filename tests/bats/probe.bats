#!/usr/bin/env bats
# The KVM probe on this host. On the development machines /dev/kvm is PVM;
# on a host with hardware KVM the same test expects "hardware".
load helpers

@test "husk check reports this host's KVM as what it is" {
	run "$HUSK" check
	echo "$output"
	if [ -d /sys/module/kvm_pvm ]; then
		[ "$status" -eq 3 ]
		[[ "$output" == *"/dev/kvm: pvm (module kvm_pvm)"* ]]
		[[ "$output" == *"qemu backend"* ]]
	elif [ ! -e /dev/kvm ]; then
		[ "$status" -eq 3 ]
		[[ "$output" == *": none"* ]]
	else
		[ "$status" -eq 0 ]
		[[ "$output" == *": hardware"* ]]
	fi
}

@test "on a PVM host the probe guest itself fails with an internal error" {
	[ -d /sys/module/kvm_pvm ] || skip "this host's /dev/kvm is not PVM"
	run "$HUSK" check
	[[ "$output" == *"KVM_EXIT_INTERNAL_ERROR"* ]]
}

@test "husk check --quiet prints only the verdict" {
	run "$HUSK" check --quiet
	[[ "$output" =~ ^(hardware|pvm|unusable|none)$ ]]
}

@test "a device that is not KVM is reported unusable, not a crash" {
	run "$HUSK" check --device /dev/null --quiet
	[ "$status" -eq 3 ]
	[ "$output" = "unusable" ]
}

@test "a missing device is reported as none" {
	run "$HUSK" check --device /nonexistent/kvm
	[ "$status" -eq 3 ]
	[[ "$output" == *"/nonexistent/kvm: none"* ]]
	[[ "$output" == *"No such file"* ]]
}
