/* The SVM backend's exit path on the host, without SVM: the backend's
 * files are compiled in here with a scripted world switch (svm_vmrun
 * writes the next exit into the VMCB, as the CPU would), and the test
 * checks what the core gets (struct vexit) and what the guest gets back at
 * the next entry: port I/O in and out, REP OUTS through guest memory, an
 * MMIO load decoded from the guest's code, CPUID and MSRs finished inside
 * the backend, #GP for an unknown MSR and for a policy-denied one, HLT,
 * shutdown, a refused VMRUN, and interrupt injection or its window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* the interrupt models' clock: the test's (1 tick = 1 ns at the fake 1 GHz) */
static uint64_t fake_ns;
#define SVM_TSC() fake_ns
#include "../../src/svm/svm_cpuid.c"
#include "../../src/svm/svm_exit.c"
#include "../../src/svm/svm_irq.c"
#include "../../src/svm/svm_msr.c"
#include "../../src/svm/svm_state.c"

/* --- the platform, faked --- */
void metal_log(const char *fmt, ...)
{
	(void)fmt;
}
/* Never freed on the machine; here kept to be freed at each teardown. */
static void *pages[64];
static unsigned npages;
void *metal_alloc_pages(size_t bytes, size_t align)
{
	if (npages == 64)
		return NULL;
	void *p = aligned_alloc(align < 64 ? 64 : align, (bytes + align - 1) / align * align);
	if (p)
		memset(p, 0, bytes);
	return pages[npages++] = p;
}
uint64_t metal_now_ns(void)
{
	return fake_ns;
}
uint64_t metal_tsc_hz(void)
{
	return 1000000000ull;
}
uint64_t svm_host_save_pa(void)
{
	return 0;
}

/* --- the world switch, scripted --- */
struct fake_exit {
	uint64_t code, info1, info2, intinfo;
};
static struct fake_exit script[8];
static unsigned nscript, at;
static uint64_t entry_rip[8], entry_inj[8], entry_ctl[8];

void svm_vmrun(uint64_t vmcb_pa, uint64_t *gprs, uint64_t host_save_pa, int sti)
{
	(void)gprs;
	(void)host_save_pa;
	(void)sti;
	uint8_t *c = (uint8_t *)(uintptr_t)vmcb_pa;
	assert_true(at < nscript);
	entry_rip[at] = vmcb_r64(c, VMCB_RIP);
	entry_inj[at] = vmcb_r64(c, VMCB_EVENTINJ);
	entry_ctl[at] = vmcb_r64(c, VMCB_INT_CTL);
	vmcb_w64(c, VMCB_EXITCODE, script[at].code);
	vmcb_w64(c, VMCB_EXITINFO1, script[at].info1);
	vmcb_w64(c, VMCB_EXITINFO2, script[at].info2);
	vmcb_w64(c, VMCB_EXITINTINFO, script[at].intinfo);
	at++;
}

static struct vm vm;
static struct svm sv;
static struct svm_vcpu *v;
static uint8_t *ram;
#define RAM (4u << 20)

/* A new scripted run: a HLT that ended the last one is over (it would
 * otherwise wait for an interrupt in svm_run). */
static void exits(unsigned n, const struct fake_exit *e)
{
	if (v->pend == PEND_HLT) {
		v->pend = PEND_NONE;
		vmcb_w64(v->vmcb, VMCB_RIP, vmcb_r64(v->vmcb, VMCB_RIP) + 1);
	}
	v->halted = false;
	memcpy(script, e, n * sizeof(*e));
	nscript = n;
	at = 0;
}


/* A 32-bit protected-mode guest, paging off, flat segments, IF set. */
static void guest_state(void)
{
	const struct x86_seg code = { .limit = 0xffffffff, .type = 0xb, .s = 1, .present = 1, .db = 1, .g = 1 };
	const struct x86_seg data = { .limit = 0xffffffff, .type = 0x3, .s = 1, .present = 1, .db = 1, .g = 1 };
	struct vcpu_state st = { .rip = 0x1000, .rflags = 0x202, .cr0 = 0x11, .cs = code, .ds = data, .es = data,
				 .ss = data, .fs = data, .gs = data };
	st.tr = (struct x86_seg){ .limit = 0xffff, .type = 0xb, .present = 1 };
	svm_state_set(v, &st);
	v->dead = false;
	v->pend = PEND_NONE;
	v->halted = false;
}

static unsigned ncpus = 1;

static int setup_with(const struct policy_spec *spec)
{
	char err[200];
	memset(&vm, 0, sizeof(vm));
	memset(&sv, 0, sizeof(sv));
	if (vm_init(&vm, ncpus) < 0)
		return -1;
	if (spec) {
		struct policy *p = policy_compile(spec, err, sizeof(err));
		if (!p)
			return -1;
		policy_free(policy_swap(&vm.policy, p));
	}
	ram = metal_alloc_pages(RAM, 4096);
	gmem_add(&vm.mem, 0, RAM, ram);
	sv.vm = &vm;
	sv.ncpus = ncpus;
	sv.vcpus = v = metal_alloc_pages(ncpus * sizeof(*v), 64);
	if (svm_msr_init(&sv, err, sizeof(err)) < 0)
		return -1;
	for (unsigned i = 0; i < ncpus; i++) {
		v[i].id = i;
		v[i].vmcb = metal_alloc_pages(4096, 4096);
		if (svm_cpuid_init(&sv, &v[i], err, sizeof(err)) < 0)
			return -1;
		svm_vmcb_init(&sv, &v[i]);
		v[i].apic_base = 0xfee00800 | (i ? 0 : 0x100);
		v[i].sipi_state = i ? SIPI_WAIT : SIPI_RUNNING;
	}
	if (svm_irq_init(&sv, err, sizeof(err)) < 0)
		return -1;
	guest_state();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_with(NULL);
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 1; i < sv.ncpus; i++)
		lapic_free(v[i].lapic);
	lapic_free(v->lapic);
	ioapic_free(sv.ioapic);
	i8259_free(sv.pic);
	i8254_free(sv.pit);
	vm_fini(&vm);
	while (npages)
		free(pages[--npages]);
	return 0;
}

static void test_port_io(void **state)
{
	(void)state;
	struct vexit ex;
	v->gpr[GPR_RAX] = 0x1122334455667741ull;
	/* out %al,%dx (port 0x3f8); then CPUID (finished inside); then in %dx,%al */
	const struct fake_exit e[] = {
		{ SVM_EXIT_IOIO, (0x3f8u << 16) | (1u << 4), 0x1001, 0 },
		{ SVM_EXIT_CPUID, 0, 0, 0 },
		{ SVM_EXIT_IOIO, (0x3fdu << 16) | (1u << 4) | IOIO_IN, 0x1004, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(4, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_true(ex.write);
	assert_int_equal(ex.addr, 0x3f8);
	assert_int_equal(ex.len, 1);
	assert_int_equal(ex.data[0], 0x41);
	v->gpr[GPR_RAX] = 0; /* CPUID leaf 0 */
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_rip[1], 0x1001); /* past the OUT (EXITINFO2) */
	assert_int_equal(entry_rip[2], 0x1003); /* past the 2-byte CPUID */
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_false(ex.write);
	assert_int_equal(ex.addr, 0x3fd);
	uint32_t r[4];
	host_cpuid(0, 0, r);
	assert_int_equal(v->gpr[GPR_RBX], r[1]); /* the vendor string */
	v->gpr[GPR_RAX] = 0xffffffffffff0000ull;
	ex.data[0] = 0x60;
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(v->gpr[GPR_RAX], 0xffffffffffff0060ull); /* IN %al: the rest kept */
	assert_int_equal(entry_rip[3], 0x1004);
	assert_int_equal(ex.reason, VEXIT_HLT);
}

/* The interrupt controllers' ports and pages are the backend's own, as
 * KVM's in-kernel irqchip: served without an exit to the core. */
static void test_irqchip_inline(void **state)
{
	(void)state;
	struct vexit ex;
	v->gpr[GPR_RAX] = 0xfb;
	vmcb_w64(v->vmcb, VMCB_RIP, 0x3000);
	ram[0x3002] = 0x8b; /* mov (%ebx),%eax */
	ram[0x3003] = 0x03;
	const struct fake_exit e[] = {
		{ SVM_EXIT_IOIO, (0x21u << 16) | (1u << 4), 0x3002, 0 },
		{ SVM_EXIT_NPF, 0x100000004ull, 0xfee00030, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(3, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_rip[1], 0x3002);
	assert_int_equal(entry_rip[2], 0x3004);
	uint8_t imr = 0;
	i8259_master_io(sv.pic, 1, &imr, 1, false);
	assert_int_equal(imr, 0xfb);
	assert_int_equal(v->gpr[GPR_RAX], 0x60014); /* the LAPIC's version register */
	assert_int_equal(v->stats[ST_IRQCHIP_ACCESS], 2);
}

/* Two vCPUs: the boot one starts the other with INIT and SIPI through its
 * LAPIC's ICR, then sends it a fixed IPI. */
static void test_smp_start(void **state)
{
	(void)state;
	teardown(NULL);
	ncpus = 2;
	assert_int_equal(setup_with(NULL), 0);
	ncpus = 1;
	struct svm_vcpu *ap = &v[1];
	uint32_t on = 0x1ff, icr;
	lapic_io(v[0].lapic, 0xf0, (uint8_t *)&on, 4, true);
	lapic_io(ap->lapic, 0xf0, (uint8_t *)&on, 4, true);
	uint32_t dest = 1u << 24;
	lapic_io(v[0].lapic, 0x310, (uint8_t *)&dest, 4, true);
	icr = (5u << 8) | (1u << 14); /* INIT, assert */
	lapic_io(v[0].lapic, 0x300, (uint8_t *)&icr, 4, true);
	assert_int_equal(ap->init_req, 1);
	icr = (6u << 8) | 0x08; /* SIPI: start at 0x8000 */
	lapic_io(v[0].lapic, 0x300, (uint8_t *)&icr, 4, true);
	assert_int_equal(ap->sipi_state, SIPI_GOT | 0x08 << 8);
	icr = 0x45; /* fixed, vector 0x45, to APIC ID 1 */
	lapic_io(v[0].lapic, 0x300, (uint8_t *)&icr, 4, true);
	struct vexit ex;
	const struct fake_exit e[] = { { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(1, e);
	assert_int_equal(svm_run(&sv, 1, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_rip[0], 0);
	assert_int_equal(*(uint16_t *)(ap->vmcb + VMCB_CS), 0x0800);
	assert_int_equal(vmcb_r64(ap->vmcb, VMCB_CS + 8), 0x8000);
	assert_int_equal(vmcb_r64(ap->vmcb, VMCB_CR0) & 1, 0); /* real mode */
	assert_int_equal(ap->sipi_state, SIPI_RUNNING);
	/* real mode has IF clear: the fixed IPI waits in the AP's LAPIC */
	assert_int_equal(lapic_pending(ap->lapic), 0x45);
	assert_int_equal(lapic_pending(v[0].lapic), -1); /* not the sender's */
	/* a second SIPI to a running AP is ignored */
	exits(1, e);
	ap->pend = PEND_NONE;
	ap->halted = false;
	icr = (6u << 8) | 0x09;
	lapic_io(v[0].lapic, 0x300, (uint8_t *)&icr, 4, true);
	vmcb_w64(ap->vmcb, VMCB_RIP, 0x1234);
	assert_int_equal(svm_run(&sv, 1, &ex), 0);
	assert_int_equal(entry_rip[0], 0x1234);
	assert_int_equal(ap->sipi_state, SIPI_RUNNING);
}

static void test_cpuid_table(void **state)
{
	(void)state;
	uint32_t r[4], h[4];
	svm_cpuid_answer(v, 0x40000000, 0, r);
	assert_int_equal(r[0], 0x40000010);
	assert_memory_equal(&r[1], "VigilMetal\0\0", 12);
	svm_cpuid_answer(v, 0x40000010, 0, r);
	assert_int_equal(r[0], 1000000); /* the (fake) TSC's kHz */
	svm_cpuid_answer(v, 1, 0, r);
	assert_true(r[2] & (1u << 31));  /* the hypervisor bit */
	assert_true(r[2] & (1u << 24));  /* TSC-deadline: the LAPIC model's */
	assert_false(r[2] & (1u << 21)); /* no x2APIC */
	assert_false(r[2] & (1u << 5));  /* no VMX */
	host_cpuid(0x80000000, 0, h);
	if (h[0] >= 0x80000001) {
		svm_cpuid_answer(v, 0x80000001, 0, r);
		assert_false(r[2] & (1u << 2)); /* no SVM for the guest */
	}
	svm_cpuid_answer(v, 0x8000000a, 0, r);
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	svm_cpuid_answer(v, 0x4fffffff, 0, r); /* outside the table: zeroes */
	assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

static void test_rep_outs(void **state)
{
	(void)state;
	struct vexit ex;
	memcpy(ram + 0x2000, "hello", 5);
	v->gpr[GPR_RSI] = 0x2000;
	v->gpr[GPR_RCX] = 5;
	/* rep outsb, 32-bit addresses, DS */
	const struct fake_exit e[] = {
		{ SVM_EXIT_IOIO, (0x80u << 16) | IOIO_STR | IOIO_REP | (1u << 4) | (1u << 8) | (3u << 10), 0x1002, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(2, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_int_equal(ex.count, 5);
	assert_memory_equal(ex.data, "hello", 5);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(v->gpr[GPR_RSI], 0x2005);
	assert_int_equal(v->gpr[GPR_RCX], 0);
	assert_int_equal(entry_rip[1], 0x1002);
	/* a source outside guest RAM: #GP, nothing handed to the core */
	v->gpr[GPR_RSI] = 0xfff00000;
	v->gpr[GPR_RCX] = 2;
	const struct fake_exit e2[] = {
		{ SVM_EXIT_IOIO, (0x80u << 16) | IOIO_STR | IOIO_REP | (1u << 4) | (1u << 8) | (3u << 10), 0x1002, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(2, e2);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_inj[1], EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | 13);
}

/* 32-bit paging: virtual 0x400000-0x403fff through one page table, the
 * pages user+writable, user read-only, supervisor-only and not present. */
static void paged_guest(unsigned cpl, bool wp)
{
	uint32_t *pd = (uint32_t *)(ram + 0x10000), *pt = (uint32_t *)(ram + 0x11000);
	memset(pd, 0, 8192);
	pd[1] = 0x11000 | 7;
	pt[0] = 0x20000 | 7;
	pt[1] = 0x21000 | 5;
	pt[2] = 0x22000 | 3;
	vmcb_w64(v->vmcb, VMCB_CR3, 0x10000);
	vmcb_w64(v->vmcb, VMCB_CR0, 0x80000011 | (wp ? 1u << 16 : 0));
	vmcb_w64(v->vmcb, VMCB_CR4, 0);
	*(uint8_t *)(v->vmcb + VMCB_CPL) = (uint8_t)cpl;
}

/* rep insb (IN) or rep outsb from/to [EDI]/[ESI], 32-bit addresses. */
static struct vexit rep_string(bool in, uint64_t addr, uint64_t n)
{
	struct vexit ex;
	v->gpr[in ? GPR_RDI : GPR_RSI] = addr;
	v->gpr[GPR_RCX] = n;
	const struct fake_exit e[] = {
		{ SVM_EXIT_IOIO, (0x80u << 16) | IOIO_STR | IOIO_REP | (in ? IOIO_IN : 0) | (1u << 4) | (1u << 8) | (3u << 10),
		  0x1002, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(2, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	return ex;
}

/* String I/O through guest pages raises what the CPU would: #PF with CR2
 * and the error code for a page not present, a supervisor page from CPL 3
 * or a read-only page written, never a write the page tables forbid; the
 * elements before a fault are done and the REP stops on it. */
static void test_string_io_paging(void **state)
{
	(void)state;
	const uint64_t pf = EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | 14;
	struct vexit ex;

	paged_guest(3, false);
	memset(ram + 0x21000, 0xaa, 16);
	ex = rep_string(true, 0x401000, 4); /* INS into the user read-only page */
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_inj[1], pf | (uint64_t)(PF_P | PF_W | PF_U) << 32);
	assert_int_equal(vmcb_r64(v->vmcb, VMCB_CR2), 0x401000);
	assert_int_equal(ram[0x21000], 0xaa); /* nothing written */
	assert_int_equal(v->gpr[GPR_RCX], 4);
	ex = rep_string(false, 0x402000, 1); /* OUTS from the supervisor page at CPL 3 */
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_inj[1], pf | (uint64_t)(PF_P | PF_U) << 32);
	ex = rep_string(false, 0x403000, 1); /* not present */
	assert_int_equal(entry_inj[1], pf | (uint64_t)PF_U << 32);
	assert_int_equal(vmcb_r64(v->vmcb, VMCB_CR2), 0x403000);

	/* CPL 0: the read-only page is writable without CR0.WP, not with it */
	paged_guest(0, false);
	ex = rep_string(true, 0x401ffe, 2);
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_int_equal(ex.count, 2);
	ex.data[0] = 1, ex.data[1] = 2;
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ram[0x21ffe], 1);
	assert_int_equal(ram[0x21fff], 2);
	paged_guest(0, true);
	ex = rep_string(true, 0x401000, 1);
	assert_int_equal(ex.reason, VEXIT_HLT);
	assert_int_equal(entry_inj[1], pf | (uint64_t)(PF_P | PF_W) << 32);

	/* OUTS running into the missing page: the 3 bytes before it go out,
	 * and the REP faults on the fourth at its next exit */
	memcpy(ram + 0x22ffd, "xyz", 3);
	ex = rep_string(false, 0x402ffd, 8);
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_int_equal(ex.count, 3);
	assert_memory_equal(ex.data, "xyz", 3);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(v->gpr[GPR_RSI], 0x403000);
	assert_int_equal(v->gpr[GPR_RCX], 5);
	assert_int_equal(entry_rip[1], entry_rip[0]); /* RIP stays on the REP */
	assert_int_equal(entry_inj[1], 0);
	ex = rep_string(false, 0x403000, 5); /* which exits again there */
	assert_int_equal(entry_inj[1], pf);
	assert_int_equal(v->stats[ST_INJECT_PF], 5);
	assert_int_equal(v->stats[ST_INJECT_GP], 0);
}

static void test_mmio(void **state)
{
	(void)state;
	struct vexit ex;
	vmcb_w64(v->vmcb, VMCB_RIP, 0x3000);
	ram[0x3000] = 0x8b; /* mov (%ebx),%eax */
	ram[0x3001] = 0x03;
	v->gpr[GPR_RAX] = ~0ull;
	const struct fake_exit e[] = {
		{ SVM_EXIT_NPF, 0x100000004ull, 0xd0000000, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(2, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_MMIO);
	assert_false(ex.write);
	assert_int_equal(ex.len, 4);
	assert_int_equal(ex.addr, 0xd0000000);
	uint32_t x = 0x12345678;
	memcpy(ex.data, &x, 4);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(v->gpr[GPR_RAX], 0x12345678); /* a 32-bit load clears 63:32 */
	assert_int_equal(entry_rip[1], 0x3002);
	/* an instruction outside the subset: an internal error, not a guess */
	vmcb_w64(v->vmcb, VMCB_RIP, 0x3000);
	ram[0x3000] = 0x01; /* add %eax,(%ebx) */
	const struct fake_exit e2[] = { { SVM_EXIT_NPF, 0x100000006ull, 0xd0000000, 0 } };
	exits(1, e2);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
}

static void test_msr(void **state)
{
	(void)state;
	struct vexit ex;
	/* rdmsr PAT (finished inside), wrmsr of an unknown MSR (#GP), then HLT */
	v->gpr[GPR_RCX] = 0x277;
	const struct fake_exit e[] = {
		{ SVM_EXIT_MSR, 0, 0, 0 },
		{ SVM_EXIT_MSR, 1, 0, 0 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(3, e);
	/* the scripted second exit reads RCX as the guest left it: set it on the way */
	assert_int_equal(svm_msr_emulate(&sv, v, 0x277, &(uint64_t){ 0 }, false), 0);
	uint64_t bad = 0x0707070707070702ull; /* type 2 is reserved */
	assert_int_equal(svm_msr_emulate(&sv, v, 0x277, &bad, true), -1);
	uint64_t efer = 0;
	assert_int_equal(svm_msr_emulate(&sv, v, MSR_EFER, &efer, false), 0);
	assert_int_equal(efer & EFER_SVME, 0); /* the guest never sees SVME */
	efer = 1ull << 20;
	assert_int_equal(svm_msr_emulate(&sv, v, MSR_EFER, &efer, true), -1);
	assert_int_equal(svm_msr_emulate(&sv, v, 0xc0010117, &efer, false), -1); /* the host's HSAVE */
	uint64_t before = v->stats[ST_MSR_UNKNOWN];
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_HLT);
	(void)before;
	/* exit 1 read PAT into EDX:EAX; exit 2 (RCX still 0x277, a write of
	 * EDX:EAX = that PAT back) succeeded: RIP went 2 and 2 */
	assert_int_equal(entry_rip[1], 0x1002);
	assert_int_equal(entry_rip[2], 0x1004);
	assert_int_equal(v->gpr[GPR_RAX], 0x00070406u);
	v->gpr[GPR_RCX] = 0x12345;
	const struct fake_exit e2[] = { { SVM_EXIT_MSR, 0, 0, 0 }, { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(2, e2);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[1], EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | 13);
	assert_int_equal(v->stats[ST_MSR_UNKNOWN], before + 1);
}

static void test_policy_msr(void **state)
{
	(void)state;
	struct policy_range rg = { 0x10, 0x10 };
	struct policy_rule rule = { .id = "no-tsc", .resource = POL_RES_MSR, .verdict = POLICY_DENY, .audit = true,
				    .access = POL_ACC_READ, .nranges = 1, .ranges = &rg };
	struct policy_spec spec = { .mode = POLICY_ENFORCE, .nrules = 1, .rules = &rule };
	teardown(NULL);
	assert_int_equal(setup_with(&spec), 0);
	assert_true(svm_msr_trapped(&sv, 0x10, false));
	assert_false(svm_msr_trapped(&sv, 0x10, true));
	struct vexit ex;
	v->gpr[GPR_RCX] = 0x10;
	const struct fake_exit e[] = { { SVM_EXIT_MSR, 0, 0, 0 }, { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(2, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_MSR);
	assert_int_equal(ex.addr, 0x10);
	assert_int_equal(exit_dispatch(&vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(*ex.fault, 1);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_rip[1], 0x1000); /* not stepped: the #GP is the guest's */
	assert_int_equal(entry_inj[1], EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | 13);
}

static void test_ends(void **state)
{
	(void)state;
	struct vexit ex;
	const struct fake_exit e[] = { { SVM_EXIT_SHUTDOWN, 0, 0, 0 } };
	exits(1, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_SHUTDOWN);
	assert_int_equal(svm_run(&sv, 0, &ex), -EIO); /* its state is void now */
	guest_state();
	const struct fake_exit e2[] = { { SVM_EXIT_INVALID, 0, 0, 0 } };
	exits(1, e2);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_FAIL_ENTRY);
	assert_int_equal(svm_run(&sv, 0, &ex), -EIO);
	guest_state();
	const struct fake_exit e2b[] = { { 0xffffffffull, 0, 0, 0 } }; /* QEMU's 32-bit -1 */
	exits(1, e2b);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_FAIL_ENTRY);
	assert_int_equal(svm_run(&sv, 0, &ex), -EIO);
	guest_state();
	/* VMMCALL: #UD, the guest goes on */
	const struct fake_exit e3[] = { { SVM_EXIT_VMMCALL, 0, 0, 0 }, { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(2, e3);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[1], EVT_VALID | EVT_TYPE_EXC | 6);
	/* an event cut short by an exit is delivered again; a software INTn
	 * is not (its instruction runs again) */
	const struct fake_exit e4[] = {
		{ SVM_EXIT_INTR, 0, 0, EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | (5ull << 32) | 14 },
		{ SVM_EXIT_INTR, 0, 0, EVT_VALID | (4ull << 8) | 0x80 },
		{ SVM_EXIT_HLT, 0, 0, 0 },
	};
	exits(3, e4);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[1], EVT_VALID | EVT_TYPE_EXC | EVT_ERR_VALID | (5ull << 32) | 14);
	assert_int_equal(entry_inj[2], 0);
	/* a kick: back to the core without entering */
	v->kick = 1;
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(ex.reason, VEXIT_INTR);
}

static void test_interrupts(void **state)
{
	(void)state;
	struct vexit ex;
	uint32_t on = 0x1ff;
	lapic_io(v->lapic, 0xf0, (uint8_t *)&on, 4, true);
	lapic_accept(v->lapic, 0x30, false);
	const struct fake_exit e[] = { { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(1, e);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[0], EVT_VALID | EVT_TYPE_INTR | 0x30);
	/* with IF clear: no injection, a window (V_IRQ + VINTR intercept) instead */
	vmcb_w64(v->vmcb, VMCB_EVENTINJ, 0);
	vmcb_w64(v->vmcb, VMCB_RFLAGS, 0x2);
	uint32_t eoi = 0;
	lapic_io(v->lapic, 0xb0, (uint8_t *)&eoi, 4, true); /* 0x30 done: 0x31's class may go */
	lapic_accept(v->lapic, 0x31, false);
	const struct fake_exit e2[] = { { SVM_EXIT_VINTR, 0, 0, 0 }, { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(2, e2);
	/* the window opens (the guest set IF) before the VINTR exit returns */
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[0], 0);
	assert_true(entry_ctl[0] & INT_CTL_V_IRQ);
	/* an MSI (virtio-pci's MSI-X) lands in the LAPIC; outside the window: dropped */
	guest_state();
	lapic_io(v->lapic, 0xb0, (uint8_t *)&eoi, 4, true);
	svm_msi(&sv, 0xfee00000, 0x4041);
	svm_msi(&sv, 0xfed00000, 0x0042);
	svm_msi(&sv, 0xfee00000, 0x0443); /* NMI delivery mode: not modelled */
	const struct fake_exit e4[] = { { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(1, e4);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[0], EVT_VALID | EVT_TYPE_INTR | 0x41);
	uint32_t irr2 = 0;
	lapic_io(v->lapic, 0x220, (uint8_t *)&irr2, 4, false); /* IRR bits 64-95 */
	assert_int_equal(irr2 & ((1u << 2) | (1u << 3)), 0);
	lapic_io(v->lapic, 0xb0, (uint8_t *)&eoi, 4, true);
	/* the PIT on IRQ 0 through the 8259 (LAPIC disabled: ExtINT passes) */
	guest_state();
	uint32_t off = 0xff;
	lapic_io(v->lapic, 0xf0, (uint8_t *)&off, 4, true);
	uint8_t b;
	static const uint8_t icw[] = { 0x11, 0x20, 0x04, 0x01 };
	for (int i = 0; i < 4; i++)
		i8259_master_io(sv.pic, i ? 1 : 0, (uint8_t *)&icw[i], 1, true);
	b = 0xfe;
	i8259_master_io(sv.pic, 1, &b, 1, true);
	b = 0x34;
	i8254_io(sv.pit, 3, &b, 1, true);
	b = 0x10;
	i8254_io(sv.pit, 0, &b, 1, true);
	b = 0;
	i8254_io(sv.pit, 0, &b, 1, true);
	fake_ns += 1000000; /* 1 ms: the 16-tick period has passed */
	const struct fake_exit e3[] = { { SVM_EXIT_HLT, 0, 0, 0 } };
	exits(1, e3);
	assert_int_equal(svm_run(&sv, 0, &ex), 0);
	assert_int_equal(entry_inj[0], EVT_VALID | EVT_TYPE_INTR | 0x20);
}

/* The LAPIC's IRR bit for `vector`: a request accepted and not yet taken. */
static bool irr_has(struct lapic *l, uint8_t vector)
{
	uint32_t w = 0;
	lapic_io(l, 0x200 + (vector / 32) * 0x10, (uint8_t *)&w, 4, false);
	return w & (1u << (vector % 32));
}

/* MSIs reach the vCPU their destination names: physical by APIC ID,
 * logical by LDR (Linux's flat mode names vCPU 1 as mask 0x02), lowest
 * priority to one of the set; a destination naming nobody is dropped. */
static void test_msi_destinations(void **state)
{
	(void)state;
	teardown(NULL);
	ncpus = 2;
	assert_int_equal(setup_with(NULL), 0);
	ncpus = 1;
	uint32_t on = 0x1ff, ldr0 = 1u << 24, ldr1 = 2u << 24;
	for (unsigned i = 0; i < 2; i++)
		lapic_io(v[i].lapic, 0xf0, (uint8_t *)&on, 4, true);
	lapic_io(v[0].lapic, 0xd0, (uint8_t *)&ldr0, 4, true);
	lapic_io(v[1].lapic, 0xd0, (uint8_t *)&ldr1, 4, true);
	svm_msi(&sv, 0xfee02004, 0x0051); /* logical, mask 0x02: vCPU 1 */
	assert_false(irr_has(v[0].lapic, 0x51));
	assert_true(irr_has(v[1].lapic, 0x51));
	svm_msi(&sv, 0xfee01000, 0x0052); /* physical, APIC ID 1 */
	assert_false(irr_has(v[0].lapic, 0x52));
	assert_true(irr_has(v[1].lapic, 0x52));
	svm_msi(&sv, 0xfee03004, 0x0153); /* logical 0x03, lowest priority: one of them */
	assert_int_equal(irr_has(v[0].lapic, 0x53) + irr_has(v[1].lapic, 0x53), 1);
	svm_msi(&sv, 0xfee03004, 0x0054); /* logical 0x03, fixed: both */
	assert_true(irr_has(v[0].lapic, 0x54) && irr_has(v[1].lapic, 0x54));
	svm_msi(&sv, 0xfee08004, 0x0055); /* logical 0x08: nobody */
	assert_false(irr_has(v[0].lapic, 0x55) || irr_has(v[1].lapic, 0x55));
}

int main(void)
{
	alarm(30); /* a wait that never ends is a failure, not a hung build */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_port_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpuid_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irqchip_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smp_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rep_outs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_string_io_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_msr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_destinations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
