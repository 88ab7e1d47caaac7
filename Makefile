# husk build. GNU make: the tree is small, make is on every machine, and
# -MMD gives automatic header dependencies; see docs/building.md.
#
#   make            build everything into build/
#   make SAN=1      the same with ASan+UBSan into build-san/ (what tests use)
#   make demo       install deps, build, boot the guest kernel in the test machine
#   make test       install deps, build with sanitizers, run the whole suite
#   make kernels    build (or reuse from /var/cache/husk) both kernels
#   make format     clang-format the C sources in place

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=gnu11 -O2 -g $(WARN) -Iinclude -D_GNU_SOURCE \
	-DHUSK_VERSION='"$(VERSION)"' -MMD -MP
ALL_CFLAGS := $(BASE_CFLAGS) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SANFLAGS) $(LDFLAGS)
# What libhusk's host side links: hashing, archives, JSON, HTTP.
HOST_LIBS := -lcrypto -larchive -ljson-c -lcurl
# husk-vmm's user-mode network (net_slirp.c includes <slirp/libslirp.h>,
# which needs no glib). libslirp's .pc requires glib-2.0's, which Debian's
# libslirp-dev does not pull in: without it, the plain name does.
SLIRP_LIBS := $(shell pkg-config --libs slirp 2>/dev/null || echo -lslirp)

LIB_SRCS := $(wildcard src/lib/*.c)
# husk-vmm's pieces, as a library so unit tests and fuzz targets link them
# without the main program.
VMM_SRCS := $(filter-out src/vmm/main.c,$(shell find src/vmm -name '*.c' 2>/dev/null))
CLI_SRCS := $(wildcard src/cli/*.c)
# husk-runtime: the runc-compatible OCI runtime (docs/runtime.md).
RUNTIME_SRCS := $(wildcard src/runtime/*.c)
# husk-agent's pieces, as a library for unit tests and fuzz targets.
AGENT_SRCS := $(filter-out src/agent/main.c,$(wildcard src/agent/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

LIB := $(BUILD)/libhusk.a
VMM_LIB := $(BUILD)/libhuskvmm.a
HUSK := $(BUILD)/bin/husk
HUSK_VMM := $(BUILD)/bin/husk-vmm
HUSK_RUNTIME := $(BUILD)/bin/husk-runtime
AGENT_LIB := $(BUILD)/libhuskagent.a
# The agent as a host process (tests; sanitized in build-san) and, static
# and unsanitized, as /init of the guest initramfs that husk run boots.
HUSK_AGENT := $(BUILD)/bin/husk-agent
AGENT_STATIC := $(BUILD)/share/husk/husk-agent
AGENT_INITRD := $(BUILD)/share/husk/agent.cpio
# A busybox-static root file system for `husk run --rootfs`.
BUSYBOX_ROOTFS := $(BUILD)/share/husk/rootfs/busybox
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
KVM_SMOKE := $(BUILD)/tests/kvm_smoke
TESTVM_INIT := $(BUILD)/testvm/init
TESTVM_INITRD := $(BUILD)/testvm/initrd.cpio
DEMO_INITRD := $(BUILD)/demo/initrd.cpio
GUEST_CHECK_INITRD := $(BUILD)/tests/vmm/guest-check.cpio

ALL := $(HUSK) $(HUSK_VMM) $(HUSK_RUNTIME) $(HUSK_AGENT) $(AGENT_INITRD) $(BUSYBOX_ROOTFS) $(UNIT_BINS) $(KVM_SMOKE) $(TESTVM_INITRD) $(DEMO_INITRD) \
	$(GUEST_CHECK_INITRD)

.PHONY: all deps kernels demo test format format-check clean fuzz
all: $(ALL)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(VMM_LIB): $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(AGENT_LIB): $(AGENT_SRCS:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(HUSK_AGENT): $(BUILD)/obj/src/agent/main.o $(AGENT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lseccomp $(HOST_LIBS)

$(BUILD)/obj-static/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -c $< -o $@

# The agent needs only the protocol codec and the error helpers of libhusk.
$(AGENT_STATIC): $(patsubst %.c,$(BUILD)/obj-static/%.o,src/agent/main.c $(AGENT_SRCS) src/lib/proto.c src/lib/error.c)
	@mkdir -p $(@D)
	$(CC) -static -o $@ $^ -lseccomp

$(AGENT_INITRD): $(AGENT_STATIC)
	rm -rf $(@D)/initrd && mkdir -p $(@D)/initrd
	cp $(AGENT_STATIC) $(@D)/initrd/init
	cd $(@D)/initrd && echo init | cpio --quiet -o -H newc -R 0:0 > ../$(@F).tmp
	mv $@.tmp $@

$(BUSYBOX_ROOTFS): scripts/busybox-rootfs /bin/busybox
	scripts/busybox-rootfs $@

# husk run -d resolves -u against the root's /etc/passwd as the agent does.
$(HUSK): $(CLI_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/agent/confine_user.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HOST_LIBS)

$(HUSK_RUNTIME): $(RUNTIME_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HOST_LIBS)

$(HUSK_VMM): $(BUILD)/obj/src/vmm/main.o $(VMM_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lpthread -lseccomp $(SLIRP_LIBS) $(HOST_LIBS)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(AGENT_LIB) $(VMM_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka -lseccomp $(SLIRP_LIBS) $(HOST_LIBS)

# husk-runtime's frame router, tested on its own.
$(BUILD)/tests/unit/test_pod_router: $(BUILD)/obj/tests/unit/test_pod_router.o $(BUILD)/obj/src/runtime/pod_router.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka $(HOST_LIBS)

# Runs inside the test machine, from the host root shared over 9p.
$(KVM_SMOKE): $(BUILD)/obj/tests/kvm/kvm_smoke.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

# PID 1 of the test machine starts before any filesystem with a libc is
# mounted, so it is static and never sanitized.
$(TESTVM_INIT): tests/testvm/init.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Os -static -MF $@.d -o $@ $<

# husk-vmm's test guest: a static init alone in an initramfs.
$(BUILD)/tests/vmm/init: tests/vmm/guest_check.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Os -static -MF $@.d -o $@ $<

$(GUEST_CHECK_INITRD): $(BUILD)/tests/vmm/init
	cd $(@D) && echo init | cpio --quiet -o -H newc -R 0:0 > $(@F).tmp
	mv $@.tmp $@

$(TESTVM_INITRD): $(TESTVM_INIT)
	cd $(@D) && echo init | cpio --quiet -o -H newc -R 0:0 > $(@F).tmp
	mv $@.tmp $@

# Guest-side tools: static, for guest initramfs images.
$(BUILD)/guest/husk-poweroff: src/guest/poweroff.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Os -static -MF $@.d -o $@ $<

# The demo guest: busybox and a shell-script init (scripts/demo-guest-init).
$(DEMO_INITRD): scripts/demo-guest-init /bin/busybox $(BUILD)/guest/husk-poweroff
	rm -rf $(@D)/root && mkdir -p $(@D)/root/bin
	cp /bin/busybox $(@D)/root/bin/busybox
	cp $(BUILD)/guest/husk-poweroff $(@D)/root/bin/husk-poweroff
	cp scripts/demo-guest-init $(@D)/root/init
	cd $(@D)/root && find . | cpio --quiet -o -H newc -R 0:0 > ../$(@F).tmp
	mv $@.tmp $@

# libFuzzer targets (clang): every tests/fuzz/fuzz_*.c is linked with the
# VMM, agent and library code. `tests/bats/fuzz.bats` runs each briefly.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
	-fsanitize=address,undefined -fno-sanitize-recover=all -MMD -MP
# The code under test is compiled once (instrumented for coverage) into
# one archive; each target links it with libFuzzer's main.
FUZZ_LIB_SRCS := $(VMM_SRCS) $(AGENT_SRCS) $(LIB_SRCS)
FUZZ_LIB := build-fuzz/libfuzzed.a
fuzz: $(FUZZ_BINS)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_LIB): $(FUZZ_LIB_SRCS:%.c=build-fuzz/obj/%.o)
	rm -f $@
	ar rcs $@ $^
build-fuzz/%: build-fuzz/obj/tests/fuzz/%.o $(FUZZ_LIB)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ -lpthread -lseccomp $(SLIRP_LIBS) $(HOST_LIBS)

deps:
	scripts/deps.sh

# `husk run` finds the guest kernel beside its binary, in
# BUILD/share/husk/vmlinux: a link into the kernel cache.
kernels:
	kernel/build.sh --flavor guest >/dev/null
	kernel/build.sh --flavor testvm >/dev/null
	for b in build build-san; do \
		mkdir -p $$b/share/husk && \
		ln -sfn "$$(kernel/build.sh --flavor guest --quiet)/vmlinux" $$b/share/husk/vmlinux; \
	done

demo: deps
	$(MAKE) all kernels
	scripts/demo

test: deps
	$(MAKE) SAN=1 all
	$(MAKE) all
	$(MAKE) fuzz
	$(MAKE) kernels
	BUILD=build-san tests/run.sh

FORMAT_FILES := $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)
