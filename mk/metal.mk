# vigil-metal (issue 12): the same portable core, booted by multiboot on bare
# x86-64 with AMD-V. Built freestanding: no host libc, no host headers beyond
# the compiler's own (stdint, stdarg, stdatomic ...); src/metal/libc is the
# small libc shim, src/metal the platform, src/svm the SVM backend.
#   make metal        build/vigil-metal (ELF32 multiboot image for -kernel / GRUB)
METAL_CC    ?= gcc
METAL_B     := $(B)/metal
METAL_CFLAGS := -std=gnu11 $(WARN) -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-fno-tree-loop-distribute-patterns -mno-red-zone -mgeneral-regs-only -mcmodel=small \
	-fno-asynchronous-unwind-tables -nostdinc -isystem $(shell $(METAL_CC) -print-file-name=include) \
	-Isrc/metal/libc/include -Isrc -DVIGIL_METAL=1 -DVIGIL_VERSION='"$(VERSION)"' -MMD -MP
# The portable part, every file of it (CORE_SRC), compiled unchanged: a
# change that makes it reach for the host breaks this build.
METAL_SRC   := $(wildcard src/metal/*.c src/metal/libc/*.c src/svm/*.c) $(CORE_SRC)
METAL_ASM   := $(wildcard src/metal/*.S)
METAL_ASM   += $(wildcard src/svm/*.S)
METAL_OBJ   := $(METAL_ASM:%.S=$(METAL_B)/obj/%.o) $(METAL_SRC:%.c=$(METAL_B)/obj/%.o)
METAL_LIBGCC := $(shell $(METAL_CC) -print-libgcc-file-name)

$(METAL_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(METAL_CC) $(METAL_CFLAGS) -c $< -o $@
$(METAL_B)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(METAL_CC) $(METAL_CFLAGS) -c $< -o $@

# Linked as ELF64 at 1 MiB, then handed over as ELF32 (QEMU's multiboot
# loader refuses ELF64 images; the bytes are the same).
$(B)/vigil-metal.elf64: $(METAL_OBJ) src/metal/metal.ld
	ld -n -nostdlib -z noexecstack --no-warn-rwx-segments -T src/metal/metal.ld -o $@ $(METAL_OBJ) $(METAL_LIBGCC)
$(B)/vigil-metal: $(B)/vigil-metal.elf64
	objcopy -O elf32-i386 $< $@

metal: $(B)/vigil-metal
.PHONY: metal
-include $(METAL_OBJ:.o=.d)
