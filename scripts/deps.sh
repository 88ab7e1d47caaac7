#!/usr/bin/env bash
# Installs every Debian package that husk's build, tests and benchmarks
# need. Idempotent, and quick when everything is present: apt-get runs
# (update first) only when a package is missing. Needs root for that.
set -euo pipefail

packages=(
	# build
	build-essential pkg-config clang clang-format lld libclang-rt-14-dev
	libjson-c-dev libcurl4-openssl-dev libarchive-dev libssl-dev
	libseccomp-dev libslirp-dev
	# guest and test-machine kernels
	linux-source-6.1 bc bison flex libelf-dev cpio xz-utils kmod
	# microVMs, root filesystems, images
	qemu-system-x86 erofs-utils e2fsprogs busybox-static
	# tests: a real registry, a real dockerd, htpasswd for registry auth
	bats libcmocka-dev util-linux procps socat
	docker-registry docker.io apache2-utils zstd curl
	# the runtime under podman (tests/runtime/docker-checks.sh)
	podman
	# benchmarks: the peers husk is compared with
	runc skopeo umoci
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages (run as root to install): ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
