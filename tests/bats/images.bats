#!/usr/bin/env bats
# Images end to end through the husk CLI: a real registry (Debian's
# docker-registry) on loopback, anonymous and with htpasswd basic auth,
# filled with images tests/images/build.sh makes; a `docker save` archive
# from a real dockerd; hostile inputs; a pull killed with -9. Containers
# from images run with the qemu backend on this host.
load helpers

setup_file() {
	command -v docker-registry >/dev/null || skip "docker-registry missing"
	export WORK=$(mktemp -d)
	export HUSK_ROOT="$WORK/store"
	export HUSK_AUTH_FILE="$WORK/auth.json"
	"$HUSK_REPO/tests/images/build.sh" "$WORK/images" >"$WORK/build.log" 2>&1
	export REG=127.0.0.1:$("$HUSK_REPO/tests/images/registry.sh" start "$WORK/reg")
	export AUTHREG=127.0.0.1:$("$HUSK_REPO/tests/images/registry.sh" start "$WORK/authreg" --htpasswd tester:s3cret)
	"$HUSK_REPO/tests/images/push.sh" "$WORK/images" "$REG" >"$WORK/push.log" 2>&1
	"$HUSK_REPO/tests/images/push.sh" "$WORK/images" "$AUTHREG" --creds tester:s3cret busybox >>"$WORK/push.log" 2>&1
}

teardown_file() {
	[ -n "${WORK:-}" ] || return 0
	"$HUSK_REPO/tests/images/registry.sh" stop "$WORK/reg" || true
	"$HUSK_REPO/tests/images/registry.sh" stop "$WORK/authreg" || true
	rm -rf "$WORK"
}

hrun() {
	timeout -k 10 180 "$HUSK" run --rm --vmm qemu "$@"
}

@test "pull an image from a local registry; images, inspect, run it, rmi" {
	run "$HUSK" pull "$REG/busybox"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Status: Downloaded newer image for $REG/busybox:latest"* ]]
	run "$HUSK" images
	echo "$output"
	[[ "$output" == *"$REG/busybox"*latest* ]]
	run "$HUSK" inspect "$REG/busybox"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"Architecture": "amd64"'* ]]
	run hrun "$REG/busybox" sh -c 'echo hi from the image; exit 4'
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"hi from the image"* ]]
	run "$HUSK" rmi "$REG/busybox"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Untagged: $REG/busybox:latest"* ]]
	[[ "$output" == *"Deleted: sha256:"* ]]
	run "$HUSK" inspect "$REG/busybox"
	[ "$status" -ne 0 ]
}

@test "husk run pulls a missing image, as docker run does" {
	run hrun "$REG/busybox:latest" true
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Unable to find image"* ]]
	"$HUSK" rmi "$REG/busybox:latest"
}

@test "layers with whiteouts and an opaque directory" {
	"$HUSK" pull "$REG/layers"
	run hrun "$REG/layers" sh -c 'ls /etc/removeme /opt/gone 2>&1; ls /opt/opaque'
	echo "$output"
	[[ "$output" == *"/etc/removeme: No such file"* ]]
	[[ "$output" == *"/opt/gone: No such file"* ]]
	[ "$(echo "$output" | tail -1)" = c ]
}

@test "a multi-arch index: linux/amd64 by default, --platform picks another" {
	run "$HUSK" pull "$REG/multiarch"
	[ "$status" -eq 0 ]
	run "$HUSK" inspect "$REG/multiarch"
	[[ "$output" == *'"Architecture": "amd64"'* ]]
	run "$HUSK" pull --platform linux/arm64 "$REG/multiarch"
	echo "$output"
	[ "$status" -eq 0 ]
	run "$HUSK" inspect "$REG/multiarch"
	[[ "$output" == *'"Architecture": "arm64"'* ]]
	run "$HUSK" pull --platform linux/s390x "$REG/multiarch"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"s390x"* ]]
}

@test "a zstd layer and a Docker schema 2 image pull and run" {
	run "$HUSK" pull "$REG/zstd"
	[ "$status" -eq 0 ]
	run hrun "$REG/zstd" true
	[ "$status" -eq 0 ]
	run "$HUSK" pull "$REG/docker"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "husk run IMAGE uses the image's Entrypoint, Cmd, Env, WorkingDir and User; flags override them" {
	"$HUSK" pull "$REG/docker" >/dev/null
	run hrun "$REG/docker"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *$'from-cmd\n/srv/app\n1000\nfrom-image'* ]]
	# arguments replace Cmd (the entrypoint sh -c stays); -e, -w, -u win
	run hrun -e FOO=from-cli -w /tmp -u 0 "$REG/docker" 'echo "$FOO $(pwd) $(id -u)"'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"from-cli /tmp 0"* ]]
	# --entrypoint replaces the entrypoint and drops the image's Cmd
	run hrun --entrypoint /bin/echo "$REG/docker" hello
	echo "$output"
	[[ "$output" == *hello* ]]
	[[ "$output" != *from-cmd* ]]
}

@test "a registry with basic auth: refused anonymously, pulled after husk login" {
	run "$HUSK" pull "$AUTHREG/busybox"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"nauthorized"* ]]
	run "$HUSK" login -u tester -p wrong "$AUTHREG"
	[ "$status" -ne 0 ]
	run "$HUSK" login -u tester -p s3cret "$AUTHREG"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Login Succeeded"* ]]
	run "$HUSK" pull "$AUTHREG/busybox"
	[ "$status" -eq 0 ]
	run "$HUSK" logout "$AUTHREG"
	[ "$status" -eq 0 ]
}

@test "a docker save archive from a real dockerd loads and runs" {
	run "$HUSK_REPO/tests/images/docker-save.sh" "$WORK/saved.tar"
	[ "$status" -eq 77 ] && skip "dockerd cannot run here: $output"
	[ "$status" -eq 0 ]
	run "$HUSK" load -i "$WORK/saved.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Loaded image: husk-test/busybox:2"* ]]
	run hrun husk-test/busybox:2 cat /hello.txt
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "bad names and missing images are clear errors; the store is unchanged" {
	before=$("$HUSK" images -q | sort)
	run "$HUSK" pull "$REG/no-such-image"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown"* || "$output" == *"not found"* ]]
	run "$HUSK" pull "someone/UPPER"
	[ "$status" -ne 0 ]
	[[ "$output" == *"lowercase"* ]]
	run "$HUSK" load -i /etc/passwd
	[ "$status" -ne 0 ]
	[ "$("$HUSK" images -q | sort)" = "$before" ]
	[ -z "$(ls -A "$HUSK_ROOT/tmp")" ]
}

@test "kill -9 during a pull, then pull again: it completes, nothing corrupt or left over" {
	"$HUSK_REPO/tests/images/build.sh" --big "$WORK/big" >/dev/null 2>&1 ||
		skip "tests/images/build.sh has no --big image"
	"$HUSK_REPO/tests/images/push.sh" "$WORK/big" "$REG" big >/dev/null 2>&1
	"$HUSK" pull "$REG/big" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		[ -n "$(ls -A "$HUSK_ROOT/partial" 2>/dev/null)" ] && break
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" || true
	run "$HUSK" pull "$REG/big"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$HUSK_ROOT/tmp")" ]
	[ -z "$(ls -A "$HUSK_ROOT/partial" 2>/dev/null)" ]
	run hrun "$REG/big" sh -c "test -s /big1.bin && test -s /big3.bin"
	[ "$status" -eq 0 ]
}

@test "rmi every image, then image prune leaves no blobs" {
	run hrun "$REG/busybox" true
	[ "$status" -eq 0 ]
	for id in $("$HUSK" images -q | sort -u); do
		run "$HUSK" rmi -f "$id"
		echo "$output"
		[ "$status" -eq 0 ]
	done
	[ -z "$("$HUSK" images -q)" ]
	run "$HUSK" image prune
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$HUSK_ROOT/blobs/sha256")" ]
}
