#!/usr/bin/env bash
# docker, containerd and podman with husk-runtime, in real microVMs inside
# the KVM-capable test machine (tests/runtime/docker-checks.sh).
here=$(cd "$(dirname "$0")/../.." && pwd)
# VMs boot the optimised build (as the vmm tests do); the ASan build makes
# every VM exit slower under emulation.
BUILD=$here/build
[ "$(id -u)" = 0 ] || { echo "1..0 # skip needs root"; exit 0; }
[ -x "$BUILD/bin/husk-runtime" ] || { echo "1..0 # skip no optimised build in $BUILD"; exit 0; }
exec "$here/scripts/testvm" --timeout 2400 -- env BUILD="$BUILD" \
	"$here/tests/runtime/docker-checks.sh"
