/* main — vigil-metal from the boot code's call to the guest's end: read
 * what the loader handed over, find the machine's memory and clock, check
 * the CPU, take the options and modules (kernel, initrd, policy), then
 * build and run the VM (machine.c) and power the machine off with `vigil
 * run`'s exit status for how the guest ended. Every failure on the way is
 * one "vigil-metal:" line and a poweroff: never a hang. */
#include <stdint.h>
#include <string.h>

#include "core/vmctl.h"
#include "metal/machine.h"
#include "metal/mem.h"
#include "metal/metal.h"
#include "metal/multiboot.h"
#include "metal/options.h"
#include "metal/policy_mod.h"
#include "metal/selftest.h"
#include "svm/svm.h"

static struct mb_info mb;
static struct metal_opts opts;
static struct policy_spec policy;

void metal_main(uint32_t magic, uint32_t info);

__attribute__((noreturn)) static void fail(const char *msg)
{
	metal_log("%s", msg);
	metal_poweroff(VM_STOP_ERROR);
}

/* "/path/file WORD" or "WORD": a module of that role (policy, disk). */
static int is_role(const char *s, const char *word)
{
	size_t n = strlen(s), w = strlen(word);
	return !strcmp(s, word) || (n > w && s[n - w - 1] == ' ' && !strcmp(s + n - w, word));
}

void metal_main(uint32_t magic, uint32_t info)
{
	char err[512];
	metal_serial_init();
	metal_idt_init();
	metal_tls_setup(NULL);
	metal_log("starting (version %s)", VIGIL_VERSION);
	if (mb_parse(magic, info, &mb, err, sizeof(err)) < 0)
		fail(err);
	metal_mem_init(&mb);
	metal_clock_init();
	metal_log("%llu MiB free; TSC %llu kHz", (unsigned long long)(metal_free_bytes() >> 20),
		  (unsigned long long)(metal_tsc_hz() / 1000));
	if (svm_check_cpu(err, sizeof(err)) < 0)
		fail(err);
	if (metal_opts_parse(mb.cmdline, &opts, err, sizeof(err)) < 0)
		fail(err);

	/* --selftest vmrun runs the guest: the machine breaks its VMCB. */
	if (opts.selftest[0] && strcmp(opts.selftest, "vmrun"))
		metal_selftest(opts.selftest);
	struct metal_boot b = { .opts = &opts };
	const struct mb_module *kernel = NULL, *initrd = NULL, *pol = NULL;
	for (unsigned i = 0; i < mb.nr_mods; i++) {
		const struct mb_module *m = &mb.mods[i];
		if (is_role(m->string, "disk")) {
			if (b.nr_disks == METAL_MAX_DISKS)
				fail("more than 4 disk modules");
			b.disks[b.nr_disks].data = (uint8_t *)(uintptr_t)m->start;
			b.disks[b.nr_disks].len = (size_t)(m->end - m->start);
			b.nr_disks++;
		} else if (is_role(m->string, "policy")) {
			if (pol)
				fail("two policy modules: give one");
			pol = m;
		} else if (!kernel)
			kernel = m;
		else if (!initrd)
			initrd = m;
		else {
			metal_log("module %u \"%s\": one kernel, one initrd, one policy and disks are taken; this is a second initrd",
				  i, m->string);
			metal_poweroff(VM_STOP_ERROR);
		}
	}
	if (!kernel)
		fail("no guest kernel: give it as the first multiboot module (QEMU: -initrd KERNEL[,INITRD][,POLICY policy][,IMAGE disk])");
	if (kernel->end <= kernel->start)
		fail("the kernel module is empty");
	b.kernel = (const uint8_t *)(uintptr_t)kernel->start;
	b.kernel_len = (size_t)(kernel->end - kernel->start);
	if (initrd && initrd->end > initrd->start) {
		b.initrd = (const uint8_t *)(uintptr_t)initrd->start;
		b.initrd_len = (size_t)(initrd->end - initrd->start);
	}
	if (pol) {
		if (metal_policy_parse((const char *)(uintptr_t)pol->start, (size_t)(pol->end - pol->start), &policy, err,
				       sizeof(err)) < 0)
			fail(err);
		b.policy = &policy;
		metal_log("policy: %u rule(s) from \"%s\"", policy.nrules, pol->string);
	}
	metal_poweroff(metal_machine_run(&b));
}
