/* Unit tests for the bzImage loader (arch/x86/boot_bzimage.c, boot_common.c):
 * synthetic bzImages loaded into a fake guest, then the zero page, command
 * line, initrd, page tables and entry state read back byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "fake_guest.h"

/* The synthetic image's knobs; bz_default() gives a valid 2.15 kernel. */
struct bz_opts {
	uint8_t setup_sects;
	uint16_t version;
	uint8_t loadflags, xloadflags, jump;
	uint32_t cmdline_size, initrd_max, init_size;
	uint64_t pref;
	size_t payload;
};

#define GUEST_MEM (64 * MiB)
#define PAYLOAD_SEED 7

static struct bz_opts bz_default(void)
{
	return (struct bz_opts){
		.setup_sects = 4,
		.version = 0x020F,
		.loadflags = 0x01,  /* LOADED_HIGH */
		.xloadflags = 0x01, /* XLF_KERNEL_64 */
		.jump = 0x66,       /* header ends at 0x268, as in Linux 5.x+ */
		.cmdline_size = 2047,
		.initrd_max = 0x7fffffff,
		.init_size = 16 * MiB,
		.pref = 16 * MiB,
		.payload = 64 * 1024,
	};
}

static size_t bz_setup_size(const struct bz_opts *o)
{
	return ((size_t)(o->setup_sects ? o->setup_sects : 4) + 1) * 512;
}

static uint8_t *make_bz(const struct bz_opts *o, size_t *len)
{
	size_t setup = bz_setup_size(o);
	*len = setup + o->payload;
	uint8_t *img = calloc(1, *len);
	assert_non_null(img);
	img[0x1f0] = 0xAA; /* just before the header: must not reach the zero page */
	img[0x1f1] = o->setup_sects;
	put16(img + 0x1fe, 0xAA55);
	img[0x200] = 0xEB;
	img[0x201] = o->jump;
	memcpy(img + 0x202, "HdrS", 4);
	put16(img + 0x206, o->version);
	img[0x211] = o->loadflags;
	put32(img + 0x22c, o->initrd_max);
	img[0x236] = o->xloadflags;
	put32(img + 0x238, o->cmdline_size);
	put64(img + 0x258, o->pref);
	put32(img + 0x260, o->init_size);
	img[0x270] = 0xAA; /* past the 0x268 header end */
	fill_pattern(img + setup, o->payload, PAYLOAD_SEED);
	return img;
}

struct run {
	struct fake_guest g;
	struct boot_result res;
	char err[256];
	int rc;
};

static void run_load(struct run *r, const struct bz_opts *o, const char *cmdline, const uint8_t *initrd,
		     size_t initrd_len, uint64_t mem)
{
	size_t len;
	uint8_t *img = make_bz(o, &len);
	assert_int_equal(fake_guest_init(&r->g, mem), 0);
	memset(r->err, 0, sizeof(r->err));
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .initrd = initrd,
				   .initrd_len = initrd_len, .cmdline = cmdline, .rsdp = 0xE0000 };
	r->rc = boot_load(&r->g.m, &cfg, &r->res, r->err, sizeof(r->err));
	free(img);
}

static void expect_fail(const struct bz_opts *o, const char *cmdline, size_t initrd_len)
{
	struct run r;
	uint8_t *initrd = NULL;
	if (initrd_len) {
		initrd = fake_map(initrd_len);
		assert_non_null(initrd);
	}
	run_load(&r, o, cmdline, initrd, initrd_len, GUEST_MEM);
	assert_int_equal(r.rc, -1);
	assert_true(strlen(r.err) > 0);
	fake_guest_fini(&r.g);
	fake_unmap(initrd, initrd_len);
}

/* 4-level walk of the identity tables the loader built; ~0 if unmapped. */
static uint64_t walk(const struct fake_guest *g, uint64_t cr3, uint64_t va)
{
	uint64_t e = get64(g->ram + (cr3 & ~0xfffULL) + ((va >> 39) & 511) * 8);
	if (!(e & 1))
		return ~0ULL;
	e = get64(g->ram + (e & 0xffffffffff000ULL) + ((va >> 30) & 511) * 8);
	if (!(e & 1))
		return ~0ULL;
	if (e & 0x80)
		return (e & 0xfffffc0000000ULL) | (va & 0x3fffffff);
	e = get64(g->ram + (e & 0xffffffffff000ULL) + ((va >> 21) & 511) * 8);
	if (!(e & 1) || !(e & 0x80))
		return ~0ULL;
	return (e & 0xfffffffe00000ULL) | (va & 0x1fffff);
}

static void test_success_zero_page(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	const size_t ilen = MiB + 123;
	uint8_t *initrd = malloc(ilen);
	assert_non_null(initrd);
	fill_pattern(initrd, ilen, 99);
	const char *cmd = "console=ttyS0 root=/dev/vda";

	struct run r;
	run_load(&r, &o, cmd, initrd, ilen, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kind, BOOT_BZIMAGE);

	/* Payload at 1 MiB, byte for byte. */
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	assert_memory_equal(r.g.ram + LAYOUT_HIMEM, img + bz_setup_size(&o), o.payload);

	const uint8_t *zp = r.g.ram + LAYOUT_ZERO_PAGE;
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(get16(zp + 0x206), 0x020F);
	assert_int_equal(zp[0x1f1], 4);
	assert_int_equal(get32(zp + 0x260), 16 * MiB);
	assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
	assert_int_equal(get32(zp + 0x228), LAYOUT_CMDLINE);
	assert_string_equal((const char *)r.g.ram + LAYOUT_CMDLINE, cmd);
	assert_int_equal(get64(zp + 0x70), 0xE0000); /* acpi_rsdp_addr */

	/* Initrd: as high as it goes, page aligned, above the kernel's
	 * decompression area (pref 16 MiB + init_size 16 MiB). */
	uint64_t iaddr = get32(zp + 0x218) | (uint64_t)get32(zp + 0xC0) << 32;
	uint64_t isize = get32(zp + 0x21C) | (uint64_t)get32(zp + 0xC4) << 32;
	assert_int_equal(iaddr, (GUEST_MEM - ilen) & ~0xfffULL);
	assert_int_equal(iaddr, 0x3EFF000);
	assert_int_equal(isize, ilen);
	assert_int_equal(iaddr & 0xfff, 0);
	assert_true(iaddr + ilen <= (uint64_t)o.initrd_max + 1);
	assert_true(iaddr >= 32 * MiB);
	assert_int_equal(r.res.kernel_end, 32 * MiB);
	assert_int_equal(r.res.initrd_addr, iaddr);
	assert_memory_equal(r.g.ram + iaddr, initrd, ilen);

	/* e820: RAM below the EBDA, the legacy hole, RAM from 1 MiB. */
	assert_int_equal(zp[0x1e8], 3);
	struct e820_entry e[3];
	memcpy(e, zp + 0x2d0, sizeof(e));
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].size, LAYOUT_EBDA_START);
	assert_int_equal(e[0].type, E820_RAM);
	assert_int_equal(e[1].addr, LAYOUT_EBDA_START);
	assert_int_equal(e[1].type, E820_RESERVED);
	assert_int_equal(e[2].addr, LAYOUT_HIMEM);
	assert_int_equal(e[2].size, GUEST_MEM - LAYOUT_HIMEM);
	assert_int_equal(e[2].type, E820_RAM);

	free(img);
	free(initrd);
	fake_guest_fini(&r.g);
}

static void test_zero_page_cleared_and_header_bounded(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	struct run r;
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	assert_int_equal(fake_guest_init(&r.g, GUEST_MEM), 0);
	memset(r.g.ram + LAYOUT_ZERO_PAGE, 0xCC, 4096); /* stale garbage */
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .cmdline = "" };
	assert_int_equal(boot_bzimage_load(&r.g.m, &cfg, &r.res, r.err, sizeof(r.err)), 0);
	const uint8_t *zp = r.g.ram + LAYOUT_ZERO_PAGE;
	assert_int_equal(zp[0x000], 0);
	assert_int_equal(zp[0x1f0], 0); /* before the header */
	assert_int_equal(zp[0x270], 0); /* past the header end the jump gives */
	assert_int_equal(zp[0xfff], 0);
	assert_int_equal(get16(zp + 0x1fe), 0xAA55);
	/* No initrd: ramdisk fields zero. */
	assert_int_equal(get32(zp + 0x218), 0);
	assert_int_equal(get32(zp + 0x21C), 0);
	assert_int_equal(r.res.initrd_addr, 0);
	assert_int_equal(r.g.ram[LAYOUT_CMDLINE], 0);
	fake_guest_fini(&r.g);

	/* A jump byte pointing far out: the copy stops at the end of the
	 * setup header in boot_params (0x290). */
	img[0x201] = 0xff;
	img[0x28f] = 0x5A;
	img[0x290] = 0x5B;
	assert_int_equal(fake_guest_init(&r.g, GUEST_MEM), 0);
	assert_int_equal(boot_bzimage_load(&r.g.m, &cfg, &r.res, r.err, sizeof(r.err)), 0);
	zp = r.g.ram + LAYOUT_ZERO_PAGE;
	assert_int_equal(zp[0x270], 0xAA);
	assert_int_equal(zp[0x28f], 0x5A);
	assert_int_equal(zp[0x290], 0);
	fake_guest_fini(&r.g);
	free(img);
}

static void test_cpu_state_long_mode(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	struct run r;
	run_load(&r, &o, "x", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	const struct x86_boot_cpu *c = &r.res.cpu;
	assert_int_equal(c->rip, 0x100200);
	assert_int_equal(c->rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(c->efer & 0x500, 0x500); /* LME | LMA */
	assert_int_equal(c->cr0 & 0x80000001u, 0x80000001u);
	assert_int_equal(c->cr4 & 0x20, 0x20);
	assert_int_equal(c->cr3, LAYOUT_PML4);
	assert_int_equal(c->rflags, 0x2);
	assert_int_equal(c->cs.selector, 0x10);
	assert_int_equal(c->cs.l, 1);
	assert_int_equal(c->cs.db, 0);
	assert_int_equal(c->cs.present, 1);
	assert_int_equal(c->cs.s, 1);
	assert_int_equal(c->cs.type, 0xb);
	assert_int_equal(c->ds.selector, 0x18);
	assert_int_equal(c->ds.type, 0x3);
	assert_int_equal(c->ds.present, 1);
	assert_int_equal(c->ds.db, 1);
	assert_int_equal(c->gdt_base, LAYOUT_GDT);
	assert_int_equal(c->gdt_limit, 31);
	assert_int_equal(c->idt_base, LAYOUT_IDT);
	assert_int_equal(c->idt_limit, 0);
	/* The GDT in guest memory agrees with the cached segments. */
	assert_int_equal(get64(r.g.ram + LAYOUT_GDT + 0x10), 0x00af9b000000ffffULL);
	assert_int_equal(get64(r.g.ram + LAYOUT_GDT + 0x18), 0x00cf93000000ffffULL);

	/* Identity map of the low 4 GiB. */
	assert_int_equal(walk(&r.g, c->cr3, 0x100000), 0x100000);
	assert_int_equal(walk(&r.g, c->cr3, 0x100200), 0x100200);
	assert_int_equal(walk(&r.g, c->cr3, LAYOUT_ZERO_PAGE), LAYOUT_ZERO_PAGE);
	assert_int_equal(walk(&r.g, c->cr3, 0x40123456), 0x40123456);
	assert_int_equal(walk(&r.g, c->cr3, 0xFFFFFFFF), 0xFFFFFFFF);
	assert_int_equal(walk(&r.g, c->cr3, 0x100000000ULL), ~0ULL);
	fake_guest_fini(&r.g);
}

static void test_initrd_addr_max_respected(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.initrd_max = 48 * MiB - 1;
	uint8_t initrd[5000];
	fill_pattern(initrd, sizeof(initrd), 3);
	struct run r;
	run_load(&r, &o, "", initrd, sizeof(initrd), GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.initrd_addr, (48 * MiB - sizeof(initrd)) & ~0xfffULL);
	assert_memory_equal(r.g.ram + r.res.initrd_addr, initrd, sizeof(initrd));
	fake_guest_fini(&r.g);
}

static void test_initrd_exact_fit_and_one_too_big(void **state)
{
	(void)state;
	struct bz_opts o = bz_default(); /* kernel ends at 32 MiB of 64 */
	const size_t fit = GUEST_MEM - 32 * MiB;
	uint8_t *initrd = fake_map(fit + 1);
	assert_non_null(initrd);
	initrd[0] = 0x11;
	initrd[fit - 1] = 0x22;
	struct run r;
	run_load(&r, &o, "", initrd, fit, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.initrd_addr, 32 * MiB);
	assert_int_equal(r.g.ram[32 * MiB], 0x11);
	assert_int_equal(r.g.ram[GUEST_MEM - 1], 0x22);
	fake_guest_fini(&r.g);

	run_load(&r, &o, "", initrd, fit + 1, GUEST_MEM);
	assert_int_equal(r.rc, -1);
	assert_non_null(strstr(r.err, "initrd"));
	fake_guest_fini(&r.g);
	fake_unmap(initrd, fit + 1);
}

static void test_initrd_bigger_than_ram(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	expect_fail(&o, "", 200 * MiB);
	expect_fail(&o, "", GUEST_MEM);
}

static void test_cmdline_size_boundary(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.cmdline_size = 10;
	struct run r;
	run_load(&r, &o, "0123456789", NULL, 0, GUEST_MEM); /* exactly 10 */
	assert_int_equal(r.rc, 0);
	assert_string_equal((const char *)r.g.ram + LAYOUT_CMDLINE, "0123456789");
	fake_guest_fini(&r.g);

	expect_fail(&o, "0123456789A", 0); /* 11 */
	o.cmdline_size = 0;
	expect_fail(&o, "a", 0);
}

/* cmdline_size is a u32 and may be the full range; the +1 for the NUL must
 * not wrap it to 0 (which would refuse every command line). */
static void test_cmdline_size_max_u32(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.cmdline_size = 0xffffffff;
	struct run r;
	run_load(&r, &o, "console=ttyS0", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_string_equal((const char *)r.g.ram + LAYOUT_CMDLINE, "console=ttyS0");
	fake_guest_fini(&r.g);

	/* vigil's own buffer still bounds it. */
	char *big = malloc(LAYOUT_CMDLINE_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', LAYOUT_CMDLINE_MAX);
	big[LAYOUT_CMDLINE_MAX] = 0;
	expect_fail(&o, big, 0);
	big[LAYOUT_CMDLINE_MAX - 1] = 0;
	run_load(&r, &o, big, NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	fake_guest_fini(&r.g);
	free(big);
}

static void test_pref_address_outside_range_ignored(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.pref = 0x1000; /* below 1 MiB: ignored, runtime at 1 MiB */
	o.init_size = 4 * MiB;
	struct run r;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kernel_end, LAYOUT_HIMEM + 4 * MiB);
	fake_guest_fini(&r.g);

	o.pref = 0xffffffff00000000ULL; /* absurd: ignored */
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kernel_end, LAYOUT_HIMEM + 4 * MiB);
	fake_guest_fini(&r.g);

	/* init_size smaller than the compressed payload: the payload bounds. */
	o.pref = 0;
	o.init_size = 0;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kernel_end, LAYOUT_HIMEM + o.payload);
	fake_guest_fini(&r.g);
}

static void test_setup_sects_zero_means_four(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.setup_sects = 0;
	struct run r;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	assert_int_equal(len, 5 * 512 + o.payload);
	assert_memory_equal(r.g.ram + LAYOUT_HIMEM, img + 5 * 512, o.payload);
	free(img);
	fake_guest_fini(&r.g);
}

static void load_raw(const uint8_t *img, size_t len, bool direct)
{
	struct fake_guest g;
	struct boot_result res;
	char err[128] = "";
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .cmdline = "" };
	int rc = direct ? boot_bzimage_load(&g.m, &cfg, &res, err, sizeof(err))
			: boot_load(&g.m, &cfg, &res, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_true(strlen(err) > 0);
	fake_guest_fini(&g);
}

static void test_fail_short_files(void **state)
{
	(void)state;
	static const uint8_t one = 0;
	load_raw(&one, 0, false);
	load_raw(&one, 0, true);
	uint8_t hundred[100];
	memset(hundred, 0x41, sizeof(hundred));
	load_raw(hundred, sizeof(hundred), false);
	load_raw(hundred, sizeof(hundred), true);

	/* A real header, cut right after its end (0x268). */
	struct bz_opts o = bz_default();
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	load_raw(img, 0x268, false);
	load_raw(img, 0x268, true);
	/* Cut inside the header: "HdrS" is there but init_size is not. */
	load_raw(img, 0x210, false);
	load_raw(img, 0x263, true);
	/* Exactly the setup, no payload. */
	load_raw(img, bz_setup_size(&o), false);
	free(img);
}

static void test_fail_setup_larger_than_file(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	img[0x1f1] = 200; /* 201 sectors > 2560 + 64 KiB */
	load_raw(img, len, false);
	img[0x1f1] = 255;
	load_raw(img, len, true);
	free(img);
}

static void test_fail_header_checks(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.version = 0x020A; /* 2.10: no 64-bit entry */
	expect_fail(&o, "", 0);
	o.version = 0x020B;
	expect_fail(&o, "", 0);
	o.version = 0x020C; /* 2.12 is the first one that works */
	struct run r;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	fake_guest_fini(&r.g);

	o = bz_default();
	o.xloadflags = 0x02; /* XLF_CAN_BE_LOADED_ABOVE_4G only */
	expect_fail(&o, "", 0);

	o = bz_default();
	o.loadflags = 0x80; /* CAN_USE_HEAP, not LOADED_HIGH */
	expect_fail(&o, "", 0);
}

static void test_fail_kernel_does_not_fit(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.init_size = 0xF0000000u;
	expect_fail(&o, "", 0);

	/* Exactly filling RAM is fine; one byte more is not. */
	o.init_size = GUEST_MEM - 16 * MiB;
	struct run r;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kernel_end, GUEST_MEM);
	fake_guest_fini(&r.g);
	o.init_size++;
	expect_fail(&o, "", 0);

	/* Guest RAM not at 0 at all. */
	o = bz_default();
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	struct gmem m = { 0 };
	uint8_t *hi = fake_map(64 * MiB);
	assert_non_null(hi);
	assert_int_equal(gmem_add(&m, LAYOUT_MEM_HIGH, 64 * MiB, hi), 0);
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .cmdline = "" };
	struct boot_result res;
	char err[128] = "";
	assert_int_equal(boot_load(&m, &cfg, &res, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	fake_unmap(hi, 64 * MiB);
	free(img);
}

static void test_fail_garbage_and_detection(void **state)
{
	(void)state;
	uint8_t *junk = malloc(256 * 1024);
	assert_non_null(junk);
	fill_pattern(junk, 256 * 1024, 1234);
	load_raw(junk, 256 * 1024, false);
	/* "HdrS" in a file that is otherwise junk: must still fail cleanly. */
	memcpy(junk + 0x202, "HdrS", 4);
	load_raw(junk, 256 * 1024, false);
	free(junk);

	/* Detection picks the bzImage path for a valid image. */
	struct bz_opts o = bz_default();
	struct run r;
	run_load(&r, &o, "", NULL, 0, GUEST_MEM);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.kind, BOOT_BZIMAGE);
	fake_guest_fini(&r.g);
}

static void test_tiny_err_buffer(void **state)
{
	(void)state;
	struct bz_opts o = bz_default();
	o.version = 0x0200;
	size_t len;
	uint8_t *img = make_bz(&o, &len);
	struct fake_guest g;
	assert_int_equal(fake_guest_init(&g, GUEST_MEM), 0);
	struct boot_config cfg = { .kernel = img, .kernel_len = len, .cmdline = "" };
	struct boot_result res;
	char err[8];
	memset(err, 'Z', sizeof(err));
	assert_int_equal(boot_load(&g.m, &cfg, &res, err, sizeof(err)), -1);
	assert_int_equal(strnlen(err, sizeof(err)), 7);
	fake_guest_fini(&g);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_zero_page),
		cmocka_unit_test(test_zero_page_cleared_and_header_bounded),
		cmocka_unit_test(test_cpu_state_long_mode),
		cmocka_unit_test(test_initrd_addr_max_respected),
		cmocka_unit_test(test_initrd_exact_fit_and_one_too_big),
		cmocka_unit_test(test_initrd_bigger_than_ram),
		cmocka_unit_test(test_cmdline_size_boundary),
		cmocka_unit_test(test_cmdline_size_max_u32),
		cmocka_unit_test(test_pref_address_outside_range_ignored),
		cmocka_unit_test(test_setup_sects_zero_means_four),
		cmocka_unit_test(test_fail_short_files),
		cmocka_unit_test(test_fail_setup_larger_than_file),
		cmocka_unit_test(test_fail_header_checks),
		cmocka_unit_test(test_fail_kernel_does_not_fit),
		cmocka_unit_test(test_fail_garbage_and_detection),
		cmocka_unit_test(test_tiny_err_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
