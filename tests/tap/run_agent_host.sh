#!/usr/bin/env bash
# `husk run` against husk-agent running on the host as an ordinary process
# in fresh namespaces (no VM): the container set-up's fast tests.
here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$here/build-san}
HUSK="$BUILD/bin/husk"
ROOTFS="$BUILD/share/husk/rootfs/busybox"
MODE=agent
[ "$(id -u)" = 0 ] || { echo "1..0 # skip the agent needs root for namespaces and mounts"; exit 0; }
. "$here/tests/tap/run_checks.bash"
run_all
