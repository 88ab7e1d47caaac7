#!/usr/bin/env bats
# The sources follow .clang-format (make format fixes them).
load helpers

@test "every C source and header is clang-format clean" {
	command -v clang-format >/dev/null || skip "clang-format is not installed"
	cd "$HUSK_REPO"
	run make -s format-check
	echo "$output" | head -n 40
	[ "$status" -eq 0 ]
}
