/* elf_core: a core written into memory and parsed back with the host's own
 * ELF and prstatus definitions (<elf.h>, <sys/procfs.h>): headers, one
 * NT_PRSTATUS per vCPU with the registers where gdb reads them, physical
 * segments holding RAM, virtual ones pointing at the same bytes; and the
 * kernel-half scan's coalescing. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/user.h>

#include <cmocka.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/elf_core.h"

#define LOW  (4u << 20) /* RAM at 0 */
#define HIGH (1u << 20) /* RAM at 4 GiB */
#define P    1ull
#define W    2ull
#define PS   0x80ull

static uint8_t *low, *high;
static struct gmem mem;
static uint8_t *file;
static size_t file_len;
static int fail_after = -1; /* the write callback fails on that call */

static int mem_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	(void)ctx;
	if (fail_after == 0)
		return -ENOSPC;
	if (fail_after > 0)
		fail_after--;
	if (off + len > file_len) {
		file = realloc(file, off + len);
		memset(file + file_len, 0xee, off + len - file_len);
		file_len = off + len;
	}
	memcpy(file + off, buf, len);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	low = calloc(1, LOW);
	high = calloc(1, HIGH);
	for (unsigned i = 0; i < LOW; i++)
		low[i] = (uint8_t)(i * 7);
	for (unsigned i = 0; i < HIGH; i++)
		high[i] = (uint8_t)(i * 13 + 1);
	memset(&mem, 0, sizeof(mem));
	gmem_add(&mem, 0, LOW, low);
	gmem_add(&mem, 0x100000000ull, HIGH, high);
	file = NULL, file_len = 0, fail_after = -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(low), free(high), free(file);
	return 0;
}

static uint64_t *ent(uint64_t table, unsigned i)
{
	return (uint64_t *)(low + table + i * 8);
}

/* Kernel half: 0xffff800000000000 -> a 2 MiB page at 0x200000, then a 4 KiB
 * page virtually next to it but not physically (0x3ff000: a run of its
 * own); 0xffffffff80000000 -> pages 0x1000, 0x2000 (one run), 0x5000, a
 * page of MMIO (left out) and a page of high RAM; a 1 GiB user page. */
static struct pw_regs build_tables(void)
{
	uint64_t pml4 = 0x10000, pdpt_a = 0x11000, pd_a = 0x12000, pt_a = 0x13000;
	uint64_t pdpt_b = 0x14000, pd_b = 0x15000, pt_b = 0x16000, pdpt_u = 0x17000;
	*ent(pml4, 256) = pdpt_a | P | W;
	*ent(pdpt_a, 0) = pd_a | P | W;
	*ent(pd_a, 0) = 0x200000 | P | W | PS;
	*ent(pd_a, 1) = pt_a | P | W;
	*ent(pt_a, 0) = 0x3ff000 | P | W;
	*ent(pml4, 511) = pdpt_b | P | W;
	*ent(pdpt_b, 510) = pd_b | P | W;
	*ent(pd_b, 0) = pt_b | P | W;
	*ent(pt_b, 0) = 0x1000 | P | W;
	*ent(pt_b, 1) = 0x2000 | P | W;
	*ent(pt_b, 2) = 0x5000 | P | W;
	*ent(pt_b, 3) = 0xfee00000ull | P | W;
	*ent(pt_b, 4) = 0x100000000ull | P | W; /* high RAM */
	*ent(pml4, 0) = pdpt_u | P | W | 4;
	*ent(pdpt_u, 0) = 0 | P | W | PS | 4; /* 1 GiB user page: not in the dump's maps */
	return (struct pw_regs){ .cr0 = 0x80000001, .cr3 = pml4, .cr4 = 0x20, .efer = 0x500 };
}

static void test_kernel_maps(void **state)
{
	(void)state;
	struct pw_regs r = build_tables();
	struct elf_core_map *maps;
	size_t n;
	assert_int_equal(elf_core_kernel_maps(&mem, &r, 100, &maps, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(maps[0].vaddr, 0xffff800000000000ull);
	assert_int_equal(maps[0].gpa, 0x200000);
	assert_int_equal(maps[0].size, 0x200000);
	assert_int_equal(maps[1].vaddr, 0xffff800000200000ull);
	assert_int_equal(maps[1].gpa, 0x3ff000);
	assert_int_equal(maps[1].size, 0x1000);
	assert_int_equal(maps[2].vaddr, 0xffffffff80000000ull); /* 0x1000 and 0x2000 coalesced */
	assert_int_equal(maps[2].gpa, 0x1000);
	assert_int_equal(maps[2].size, 0x2000);
	assert_int_equal(maps[3].vaddr, 0xffffffff80002000ull);
	assert_int_equal(maps[3].gpa, 0x5000);
	assert_int_equal(maps[3].size, 0x1000);
	assert_int_equal(maps[4].vaddr, 0xffffffff80004000ull); /* MMIO page skipped */
	assert_int_equal(maps[4].gpa, 0x100000000ull);
	free(maps);
	/* the cap keeps the last 512 GiB (the kernel image) first */
	assert_int_equal(elf_core_kernel_maps(&mem, &r, 2, &maps, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(maps[0].vaddr, 0xffffffff80000000ull);
	assert_int_equal(maps[1].vaddr, 0xffffffff80002000ull);
	free(maps);
	/* paging off: none */
	r.cr0 = 1;
	assert_int_equal(elf_core_kernel_maps(&mem, &r, 100, &maps, &n), 0);
	assert_int_equal(n, 0);
	assert_null(maps);
}

static void test_core_file(void **state)
{
	(void)state;
	struct pw_regs r = build_tables();
	struct elf_core_map *maps;
	size_t n;
	assert_int_equal(elf_core_kernel_maps(&mem, &r, 100, &maps, &n), 0);
	struct vcpu_state cpus[2];
	memset(cpus, 0, sizeof(cpus));
	for (unsigned i = 0; i < 2; i++) {
		cpus[i].rip = 0xffffffff81000000ull + i;
		cpus[i].rsp = 0x7000 + i;
		cpus[i].rax = 0xaa, cpus[i].r15 = 0x1515, cpus[i].rflags = 0x202;
		cpus[i].cs.selector = 0x10, cpus[i].ss.selector = 0x18;
		cpus[i].gs.base = 0xffff888000001000ull;
	}
	struct elf_core c = { .mem = &mem, .cpus = cpus, .ncpus = 2, .maps = maps, .nmaps = n };
	assert_int_equal(elf_core_write(&c, mem_write, NULL), 0);
	assert_int_equal(file_len, elf_core_size(&c));

	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
	assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh->e_ident[EI_CLASS], ELFCLASS64);
	assert_int_equal(eh->e_ident[EI_DATA], ELFDATA2LSB);
	assert_int_equal(eh->e_type, ET_CORE);
	assert_int_equal(eh->e_machine, EM_X86_64);
	assert_int_equal(eh->e_phentsize, sizeof(Elf64_Phdr));
	assert_int_equal(eh->e_phnum, 1 + 2 + n);
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh->e_phoff);

	/* the notes: one NT_PRSTATUS per vCPU */
	assert_int_equal(ph[0].p_type, PT_NOTE);
	const uint8_t *note = file + ph[0].p_offset;
	for (unsigned i = 0; i < 2; i++) {
		const Elf64_Nhdr *nh = (const Elf64_Nhdr *)note;
		assert_int_equal(nh->n_namesz, 5);
		assert_int_equal(nh->n_type, NT_PRSTATUS);
		assert_int_equal(nh->n_descsz, sizeof(struct elf_prstatus));
		assert_string_equal((const char *)(note + sizeof(*nh)), "CORE");
		struct elf_prstatus pr;
		memcpy(&pr, note + sizeof(*nh) + 8, sizeof(pr));
		assert_int_equal(pr.pr_pid, i + 1);
		struct user_regs_struct u;
		memcpy(&u, &pr.pr_reg, sizeof(u));
		assert_int_equal(u.rip, 0xffffffff81000000ull + i);
		assert_int_equal(u.rsp, 0x7000 + i);
		assert_int_equal(u.rax, 0xaa);
		assert_int_equal(u.r15, 0x1515);
		assert_int_equal(u.eflags, 0x202);
		assert_int_equal(u.cs, 0x10);
		assert_int_equal(u.ss, 0x18);
		assert_int_equal(u.gs_base, 0xffff888000001000ull);
		note += sizeof(*nh) + 8 + nh->n_descsz;
	}
	assert_int_equal(note - (file + ph[0].p_offset), ph[0].p_filesz);

	/* physical segments: RAM itself */
	assert_int_equal(ph[1].p_type, PT_LOAD);
	assert_int_equal(ph[1].p_paddr, 0);
	assert_int_equal(ph[1].p_vaddr, 0);
	assert_int_equal(ph[1].p_filesz, LOW);
	assert_int_equal(ph[1].p_offset % 4096, 0);
	assert_memory_equal(file + ph[1].p_offset, low, LOW);
	assert_int_equal(ph[2].p_paddr, 0x100000000ull);
	assert_int_equal(ph[2].p_filesz, HIGH);
	assert_memory_equal(file + ph[2].p_offset, high, HIGH);
	/* virtual segments: the same file bytes as their gpa */
	for (size_t i = 0; i < n; i++) {
		const Elf64_Phdr *v = &ph[3 + i];
		assert_int_equal(v->p_type, PT_LOAD);
		assert_int_equal(v->p_vaddr, maps[i].vaddr);
		assert_int_equal(v->p_paddr, maps[i].gpa);
		assert_int_equal(v->p_filesz, maps[i].size);
		const uint8_t *ram = v->p_paddr >= 0x100000000ull ? high + (v->p_paddr - 0x100000000ull)
								  : low + v->p_paddr;
		assert_true(v->p_offset + v->p_filesz <= file_len);
		assert_memory_equal(file + v->p_offset, ram, v->p_filesz);
	}
	free(maps);
}

static void test_write_error(void **state)
{
	(void)state;
	struct vcpu_state cpu;
	memset(&cpu, 0, sizeof(cpu));
	struct elf_core c = { .mem = &mem, .cpus = &cpu, .ncpus = 1 };
	fail_after = 1; /* headers go, the first RAM region does not */
	assert_int_equal(elf_core_write(&c, mem_write, NULL), -ENOSPC);
	fail_after = 0;
	assert_int_equal(elf_core_write(&c, mem_write, NULL), -ENOSPC);
}

/* More segments than e_phnum holds: PN_XNUM, the count in section 0. */
static void test_many_segments(void **state)
{
	(void)state;
	const size_t n = 70000;
	struct elf_core_map *maps = calloc(n, sizeof(*maps));
	for (size_t i = 0; i < n; i++)
		maps[i] = (struct elf_core_map){ 0xffffc90000000000ull + i * 4096, (i % 1024) * 4096, 4096 };
	struct vcpu_state cpu;
	memset(&cpu, 0, sizeof(cpu));
	cpu.rip = 0x1234;
	struct elf_core c = { .mem = &mem, .cpus = &cpu, .ncpus = 1, .maps = maps, .nmaps = n };
	assert_int_equal(elf_core_write(&c, mem_write, NULL), 0);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
	assert_int_equal(eh->e_phnum, PN_XNUM);
	assert_int_not_equal(eh->e_shoff, 0);
	assert_int_equal(eh->e_shnum, 1);
	assert_int_equal(eh->e_shentsize, sizeof(Elf64_Shdr));
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(file + eh->e_shoff);
	assert_int_equal(sh->sh_type, SHT_NULL);
	assert_int_equal(sh->sh_info, 1 + 2 + n);
	assert_true(eh->e_shoff >= eh->e_phoff + (1 + 2 + n) * sizeof(Elf64_Phdr));
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh->e_phoff);
	assert_int_equal(ph[0].p_type, PT_NOTE);
	assert_true(ph[0].p_offset >= eh->e_shoff + sizeof(Elf64_Shdr));
	const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(file + ph[0].p_offset);
	assert_int_equal(nh->n_type, NT_PRSTATUS);
	const Elf64_Phdr *last = &ph[2 + n];
	assert_int_equal(last->p_vaddr, maps[n - 1].vaddr);
	assert_memory_equal(file + last->p_offset, low + maps[n - 1].gpa, 4096);
	free(maps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_segments, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
