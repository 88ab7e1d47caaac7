#!/usr/bin/env bash
# check-config.sh CONFIG FRAGMENT...
# Verifies that every option a fragment asks for survived olddefconfig.
# Kconfig silently drops an option whose dependencies are not met (EROFS_FS
# without MISC_FILESYSTEMS, KVM_AMD without KVM), and a kernel that lacks it
# fails much later and far less clearly, so we refuse to build instead.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: check-config.sh CONFIG FRAGMENT..." >&2
	exit 2
fi
config=$1
shift
[ -r "$config" ] || { echo "check-config: cannot read $config" >&2; exit 2; }

# Current value of an option in the resolved config: y, m, a string or
# number, or "n" when it is absent or "is not set".
actual_value() {
	local line
	line=$(grep -E "^$1=" "$config" | tail -n 1 || true)
	if [ -n "$line" ]; then
		printf '%s\n' "${line#*=}"
	else
		printf 'n\n'
	fi
}

dropped=()
for fragment in "$@"; do
	[ -r "$fragment" ] || { echo "check-config: cannot read $fragment" >&2; exit 2; }
	lineno=0
	while IFS= read -r line || [ -n "$line" ]; do
		lineno=$((lineno + 1))
		case "$line" in
		"# CONFIG_"*" is not set")
			opt=${line#"# "}
			opt=${opt%" is not set"}
			want=n
			;;
		CONFIG_*=*)
			opt=${line%%=*}
			want=${line#*=}
			;;
		"" | "#"*) continue ;;
		*)
			echo "check-config: $fragment:$lineno: not a Kconfig line: $line" >&2
			exit 2
			;;
		esac
		got=$(actual_value "$opt")
		if [ "$got" != "$want" ]; then
			dropped+=("$opt (wanted $want, got $got; $fragment:$lineno)")
		fi
	done <"$fragment"
done

if [ ${#dropped[@]} -gt 0 ]; then
	echo "error: Kconfig did not keep ${#dropped[@]} option(s) of the fragment; check their dependencies:" >&2
	for d in "${dropped[@]}"; do
		echo "  $d" >&2
	done
	exit 1
fi
