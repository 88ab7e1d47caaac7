# Shared set-up for the bats suites. tests/run.sh exports HUSK_REPO and
# BUILD (the build directory under test, absolute).
HUSK_REPO=${HUSK_REPO:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
BUILD=${BUILD:-$HUSK_REPO/build-san}
case "$BUILD" in /*) ;; *) BUILD="$HUSK_REPO/$BUILD" ;; esac
export BUILD
HUSK="$BUILD/bin/husk"
TESTVM="$HUSK_REPO/scripts/testvm"

# The test machine needs its kernel; building it takes minutes, so tests
# expect `make kernels` (part of `make test`) to have run.
testvm_kernel() {
	local key_dir
	key_dir=$("$HUSK_REPO/kernel/build.sh" --flavor testvm --quiet 2>/dev/null) || return 1
	echo "$key_dir/bzImage"
}
