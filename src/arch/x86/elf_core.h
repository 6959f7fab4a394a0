/* elf_core — the guest as an ELF64 core file (ET_CORE, EM_X86_64) that gdb
 * opens: a PT_NOTE with one NT_PRSTATUS per vCPU (Linux's x86-64
 * elf_prstatus, pr_pid = vCPU index + 1, so gdb shows vCPUs as threads),
 * one PT_LOAD per RAM region (p_paddr = p_vaddr = its guest physical
 * address), and one PT_LOAD per run of the kernel's virtual mappings
 * (p_vaddr virtual, p_paddr physical) pointing at the same file bytes as
 * the physical segment that holds them: RAM is in the file once.
 * Portable: the bytes go out through a write callback (vmm/dump.c: pwrite). */
#ifndef VIGIL_ARCH_X86_ELF_CORE_H
#define VIGIL_ARCH_X86_ELF_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/pagewalk.h"
#include "core/gmem.h"

struct vcpu_state;

struct elf_core_map {
	uint64_t vaddr, gpa, size; /* [gpa, gpa+size) lies in one RAM region */
};

/* Writes len bytes at file offset off; 0 or -errno (which ends the dump). */
typedef int (*elf_core_write_fn)(void *ctx, uint64_t off, const void *buf, size_t len);

struct elf_core {
	const struct gmem *mem;
	const struct vcpu_state *cpus;
	unsigned ncpus;
	const struct elf_core_map *maps; /* virtual segments, may be NULL */
	size_t nmaps;
};

/* The size of the layout: notes, headers and RAM; for callers that check room. */
uint64_t elf_core_size(const struct elf_core *c);
/* 0, -ENOMEM, or the callback's error. */
int elf_core_write(const struct elf_core *c, elf_core_write_fn write, void *ctx);

/* The kernel half (upper, canonical) of the address space the paging
 * registers describe, as runs of RAM contiguous in both virtual and
 * physical addresses, in ascending virtual order; what maps no RAM (MMIO)
 * is left out. Long mode only (other modes: no runs). At most `max` runs,
 * the last 512 GiB (kernel image, modules) scanned first so that a cap
 * never drops them.
 * *maps is malloc'd (NULL when none). 0 or -ENOMEM. */
int elf_core_kernel_maps(const struct gmem *m, const struct pw_regs *r, size_t max, struct elf_core_map **maps,
			 size_t *n);

#endif
