/* options — see options.h. Words are split on blanks, with "..." and
 * '...' quoting as a shell would (a bootloader passes the line as typed:
 * --cmdline "console=ttyS0 quiet"). Sizes and counts go through the CLI's
 * own parsers (src/cli/parse.c, pure), so --mem means the same. */
#include "metal/options.h"

#include <stdio.h>
#include <string.h>

#include "cli/parse.h"
#include "core/errmsg.h"

#define MAX_WORDS 64
#define METAL_MIN_MEM (64ull << 20)
#define METAL_DEFAULT_MEM (256ull << 20)
#define METAL_MAX_CPUS 64
/* vigil run's base command lines (vmm/config.c), then --cmdline's words. */
#define METAL_BASE_CMDLINE "console=ttyS0 panic=-1"
#define METAL_BASE_CMDLINE_HVC "console=hvc0 panic=-1"

/* Splits line into words in buf; -1 on an unterminated quote. */
static int split(const char *line, char *buf, size_t buflen, char **words, unsigned *nw)
{
	size_t o = 0;
	*nw = 0;
	for (const char *p = line;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return 0;
		if (*nw == MAX_WORDS || o >= buflen)
			return -1;
		words[(*nw)++] = buf + o;
		char q = 0;
		while (*p && (q || (*p != ' ' && *p != '\t'))) {
			if (!q && (*p == '"' || *p == '\'')) {
				q = *p++;
				continue;
			}
			if (q && *p == q) {
				q = 0;
				p++;
				continue;
			}
			if (o + 1 >= buflen)
				return -1;
			buf[o++] = *p++;
		}
		if (q)
			return -1;
		buf[o++] = 0;
	}
}

int metal_opts_parse(const char *line, struct metal_opts *o, char *err, size_t errlen)
{
	static char buf[METAL_CMDLINE_MAX * 2];
	char *w[MAX_WORDS];
	unsigned n;
	const char *extra = NULL;

	*o = (struct metal_opts){ .mem = METAL_DEFAULT_MEM, .cpus = 1 };
	if (split(line, buf, sizeof(buf), w, &n) < 0)
		return errmsg(err, errlen, "the command line has an unterminated quote or is too long");
	/* The loader puts the image's own path first (QEMU: the -kernel path;
	 * GRUB: the multiboot line's first word). */
	unsigned i = n && strncmp(w[0], "--", 2) != 0 ? 1 : 0;
	for (; i < n; i++) {
		const char *opt = w[i];
		const char *arg = i + 1 < n ? w[i + 1] : NULL;
		bool takes = !strcmp(opt, "--mem") || !strcmp(opt, "--cpus") || !strcmp(opt, "--cmdline") ||
			     !strcmp(opt, "--trace") || !strcmp(opt, "--selftest") || !strcmp(opt, "--console-device");
		if (takes && !arg)
			return errmsg(err, errlen, "option '%s' requires an argument", opt);
		if (!strcmp(opt, "--mem")) {
			uint64_t mem;
			if (parse_size(arg, &mem) < 0)
				return errmsg(err, errlen, "--mem '%s': expected a size such as 256M or 2G", arg);
			if (mem < METAL_MIN_MEM)
				return errmsg(err, errlen, "--mem %s is below the minimum of 64M", arg);
			o->mem = (mem + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1);
		} else if (!strcmp(opt, "--cpus")) {
			if (parse_uint(arg, 1, METAL_MAX_CPUS, &o->cpus) < 0)
				return errmsg(err, errlen, "--cpus '%s': expected a number from 1 to %d", arg, METAL_MAX_CPUS);
		} else if (!strcmp(opt, "--cmdline")) {
			extra = arg;
		} else if (!strcmp(opt, "--trace")) {
			/* The serial line is the only output there is. */
			if (strcmp(arg, "-") && strcmp(arg, "com1") && strcmp(arg, "serial"))
				return errmsg(err, errlen, "--trace '%s': vigil-metal has no files; use --trace - (COM1)", arg);
			o->trace = true;
		} else if (!strcmp(opt, "--console-device")) {
			if (strcmp(arg, "serial") && strcmp(arg, "virtio"))
				return errmsg(err, errlen, "--console-device '%s': expected serial or virtio", arg);
			o->virtio_console = !strcmp(arg, "virtio");
		} else if (!strcmp(opt, "--selftest")) {
			if (strcmp(arg, "libc") && strcmp(arg, "smp") && strcmp(arg, "fault") && strcmp(arg, "abort") &&
			    strcmp(arg, "deadlock") && strcmp(arg, "vmrun"))
				return errmsg(err, errlen, "--selftest '%s': expected libc, smp, fault, abort, deadlock or vmrun",
					      arg);
			snprintf(o->selftest, sizeof(o->selftest), "%s", arg);
		} else if (!strcmp(opt, "--stats")) {
			o->stats = true;
			continue;
		} else
			return errmsg(err, errlen, "unknown option '%s' (vigil-metal takes --mem, --cpus, --cmdline, --console-device, --stats, --trace)",
				      opt);
		i++;
	}
	const char *base = o->virtio_console ? METAL_BASE_CMDLINE_HVC : METAL_BASE_CMDLINE;
	int len = extra ? snprintf(o->cmdline, sizeof(o->cmdline), "%s %s", base, extra)
			: snprintf(o->cmdline, sizeof(o->cmdline), "%s", base);
	if (len < 0 || (size_t)len >= sizeof(o->cmdline))
		return errmsg(err, errlen, "--cmdline: the kernel command line is too long");
	return 0;
}
