#!/usr/bin/env bats
# The fragment check: every option we ask for must survive olddefconfig.
load helpers

CHECK="$HUSK_REPO/kernel/check-config.sh"

setup() {
	tmp=$(mktemp -d)
}
teardown() {
	rm -rf "$tmp"
}

@test "check-config accepts a config that kept every option" {
	printf 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=64\n' >"$tmp/frag"
	printf 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=64\n' >"$tmp/config"
	run "$CHECK" "$tmp/config" "$tmp/frag"
	[ "$status" -eq 0 ]
}

@test "an option absent from the config counts as not set" {
	printf '# CONFIG_B is not set\n' >"$tmp/frag"
	printf 'CONFIG_A=y\n' >"$tmp/config"
	run "$CHECK" "$tmp/config" "$tmp/frag"
	[ "$status" -eq 0 ]
}

@test "check-config names every dropped or changed option" {
	printf 'CONFIG_A=y\nCONFIG_C=y\n# CONFIG_B is not set\nCONFIG_N=64\n' >"$tmp/frag"
	printf 'CONFIG_C=y\nCONFIG_B=y\nCONFIG_N=8\n' >"$tmp/config"
	run "$CHECK" "$tmp/config" "$tmp/frag"
	[ "$status" -eq 1 ]
	[[ "$output" == *"3 option(s)"* ]]
	[[ "$output" == *"CONFIG_A (wanted y, got n"* ]]
	[[ "$output" == *"CONFIG_B (wanted n, got y"* ]]
	[[ "$output" == *"CONFIG_N (wanted 64, got 8"* ]]
	[[ "$output" != *"CONFIG_C"* ]]
}

@test "check-config rejects a line that is not Kconfig" {
	printf 'CONFIG_A=y\nrm -rf /\n' >"$tmp/frag"
	printf 'CONFIG_A=y\n' >"$tmp/config"
	run "$CHECK" "$tmp/config" "$tmp/frag"
	[ "$status" -eq 2 ]
	[[ "$output" == *"frag:2: not a Kconfig line"* ]]
}

@test "check-config reports unreadable inputs and usage" {
	run "$CHECK" "$tmp/none"
	[ "$status" -eq 2 ]
	run "$CHECK" "$tmp/none" "$tmp/none2"
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot read"* ]]
}

@test "the real kernel build fails naming an option Kconfig dropped" {
	[ -r /usr/src/linux-source-6.1.tar.xz ] || skip "linux-source-6.1 is not installed"
	run "$HUSK_REPO/kernel/build.sh" --config-only \
		--fragment "$HUSK_REPO/tests/data/kernel/erofs-without-misc.config"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"CONFIG_EROFS_FS (wanted y, got n"* ]]
}

@test "both of our fragments survive olddefconfig" {
	[ -r /usr/src/linux-source-6.1.tar.xz ] || skip "linux-source-6.1 is not installed"
	run "$HUSK_REPO/kernel/build.sh" --config-only --flavor testvm
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"config check passed"* ]]
}

@test "build.sh rejects unknown flavors and arguments" {
	run "$HUSK_REPO/kernel/build.sh" --flavor nope
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown flavor 'nope'"* ]]
	run "$HUSK_REPO/kernel/build.sh" --bogus
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown argument: --bogus"* ]]
}
