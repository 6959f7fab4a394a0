/* bzImage loading through the Linux x86 boot protocol's 64-bit entry:
 * copy the setup header into a zero page (struct boot_params), load the
 * protected-mode kernel at 1 MiB, and enter it at +0x200 in long mode with
 * RSI pointing at the zero page. Every header field is checked against the
 * file's real size before it is believed. */
#include <stdio.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/errmsg.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst). */
#define BP_ACPI_RSDP      0x070
#define BP_EXT_RAMDISK    0x0C0
#define BP_EXT_RAMDISK_SZ 0x0C4
#define BP_E820_ENTRIES   0x1E8
#define BP_HDR            0x1F1
#define BP_HDR_MAX_END    0x290
#define BP_E820_TABLE     0x2D0
#define BP_E820_MAX       128
/* setup header fields, as offsets in the file and in the zero page. */
#define HDR_SETUP_SECTS   0x1F1
#define HDR_JUMP          0x200
#define HDR_VERSION       0x206
#define HDR_LOADER_TYPE   0x210
#define HDR_LOADFLAGS     0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE  0x21C
#define HDR_CMD_LINE_PTR  0x228
#define HDR_INITRD_MAX    0x22C
#define HDR_XLOADFLAGS    0x236
#define HDR_CMDLINE_SIZE  0x238
#define HDR_PREF_ADDRESS  0x258
#define HDR_INIT_SIZE     0x260

#define LOADED_HIGH   0x01
#define XLF_KERNEL_64 0x01
#define PROTO_64BIT   0x020C /* 2.12: xloadflags and the 64-bit entry */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

int boot_bzimage_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res,
		      char *err, size_t errlen)
{
	const uint8_t *img = cfg->kernel;
	size_t len = cfg->kernel_len;

	if (len < HDR_INIT_SIZE + 4)
		return errmsg(err, errlen, "bzImage is truncated (%zu bytes, header needs %d)", len,
			    HDR_INIT_SIZE + 4);
	uint32_t version = rd16(img + HDR_VERSION);
	if (version < PROTO_64BIT || !(img[HDR_XLOADFLAGS] & XLF_KERNEL_64))
		return errmsg(err, errlen,
			    "bzImage boot protocol %u.%02u has no 64-bit entry (vigil needs 2.12+ with "
			    "XLF_KERNEL_64)", version >> 8, version & 0xff);
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		return errmsg(err, errlen, "zImage (loaded low) kernels are not supported");

	size_t setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	size_t setup_size = (setup_sects + 1) * 512;
	if (setup_size >= len)
		return errmsg(err, errlen, "bzImage is truncated: setup (%zu bytes) fills the whole file",
			    setup_size);
	size_t payload = len - setup_size;
	/* The decompressor unpacks to the preferred address (16 MiB for a
	 * stock kernel) and needs init_size bytes there, while the compressed
	 * image sits at 1 MiB: keep both clear of the initrd. */
	uint64_t init_size = rd32(img + HDR_INIT_SIZE);
	uint64_t pref = rd32(img + HDR_PREF_ADDRESS) | (uint64_t)rd32(img + HDR_PREF_ADDRESS + 4) << 32;
	uint64_t runtime = pref > LAYOUT_HIMEM && pref < LAYOUT_MEM32_END ? pref : LAYOUT_HIMEM;
	uint64_t end = runtime + init_size;
	if (end < LAYOUT_HIMEM + payload)
		end = LAYOUT_HIMEM + payload;
	uint64_t low_end = boot_low_ram_end(m);
	if (end > low_end)
		return errmsg(err, errlen, "kernel needs %llu MiB of guest memory to unpack; raise --mem",
			    (unsigned long long)(end >> 20) + 1);
	if (gmem_write(m, LAYOUT_HIMEM, img + setup_size, payload) < 0)
		return errmsg(err, errlen, "kernel does not fit in guest memory");
	res->kernel_end = end;

	/* The zero page starts as zeroes plus the image's own setup header. */
	uint8_t *zp = gmem_ptr(m, LAYOUT_ZERO_PAGE, 4096);
	if (!zp)
		return errmsg(err, errlen, "guest memory too small for the zero page");
	memset(zp, 0, 4096);
	size_t hdr_end = HDR_JUMP + 2 + (size_t)img[HDR_JUMP + 1];
	if (hdr_end > BP_HDR_MAX_END)
		hdr_end = BP_HDR_MAX_END;
	memcpy(zp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);

	zp[HDR_LOADER_TYPE] = 0xff; /* "undefined" boot loader */
	/* cmdline_size excludes the NUL; widen first so 0xffffffff does not wrap to 0. */
	size_t cmdline_max = (size_t)rd32(img + HDR_CMDLINE_SIZE) + 1;
	if (boot_write_cmdline(m, cfg->cmdline, cmdline_max, err, errlen) < 0)
		return -1;
	wr32(zp + HDR_CMD_LINE_PTR, LAYOUT_CMDLINE);

	uint64_t initrd_limit = (uint64_t)rd32(img + HDR_INITRD_MAX) + 1;
	if (boot_place_initrd(m, cfg, res->kernel_end, initrd_limit, &res->initrd_addr, err, errlen) < 0)
		return -1;
	wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)res->initrd_addr);
	wr32(zp + HDR_RAMDISK_SIZE, (uint32_t)cfg->initrd_len);
	wr32(zp + BP_EXT_RAMDISK, (uint32_t)(res->initrd_addr >> 32));
	wr32(zp + BP_EXT_RAMDISK_SZ, (uint32_t)((uint64_t)cfg->initrd_len >> 32));
	wr64(zp + BP_ACPI_RSDP, cfg->rsdp);

	struct e820_entry map[BP_E820_MAX];
	int n = e820_build(m, map, BP_E820_MAX);
	if (n < 0)
		return errmsg(err, errlen, "guest memory map does not fit the zero page");
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, map, (size_t)n * sizeof(map[0]));

	res->kind = BOOT_BZIMAGE;
	boot_cpu_long_mode(m, &res->cpu);
	res->cpu.rip = LAYOUT_HIMEM + 0x200; /* startup_64 */
	res->cpu.rsi = LAYOUT_ZERO_PAGE;
	return 0;
}
