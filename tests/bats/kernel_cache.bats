#!/usr/bin/env bats
# A second build with the same fragment and source reuses the cached kernel
# (make kernels, run before the suite, did the first).
load helpers

reuses() {
	local flavor=$1 dir before after
	dir=$("$HUSK_REPO/kernel/build.sh" --flavor "$flavor" --quiet)
	[ -s "$dir/bzImage" ]
	[ -s "$dir/vmlinux" ]
	before=$(stat -c %Y.%i "$dir/bzImage" "$dir/vmlinux")
	run "$HUSK_REPO/kernel/build.sh" --flavor "$flavor"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cached: $dir"* ]]
	[[ "$output" != *"building"* ]]
	after=$(stat -c %Y.%i "$dir/bzImage" "$dir/vmlinux")
	[ "$before" = "$after" ]
}

@test "a second guest kernel build reuses the cache" {
	reuses guest
}

@test "a second test-machine kernel build reuses the cache" {
	reuses testvm
}

@test "the cache key changes with the fragment" {
	local a b
	a=$("$HUSK_REPO/kernel/build.sh" --flavor guest --quiet)
	b=$("$HUSK_REPO/kernel/build.sh" --flavor testvm --quiet)
	[ "$a" != "$b" ]
	[[ "$a" == */kernel/guest-* ]]
	[[ "$b" == */kernel/testvm-* ]]
}
