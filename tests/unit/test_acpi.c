/* Unit tests for the AML encoder (arch/x86/aml.c) and the ACPI table builder
 * (arch/x86/acpi.c). The tables are built into a fake guest memory and read
 * back the way an OS does: scan for the RSDP, follow the XSDT, check every
 * checksum, then look at the fields. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "devices/pci.h"

/* ---- AML encoder ------------------------------------------------------ */

static void expect_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
}

#define EXPECT_AML(a, ...)                                                                  \
	do {                                                                                \
		static const uint8_t want_[] = { __VA_ARGS__ };                             \
		assert_int_equal(aml_finish(a), (long)sizeof(want_));                       \
		expect_bytes((a)->buf, (a)->len, want_, sizeof(want_));                     \
	} while (0)

static void check_pkglen(uint32_t v, const uint8_t *want, unsigned n)
{
	uint8_t out[4] = { 0 };
	assert_int_equal(aml_pkglen_encode(out, v), n);
	assert_memory_equal(out, want, n);
}

static void test_aml_pkglen(void **state)
{
	(void)state;
	check_pkglen(0, (const uint8_t[]){ 0x00 }, 1);
	check_pkglen(63, (const uint8_t[]){ 0x3F }, 1);
	check_pkglen(64, (const uint8_t[]){ 0x40, 0x04 }, 2);
	check_pkglen(0x123, (const uint8_t[]){ 0x43, 0x12 }, 2);
	check_pkglen(4095, (const uint8_t[]){ 0x4F, 0xFF }, 2);
	check_pkglen(4096, (const uint8_t[]){ 0x80, 0x00, 0x01 }, 3);
	check_pkglen(0xFFFFF, (const uint8_t[]){ 0x8F, 0xFF, 0xFF }, 3);
	check_pkglen(0x100000, (const uint8_t[]){ 0xC0, 0x00, 0x00, 0x01 }, 4);
	check_pkglen(0x0FFFFFFF, (const uint8_t[]){ 0xCF, 0xFF, 0xFF, 0xFF }, 4);
	uint8_t out[4];
	assert_int_equal(aml_pkglen_encode(out, 0x10000000), 0);
}

static void test_aml_pkglen_counts_itself(void **state)
{
	(void)state;
	uint8_t out[4];
	/* 62 + 1 = 63 still fits one byte; 63 + 1 = 64 does not, and with
	 * two bytes the value becomes 65. */
	assert_int_equal(aml_pkglen_for_body(out, 62), 1);
	assert_int_equal(out[0], 0x3F);
	assert_int_equal(aml_pkglen_for_body(out, 63), 2);
	assert_memory_equal(out, ((const uint8_t[]){ 0x41, 0x04 }), 2);
	assert_int_equal(aml_pkglen_for_body(out, 4093), 2);
	assert_memory_equal(out, ((const uint8_t[]){ 0x4F, 0xFF }), 2);
	assert_int_equal(aml_pkglen_for_body(out, 4094), 3); /* 4097 */
	assert_memory_equal(out, ((const uint8_t[]){ 0x81, 0x00, 0x01 }), 3);
	assert_int_equal(aml_pkglen_for_body(out, 0x0FFFFFFB), 4);
	assert_memory_equal(out, ((const uint8_t[]){ 0xCF, 0xFF, 0xFF, 0xFF }), 4);
	assert_int_equal(aml_pkglen_for_body(out, 0x0FFFFFFC), 0);
}

static void test_aml_integer(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 5);
	aml_integer(&a, 0xFF);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x100000000ULL);
	EXPECT_AML(&a, 0x00, 0x01, 0x0A, 0x05, 0x0A, 0xFF, 0x0B, 0x34, 0x12, 0x0C, 0x78, 0x56, 0x34, 0x12,
		   0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
}

static void test_aml_namestring(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "_S5");
	aml_namestring(&a, "\\_SB");
	aml_namestring(&a, "\\_SB.PCI0");
	aml_namestring(&a, "^A.B1.C_");
	aml_namestring(&a, "\\");
	EXPECT_AML(&a, '_', 'S', '5', '_', /* */
		   '\\', '_', 'S', 'B', '_', /* */
		   '\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', /* */
		   '^', 0x2F, 3, 'A', '_', '_', '_', 'B', '1', '_', '_', 'C', '_', '_', '_', /* */
		   '\\', 0x00);
}

static void test_aml_bad_names(void **state)
{
	(void)state;
	static const char *const bad[] = { "", "abc", "TOOLONG", "1ABC", "A.", "A..B", "\\A-B", "A.\\B" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t buf[64];
		struct aml a;
		aml_init(&a, buf, sizeof(buf));
		aml_namestring(&a, bad[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
		/* Sticky: later calls do nothing. */
		aml_integer(&a, 5);
		assert_int_equal(aml_finish(&a), -EINVAL);
	}
}

static void test_aml_string(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "QEMU0001");
	EXPECT_AML(&a, 0x0D, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00);
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "\xC3\xA9");
	assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_aml_s5_package(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "_S5");
	size_t p = aml_package_begin(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, p);
	EXPECT_AML(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00);
}

static void test_aml_buffer(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_buffer(&a, "\x11\x22\x33", 3);
	EXPECT_AML(&a, 0x11, 0x06, 0x0A, 0x03, 0x11, 0x22, 0x33);
}

static void test_aml_device_scope(void **state)
{
	(void)state;
	uint8_t buf[128];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	size_t sb = aml_scope_begin(&a, "\\_SB");
	size_t dev = aml_device_begin(&a, "PEVT");
	aml_name(&a, "_HID");
	aml_string(&a, "QEMU0001");
	aml_name(&a, "_CRS");
	size_t crs = aml_restemplate_begin(&a);
	aml_res_io16(&a, 0x505, 0x505, 1, 1);
	aml_restemplate_end(&a, crs);
	aml_name(&a, "_STA");
	aml_integer(&a, 0x0F);
	aml_end(&a, dev);
	aml_end(&a, sb);
	/* Hand-assembled: Scope (0x10, PkgLength 54) { Device (5B 82,
	 * PkgLength 46) PEVT { Name _HID String; Name _CRS Buffer (PkgLength
	 * 13, size 10) { IO descriptor, End Tag }; Name _STA 0x0F } } */
	EXPECT_AML(&a, 0x10, 0x36, '\\', '_', 'S', 'B', '_', /* Scope */
		   0x5B, 0x82, 0x2E, 'P', 'E', 'V', 'T',     /* Device */
		   0x08, '_', 'H', 'I', 'D', 0x0D, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00, /* */
		   0x08, '_', 'C', 'R', 'S', 0x11, 0x0D, 0x0A, 0x0A, /* */
		   0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00, /* */
		   0x08, '_', 'S', 'T', 'A', 0x0A, 0x0F);
}

static void test_aml_long_package_shifts_body(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	size_t p = aml_package_begin(&a, 40);
	for (unsigned i = 0; i < 40; i++)
		aml_integer(&a, 0x10 + i);
	aml_end(&a, p);
	/* Body: count + 40 ByteConsts = 81 bytes; PkgLength 83 in 2 bytes. */
	assert_int_equal(aml_finish(&a), 1 + 2 + 81);
	assert_int_equal(buf[0], 0x12);
	assert_int_equal(buf[1], 0x43);
	assert_int_equal(buf[2], 0x05);
	assert_int_equal(buf[3], 40);
	for (unsigned i = 0; i < 40; i++) {
		assert_int_equal(buf[4 + 2 * i], 0x0A);
		assert_int_equal(buf[5 + 2 * i], 0x10 + i);
	}
}

static void test_aml_nospace(void **state)
{
	(void)state;
	uint8_t buf[16];
	struct aml a;
	aml_init(&a, buf, 8);
	aml_string(&a, "QEMU0001"); /* needs 10 */
	assert_int_equal(aml_finish(&a), -ENOSPC);

	/* No room left for the PkgLength when closing. */
	aml_init(&a, buf, 6);
	size_t p = aml_package_begin(&a, 2);
	aml_integer(&a, 5);
	aml_integer(&a, 5);
	assert_int_equal(aml_finish(&a), 6);
	aml_end(&a, p);
	assert_int_equal(aml_finish(&a), -ENOSPC);
}

static void test_aml_eisaid(void **state)
{
	(void)state;
	uint8_t buf[16];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0A03");
	aml_eisaid(&a, "PNP0C0F");
	/* iasl: EisaId ("PNP0A03") is DWordConst 0x030AD041. */
	EXPECT_AML(&a, 0x0C, 0x41, 0xD0, 0x0A, 0x03, 0x0C, 0x41, 0xD0, 0x0C, 0x0F);
	static const char *const bad[] = { "PNP0A0", "PNP0A033", "pnp0A03", "PNP0a03", "PN10A03", "PNP0G03" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_eisaid(&a, bad[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
	}
}

static void test_aml_irq_noflags(void **state)
{
	(void)state;
	uint8_t buf[16];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_res_irq_noflags(&a, 1);
	aml_res_irq_noflags(&a, 15);
	/* iasl: IRQNoFlags () {1} is 22 02 00; {15} is 22 00 80. */
	EXPECT_AML(&a, 0x22, 0x02, 0x00, 0x22, 0x00, 0x80);
	aml_init(&a, buf, sizeof(buf));
	aml_res_irq_noflags(&a, 16);
	assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_aml_address_descriptors(void **state)
{
	(void)state;
	uint8_t buf[128];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus_number(&a, 0, 0);
	aml_res_word_io(&a, 0x0000, 0x0CF7);
	aml_res_word_io(&a, 0x0D00, 0xFFFF);
	aml_res_dword_memory(&a, 0xC0000000, 0xFEBFFFFF);
	/* Bytes iasl 20200925 emits for:
	 *   WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
	 *   WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
	 *           0, 0x0000, 0x0CF7, 0, 0x0CF8)
	 *   WordIO (..., 0, 0x0D00, 0xFFFF, 0, 0xF300)
	 *   DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
	 *                NonCacheable, ReadWrite, 0, 0xC0000000, 0xFEBFFFFF, 0, 0x3EC00000) */
	EXPECT_AML(&a, 0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		   0x00, 0x01, 0x00, /* */
		   0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF7, 0x0C, 0x00, 0x00,
		   0xF8, 0x0C, /* */
		   0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xFF, 0x00, 0x00,
		   0x00, 0xF3, /* */
		   0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0,
		   0xFF, 0xFF, 0xBF, 0xFE, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x3E);

	/* Lengths that do not fit the descriptor, and inverted ranges. */
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_io(&a, 0, 0xFFFF);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0, 0xFFFFFFFF);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus_number(&a, 1, 0);
	assert_int_equal(aml_finish(&a), -EINVAL);
}

/* ---- ACPI tables ------------------------------------------------------ */

#define GUEST_SIZE (2u * 1024 * 1024)

struct fake {
	struct gmem m;
	uint8_t *ram;
};

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ram = malloc(GUEST_SIZE);
	assert_non_null(f->ram);
	/* Not zero, so the test sees that the builder clears its area. */
	memset(f->ram, 0xAA, GUEST_SIZE);
	assert_int_equal(gmem_add(&f->m, 0, GUEST_SIZE, f->ram), 0);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	free(f->ram);
	free(f);
	return 0;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static struct acpi_config config(unsigned ncpus)
{
	return (struct acpi_config){
		.ncpus = ncpus,
		.lapic_addr = LAYOUT_LAPIC,
		.ioapic_addr = LAYOUT_IOAPIC,
		.ioapic_id = (uint8_t)ncpus,
	};
}

/* What an OS without a boot pointer does: scan the BIOS area. */
static uint64_t scan_rsdp(const uint8_t *ram)
{
	uint64_t found = 0;
	unsigned hits = 0;
	for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
		if (memcmp(ram + a, "RSD PTR ", 8) == 0 && sum(ram + a, 20) == 0) {
			found = a;
			hits++;
		}
	}
	assert_int_equal(hits, 1);
	return found;
}

/* Checks a table's header and checksum; returns it. */
static const uint8_t *table_at(const uint8_t *ram, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= LAYOUT_ACPI_START && gpa + 36 <= LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE);
	const uint8_t *t = ram + gpa;
	assert_memory_equal(t, sig, 4);
	uint32_t len = rd32(t + 4);
	assert_true(len >= 36 && gpa + len <= LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "VIGIL ", 6);
	assert_memory_equal(t + 16, "VIGILVM ", 8);
	assert_memory_equal(t + 28, "VGIL", 4);
	return t;
}

static const uint8_t *memfind(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

struct parsed {
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt, *facs;
};

static struct parsed parse(const struct fake *f, uint64_t rsdp_gpa)
{
	struct parsed p = { 0 };
	const uint8_t *ram = f->ram;

	assert_int_equal(scan_rsdp(ram), rsdp_gpa);
	assert_int_equal(rsdp_gpa, LAYOUT_ACPI_START);
	p.rsdp = ram + rsdp_gpa;
	assert_int_equal(sum(p.rsdp, 20), 0);
	assert_int_equal(p.rsdp[15], 2);            /* revision */
	assert_int_equal(rd32(p.rsdp + 20), 36);    /* length */
	assert_int_equal(sum(p.rsdp, 36), 0);       /* extended checksum */
	assert_memory_equal(p.rsdp + 9, "VIGIL ", 6);

	p.xsdt = table_at(ram, rd64(p.rsdp + 24), "XSDT");
	assert_int_equal(p.xsdt[8], 1);
	uint32_t xlen = rd32(p.xsdt + 4);
	assert_int_equal(xlen, 36 + 2 * 8);
	for (uint32_t off = 36; off < xlen; off += 8) {
		uint64_t gpa = rd64(p.xsdt + off);
		assert_int_equal(gpa % 4, 0);
		const uint8_t *t = ram + gpa;
		if (memcmp(t, "FACP", 4) == 0) {
			assert_null(p.fadt);
			p.fadt = table_at(ram, gpa, "FACP");
		} else {
			assert_null(p.madt);
			p.madt = table_at(ram, gpa, "APIC");
		}
	}
	assert_non_null(p.fadt);
	assert_non_null(p.madt);

	uint64_t dsdt = rd32(p.fadt + 40);
	assert_int_equal(rd64(p.fadt + 140), dsdt);
	p.dsdt = table_at(ram, dsdt, "DSDT");

	uint64_t facs = rd32(p.fadt + 36);
	assert_int_equal(facs % 64, 0);
	assert_int_equal(rd64(p.fadt + 132), 0); /* X_FIRMWARE_CTRL: FACS is below 4 GiB */
	p.facs = ram + facs;
	assert_memory_equal(p.facs, "FACS", 4);
	assert_int_equal(rd32(p.facs + 4), 64);
	assert_int_equal(p.facs[32], 2);
	return p;
}

static void expect_gas_io(const uint8_t *g, uint8_t bits, uint8_t access, uint64_t port)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], bits);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_int_equal(rd64(g + 4), port);
}

static void check_fadt(const uint8_t *t)
{
	assert_int_equal(rd32(t + 4), 276);
	assert_int_equal(t[8], 6);     /* revision */
	assert_int_equal(t[131], 5);   /* minor: ACPI 6.5 */
	assert_int_equal(rd16(t + 46), 9);          /* SCI_INT */
	assert_int_equal(rd32(t + 48), 0);          /* SMI_CMD */
	assert_int_equal(t[52], 0);                 /* ACPI_ENABLE */
	assert_int_equal(t[53], 0);                 /* ACPI_DISABLE */
	assert_int_equal(rd32(t + 56), 0x600);      /* PM1a_EVT_BLK */
	assert_int_equal(rd32(t + 60), 0);          /* PM1b_EVT_BLK */
	assert_int_equal(rd32(t + 64), 0x604);      /* PM1a_CNT_BLK */
	assert_int_equal(rd32(t + 68), 0);          /* PM1b_CNT_BLK */
	assert_int_equal(rd32(t + 72), 0);          /* PM2_CNT_BLK */
	assert_int_equal(rd32(t + 76), 0);          /* PM_TMR_BLK */
	assert_int_equal(rd32(t + 80), 0);          /* GPE0_BLK */
	assert_int_equal(rd32(t + 84), 0);          /* GPE1_BLK */
	assert_int_equal(t[88], 4);                 /* PM1_EVT_LEN */
	assert_int_equal(t[89], 2);                 /* PM1_CNT_LEN */
	assert_int_equal(t[91], 0);                 /* PM_TMR_LEN */
	assert_int_equal(t[92], 0);                 /* GPE0_BLK_LEN */
	assert_int_equal(t[93], 0);                 /* GPE1_BLK_LEN */
	assert_int_equal(rd16(t + 109), 0x0006);    /* IAPC_BOOT_ARCH: 8042, VGA not present */
	/* WBINVD | PROC_C1 | PWR_BUTTON | SLP_BUTTON | FIX_RTC | RESET_REG_SUP;
	 * HW_REDUCED_ACPI (bit 20) clear. */
	assert_int_equal(rd32(t + 112), 0x475);
	expect_gas_io(t + 116, 8, 1, 0x608);        /* RESET_REG */
	assert_int_equal(t[128], 0x01);             /* RESET_VALUE */
	expect_gas_io(t + 148, 32, 2, 0x600);       /* X_PM1a_EVT_BLK */
	expect_gas_io(t + 172, 16, 2, 0x604);       /* X_PM1a_CNT_BLK */
	static const uint8_t zero_gas[12];
	assert_memory_equal(t + 160, zero_gas, 12); /* X_PM1b_EVT_BLK */
	assert_memory_equal(t + 184, zero_gas, 12); /* X_PM1b_CNT_BLK */
	assert_memory_equal(t + 208, zero_gas, 12); /* X_PM_TMR_BLK */
	assert_memory_equal(t + 220, zero_gas, 12); /* X_GPE0_BLK */
	assert_memory_equal(t + 232, zero_gas, 12); /* X_GPE1_BLK */
	/* The layout constants the FADT mirrors. */
	assert_int_equal(PORT_ACPI_PM1_EVT, 0x600);
	assert_int_equal(PORT_ACPI_PM1_CNT, 0x604);
	assert_int_equal(PORT_ACPI_RESET, 0x608);
}

static uint32_t pkglen(const uint8_t *p, unsigned *n);

/* [dev, dev + size) lies inside the DSDT's Scope (\_SB_): ScopeOp, a
 * PkgLength of 1..4 bytes, then the name. */
static void assert_inside_sb(const uint8_t *t, uint32_t len, const uint8_t *dev, size_t size)
{
	const uint8_t *name = memfind(t, len, "\\_SB_", 5), *sb = NULL;
	assert_non_null(name);
	for (unsigned k = 1; k <= 4 && !sb; k++)
		if (name - 1 - k >= t && name[-1 - (int)k] == 0x10 && 1u + (name[-(int)k] >> 6) == k)
			sb = name - 1 - k;
	assert_non_null(sb);
	unsigned n;
	const uint8_t *sb_end = sb + 1 + pkglen(sb + 1, &n);
	assert_true(sb_end <= t + len);
	assert_true(dev > sb && dev + size <= sb_end);
}

/* The keyboard controller, byte for byte as iasl emits
 *   Device (KBD) { Name (_HID, EisaId ("PNP0303"))
 *                  Name (_CRS, ResourceTemplate () { IO (Decode16, 0x60, 0x60, 1, 1)
 *                      IO (Decode16, 0x64, 0x64, 1, 1) IRQNoFlags () {1} }) }
 * and inside \_SB_. */
static void check_kbd(const uint8_t *t)
{
	static const uint8_t kbd[] = {
		0x5B, 0x82, 0x2D, 'K',  'B',  'D',  '_',  0x08, '_',  'H',  'I',  'D',  0x0C, 0x41, 0xD0, 0x03,
		0x03, 0x08, '_',  'C',  'R',  'S',  0x11, 0x18, 0x0A, 0x15, 0x47, 0x01, 0x60, 0x00, 0x60, 0x00,
		0x01, 0x01, 0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00, 0x79, 0x00,
	};
	uint32_t len = rd32(t + 4);
	const uint8_t *dev = memfind(t, len, kbd, sizeof(kbd));
	assert_non_null(dev);
	assert_inside_sb(t, len, dev, sizeof(kbd));
	/* The layout constants the bytes above spell. */
	assert_int_equal(PORT_I8042_DATA, 0x60);
	assert_int_equal(PORT_I8042_CMD, 0x64);
	assert_int_equal(IRQ_KBD, 1);
}

/* The CMOS RTC, byte for byte as iasl emits
 *   Device (RTC) { Name (_HID, EisaId ("PNP0B00"))
 *                  Name (_CRS, ResourceTemplate () { IO (Decode16, 0x70, 0x70, 1, 2)
 *                      IRQNoFlags () {8} }) }
 * and inside \_SB_. */
static void check_rtc(const uint8_t *t)
{
	static const uint8_t rtc[] = {
		0x5B, 0x82, 0x25, 'R',  'T',  'C',  '_',  0x08, '_',  'H',  'I',  'D',  0x0C, 0x41,
		0xD0, 0x0B, 0x00, 0x08, '_',  'C',  'R',  'S',  0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01,
		0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x22, 0x00, 0x01, 0x79, 0x00,
	};
	uint32_t len = rd32(t + 4);
	const uint8_t *dev = memfind(t, len, rtc, sizeof(rtc));
	assert_non_null(dev);
	assert_inside_sb(t, len, dev, sizeof(rtc));
	assert_int_equal(PORT_RTC, 0x70);
	assert_int_equal(PORT_RTC_LEN, 2);
	assert_int_equal(IRQ_RTC, 8);
}

static void check_dsdt(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);
	assert_int_equal(t[8], 2);
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0A, ACPI_SLP_TYP_S5, 0x0A, ACPI_SLP_TYP_S5, 0x00, 0x00 };
	/* At the top level of the DSDT, i.e. \_S5_. */
	assert_memory_equal(t + 36, s5, sizeof(s5));
	assert_non_null(memfind(t, len, "\x0DQEMU0001", 10));
	static const uint8_t io[] = { 0x47, 0x01, PORT_PVPANIC & 0xFF, PORT_PVPANIC >> 8,
				      PORT_PVPANIC & 0xFF, PORT_PVPANIC >> 8, 0x01, 0x01, 0x79, 0x00 };
	assert_non_null(memfind(t, len, io, sizeof(io)));
	/* Scope PkgLength 0x8D (2-byte form): PEVT, KBD_, then RTC_ */
	assert_non_null(memfind(t, len, "\x10\x4D\x08\\_SB_\x5B\x82\x2EPEVT", 14));
	check_kbd(t);
	check_rtc(t);
	assert_int_equal(len, 36 + 14 + 56 + 47 + 39); /* header, \_S5_, Scope (PEVT, KBD_, RTC_) */
}

static void check_madt(const uint8_t *t, unsigned ncpus)
{
	uint32_t len = rd32(t + 4);
	assert_int_equal(t[8], 6);
	assert_int_equal(rd32(t + 36), 0xFEE00000);
	assert_int_equal(rd32(t + 40), 1); /* PCAT_COMPAT */

	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	uint32_t off = 44;
	while (off < len) {
		const uint8_t *e = t + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics); /* UID */
			assert_int_equal(e[3], lapics); /* APIC ID */
			assert_int_equal(rd32(e + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ncpus);
			assert_int_equal(rd32(e + 4), 0xFEC00000);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(rd32(e + 4), 2);
				assert_int_equal(rd16(e + 8), 0);
			} else {
				assert_int_equal(e[3], 9);
				assert_int_equal(rd32(e + 4), 9);
				assert_int_equal(rd16(e + 8), 0x000D);
			}
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xFF);
			assert_int_equal(rd16(e + 3), 0);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 2);
	assert_int_equal(nmis, 1);
}

/* Bytes from the area's start to the end of its last table. */
static size_t tables_end(const struct fake *f, const struct parsed *p)
{
	const uint8_t *t[] = { p->xsdt, p->fadt, p->madt, p->dsdt, p->facs };
	size_t end = 36; /* the RSDP */
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t e = (size_t)(t[i] - (f->ram + LAYOUT_ACPI_START)) + rd32(t[i] + 4);
		end = e > end ? e : end;
	}
	return end;
}

/* fresh: the area held only the 0xAA fill before (not an earlier build). */
static void build_and_check(struct fake *f, unsigned ncpus, bool fresh)
{
	struct acpi_config cfg = config(ncpus);
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), 0);
	struct parsed p = parse(f, rsdp);
	check_fadt(p.fadt);
	check_dsdt(p.dsdt);
	check_madt(p.madt, ncpus);

	/* Nothing of the 0xAA fill is left from the RSDP to the end of the
	 * DSDT (the last table); past it the builder writes nothing (fresh
	 * guest RAM is zero, and each page written is one more the process
	 * holds), and nothing outside the area. */
	size_t used = tables_end(f, &p);
	assert_null(memchr(f->ram + LAYOUT_ACPI_START, 0xAA, used));
	if (fresh)
		assert_int_equal(f->ram[LAYOUT_ACPI_START + used], 0xAA);
	assert_int_equal(f->ram[LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE - 1], 0xAA);
	assert_int_equal(f->ram[LAYOUT_ACPI_START - 1], 0xAA);
	assert_int_equal(f->ram[LAYOUT_ACPI_START + LAYOUT_ACPI_SIZE], 0xAA);
}

static void test_acpi_1cpu(void **state)
{
	build_and_check(*state, 1, true);
}

static void test_acpi_2cpus(void **state)
{
	build_and_check(*state, 2, true);
}

static void test_acpi_16cpus(void **state)
{
	build_and_check(*state, 16, true);
}

static void test_acpi_64cpus(void **state)
{
	build_and_check(*state, VIGIL_MAX_CPUS, true);
}

static void test_acpi_rebuild(void **state)
{
	/* A second build with fewer CPUs: its tables are whole and the only
	 * ones reachable (one RSDP, at the start); what the first left past
	 * their end is unreferenced. (vigil builds once per process: a guest
	 * reset ends it.) */
	struct fake *f = *state;
	build_and_check(f, 64, true);
	build_and_check(f, 3, false);
}

static void test_acpi_bad_config(void **state)
{
	struct fake *f = *state;
	uint64_t rsdp = 0x1234;
	struct acpi_config cfg = config(0);
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config(VIGIL_MAX_CPUS + 1);
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config(4);
	cfg.ioapic_id = 3; /* collides with CPU 3 */
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config(4);
	cfg.lapic_addr = 0x100000000ULL;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config(4);
	cfg.ioapic_addr = 0x1FEC00000ULL;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0x1234);
	/* Nothing written. */
	assert_null(memchr(f->ram + LAYOUT_ACPI_START, 0x00, LAYOUT_ACPI_SIZE));
}

static void test_acpi_area_not_ram(void **state)
{
	(void)state;
	uint8_t *ram = malloc(GUEST_SIZE);
	assert_non_null(ram);
	memset(ram, 0xAA, GUEST_SIZE);
	struct acpi_config cfg = config(1);
	uint64_t rsdp = 0x1234;

	/* Guest RAM ends below the area. */
	struct gmem small = { 0 };
	assert_int_equal(gmem_add(&small, 0, 0x80000, ram), 0);
	assert_int_equal(acpi_build(&small, &cfg, &rsdp), -EFAULT);

	/* The area straddles two regions: not one checked range. */
	struct gmem split = { 0 };
	assert_int_equal(gmem_add(&split, 0, 0xF0000, ram), 0);
	assert_int_equal(gmem_add(&split, 0xF0000, 0x10000, ram + 0xF0000), 0);
	assert_int_equal(acpi_build(&split, &cfg, &rsdp), -EFAULT);

	/* RAM only above 1 MiB. */
	struct gmem high = { 0 };
	assert_int_equal(gmem_add(&high, LAYOUT_HIMEM, 0x100000, ram), 0);
	assert_int_equal(acpi_build(&high, &cfg, &rsdp), -EFAULT);

	assert_int_equal(rsdp, 0x1234);
	assert_null(memchr(ram, 0x00, GUEST_SIZE));
	free(ram);
}

/* ---- PCI root bridge in the DSDT -------------------------------------- */

#define PCI_WIN_BASE LAYOUT_MMIO32_START
#define PCI_WIN_SIZE (LAYOUT_IOAPIC - LAYOUT_MMIO32_START)

static struct acpi_config config_pci(unsigned ncpus)
{
	struct acpi_config cfg = config(ncpus);
	cfg.pci = true;
	cfg.pci_mmio_base = PCI_WIN_BASE;
	cfg.pci_mmio_size = PCI_WIN_SIZE;
	return cfg;
}

/* Decodes a PkgLength at p; returns its value, sets *n to its size. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	unsigned extra = p[0] >> 6;
	*n = 1 + extra;
	if (!extra)
		return p[0] & 0x3F;
	uint32_t v = p[0] & 0x0F;
	for (unsigned i = 0; i < extra; i++)
		v |= (uint32_t)p[1 + i] << (4 + 8 * i);
	return v;
}

/* Decodes an integer constant at *p and advances past it. */
static uint64_t integer(const uint8_t **p)
{
	const uint8_t *q = *p;
	unsigned size;
	switch (q[0]) {
	case 0x00: *p = q + 1; return 0;
	case 0x01: *p = q + 1; return 1;
	case 0x0A: size = 1; break;
	case 0x0B: size = 2; break;
	case 0x0C: size = 4; break;
	case 0x0E: size = 8; break;
	default: fail_msg("not an integer: opcode 0x%02x", q[0]); return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)q[1 + i] << (8 * i);
	*p = q + 1 + size;
	return v;
}

static void check_dsdt_pci(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);
	const uint8_t *end = t + len;

	/* \_SB_ holds PEVT, then PCI0 */
	const uint8_t *dev = memfind(t, len, "\x5B\x82", 2);
	assert_non_null(dev);
	dev = memfind(dev + 2, (size_t)(end - dev - 2), "\x5B\x82", 2);
	assert_non_null(dev);
	unsigned n;
	uint32_t dlen = pkglen(dev + 2, &n);
	const uint8_t *body = dev + 2 + n, *dend = dev + 2 + dlen;
	assert_true(dend <= end);
	assert_memory_equal(body, "PCI0", 4);
	size_t blen = (size_t)(dend - body);

	/* _HID EisaId("PNP0A03"): DWordConst 0x030AD041. */
	assert_non_null(memfind(body, blen, "\x08_HID\x0C\x41\xD0\x0A\x03", 10));
	assert_non_null(memfind(body, blen, "\x08_UID\x00", 6));
	assert_non_null(memfind(body, blen, "\x08_SEG\x00", 6));
	assert_non_null(memfind(body, blen, "\x08_BBN\x00", 6));
	assert_null(memfind(body, blen, "_ADR", 4)); /* _HID or _ADR, not both */

	/* _CRS: bus 0, the config ports, the two I/O windows, the memory
	 * window, the End Tag; nothing else. */
	const uint8_t *crs = memfind(body, blen, "\x08_CRS\x11", 6);
	assert_non_null(crs);
	uint32_t clen = pkglen(crs + 6, &n);
	const uint8_t *cb = crs + 6 + n, *cend = crs + 6 + clen;
	uint64_t bufsize = integer(&cb);
	assert_int_equal(bufsize, (uint64_t)(cend - cb));
	static const uint8_t bus[] = { 0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_memory_equal(cb, bus, sizeof(bus));
	cb += sizeof(bus);
	static const uint8_t cfgio[] = { 0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08 };
	assert_memory_equal(cb, cfgio, sizeof(cfgio));
	cb += sizeof(cfgio);
	for (unsigned i = 0; i < 2; i++, cb += 16) {
		assert_int_equal(cb[0], 0x88);
		assert_int_equal(cb[3], 1); /* I/O */
		uint16_t min = rd16(cb + 8), max = rd16(cb + 10), l = rd16(cb + 14);
		assert_int_equal(min, i == 0 ? 0 : 0xD00);
		assert_int_equal(max, i == 0 ? 0xCF7 : 0xFFFF);
		assert_int_equal(l, max - min + 1);
	}
	assert_int_equal(cb[0], 0x87);
	assert_int_equal(rd16(cb + 1), 23);
	assert_int_equal(cb[3], 0);    /* memory */
	assert_int_equal(cb[4], 0x0C); /* producer, positive decode, min and max fixed */
	assert_int_equal(cb[5], 0x01); /* read-write, non-cacheable */
	assert_int_equal(rd32(cb + 10), PCI_WIN_BASE);
	assert_int_equal(rd32(cb + 14), PCI_WIN_BASE + PCI_WIN_SIZE - 1);
	assert_int_equal(rd32(cb + 18), 0);
	assert_int_equal(rd32(cb + 22), PCI_WIN_SIZE);
	cb += 26;
	assert_int_equal(cb[0], 0x79);
	assert_int_equal(cb + 2, cend);

	/* _PRT: 31 entries {slot << 16 | 0xFFFF, INTA, 0, GSI}. */
	const uint8_t *prt = memfind(body, blen, "\x08_PRT\x12", 6);
	assert_non_null(prt);
	uint32_t plen = pkglen(prt + 6, &n);
	const uint8_t *pb = prt + 6 + n, *pend = prt + 6 + plen;
	assert_true(pend <= dend);
	assert_int_equal(*pb++, 31);
	for (unsigned slot = 1; slot <= 31; slot++) {
		assert_int_equal(*pb++, 0x12);
		const uint8_t *e = pb;
		uint32_t elen = pkglen(pb, &n);
		pb += n;
		assert_int_equal(*pb++, 4);
		assert_int_equal(integer(&pb), (uint64_t)slot << 16 | 0xFFFF);
		assert_int_equal(integer(&pb), 0);
		assert_int_equal(integer(&pb), 0);
		assert_int_equal(integer(&pb), PCI_INTX_GSI_BASE + slot % PCI_INTX_GSIS);
		assert_int_equal(pb, e + elen);
	}
	assert_int_equal(pb, pend);
}

static void test_acpi_pci(void **state)
{
	struct fake *f = *state;
	/* One GSI map for the device model and the tables. */
	assert_int_equal(IRQ_PCI_INTX_BASE, PCI_INTX_GSI_BASE);
	assert_int_equal(IRQ_PCI_INTX_COUNT, PCI_INTX_GSIS);

	struct acpi_config cfg = config_pci(4);
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), 0);
	struct parsed p = parse(f, rsdp); /* every checksum */
	check_fadt(p.fadt);
	check_madt(p.madt, 4); /* no overrides for GSIs 16-23 */
	check_dsdt_pci(p.dsdt);
	check_kbd(p.dsdt);
	check_rtc(p.dsdt);
	uint32_t len = rd32(p.dsdt + 4);
	assert_non_null(memfind(p.dsdt, len, "\x0DQEMU0001", 10)); /* pvpanic still there */
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12 };
	assert_memory_equal(p.dsdt + 36, s5, sizeof(s5));
	assert_null(memchr(f->ram + LAYOUT_ACPI_START, 0xAA, tables_end(f, &p)));
}

static void test_acpi_no_pci(void **state)
{
	struct fake *f = *state;
	struct acpi_config cfg = config_pci(2);
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), 0);
	struct parsed p = parse(f, rsdp);
	assert_non_null(memfind(p.dsdt, rd32(p.dsdt + 4), "PCI0", 4));

	/* pci = false: the DSDT of before, byte for byte (check_dsdt pins
	 * its length), even with a window given. */
	cfg.pci = false;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), 0);
	p = parse(f, rsdp);
	check_dsdt(p.dsdt);
	assert_null(memfind(p.dsdt, rd32(p.dsdt + 4), "PCI0", 4));
	assert_null(memfind(p.dsdt, rd32(p.dsdt + 4), "_PRT", 4));
}

static void test_acpi_pci_bad_window(void **state)
{
	struct fake *f = *state;
	uint64_t rsdp = 0x1234;
	struct acpi_config cfg = config_pci(1);
	cfg.pci_mmio_size = 0;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config_pci(1);
	cfg.pci_mmio_base = 0x100000000ULL;
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config_pci(1);
	cfg.pci_mmio_size = 0x100000000ULL; /* crosses 4 GiB */
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	cfg = config_pci(1);
	cfg.pci_mmio_base = 0;
	cfg.pci_mmio_size = 0x100000000ULL; /* fits, but not a DWord length */
	assert_int_equal(acpi_build(&f->m, &cfg, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0x1234);
	assert_null(memchr(f->ram + LAYOUT_ACPI_START, 0x00, LAYOUT_ACPI_SIZE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aml_pkglen),
		cmocka_unit_test(test_aml_pkglen_counts_itself),
		cmocka_unit_test(test_aml_integer),
		cmocka_unit_test(test_aml_namestring),
		cmocka_unit_test(test_aml_bad_names),
		cmocka_unit_test(test_aml_string),
		cmocka_unit_test(test_aml_s5_package),
		cmocka_unit_test(test_aml_buffer),
		cmocka_unit_test(test_aml_device_scope),
		cmocka_unit_test(test_aml_long_package_shifts_body),
		cmocka_unit_test(test_aml_nospace),
		cmocka_unit_test(test_aml_eisaid),
		cmocka_unit_test(test_aml_irq_noflags),
		cmocka_unit_test(test_aml_address_descriptors),
		cmocka_unit_test_setup_teardown(test_acpi_1cpu, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_2cpus, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_16cpus, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_64cpus, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_rebuild, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_bad_config, fake_setup, fake_teardown),
		cmocka_unit_test(test_acpi_area_not_ram),
		cmocka_unit_test_setup_teardown(test_acpi_pci, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_no_pci, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_acpi_pci_bad_window, fake_setup, fake_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
