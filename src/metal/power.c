/* power — turning the machine off the way its firmware says: the ACPI RSDP
 * (EBDA or 0xE0000–0xFFFFF) → RSDT/XSDT → FADT's PM1a/PM1b control blocks,
 * and the sleep type of \_S5 from the DSDT's AML package. Under QEMU this
 * makes the emulator exit. */
#include <stdbool.h>
#include <string.h>

#include "metal/metal.h"

struct sdt {
	char sig[4];
	uint32_t len;
	uint8_t rev, csum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static bool csum_ok(const void *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += ((const uint8_t *)p)[i];
	return s == 0;
}

static const uint8_t *find_rsdp(void)
{
	/* The BIOS data area's EBDA segment; the address goes through an asm
	 * so the compiler does not take a low constant for a null pointer. */
	uintptr_t bda = 0x40e;
	__asm__("" : "+r"(bda));
	uintptr_t ebda = (uintptr_t)(*(const volatile uint16_t *)bda) << 4;
	uintptr_t areas[2][2] = { { ebda, ebda + 1024 }, { 0xe0000, 0x100000 } };
	for (int a = 0; a < 2; a++)
		for (uintptr_t p = areas[a][0]; p && p + 20 <= areas[a][1]; p += 16)
			if (!memcmp((const void *)p, "RSD PTR ", 8) && csum_ok((const void *)p, 20))
				return (const uint8_t *)p;
	return NULL;
}

static const struct sdt *find_table(const uint8_t *rsdp, const char *sig)
{
	uint32_t rsdt;
	memcpy(&rsdt, rsdp + 16, 4);
	const struct sdt *root = (const struct sdt *)(uintptr_t)rsdt;
	if (!rsdt || memcmp(root->sig, "RSDT", 4) || root->len < sizeof(*root) || root->len > 65536)
		return NULL;
	unsigned n = (root->len - sizeof(*root)) / 4;
	const uint8_t *ents = (const uint8_t *)(root + 1);
	for (unsigned i = 0; i < n; i++) {
		uint32_t a;
		memcpy(&a, ents + 4 * i, 4);
		const struct sdt *t = (const struct sdt *)(uintptr_t)a;
		if (a && !memcmp(t->sig, sig, 4))
			return t;
	}
	return NULL;
}

/* \_S5's SLP_TYPa: the AML `Name (_S5, Package () { a, b, ... })`. */
static int s5_type(const struct sdt *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt, *end = p + dsdt->len;
	for (; p + 8 < end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12) /* PackageOp */
			continue;
		const uint8_t *q = p + 5;
		q += (*q >> 6) + 1; /* PkgLength */
		q++;                /* NumElements */
		if (q >= end)
			return -1;
		if (*q == 0x0a && q + 1 < end) /* BytePrefix */
			return q[1];
		if (*q == 0x00 || *q == 0x01) /* ZeroOp / OneOp */
			return *q;
		return -1;
	}
	return -1;
}

const void *metal_acpi_table(const char *sig)
{
	const uint8_t *rsdp = find_rsdp();
	return rsdp ? find_table(rsdp, sig) : NULL;
}

void metal_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void metal_poweroff(int code)
{
	metal_log("exit %d", code);
	const uint8_t *rsdp = find_rsdp();
	const struct sdt *fadt = rsdp ? find_table(rsdp, "FACP") : NULL;
	if (fadt && fadt->len >= 72) {
		const uint8_t *f = (const uint8_t *)fadt;
		uint32_t dsdt_addr, pm1a, pm1b;
		memcpy(&dsdt_addr, f + 40, 4);
		memcpy(&pm1a, f + 64, 4);
		memcpy(&pm1b, f + 68, 4);
		const struct sdt *dsdt = (const struct sdt *)(uintptr_t)dsdt_addr;
		int typ = dsdt_addr && !memcmp(dsdt->sig, "DSDT", 4) ? s5_type(dsdt) : -1;
		if (typ < 0)
			typ = 0;
		uint16_t v = (uint16_t)(((typ & 7) << 10) | (1 << 13));
		if (pm1a)
			metal_outw((uint16_t)pm1a, v);
		if (pm1b)
			metal_outw((uint16_t)pm1b, v);
		/* The machine goes off a little later (QEMU: at its main loop's
		 * next turn): give it a second or so before saying it failed.
		 * Raw TSC cycles, since the clock may not be measured yet. */
		for (uint64_t t0 = metal_rdtsc(); metal_rdtsc() - t0 < 4000000000ull;)
			__asm__ volatile("pause");
	}
	metal_log("ACPI poweroff failed; halting");
	metal_halt();
}
