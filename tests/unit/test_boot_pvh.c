/* Unit tests for the PVH ELF loader (arch/x86/boot_pvh.c): synthetic ELF64
 * vmlinux images with PT_LOAD and PT_NOTE segments, loaded into a fake guest;
 * hvm_start_info and the entry state read back by their ABI offsets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "fake_guest.h"

#define GUEST_MEM (64 * MiB)
#define SEG0_PADDR 0x1000000ULL
#define SEG0_OFF 0x1000
#define SEG0_FILESZ 0x3000
#define SEG0_MEMSZ 0x5000
#define SEG1_PADDR 0x1400000ULL
#define SEG1_OFF 0x4000
#define SEG1_SZ 0x100
#define NOTE_OFF 0x4100
#define ENTRY 0x1000040ULL

/* hvm_start_info field offsets (xen/include/public/arch-x86/hvm/start_info.h). */
#define SI_MAGIC 0
#define SI_VERSION 4
#define SI_FLAGS 8
#define SI_NR_MODULES 12
#define SI_MODLIST 16
#define SI_CMDLINE 24
#define SI_RSDP 32
#define SI_MEMMAP 40
#define SI_MEMMAP_ENTRIES 48

/* Phdr indices in the synthetic image. */
enum { PH_LOAD0, PH_LOAD1, PH_NOTE, PH_COUNT };

static size_t put_note(uint8_t *p, const char *name, uint32_t namesz, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	Elf64_Nhdr h = { .n_namesz = namesz, .n_descsz = descsz, .n_type = type };
	size_t off = 0;
	memcpy(p, &h, sizeof(h));
	off += sizeof(h);
	memcpy(p + off, name, namesz);
	off += (namesz + 3) & ~3u;
	memcpy(p + off, desc, descsz);
	off += (descsz + 3) & ~3u;
	return off;
}

/* An ELF64 x86-64 vmlinux: two PT_LOADs, then a PT_NOTE holding a GNU build
 * id note followed by the Xen PHYS32_ENTRY note (desc_size 4 or 8, or 0 for
 * none). The note segment is last in the file, so the file ends where it
 * does: any read past it is an ASan error. */
static uint8_t *make_elf(uint64_t entry, unsigned desc_size, size_t *len)
{
	uint8_t notes[128];
	size_t nlen = 0;
	uint8_t build_id[20];
	memset(build_id, 0x42, sizeof(build_id));
	nlen += put_note(notes + nlen, "GNU", 4, NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	if (desc_size == 4) {
		uint32_t e = (uint32_t)entry;
		nlen += put_note(notes + nlen, "Xen", 4, 18, &e, 4);
	} else if (desc_size == 8) {
		nlen += put_note(notes + nlen, "Xen", 4, 18, &entry, 8);
	}

	*len = NOTE_OFF + nlen;
	uint8_t *img = calloc(1, *len);
	assert_non_null(img);
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = 0xffffffff81000000ULL, /* the 64-bit virtual entry: not used by PVH */
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = PH_COUNT,
	};
	memcpy(img, &eh, sizeof(eh));
	Elf64_Phdr ph[PH_COUNT] = {
		[PH_LOAD0] = { .p_type = PT_LOAD, .p_offset = SEG0_OFF, .p_paddr = SEG0_PADDR,
			       .p_vaddr = 0xffffffff81000000ULL, .p_filesz = SEG0_FILESZ,
			       .p_memsz = SEG0_MEMSZ },
		[PH_LOAD1] = { .p_type = PT_LOAD, .p_offset = SEG1_OFF, .p_paddr = SEG1_PADDR,
			       .p_filesz = SEG1_SZ, .p_memsz = SEG1_SZ },
		[PH_NOTE] = { .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_filesz = nlen },
	};
	memcpy(img + eh.e_phoff, ph, sizeof(ph));
	fill_pattern(img + SEG0_OFF, SEG0_FILESZ, 1);
	fill_pattern(img + SEG1_OFF, SEG1_SZ, 2);
	memcpy(img + NOTE_OFF, notes, nlen);
	return img;
}

static Elf64_Phdr get_ph(const uint8_t *img, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, img + sizeof(Elf64_Ehdr) + i * sizeof(ph), sizeof(ph));
	return ph;
}

static void set_ph(uint8_t *img, unsigned i, const Elf64_Phdr *ph)
{
	memcpy(img + sizeof(Elf64_Ehdr) + i * sizeof(*ph), ph, sizeof(*ph));
}

static Elf64_Ehdr get_eh(const uint8_t *img)
{
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	return eh;
}

static void set_eh(uint8_t *img, const Elf64_Ehdr *eh)
{
	memcpy(img, eh, sizeof(*eh));
}

static int load(struct fake_guest *g, const uint8_t *img, size_t len, const uint8_t *initrd,
		size_t initrd_len, struct boot_result *res, char *err, size_t errlen)
{
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .initrd = initrd,
				   .initrd_len = initrd_len, .cmdline = "console=hvc0", .rsdp = 0xE0000 };
	memset(err, 0, errlen);
	return boot_load(&g->m, &cfg, res, err, errlen);
}

/* The image must be refused with a message, without touching memory it does
 * not own (ASan watches the exact-size buffer). */
static void expect_fail(const uint8_t *img, size_t len)
{
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	/* An exact-size private copy, so ASan catches reads past `len`. */
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, img, len);
	struct boot_config cfg = { .kernel = copy, .kernel_len = len, .cmdline = "" };
	memset(err, 0, sizeof(err));
	assert_int_equal(boot_pvh_load(&g.m, &cfg, &res, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	free(copy);
	fake_guest_fini(&g);
}

static void check_success(unsigned desc_size)
{
	size_t len;
	uint8_t *img = make_elf(ENTRY, desc_size, &len);
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	/* Stale bytes where .bss goes: the loader must zero them. */
	memset(g.ram + SEG0_PADDR, 0xCC, SEG0_MEMSZ + 0x1000);
	uint8_t initrd[3000];
	fill_pattern(initrd, sizeof(initrd), 77);

	assert_int_equal(load(&g, img, len, initrd, sizeof(initrd), &res, err, sizeof(err)), 0);
	assert_int_equal(res.kind, BOOT_PVH);

	/* Segments at their physical addresses; zero fill up to memsz only. */
	assert_memory_equal(g.ram + SEG0_PADDR, img + SEG0_OFF, SEG0_FILESZ);
	for (size_t i = SEG0_FILESZ; i < SEG0_MEMSZ; i++)
		if (g.ram[SEG0_PADDR + i] != 0)
			fail_msg("bss byte 0x%zx is 0x%x", i, g.ram[SEG0_PADDR + i]);
	assert_int_equal(g.ram[SEG0_PADDR + SEG0_MEMSZ], 0xCC);
	assert_memory_equal(g.ram + SEG1_PADDR, img + SEG1_OFF, SEG1_SZ);
	assert_int_equal(res.kernel_end, SEG1_PADDR + SEG1_SZ);

	/* Entry state: 32-bit flat protected mode, no paging. */
	const struct x86_boot_cpu *c = &res.cpu;
	assert_int_equal(c->rip, ENTRY);
	assert_int_equal(c->rbx, LAYOUT_PVH_INFO);
	assert_int_equal(c->cr0 & 1, 1);
	assert_int_equal(c->cr0 & 0x80000000u, 0);
	assert_int_equal(c->cr4, 0);
	assert_int_equal(c->efer, 0);
	assert_int_equal(c->cs.selector, 0x10);
	assert_int_equal(c->cs.db, 1);
	assert_int_equal(c->cs.l, 0);
	assert_int_equal(c->cs.g, 1);
	/* KVM takes the byte limit: 4 GiB flat, not the raw 20-bit field. */
	assert_int_equal(c->cs.limit, 0xffffffff);
	assert_int_equal(c->ds.limit, 0xffffffff);
	assert_int_equal(c->cs.base, 0);
	assert_int_equal(c->cs.type, 0xb);
	assert_int_equal(c->ds.selector, 0x18);
	assert_int_equal(c->ds.type, 0x3);
	assert_int_equal(c->rflags, 0x2);
	assert_int_equal(get64(g.ram + LAYOUT_GDT + 0x10), 0x00cf9b000000ffffULL);
	assert_int_equal(get64(g.ram + LAYOUT_GDT + 0x18), 0x00cf93000000ffffULL);

	/* hvm_start_info. */
	const uint8_t *si = g.ram + LAYOUT_PVH_INFO;
	assert_int_equal(get32(si + SI_MAGIC), 0x336ec578);
	assert_int_equal(get32(si + SI_VERSION), 1);
	assert_int_equal(get32(si + SI_FLAGS), 0);
	assert_int_equal(get64(si + SI_CMDLINE), LAYOUT_CMDLINE);
	assert_string_equal((const char *)g.ram + LAYOUT_CMDLINE, "console=hvc0");
	assert_int_equal(get64(si + SI_RSDP), 0xE0000);
	assert_int_equal(get64(si + SI_MEMMAP), LAYOUT_PVH_MEMMAP);
	assert_int_equal(get32(si + SI_MEMMAP_ENTRIES), 3);
	const uint8_t *mm = g.ram + LAYOUT_PVH_MEMMAP;
	assert_int_equal(get64(mm + 0), 0);
	assert_int_equal(get64(mm + 8), LAYOUT_EBDA_START);
	assert_int_equal(get32(mm + 16), E820_RAM);
	assert_int_equal(get64(mm + 24), LAYOUT_EBDA_START);
	assert_int_equal(get32(mm + 24 + 16), E820_RESERVED);
	assert_int_equal(get64(mm + 48), LAYOUT_HIMEM);
	assert_int_equal(get64(mm + 48 + 8), GUEST_MEM - LAYOUT_HIMEM);
	assert_int_equal(get32(mm + 48 + 16), E820_RAM);

	/* One module: the initrd, at the top of RAM, page aligned. */
	assert_int_equal(get32(si + SI_NR_MODULES), 1);
	uint64_t modlist = get64(si + SI_MODLIST);
	assert_int_not_equal(modlist, 0);
	assert_true(modlist + 32 <= LAYOUT_PVH_MEMMAP);
	uint64_t ipaddr = get64(g.ram + modlist);
	assert_int_equal(ipaddr, (GUEST_MEM - sizeof(initrd)) & ~0xfffULL);
	assert_int_equal(ipaddr, res.initrd_addr);
	assert_int_equal(get64(g.ram + modlist + 8), sizeof(initrd));
	assert_int_equal(get64(g.ram + modlist + 16), 0);
	assert_memory_equal(g.ram + ipaddr, initrd, sizeof(initrd));

	free(img);
	fake_guest_fini(&g);
}

static void test_success_desc4(void **state)
{
	(void)state;
	check_success(4);
}

static void test_success_desc8(void **state)
{
	(void)state;
	check_success(8);
}

static void test_no_initrd_no_modules(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_elf(ENTRY, 4, &len);
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	memset(g.ram + LAYOUT_PVH_INFO, 0xCC, 0x100);
	assert_int_equal(load(&g, img, len, NULL, 0, &res, err, sizeof(err)), 0);
	const uint8_t *si = g.ram + LAYOUT_PVH_INFO;
	assert_int_equal(get32(si + SI_MAGIC), 0x336ec578);
	assert_int_equal(get32(si + SI_NR_MODULES), 0);
	assert_int_equal(get64(si + SI_MODLIST), 0);
	assert_int_equal(res.initrd_addr, 0);
	free(img);
	fake_guest_fini(&g);
}

/* The entry note sits in a second PT_NOTE after an unrelated one. */
static void test_entry_in_second_note_segment(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_elf(ENTRY, 8, &len);
	Elf64_Phdr load1 = get_ph(img, PH_LOAD1), note = get_ph(img, PH_NOTE);
	/* Turn LOAD1 into a note segment covering only the GNU note (32 bytes),
	 * and shift the original note segment past it to hold just the Xen one. */
	load1 = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_filesz = 36 };
	note.p_offset = NOTE_OFF + 36;
	note.p_filesz -= 36;
	set_ph(img, PH_LOAD1, &load1);
	set_ph(img, PH_NOTE, &note);
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	assert_int_equal(load(&g, img, len, NULL, 0, &res, err, sizeof(err)), 0);
	assert_int_equal(res.cpu.rip, ENTRY);
	assert_int_equal(res.kernel_end, SEG0_PADDR + SEG0_MEMSZ);
	free(img);
	fake_guest_fini(&g);
}

static void test_fail_header(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_elf(ENTRY, 4, &len);
	Elf64_Ehdr eh;

	expect_fail(img, 0);
	expect_fail(img, 4); /* just the magic */
	expect_fail(img, sizeof(Elf64_Ehdr) - 1);

	/* ELF32: class byte says 32-bit. */
	eh = get_eh(img);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	set_eh(img, &eh);
	expect_fail(img, len);
	expect_fail(img, 52); /* a whole Elf32_Ehdr, shorter than Elf64's */

	eh = get_eh(img);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2MSB;
	set_eh(img, &eh);
	expect_fail(img, len);

	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_machine = EM_386;
	set_eh(img, &eh);
	expect_fail(img, len);
	eh.e_machine = EM_AARCH64;
	set_eh(img, &eh);
	expect_fail(img, len);

	eh.e_machine = EM_X86_64;
	eh.e_phoff = len + 1; /* beyond the file */
	set_eh(img, &eh);
	expect_fail(img, len);
	eh.e_phoff = UINT64_MAX - 8; /* offset + size would wrap */
	set_eh(img, &eh);
	expect_fail(img, len);
	eh.e_phoff = len - sizeof(Elf64_Phdr) * PH_COUNT + 1; /* last phdr runs past the end */
	set_eh(img, &eh);
	expect_fail(img, len);

	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_phnum = 0xffff; /* count * size far beyond the file */
	set_eh(img, &eh);
	expect_fail(img, len);
	eh.e_phnum = 0;
	set_eh(img, &eh);
	expect_fail(img, len);
	eh.e_phnum = PH_COUNT;
	eh.e_phentsize = sizeof(Elf32_Phdr);
	set_eh(img, &eh);
	expect_fail(img, len);

	/* Restored, it loads: the failures above were each one field's doing. */
	eh.e_phentsize = sizeof(Elf64_Phdr);
	set_eh(img, &eh);
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	assert_int_equal(load(&g, img, len, NULL, 0, &res, err, sizeof(err)), 0);
	fake_guest_fini(&g);
	free(img);
}

static void test_fail_load_segment(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_elf(ENTRY, 4, &len);
	const Elf64_Phdr orig = get_ph(img, PH_LOAD0);
	Elf64_Phdr ph;

	ph = orig;
	ph.p_offset = len - 0x100; /* offset + filesz beyond the file */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_offset = len + 1;
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_offset = UINT64_MAX - 0x10; /* wrapping offset */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_offset = SEG0_OFF;
	ph.p_filesz = UINT64_MAX;
	ph.p_memsz = UINT64_MAX;
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);

	ph = orig;
	ph.p_filesz = ph.p_memsz + 1; /* filesz > memsz (and past the file) */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_memsz = SEG0_FILESZ - 1; /* filesz > memsz, all of it in the file */
	ph.p_filesz = SEG0_FILESZ;
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);

	ph = orig;
	ph.p_paddr = 128 * MiB; /* beyond 64 MiB of RAM */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_paddr = GUEST_MEM - 0x1000; /* straddles the end of RAM */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_paddr = UINT64_MAX - 0xfff; /* paddr + memsz wraps */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_paddr = UINT64_MAX;
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_paddr = 0x8000; /* inside RAM but over the boot structures */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);
	ph.p_paddr = LAYOUT_HIMEM - 0x1000; /* starts just below 1 MiB */
	set_ph(img, PH_LOAD0, &ph);
	expect_fail(img, len);

	/* Ending exactly at the top of RAM is fine. */
	ph = orig;
	ph.p_paddr = GUEST_MEM - SEG0_MEMSZ;
	set_ph(img, PH_LOAD0, &ph);
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	assert_int_equal(load(&g, img, len, NULL, 0, &res, err, sizeof(err)), 0);
	assert_int_equal(res.kernel_end, GUEST_MEM);
	fake_guest_fini(&g);

	/* No PT_LOAD at all. */
	ph = orig;
	ph.p_type = PT_NULL;
	set_ph(img, PH_LOAD0, &ph);
	set_ph(img, PH_LOAD1, &ph);
	expect_fail(img, len);
	free(img);
}

static void test_fail_notes(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img;
	Elf64_Phdr ph;

	/* No Xen note at all. */
	img = make_elf(ENTRY, 0, &len);
	expect_fail(img, len);
	free(img);

	img = make_elf(ENTRY, 4, &len);
	const Elf64_Phdr orig = get_ph(img, PH_NOTE);
	const size_t xen = NOTE_OFF + 36; /* the Xen note's header in the file */

	/* Right name, wrong type. */
	put32(img + xen + 8, 17);
	expect_fail(img, len);
	put32(img + xen + 8, 18);
	/* Right type, wrong name. */
	memcpy(img + xen + 12, "Xem", 4);
	expect_fail(img, len);
	memcpy(img + xen + 12, "Xen", 4);
	/* Desc of a size that is neither 4 nor 8. */
	put32(img + xen + 4, 2);
	expect_fail(img, len);
	put32(img + xen + 4, 4);

	/* Huge n_namesz / n_descsz, in the first note and in the Xen note:
	 * the walk must stop inside the segment. */
	put32(img + NOTE_OFF, 0xffffffff);
	expect_fail(img, len);
	put32(img + NOTE_OFF, 4);
	put32(img + NOTE_OFF + 4, 0xffffffff);
	expect_fail(img, len);
	put32(img + NOTE_OFF + 4, 0xfffffffd); /* aligns up to 2^32 */
	expect_fail(img, len);
	put32(img + NOTE_OFF + 4, 20);
	put32(img + xen, 0xffffffff);
	expect_fail(img, len);
	put32(img + xen, 4);
	put32(img + xen + 4, 0xfffffffc);
	expect_fail(img, len);
	put32(img + xen + 4, 8); /* 8 claimed, 4 present: past the segment */
	expect_fail(img, len);
	put32(img + xen + 4, 4);

	/* Note segment cut short inside the Xen note's descriptor. */
	ph = orig;
	ph.p_filesz -= 2;
	set_ph(img, PH_NOTE, &ph);
	expect_fail(img, len);
	/* Cut inside its header. */
	ph.p_filesz = 36 + 5;
	set_ph(img, PH_NOTE, &ph);
	expect_fail(img, len);
	/* Note segment outside the file. */
	ph = orig;
	ph.p_filesz += 1;
	set_ph(img, PH_NOTE, &ph);
	expect_fail(img, len);
	ph = orig;
	ph.p_offset = UINT64_MAX - 4;
	set_ph(img, PH_NOTE, &ph);
	expect_fail(img, len);
	set_ph(img, PH_NOTE, &orig);

	free(img);
}

static void test_fail_entry(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img;

	img = make_elf(0x80000000ULL, 4, &len); /* above 64 MiB of RAM */
	expect_fail(img, len);
	free(img);
	img = make_elf(0x100000000ULL + ENTRY, 8, &len); /* 64-bit value beyond 4 GiB */
	expect_fail(img, len);
	free(img);
	img = make_elf(0, 4, &len); /* entry 0 */
	expect_fail(img, len);
	free(img);
	img = make_elf(GUEST_MEM - 1, 8, &len); /* last byte of RAM: valid */
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	assert_int_equal(load(&g, img, len, NULL, 0, &res, err, sizeof(err)), 0);
	assert_int_equal(res.cpu.rip, GUEST_MEM - 1);
	fake_guest_fini(&g);
	free(img);
}

static void test_fail_initrd_and_cmdline(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_elf(ENTRY, 4, &len);
	struct fake_guest g;
	struct boot_result res;
	char err[256];

	/* Initrd bigger than what lies above the kernel. */
	uint8_t *initrd = fake_map(GUEST_MEM);
	assert_non_null(initrd);
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	assert_int_equal(load(&g, img, len, initrd, GUEST_MEM - SEG1_PADDR, &res, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	/* Exactly what fits: kernel ends at SEG1_PADDR + 0x100, so the
	 * page-aligned initrd may start at the next page. */
	uint64_t fit = GUEST_MEM - (SEG1_PADDR + 0x1000);
	assert_int_equal(load(&g, img, len, initrd, fit, &res, err, sizeof(err)), 0);
	assert_int_equal(res.initrd_addr, SEG1_PADDR + 0x1000);
	fake_guest_fini(&g);
	fake_unmap(initrd, GUEST_MEM);

	/* A command line longer than vigil's buffer. */
	char *big = malloc(LAYOUT_CMDLINE_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', LAYOUT_CMDLINE_MAX);
	big[LAYOUT_CMDLINE_MAX] = 0;
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .cmdline = big };
	err[0] = 0;
	assert_int_equal(boot_pvh_load(&g.m, &cfg, &res, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	fake_guest_fini(&g);
	free(big);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_desc4),
		cmocka_unit_test(test_success_desc8),
		cmocka_unit_test(test_no_initrd_no_modules),
		cmocka_unit_test(test_entry_in_second_note_segment),
		cmocka_unit_test(test_fail_header),
		cmocka_unit_test(test_fail_load_segment),
		cmocka_unit_test(test_fail_notes),
		cmocka_unit_test(test_fail_entry),
		cmocka_unit_test(test_fail_initrd_and_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
