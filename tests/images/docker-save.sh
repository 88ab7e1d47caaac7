#!/usr/bin/env bash
# tests/images/docker-save.sh OUT.tar
#
# Makes a real `docker save` archive for the image-load tests: starts a
# private containerd and dockerd (everything under one temporary directory,
# nothing shared with a docker already running on the host), imports the
# busybox root file system the build makes (BUILD/share/husk/rootfs/busybox)
# as husk-test/busybox:1, adds a second layer with the classic builder when
# it works without a network (husk-test/busybox:2), saves both images into
# OUT.tar and stops the daemons.
#
# Exits 77 (the automake/bats "skipped" status) with a reason on stderr when
# no daemon can be started here (no dockerd, not root, a kernel or sandbox
# that refuses it): callers treat that as a skip, not a failure.
#
# Environment: BUILD (default build) finds the rootfs; ROOTFS overrides it;
# without either, scripts/busybox-rootfs makes one in the temporary
# directory. Prints the names of the images saved.
set -uo pipefail

out=${1:?usage: tests/images/docker-save.sh OUT.tar}
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$here/$build" ;; esac
rootfs=${ROOTFS:-$build/share/husk/rootfs/busybox}

skip() {
	echo "docker-save.sh: skipped: $*" >&2
	exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root to start dockerd"
for tool in dockerd docker containerd; do
	command -v "$tool" >/dev/null || skip "$tool is not installed"
done
# Short paths: unix socket names are limited to 108 bytes.
tmp=$(mktemp -d /tmp/husk-dockerd.XXXXXX)
sock="$tmp/docker.sock"
ctrd_sock="$tmp/containerd.sock"
ctrd_pid=
dockerd_pid=

# Stops a daemon by the pid we started it with, then waits for it.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_pid "$dockerd_pid"
	stop_pid "$ctrd_pid"
	# The daemons may leave mounts (the vfs driver makes none, but be sure).
	grep -o " $tmp/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/containerd" "$tmp/docker" "$tmp/exec" "$tmp/ctx"
# Without a build, make the same busybox tree here.
if [ ! -d "$rootfs" ]; then
	rootfs="$tmp/rootfs"
	"$here/scripts/busybox-rootfs" "$rootfs" >&2 || skip "no busybox root file system (make one, or install busybox-static)"
fi
cat >"$tmp/containerd.toml" <<TOML
version = 2
root = "$tmp/containerd/root"
state = "$tmp/containerd/state"
[grpc]
  address = "$ctrd_sock"
[ttrpc]
  address = "$ctrd_sock.ttrpc"
[debug]
  address = "$tmp/containerd-debug.sock"
[metrics]
  address = ""
TOML

containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 1 100); do
	[ -S "$ctrd_sock" ] && break
	kill -0 "$ctrd_pid" 2>/dev/null || break
	sleep 0.1
done
[ -S "$ctrd_sock" ] || skip "containerd did not start: $(tail -n 3 "$tmp/containerd.log" | tr '\n' ' ')"

# vfs: no overlay mounts needed, which nested sandboxes often refuse.
dockerd --data-root "$tmp/docker" --exec-root "$tmp/exec" \
	--pidfile "$tmp/docker.pid" -H "unix://$sock" \
	--containerd "$ctrd_sock" --iptables=false --ip6tables=false \
	--bridge=none --storage-driver=vfs >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST="unix://$sock"
ready=0
for _ in $(seq 1 300); do
	if docker version >/dev/null 2>&1; then
		ready=1
		break
	fi
	kill -0 "$dockerd_pid" 2>/dev/null || break
	sleep 0.1
done
[ "$ready" = 1 ] || skip "dockerd did not start: $(tail -n 3 "$tmp/dockerd.log" | tr '\n' ' ')"

fail() {
	echo "docker-save.sh: $*" >&2
	tail -n 20 "$tmp/dockerd.log" >&2
	exit 1
}

tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/sh"]' - husk-test/busybox:1 >/dev/null ||
	fail "docker import failed"
images=(husk-test/busybox:1)

# A second layer: COPY needs no container to run, so no network and no
# runtime; the classic builder (DOCKER_BUILDKIT=0) needs no buildx plugin.
echo "hello from a second layer" >"$tmp/ctx/hello.txt"
printf 'FROM husk-test/busybox:1\nCOPY hello.txt /hello.txt\nCMD ["/bin/cat", "/hello.txt"]\n' >"$tmp/ctx/Dockerfile"
if DOCKER_BUILDKIT=0 docker build -q -t husk-test/busybox:2 "$tmp/ctx" >"$tmp/build.log" 2>&1; then
	images+=(husk-test/busybox:2)
else
	echo "docker-save.sh: docker build failed, saving one image: $(tail -n 2 "$tmp/build.log" | tr '\n' ' ')" >&2
fi

docker save -o "$out.tmp" "${images[@]}" || fail "docker save failed"
mv "$out.tmp" "$out"
echo "${images[*]}"
