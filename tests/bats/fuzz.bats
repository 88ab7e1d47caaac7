#!/usr/bin/env bats
# A short libFuzzer run of every target (make fuzz builds them into
# build-fuzz/). Longer runs by hand: docs/testing.md.
load helpers

FUZZ_SECONDS=${HUSK_FUZZ_SECONDS:-20}

run_fuzzer() {
	local bin="$HUSK_REPO/build-fuzz/$1" corpus
	[ -x "$bin" ] || skip "$1 not built (make fuzz needs clang)"
	corpus=$(mktemp -d)
	run "$bin" -max_total_time="$FUZZ_SECONDS" -max_len=70000 \
		-print_final_stats=1 "$corpus"
	rm -rf "$corpus"
	echo "$output" | tail -n 20
	[ "$status" -eq 0 ]
	[[ "$output" == *"stat::number_of_executed_units"* ]]
	[[ "$output" != *"ERROR: "* ]]
}

@test "fuzz the virtqueue walker ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_virtq
}

@test "fuzz virtio-blk request parsing ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_virtio_blk
}

@test "fuzz virtio-net frame handling ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_virtio_net
}

@test "fuzz virtio-9p and its file server, confinement checked ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_p9
}

@test "fuzz the host-agent protocol decoder ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_proto
}

@test "fuzz husk-agent's session with a hostile host ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_agent_session
}

@test "fuzz husk run's client with a hostile agent ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_agent_client
}

@test "fuzz the image layer applier with hostile tars ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_layer
}

@test "fuzz registry manifest and index decoding ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_manifest
}

@test "fuzz the image config parser ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_image_config
}

@test "fuzz husk load with hostile image archives ($FUZZ_SECONDS s)" {
	run_fuzzer fuzz_image_load
}
