/* fuzz_boot — libFuzzer target for the kernel and initrd loaders
 * (src/arch/x86/boot_bzimage.c, boot_pvh.c, boot_common.c): the files come
 * from the host user, but a hostile or corrupt image must still get a
 * one-line error, never a write outside guest RAM or a read past the file.
 * The input is a 4-byte header (which loader: detected, bzImage or PVH; the
 * initrd's length; the command line's length), then the kernel image, the
 * initrd and the command line. Each part is copied into its own exactly
 * sized heap block, so ASan sees any read past it. Guest RAM is 64 MiB at
 * gpa 0 with an inaccessible guard page above it, reset to zeros after each
 * run (MADV_DONTNEED: only touched pages cost). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arch/x86/boot.h"

#define RAM (64ull << 20)
#define GUARD 4096ull

static uint8_t *ram;
static struct gmem mem;

static uint8_t *dup_block(const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		abort();
	memcpy(b, p, n);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	if (!ram) {
		ram = mmap(NULL, RAM + GUARD, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (ram == MAP_FAILED || mprotect(ram + RAM, GUARD, PROT_NONE) ||
		    gmem_add(&mem, 0, RAM, ram))
			abort();
	}
	unsigned which = data[0] % 3;
	size_t initrd_len = (size_t)(data[1] | data[2] << 8);
	size_t cmd_len = data[3];
	data += 4;
	size -= 4;
	if (cmd_len > size)
		cmd_len = size;
	if (initrd_len > size - cmd_len)
		initrd_len = size - cmd_len;
	size_t kernel_len = size - cmd_len - initrd_len;

	uint8_t *kernel = dup_block(data, kernel_len);
	uint8_t *initrd = (data[-4] & 0x80) ? dup_block(data + kernel_len, initrd_len) : NULL;
	char *cmdline = malloc(cmd_len + 1);
	if (!cmdline)
		abort();
	memcpy(cmdline, data + kernel_len + initrd_len, cmd_len);
	cmdline[cmd_len] = 0;

	struct boot_config cfg = { .kernel = kernel, .kernel_len = kernel_len, .initrd = initrd,
				   .initrd_len = initrd ? initrd_len : 0,
				   .cmdline = (data[-4] & 0x40) ? "" : cmdline, .rsdp = 0xe0000 };
	struct boot_result res;
	char err[256] = "";
	int rc = which == 0   ? boot_load(&mem, &cfg, &res, err, sizeof(err))
		 : which == 1 ? boot_bzimage_load(&mem, &cfg, &res, err, sizeof(err))
			      : boot_pvh_load(&mem, &cfg, &res, err, sizeof(err));
	if (rc != 0 && (rc != -1 || !err[0] || memchr(err, '\n', sizeof(err))))
		__builtin_trap(); /* failure must be -1 with one line */
	if (rc == 0 && (res.kernel_end > RAM || res.cpu.rip >= RAM ||
			(initrd && initrd_len && res.initrd_addr + initrd_len > RAM)))
		__builtin_trap(); /* accepted a layout outside guest RAM */

	free(kernel);
	free(initrd);
	free(cmdline);
	madvise(ram, RAM, MADV_DONTNEED);
	return 0;
}
