# vigil — build, unit tests, sanitizer build, lab.
#   make            build/vigil
#   make check      warnings, layering, unit tests (plain and ASan+UBSan),
#                   native guests, fuzz smoke, then the lab;
#                   last line: "N passed, N failed"
#   make unit       unit tests only (plain and ASan+UBSan)
#   make lab        guest boots in the lab only
#   CC=clang make   any of the above with clang

CC      ?= cc
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wno-unused-parameter
override CFLAGS += -std=gnu11 $(WARN) -Isrc -DVIGIL_VERSION='"$(VERSION)"' -MMD -MP -pthread
# Libraries beyond libc: libslirp (user-mode networking) and libmicrohttpd
# (the API's HTTP server) are loaded with dlopen when a VM first uses them
# (src/host/dl.h: a VM without them neither pays for them at start-up nor
# carries them), so only their headers are needed here; jansson (JSON for
# the API and the config file).
SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null)
override CFLAGS += $(SLIRP_CFLAGS)
# Each function in its own section, so that vigil's link can put those a
# run executes together (mk/startup_text.ld, from bench/startup_order.sh):
# the rest of the text is then never faulted in (issue 10: peak RSS).
override CFLAGS += -ffunction-sections
# libseccomp: the system-call filters per thread, used at build time only
# (tools/seccomp_gen.c makes their BPF; src/host/seccomp.c installs it).
SECCOMP_LIBS := $(shell pkg-config --libs libseccomp 2>/dev/null || echo -lseccomp)
# liburing: the disk's io_uring engine (src/host/blk_uring.c).
URING_LIBS := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
# jansson and liburing are linked from their static archives (Debian's -dev
# packages hold them): only the code vigil calls is carried, and ld.so has
# two libraries fewer to map and relocate at every start. libc stays
# shared: dlopen (libmicrohttpd, libslirp) needs it.
STATIC_LIBS := -ljansson $(URING_LIBS)
override LDLIBS += -pthread -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -ldl

B       ?= build
# The portable part: everything that does not talk to KVM or the host OS
# (enforced by tests/layering.sh, a `make check` suite).
CORE_SRC := $(wildcard src/core/*.c src/devices/*.c src/arch/x86/*.c src/virtio/*.c)
# The Type II platform: KVM backend, host services, the VMM (config, builder,
# control loop, metrics), the API server, command line.
HOST_SRC := $(wildcard src/kvm/*.c src/host/*.c src/vmm/*.c src/api/*.c src/cli/*.c src/gdb/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(B)/obj/%.o)
HOST_OBJ := $(HOST_SRC:%.c=$(B)/obj/%.o)
TESTS    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))

all: $(B)/vigil $(B)/vigil-uffd-pageserver

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The seccomp filters' BPF programs, made from src/host/seccomp_lists.h at
# build time (so vigil neither links libseccomp nor compiles them at start-up).
$(B)/seccomp_gen: tools/seccomp_gen.c src/host/seccomp_lists.h src/host/seccomp.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(SECCOMP_LIBS)
$(B)/gen/seccomp_bpf.h: $(B)/seccomp_gen
	@mkdir -p $(dir $@)
	$< >$@.tmp && mv $@.tmp $@
$(B)/obj/src/host/seccomp.o: $(B)/gen/seccomp_bpf.h
$(B)/obj/src/host/seccomp.o: override CFLAGS += -I$(B)/gen

$(B)/libvigil.a: $(CORE_OBJ) $(filter-out $(B)/obj/src/cli/main.o,$(HOST_OBJ))
	@rm -f $@
	ar rcs $@ $^

$(B)/vigil: $(B)/obj/src/cli/main.o $(B)/libvigil.a mk/startup_text.ld
	$(CC) $(CFLAGS) -o $@ $(filter %.o %.a,$^) -Wl,-T,mk/startup_text.ld $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(B)/libvigil.a $(LDLIBS) -lcmocka
# test_blk_uring plays a kernel that refuses a submit (its __wrap_io_uring_submit).
$(B)/tests/test_blk_uring: override LDLIBS += -Wl,--wrap=io_uring_submit

tests: $(TESTS) $(B)/tests/api_fake_server $(B)/tests/kvm_translate_check $(B)/tests/kvm_snap_check \
	$(B)/vigil-uffd-pageserver

# The example page server for the Uffd memory backend (docs/SNAPSHOT.md);
# test_uffd runs it from the same build tree.
$(B)/vigil-uffd-pageserver: tools/uffd_pageserver.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)
$(B)/tests/test_uffd: $(B)/vigil-uffd-pageserver

# vigil's page walk against KVM_TRANSLATE on this host (run by tests/introspect.sh).
$(B)/tests/kvm_translate_check: tests/kvm_translate_check.c $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)

# KVM's side of snapshots on this host: save, restore into a fresh VM,
# dirty log, hostile sections (run by tests/kvm_snap.sh, and in the lab).
$(B)/tests/kvm_snap_check: tests/kvm_snap_check.c $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)

# A FUSE image whose reads and writes fail with EIO on a byte range (libfuse3;
# run by tests/faults.sh, which skips its disk part where this cannot build).
$(B)/tests/faultfs: tests/faultfs.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags fuse3) -o $@ $< $(shell pkg-config --libs fuse3)

# What a policy decision costs with 1 rule and with 10,000 (bench/policy_decide.c).
$(B)/bench/policy_decide: bench/policy_decide.c $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)

# Measures a VMM's own start-up: exec to first KVM_RUN, CPU, peak RSS (bench/startup.py).
$(B)/bench/startup_probe: bench/startup_probe.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<
# The bare KVM set-up of a 1-vCPU guest: the floor under a VMM's start-up.
$(B)/bench/kvm_floor: bench/kvm_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# The API's HTTP server and router over the fake VMM, for curl and the
# tests/api_*.py scripts (no KVM needed).
$(B)/tests/api_fake_server: tests/unit/api_fake_server.c tests/unit/fake_vmm_api.h $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(B)/libvigil.a $(LDLIBS)

# Unit tests, plain and under ASan+UBSan (a second build tree), and the
# threaded ones under TSan (a third).
TSAN_TESTS := test_blk_uring test_pci test_console test_vcpu test_virtio_pci test_monitor_live test_evloop test_api_http test_i8042 test_event test_virtio_blk test_net_policy_slirp test_policy_live test_virtio_pci_stress test_virtio_rng_console test_virtio_vsock test_virtio_net test_devsnap_devices test_vsock_rx_budget
unit: tests
	@$(MAKE) --no-print-directory B=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" LDLIBS="-fsanitize=address,undefined" tests
	@$(MAKE) --no-print-directory B=build/tsan CC=gcc CFLAGS="-O1 -g -fsanitize=thread -Wno-tsan" LDLIBS="-fsanitize=thread" $(TSAN_TESTS:%=build/tsan/tests/%)
	@TSAN_OPTIONS=halt_on_error=1 tests/run-units.sh $(B)/tests build/asan/tests build/tsan/tests

lab: $(B)/vigil
	lab/run.sh

check: $(B)/vigil
	@tests/check.sh

clean:
	rm -rf build

.PHONY: all tests unit lab check clean
include mk/metal.mk
-include $(CORE_OBJ:.o=.d) $(HOST_OBJ:.o=.d)

# What an event costs the emitting thread (bench/trace_emit.c).
$(B)/bench/trace_emit: bench/trace_emit.c $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libvigil.a $(LDLIBS)
# The lab's disk benchmark, vigil beside QEMU (bench/disk.py; slow, never a test).
bench-disk:
	bench/run.sh disk
.PHONY: bench-disk

bench-emit: $(B)/bench/trace_emit
.PHONY: bench-emit

# Snapshot figures, vigil beside QEMU (bench/snapshot.py). QEMU boots the
# same tiny guest code as a PVH ELF (bench/qemu_pvh.S): it cannot enter the
# tiny bzImage, which has no real-mode setup code.
$(B)/bench/tiny-snapcount-pvh.elf: tests/guests/tiny.S bench/qemu_pvh.S bench/qemu_pvh.ld
	@mkdir -p $(dir $@)
	$(CC) -c -DACTION_snapcount -o $@.tiny.o tests/guests/tiny.S
	$(CC) -c -o $@.pvh.o bench/qemu_pvh.S
	ld -m elf_x86_64 --no-warn-rwx-segments -T bench/qemu_pvh.ld -o $@ $@.tiny.o $@.pvh.o
bench-snapshot: $(B)/vigil $(B)/tests/guests/tiny-snapcount.bin $(B)/bench/tiny-snapcount-pvh.elf
	bench/snapshot.py $(B)
.PHONY: bench-snapshot

# Tiny self-checking guests (tests/guests/tiny.S), one bzImage per action.
TINY_ACTIONS := poweroff flood echo kbdreset acpireset panic triple hang wild count cad pioloop peek msr msrloop cpuid hammer spin snapcount snap brand
TINY_ACTIONS += idle
TINY_ACTIONS += timer
TINY_ACTIONS += memtouch
TINY_ACTIONS += tscwrite wallclock
TINY_ACTIONS += msrpriv
TINY := $(TINY_ACTIONS:%=$(B)/tests/guests/tiny-%.bin)
$(B)/tests/guests/tiny-%.bin: tests/guests/tiny.S tests/guests/tiny.ld
	@mkdir -p $(dir $@)
	$(CC) -c -DACTION_$* -o $@.o $<
	ld -m elf_x86_64 --no-warn-rwx-segments -T tests/guests/tiny.ld -o $@ $@.o
# The hostile guest (tests/guests/hostile.S): one bzImage, the attack picked
# by "attack=N" on the kernel command line (tests/hostile.sh).
$(B)/tests/guests/hostile.bin: tests/guests/hostile.S tests/guests/tiny.ld
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	ld -m elf_x86_64 --no-warn-rwx-segments -T tests/guests/tiny.ld -o $@ $@.o
guests: $(TINY) $(B)/tests/guests/hostile.bin
.PHONY: guests

# libFuzzer targets (clang with compiler-rt: Debian's libclang-rt-14-dev).
#   make fuzz         build every target ($(FUZZ_TARGETS))
#   make fuzz-smoke   run each for FUZZ_SMOKE_S seconds; fails on a crash
#   make fuzz-long    run each for FUZZ_RUNS executions (default 1e8), figures per target
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc
# Targets whose code callocs big blocks per run take them from fuzz/fuzz_pool.h.
FUZZ_POOL  := -Wl,--wrap=calloc -Wl,--wrap=free -Wl,--wrap=realloc
# Functions and harness files built without coverage (fuzz/coverage-ignore.txt says which and why).
FUZZ_IGNORE := -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt
$(B)/fuzz/fuzz_virtq: fuzz/fuzz_virtq.c src/virtio/virtq.c src/core/gmem.c src/virtio/virtq.h src/core/gmem.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)
# fuzz_api: the router and the config-file decoder over the fake VMM. The
# API/config sources are instrumented; what they call beyond that (virtio_net's
# option parser, errmsg) comes uninstrumented from libvigil.a.
FUZZ_API_SRC := fuzz/fuzz_api.c src/api/routes.c src/api/routes_introspect.c src/vmm/config.c src/vmm/config_json.c \
	src/vmm/config_file.c src/vmm/config_json_out.c src/vmm/policy_json.c src/vmm/policy_json_val.c \
	src/vmm/policy_json_res.c src/vmm/policy_json_out.c src/vmm/cpu_config_json.c
$(B)/fuzz/fuzz_api: $(FUZZ_API_SRC) tests/unit/fake_vmm_api.h src/api/routes.h src/vmm/config_json.h $(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -DVIGIL_VERSION='"$(VERSION)"' -Itests/unit $(SLIRP_CFLAGS) -o $@ \
		$(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# fuzz_net: the network policy's filter (parser, flow table, rewriting)
# over a fake backend.
FUZZ_NET_SRC := fuzz/fuzz_net.c src/devices/net_pkt.c src/devices/net_ct.c src/devices/net_filter.c
$(B)/fuzz/fuzz_net: $(FUZZ_NET_SRC) src/devices/net_pkt.h src/devices/net_ct.h src/devices/net_filter.h fuzz/fuzz_pool.h \
		$(B)/libvigil.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_POOL) $(SLIRP_CFLAGS) -o $@ $(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# fuzz_virtio_DEV: the virtio-pci transport (PCI config, BAR moves, common
# config, ISR, notify, MSI-X) with one real device behind it over a fake backend.
FUZZ_VIRTIO_DEVS := blk net vsock rng console
FUZZ_VIRTIO_SRC := fuzz/fuzz_virtio.c src/virtio/virtio_pci.c src/virtio/virtio_dev.c src/virtio/virtq.c \
	src/devices/pci.c src/devices/virtio_blk.c src/devices/virtio_net.c src/devices/virtio_vsock.c \
	src/devices/virtio_rng.c src/devices/virtio_console.c src/core/gmem.c src/core/devreq.c
$(FUZZ_VIRTIO_DEVS:%=$(B)/fuzz/fuzz_virtio_%): $(B)/fuzz/fuzz_virtio_%: $(FUZZ_VIRTIO_SRC) fuzz/fuzz_pool.h \
		fuzz/coverage-ignore.txt $(B)/libvigil.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_IGNORE) $(FUZZ_POOL) -DFUZZ_DEV=FUZZ_$(shell echo $* | tr a-z A-Z) $(SLIRP_CFLAGS) -o $@ \
		$(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# fuzz_exit: kvm_run decoding, exit_dispatch (REP counts) and the legacy
# port devices behind it (UART, RTC, i8042, pvpanic, ACPI PM).
FUZZ_EXIT_SRC := fuzz/fuzz_exit.c src/kvm/kvm_exit.c src/core/exit.c src/core/bus.c src/devices/uart_16550.c \
	src/devices/rtc_cmos.c src/devices/i8042.c src/devices/ps2_kbd.c src/devices/pvpanic.c src/devices/acpi_pm.c
$(B)/fuzz/fuzz_exit: $(FUZZ_EXIT_SRC) $(B)/libvigil.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(SLIRP_CFLAGS) -o $@ $(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# fuzz_boot: the bzImage and PVH ELF loaders and initrd placement over host files.
FUZZ_BOOT_SRC := fuzz/fuzz_boot.c src/arch/x86/boot_bzimage.c src/arch/x86/boot_pvh.c src/arch/x86/boot_common.c \
	src/arch/x86/e820.c src/core/gmem.c
$(B)/fuzz/fuzz_boot: $(FUZZ_BOOT_SRC) $(B)/libvigil.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(SLIRP_CFLAGS) -o $@ $(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# fuzz_pci: PCI config space and BAR moves with three functions in a small window.
$(B)/fuzz/fuzz_pci: fuzz/fuzz_pci.c src/devices/pci.c src/core/bus.c src/core/snap.c src/devices/pci.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) -lpthread
# fuzz_snapshot: the snapshot reader and every device restore that builds
# without KVM (legacy devices, PCI host, a virtio-pci transport).
FUZZ_SNAPSHOT_SRC := fuzz/fuzz_snapshot.c src/core/snap.c src/devices/uart_16550.c src/devices/rtc_cmos.c \
	src/devices/acpi_pm.c src/devices/i8042.c src/devices/ps2_kbd.c src/devices/pvpanic.c src/devices/pci.c \
	src/virtio/virtio_pci.c src/virtio/virtio_dev.c src/virtio/virtq.c src/core/gmem.c src/core/devreq.c
$(B)/fuzz/fuzz_snapshot: $(FUZZ_SNAPSHOT_SRC) fuzz/coverage-ignore.txt $(B)/libvigil.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_IGNORE) $(SLIRP_CFLAGS) -o $@ $(filter %.c,$^) $(B)/libvigil.a $(LDLIBS)
# Its seeds (fuzz/corpus-snapshot): snapshots of a driven and a power-on
# machine, written by the same file built as a program.
fuzz-snapshot-seeds: $(FUZZ_SNAPSHOT_SRC) $(B)/libvigil.a
	@mkdir -p $(B)/fuzz fuzz/corpus-snapshot
	$(CC) -std=gnu11 -O1 -g -Isrc -DFUZZ_SNAPSHOT_SEEDGEN -o $(B)/fuzz/snapshot_seedgen $(filter %.c,$^) \
		$(B)/libvigil.a $(LDLIBS)
	$(B)/fuzz/snapshot_seedgen > fuzz/corpus-snapshot/driven
	$(B)/fuzz/snapshot_seedgen plain > fuzz/corpus-snapshot/plain
	$(B)/fuzz/snapshot_seedgen driven raw > fuzz/corpus-snapshot/driven-raw
.PHONY: fuzz-snapshot-seeds
# fuzz_irqchip: the interrupt controller models' registers (what a guest of
# vigil-metal programs directly) and the MMIO instruction decoder.
FUZZ_IRQCHIP_SRC := fuzz/fuzz_irqchip.c src/devices/lapic.c src/devices/ioapic.c src/devices/i8259.c \
	src/devices/i8254.c src/arch/x86/insn_decode.c
$(B)/fuzz/fuzz_irqchip: $(FUZZ_IRQCHIP_SRC) $(wildcard src/devices/lapic.h src/devices/ioapic.h src/devices/i8259.h src/devices/i8254.h src/arch/x86/insn_decode.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) -lpthread
FUZZ_TARGETS := fuzz_virtq fuzz_api fuzz_net fuzz_gdb $(FUZZ_VIRTIO_DEVS:%=fuzz_virtio_%) fuzz_exit fuzz_boot fuzz_pci \
	fuzz_snapshot fuzz_irqchip
FUZZ_BINS := $(FUZZ_TARGETS:%=$(B)/fuzz/%)
$(B)/fuzz/fuzz_exit $(B)/fuzz/fuzz_pci $(B)/fuzz/fuzz_net $(FUZZ_VIRTIO_DEVS:%=$(B)/fuzz/fuzz_virtio_%): fuzz/fuzz_input.h
FUZZ_SMOKE_S ?= 6
FUZZ_RUNS ?= 100000000
fuzz: $(FUZZ_BINS)
# About 90 s in all (13 targets, FUZZ_SMOKE_S seconds each plus start-up); fails on a crash.
fuzz-smoke: $(FUZZ_BINS)
	@fuzz/run.sh $(B) time $(FUZZ_SMOKE_S) $(FUZZ_TARGETS)
# FUZZ_RUNS executions each (hours: 1e8 at 1e4-1e5 exec/s), figures per
# target; stopped and run again, it goes on where it stopped (fuzz/campaign.sh,
# its state in $(B)/fuzz-long, a copy of its ledgers in fuzz/ledgers to
# commit: a later session goes on with the same binary's runs).
# FUZZ_TARGETS=... for some only.
fuzz-long: $(FUZZ_BINS)
	@FUZZ_LEDGERS=fuzz/ledgers fuzz/campaign.sh $(B) $(B)/fuzz-long $(FUZZ_RUNS) $(FUZZ_TARGETS)
# fuzz_gdb: the gdb stub's packet framing and command decoder over a fake target.
FUZZ_GDB_SRC := fuzz/fuzz_gdb.c src/gdb/gdb_packet.c src/gdb/gdb_stub.c src/gdb/gdb_regs.c
$(B)/fuzz/fuzz_gdb: $(FUZZ_GDB_SRC) tests/unit/fake_gdb_target.h src/gdb/gdb_packet.h src/gdb/gdb_stub.h src/gdb/gdb_regs.h \
		fuzz/coverage-ignore.txt
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_IGNORE) -Itests/unit -o $@ $(filter %.c,$^)
.PHONY: fuzz fuzz-smoke fuzz-long


# The soak (also in make check): 1,000 boot-to-poweroff cycles with every
# device, then 100 such VMs at once (tests/soak.sh; SOAK="CYCLES AT_ONCE").
soak: all guests
	tests/soak.sh $(B) $(SOAK)
.PHONY: soak

# Any tiny guest as a PVH ELF, for QEMU (bench/startup.py, exits.py,
# density.py; see bench-snapshot's rule for why).
$(B)/bench/tiny-%-pvh.elf: tests/guests/tiny.S bench/qemu_pvh.S bench/qemu_pvh.ld
	@mkdir -p $(dir $@)
	$(CC) -c -DACTION_$* -o $@.tiny.o tests/guests/tiny.S
	$(CC) -c -o $@.pvh.o bench/qemu_pvh.S
	ld -m elf_x86_64 --no-warn-rwx-segments -T bench/qemu_pvh.ld -o $@ $@.tiny.o $@.pvh.o
# The lab's network benchmark's host side (bench/net.py; the guest's copy is
# built by guest/build.sh from the same file).
$(B)/bench/netbench: guest/tools/netbench.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $<
# Density (bench/density.py): 100 idle tiny VMs at once, each with a disk and
# a vsock device, vigil beside QEMU microvm.
bench-density: $(B)/vigil $(B)/tests/guests/tiny-idle.bin $(B)/bench/tiny-idle-pvh.elf
	bench/density.py $(B)
.PHONY: bench-density

# The benchmark: one table, vigil beside QEMU, goals met or not, JSON in
# build/bench/ (bench/run.sh). Native sections by default (a few minutes);
# `make bench LAB=1` adds the lab's boot, disk and net (many minutes). N=runs,
# SECTIONS="startup exits ..." to choose. Never a test.
bench: $(B)/vigil
	bench/run.sh $(if $(N),-n $(N)) $(if $(filter 1,$(LAB)),--lab) $(if $(SECTIONS),--only "$(SECTIONS)")
.PHONY: bench

# The SVM backend's exit path, compiled into its host test (tests/unit/test_svm_exit.c
# includes the backend's files, with a scripted world switch).
$(B)/tests/test_svm_exit: $(wildcard src/svm/*.c src/svm/*.h)

# vigil-metal beside vigil on KVM in the lab, both under QEMU TCG's AMD-V
# (bench/metal.py): the tiny guests' exits/s and Debian's boot to init,
# interleaved, median of N (3). One L1 boot per round. Never a test.
bench-metal: $(B)/vigil $(B)/vigil-metal $(B)/tests/guests/tiny-poweroff.bin $(B)/tests/guests/tiny-hammer.bin \
	     $(B)/tests/guests/tiny-pioloop.bin
	guest/build.sh $(B)/guest >/dev/null
	nice bench/metal.py $(B) $(if $(N),--runs $(N)) --json $(B)/bench/metal.json
.PHONY: bench-metal
