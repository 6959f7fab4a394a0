/* Pieces both boot protocols share: format detection, command line, initrd
 * placement, and the flat segments and identity page tables the kernel's
 * entry code expects. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/errmsg.h"
#include "arch/x86/layout.h"

int boot_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res, char *err,
	      size_t errlen)
{
	memset(res, 0, sizeof(*res));
	if (cfg->kernel_len >= 4 && memcmp(cfg->kernel, "\177ELF", 4) == 0)
		return boot_pvh_load(m, cfg, res, err, errlen);
	if (cfg->kernel_len >= 0x206 && memcmp(cfg->kernel + 0x202, "HdrS", 4) == 0)
		return boot_bzimage_load(m, cfg, res, err, errlen);
	return errmsg(err, errlen, "kernel is neither a bzImage nor an ELF vmlinux");
}

uint64_t boot_low_ram_end(const struct gmem *m)
{
	for (unsigned i = 0; i < m->nr; i++)
		if (m->r[i].gpa == 0)
			return m->r[i].size;
	return 0;
}

int boot_write_cmdline(const struct gmem *m, const char *cmdline, size_t max, char *err, size_t errlen)
{
	size_t len = strlen(cmdline) + 1;

	if (max > LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX;
	if (len > max)
		return errmsg(err, errlen, "kernel command line is %zu bytes, the kernel takes at most %zu",
			    len - 1, max - 1);
	if (gmem_write(m, LAYOUT_CMDLINE, cmdline, len) < 0)
		return errmsg(err, errlen, "guest memory too small for the command line");
	return 0;
}

/* The initrd goes as high as the kernel may reach (like QEMU and the
 * firmware loaders), leaving the low memory for the kernel to decompress. */
int boot_place_initrd(const struct gmem *m, const struct boot_config *cfg, uint64_t above, uint64_t limit,
		      uint64_t *addr, char *err, size_t errlen)
{
	uint64_t top = boot_low_ram_end(m);

	*addr = 0;
	if (!cfg->initrd)
		return 0;
	if (limit < top)
		top = limit;
	if (cfg->initrd_len > top || ((top - cfg->initrd_len) & ~0xFFFULL) < above)
		return errmsg(err, errlen,
			    "initrd (%zu MiB) does not fit in guest memory the kernel can reach "
			    "(%llu MiB between kernel and limit): raise --mem",
			    cfg->initrd_len >> 20,
			    (unsigned long long)(top > above ? (top - above) >> 20 : 0));
	*addr = (top - cfg->initrd_len) & ~0xFFFULL;
	if (gmem_write(m, *addr, cfg->initrd, cfg->initrd_len) < 0)
		return errmsg(err, errlen, "initrd does not fit in guest memory");
	return 0;
}

#define GDT_ENTRY(flags, base, limit)                                                              \
	((((uint64_t)(base) & 0xff000000ULL) << 32) | (((uint64_t)(flags) & 0xf0ffULL) << 40) |    \
	 (((uint64_t)(limit) & 0x000f0000ULL) << 32) | (((uint64_t)(base) & 0x00ffffffULL) << 16) | \
	 ((uint64_t)(limit) & 0x0000ffffULL))

/* The segment as the CPU caches it from a descriptor: the limit in bytes,
 * already scaled by the granularity bit (what KVM_SET_SREGS expects). */
static struct x86_seg seg_from_gdt(uint16_t sel, uint64_t e)
{
	uint32_t raw = (uint32_t)(((e >> 32) & 0xf0000) | (e & 0xffff));
	bool g = (e >> 55) & 1;

	return (struct x86_seg){
		.base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24),
		.limit = g ? (raw << 12) | 0xfff : raw,
		.selector = sel,
		.type = (e >> 40) & 0xf,
		.s = (e >> 44) & 1,
		.dpl = (e >> 45) & 3,
		.present = (e >> 47) & 1,
		.l = (e >> 53) & 1,
		.db = (e >> 54) & 1,
		.g = (e >> 55) & 1,
	};
}

/* GDT layout Linux's entry code asks for: code at 0x10 (__BOOT_CS), data at
 * 0x18 (__BOOT_DS). */
static void write_gdt(const struct gmem *m, struct x86_boot_cpu *cpu, uint64_t code)
{
	uint64_t gdt[4] = { 0, 0, code, GDT_ENTRY(0xc093, 0, 0xfffff) };
	uint64_t idt = 0;

	gmem_write(m, LAYOUT_GDT, gdt, sizeof(gdt));
	gmem_write(m, LAYOUT_IDT, &idt, sizeof(idt));
	cpu->gdt_base = LAYOUT_GDT;
	cpu->gdt_limit = sizeof(gdt) - 1;
	cpu->idt_base = LAYOUT_IDT;
	cpu->idt_limit = 0;
	cpu->cs = seg_from_gdt(0x10, gdt[2]);
	cpu->ds = seg_from_gdt(0x18, gdt[3]);
	cpu->rflags = 0x2;
}

void boot_cpu_long_mode(const struct gmem *m, struct x86_boot_cpu *cpu)
{
	uint64_t pml4[512] = { 0 }, pdpt[512] = { 0 };

	write_gdt(m, cpu, GDT_ENTRY(0xa09b, 0, 0xfffff));
	/* Identity-map the low 4 GiB with 2 MiB pages: the kernel, its
	 * boot_params and command line all sit in there. */
	pml4[0] = LAYOUT_PDPT | 0x3;
	for (uint64_t i = 0; i < 4; i++) {
		uint64_t pd[512];
		pdpt[i] = (LAYOUT_PD + i * 0x1000) | 0x3;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = ((i << 30) | (j << 21)) | 0x83;
		gmem_write(m, LAYOUT_PD + i * 0x1000, pd, sizeof(pd));
	}
	gmem_write(m, LAYOUT_PML4, pml4, sizeof(pml4));
	gmem_write(m, LAYOUT_PDPT, pdpt, sizeof(pdpt));
	cpu->cr3 = LAYOUT_PML4;
	cpu->cr4 = 1u << 5;                      /* PAE */
	cpu->cr0 = 0x80000000u | 0x10u | 0x1u;   /* PG | ET | PE */
	cpu->efer = (1u << 8) | (1u << 10);      /* LME | LMA */
}

void boot_cpu_protected_mode(const struct gmem *m, struct x86_boot_cpu *cpu)
{
	write_gdt(m, cpu, GDT_ENTRY(0xc09b, 0, 0xfffff));
	cpu->cr0 = 0x10u | 0x1u; /* ET | PE, paging off */
	cpu->cr3 = 0;
	cpu->cr4 = 0;
	cpu->efer = 0;
}
