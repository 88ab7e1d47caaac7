#!/usr/bin/env bash
# build.sh [--flavor guest|testvm] [--config-only] [--fragment FILE]... [--quiet]
#
# Builds a kernel from Debian's linux-source-6.1: tinyconfig, our fragments
# merged on top, olddefconfig, a check that every fragment line survived,
# then vmlinux and bzImage. Results are cached outside the clone under
#   $HUSK_CACHE/kernel/<flavor>-<key>/{bzImage,vmlinux,config}
# where <key> hashes the fragments, the source package version and
# BUILD_ABI; a second build with the same inputs reuses the cache.
# Prints the result directory on stdout (the only thing it prints there).
#
# --flavor guest   kernel/guest.config (the microVM guest)
# --flavor testvm  guest.config + testvm.config (the KVM-capable test machine)
# --fragment FILE  use these fragments instead of the flavor's (tests)
# --config-only    stop after the config check; nothing is cached
set -euo pipefail

# Bump when the way we build changes in a way that alters the result.
BUILD_ABI=1

here=$(cd "$(dirname "$0")" && pwd)
cache=${HUSK_CACHE:-/var/cache/husk}
src_tar=/usr/src/linux-source-6.1.tar.xz
flavor=guest
config_only=0
quiet=0
fragments=()

die() {
	echo "kernel/build.sh: $*" >&2
	exit 1
}
log() { [ "$quiet" = 1 ] || echo "kernel/build.sh: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--flavor) flavor=${2:?--flavor needs a value}; shift 2 ;;
	--fragment) fragments+=("$(realpath "${2:?--fragment needs a file}")"); shift 2 ;;
	--config-only) config_only=1; shift ;;
	--quiet) quiet=1; shift ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done

if [ ${#fragments[@]} -eq 0 ]; then
	case "$flavor" in
	guest) fragments=("$here/guest.config") ;;
	testvm) fragments=("$here/guest.config" "$here/testvm.config") ;;
	*) die "unknown flavor '$flavor' (guest or testvm)" ;;
	esac
fi
for f in "${fragments[@]}"; do
	[ -r "$f" ] || die "cannot read fragment $f"
done

[ -r "$src_tar" ] || die "$src_tar is missing: install linux-source-6.1 (scripts/deps.sh)"
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
	die "linux-source-6.1 is not installed (scripts/deps.sh)"

key=$( {
	echo "abi=$BUILD_ABI src=linux-source-6.1/$src_version"
	cat "${fragments[@]}"
} | sha256sum | cut -c1-16)
out="$cache/kernel/$flavor-$key"

if [ "$config_only" = 0 ] && [ -s "$out/bzImage" ] && [ -s "$out/vmlinux" ]; then
	log "cached: $out"
	echo "$out"
	exit 0
fi

mkdir -p "$cache/src" "$cache/kernel" "$cache/build"

# One unpacked source tree per package version, shared by all flavors
# (builds go to separate O= directories). Unpack under a lock, then rename,
# so a half-unpacked tree is never taken for a whole one.
src="$cache/src/linux-$src_version"
exec 8>"$cache/src/.lock"
flock 8
if [ ! -f "$src/Makefile" ]; then
	log "unpacking $src_tar (linux-source-6.1 $src_version)"
	tmp=$(mktemp -d "$cache/src/.unpack.XXXXXX")
	tar -xJf "$src_tar" -C "$tmp"
	rm -rf "$src"
	mv "$tmp/linux-source-6.1" "$src"
	rmdir "$tmp"
fi
flock -u 8

if [ "$config_only" = 1 ]; then
	build=$(mktemp -d "$cache/build/config-only.XXXXXX")
	trap 'rm -rf "$build"' EXIT
else
	build="$cache/build/$flavor"
	mkdir -p "$build"
	exec 9>"$cache/build/$flavor.lock"
	flock 9
fi

kmake() {
	make -s -C "$src" O="$build" ARCH=x86_64 "$@"
}

log "configuring $flavor (tinyconfig + ${fragments[*]##*/})"
kmake tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${fragments[@]}" >/dev/null
kmake olddefconfig >/dev/null
"$here/check-config.sh" "$build/.config" "${fragments[@]}"

if [ "$config_only" = 1 ]; then
	log "config check passed"
	exit 0
fi

jobs=$(nproc)
log "building $flavor kernel with $jobs jobs (a few minutes on 2 cores)"
start=$(date +%s)
if ! kmake -j"$jobs" vmlinux bzImage >"$build/build.log" 2>&1; then
	tail -n 40 "$build/build.log" >&2
	die "kernel build failed; full log: $build/build.log"
fi
log "built in $(($(date +%s) - start)) s"

tmp=$(mktemp -d "$cache/kernel/.$flavor-$key.XXXXXX")
chmod 755 "$tmp"
cp "$build/vmlinux" "$tmp/vmlinux"
cp "$build/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$build/.config" "$tmp/config"
cat "${fragments[@]}" >"$tmp/fragment"
rm -rf "$out"
mv "$tmp" "$out"
log "cached: $out"
echo "$out"
