#!/usr/bin/env bash
# tests/runtime/dockerd.sh: starts containerd and dockerd (from Debian's
# docker.io) with husk-runtime registered as the runtime "husk", in the
# KVM-capable test machine, and imports the busybox test image as
# husk-test:busybox. Source it: it sets DOCKER_HOST and defines
# dockerd_stop. BUILD names the build whose husk-runtime is used.
: "${BUILD:?}"
DK=/run/husk-dk
mkdir -p "$DK" /var/lib/husk-dk
# overlay2 wants a real file system under its data root, not the test
# machine's overlay on 9p
mountpoint -q /var/lib/husk-dk || mount -t tmpfs -o size=2g tmpfs /var/lib/husk-dk
containerd --root /var/lib/husk-dk/containerd --state "$DK/containerd" \
	-a "$DK/containerd.sock" >"$DK/containerd.log" 2>&1 &
for _ in $(seq 100); do [ -S "$DK/containerd.sock" ] && break; sleep 0.1; done
dockerd --containerd "$DK/containerd.sock" --data-root /var/lib/husk-dk/docker \
	--exec-root "$DK/docker" --pidfile "$DK/docker.pid" -H "unix://$DK/docker.sock" \
	--iptables=false --ip-forward=false --bridge=none \
	--add-runtime "husk=$BUILD/bin/husk-runtime" >"$DK/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$DK/docker.sock"
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null || { tail -20 "$DK/dockerd.log"; exit 1; }
tar -C "$BUILD/share/husk/rootfs/busybox" -c . | docker import - husk-test:busybox >/dev/null

dockerd_stop() {
	kill "$(cat "$DK/docker.pid")" 2>/dev/null
	sleep 1
	pkill containerd
}
