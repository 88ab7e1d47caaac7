#!/usr/bin/env bash
# tests/run.sh [FILTER]
#
# Runs the whole suite: the C unit tests (cmocka, TAP output) and the bats
# integration tests, every result as a TAP line, and ends with one line
#   N passed, N failed, N skipped
# FILTER (a substring) limits the run to test files whose name contains it.
# BUILD names the build directory under test (default build-san).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export BUILD=${BUILD:-build-san}
case "$BUILD" in /*) ;; *) BUILD="$here/$BUILD" ;; esac
export HUSK_REPO="$here"
filter=${1:-}

passed=0
failed=0
skipped=0
failed_names=()

# Reads TAP on stdin, echoes it, and counts the results. A suite that
# announced a plan (1..N) but reported fewer results died on the way: the
# missing ones count as failures.
count_tap() {
	local suite=$1 line plan=0 seen=0
	while IFS= read -r line; do
		printf '%s\n' "$line"
		if [[ "$line" =~ ^1\.\.([0-9]+)$ ]]; then
			plan=$((plan + BASH_REMATCH[1]))
		fi
		case "$line" in
		"not ok "*"# SKIP"* | "not ok "*"# skip"*)
			# cmocka 1.1 reports a skipped test as "not ok ... # SKIP"
			seen=$((seen + 1))
			skipped=$((skipped + 1))
			;;
		"not ok "*)
			seen=$((seen + 1))
			failed=$((failed + 1))
			failed_names+=("$suite: ${line#not ok }")
			;;
		"ok "*)
			seen=$((seen + 1))
			shopt -s nocasematch
			if [[ "$line" == *"# skip"* ]]; then
				skipped=$((skipped + 1))
			else
				passed=$((passed + 1))
			fi
			shopt -u nocasematch
			;;
		esac
	done
	if [ "$seen" -lt "$plan" ]; then
		echo "not ok - $suite ended after $seen of $plan tests"
		failed=$((failed + plan - seen))
		failed_names+=("$suite: $((plan - seen)) tests never ran")
	fi
}

run_suite() {
	local suite=$1
	shift
	echo "# --- $suite"
	local out rc
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	count_tap "$suite" <"$out"
	# A suite that dies before reporting (a crash, a sanitizer abort)
	# must still count as a failure.
	if [ "$rc" != 0 ] && ! grep -q '^not ok ' "$out"; then
		echo "not ok - $suite exited with status $rc without a failing test"
		failed=$((failed + 1))
		failed_names+=("$suite: exit status $rc")
	fi
	rm -f "$out"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in "$BUILD"/tests/unit/test_*; do
	[ -x "$t" ] || continue
	[[ -z "$filter" || "$t" == *"$filter"* ]] || continue
	run_suite "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
done

for t in tests/bats/*.bats; do
	[[ -z "$filter" || "$t" == *"$filter"* ]] || continue
	run_suite "bats/$(basename "$t")" bats --tap "$t"
done

# TAP-producing scripts: `husk run`'s acceptance checks in each mode.
for t in tests/tap/*.sh; do
	[[ -z "$filter" || "$t" == *"$filter"* ]] || continue
	run_suite "tap/$(basename "$t")" "$t"
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "# failed:"
	printf '#   %s\n' "${failed_names[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
