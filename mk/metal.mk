# vigil-metal (issue 12): the same portable core, booted by multiboot on bare
# x86-64 with AMD-V. Built freestanding: no host libc, no host headers beyond
# the compiler's own (stdint, stdarg, stdatomic ...); src/metal/libc is the
# small libc shim, src/metal the platform, src/svm the SVM backend.
#   make metal        build/vigil-metal (ELF32 multiboot image for -kernel / GRUB)
#   make metal METAL_CC=clang METAL_EXTRA=-Werror B=build/x   (tests/metal.sh's warning check)
METAL_CC    ?= gcc
METAL_EXTRA ?=
METAL_B     := $(B)/metal
# jansson.h alone, not the rest of /usr/include (glibc's headers stay out).
METAL_JINC  := $(METAL_B)/jansson-include
METAL_CFLAGS := -std=gnu11 $(WARN) -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	$(if $(findstring clang,$(METAL_CC)),,-fno-tree-loop-distribute-patterns) -mno-red-zone -mgeneral-regs-only -mcmodel=small \
	-fno-asynchronous-unwind-tables -nostdinc -isystem $(shell $(METAL_CC) -print-file-name=include) \
	-Isrc/metal/libc/include -idirafter $(METAL_JINC) -Isrc -DVIGIL_METAL=1 -DVIGIL_VERSION='"$(VERSION)"' -MMD -MP \
	-Werror=implicit-function-declaration $(METAL_EXTRA)
# The portable part, every file of it (CORE_SRC), compiled unchanged: a
# change that makes it reach for the host breaks this build.
METAL_SRC   := $(wildcard src/metal/*.c src/metal/libc/*.c src/svm/*.c) $(CORE_SRC)
# Hosted-side files that are pure and that vigil-metal runs as they are: the
# CLI's number parsers, the policy's build-time decisions, and the policy
# file's parser (over Debian's static jansson; see src/metal/policy_mod.c).
METAL_SRC   += src/cli/parse.c src/vmm/policy_build.c src/vmm/policy_json.c src/vmm/policy_json_res.c \
	src/vmm/policy_json_val.c src/vmm/policy_json_out.c
METAL_JANSSON := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libjansson.a /usr/lib/libjansson.a))
METAL_ASM   := $(wildcard src/metal/*.S src/svm/*.S)
METAL_OBJ   := $(METAL_ASM:%.S=$(METAL_B)/obj/%.o) $(METAL_SRC:%.c=$(METAL_B)/obj/%.o)
METAL_LIBGCC := $(shell $(METAL_CC) -print-libgcc-file-name)

$(METAL_JINC)/jansson.h:
	@mkdir -p $(dir $@)
	ln -sf /usr/include/jansson.h /usr/include/jansson_config.h $(dir $@)
$(METAL_B)/obj/%.o: %.c | $(METAL_JINC)/jansson.h
	@mkdir -p $(dir $@)
	$(METAL_CC) $(METAL_CFLAGS) -c $< -o $@
$(METAL_B)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(METAL_CC) $(METAL_CFLAGS) -c $< -o $@

# Linked as ELF64 at 1 MiB, then handed over as ELF32 (QEMU's multiboot
# loader refuses ELF64 images; the bytes are the same).
$(B)/vigil-metal.elf64: $(METAL_OBJ) src/metal/metal.ld
	ld -n -nostdlib -z noexecstack --no-warn-rwx-segments -T src/metal/metal.ld -o $@ $(METAL_OBJ) $(METAL_JANSSON) $(METAL_LIBGCC)
$(B)/vigil-metal: $(B)/vigil-metal.elf64
	objcopy -O elf32-i386 $< $@

metal: $(B)/vigil-metal
.PHONY: metal
-include $(METAL_OBJ:.o=.d)
# strtod alone uses SSE (jansson's reals, parsed before the first VMRUN).
$(METAL_B)/obj/src/metal/libc/strtod.o: METAL_CFLAGS := $(filter-out -mgeneral-regs-only,$(METAL_CFLAGS))
# File and locale headers (all failing stubs) only for the hosted-side
# files that name them and for jansson's shims: a portable file that
# reaches for <unistd.h> or <fcntl.h> does not compile into vigil-metal.
METAL_COMPAT := -Isrc/metal/libc/compat-include -Werror=implicit-function-declaration
$(METAL_B)/obj/src/vmm/%.o: METAL_CFLAGS += $(METAL_COMPAT)
$(METAL_B)/obj/src/metal/libc/files.o $(METAL_B)/obj/src/metal/libc/glibc_compat.o: METAL_CFLAGS += $(METAL_COMPAT)
# Host unit tests that compile the platform's portable-enough files in
# (tests/unit/test_metal_*.c include them): rebuilt when those change.
$(B)/tests/test_metal_exec: src/metal/exec_poll.c src/metal/exec_poll.h src/metal/ramdisk.c src/metal/ramdisk.h
$(B)/tests/test_metal_opts: src/metal/options.c src/metal/options.h
