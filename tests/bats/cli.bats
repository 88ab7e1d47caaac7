#!/usr/bin/env bats
load helpers

@test "husk help lists the commands" {
	run "$HUSK" help
	[ "$status" -eq 0 ]
	[[ "$output" == *"check"* ]]
}

@test "husk without a command is a usage error (125)" {
	run "$HUSK"
	[ "$status" -eq 125 ]
	[[ "$output" == *"usage: husk [--root DIR] COMMAND"* ]]
}

@test "an unknown command is named in the error (125)" {
	run "$HUSK" frobnicate
	[ "$status" -eq 125 ]
	[[ "$output" == *"unknown command 'frobnicate'"* ]]
}

@test "husk check rejects unknown options and stray arguments (125)" {
	run "$HUSK" check --bogus
	[ "$status" -eq 125 ]
	run "$HUSK" check extra
	[ "$status" -eq 125 ]
	[[ "$output" == *"unexpected argument 'extra'"* ]]
}

@test "husk version prints a version" {
	run "$HUSK" version
	[ "$status" -eq 0 ]
	[[ "$output" == "husk "* ]]
}
