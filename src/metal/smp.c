/* smp — the host's CPUs: the boot CPU's thread-local block, and starting
 * the application processors (INIT, then SIPI twice, the Intel/AMD
 * multiprocessor start-up sequence) that the ACPI MADT lists as enabled,
 * one at a time through the trampoline (smp_tramp.S) copied to 0x8000.
 * Each AP gets its own stack and TLS, the host IDT, and runs the entry it
 * was given. The SVM side of SMP (a vCPU loop per AP, guest INIT/SIPI)
 * builds on this; today only --selftest smp uses it. */
#include <stdint.h>
#include <string.h>

#include "metal/metal.h"

#define SMP_TRAMP 0x8000u
#define SMP_MAX_CPUS 64
#define AP_STACK (64u << 10)
#define LAPIC 0xfee00000u

extern char smp_tramp_start[], smp_tramp_end[], smp_tramp_cr3[], smp_tramp_stack[], smp_tramp_cpu[];
extern uintptr_t __stack_chk_guard;
extern char __tdata_start[], __tdata_end[], __tls_start[], __tls_end[], __tls_align[];
void metal_ap_main(unsigned cpu);

static volatile unsigned online = 1;
static uint32_t apic_ids[SMP_MAX_CPUS];
static void (*ap_entry)(unsigned cpu);
static void *ap_tls;
static volatile unsigned ap_alive;
static uint8_t boot_tls[METAL_TLS_AREA] __attribute__((aligned(4096)));

unsigned metal_cpus_online(void)
{
	return __atomic_load_n(&online, __ATOMIC_ACQUIRE);
}

static volatile uint32_t *lapic(uint32_t off)
{
	return (volatile uint32_t *)(uintptr_t)(LAPIC + off);
}

static uint32_t lapic_id(void)
{
	return *lapic(0x20) >> 24;
}

unsigned metal_cpu_index(void)
{
	unsigned n = metal_cpus_online();
	if (n == 1)
		return 0;
	uint32_t id = lapic_id();
	for (unsigned i = 0; i < n; i++)
		if (apic_ids[i] == id)
			return i;
	return 0;
}

void metal_tls_setup(void *area)
{
	uint8_t *a = area ? area : boot_tls;
	uintptr_t align = (uintptr_t)__tls_align ? (uintptr_t)__tls_align : 1;
	uintptr_t memsz = (uintptr_t)__tls_end - (uintptr_t)__tls_start;
	uintptr_t tp_off = (memsz + align - 1) & ~(align - 1);
	if (align > 4096 || tp_off + 64 > METAL_TLS_AREA) {
		metal_log("the image's thread-local data (%lu bytes, aligned %lu) does not fit its block",
			  (unsigned long)memsz, (unsigned long)align);
		metal_crash("no TLS");
	}
	memset(a, 0, METAL_TLS_AREA);
	memcpy(a, __tdata_start, (size_t)(__tdata_end - __tdata_start));
	/* FS points at the TCB: its own address first (the x86-64 ABI), the
	 * stack canary at 0x28 (what glibc-built code such as libjansson.a
	 * reads); the TLS lies just below, as local-exec offsets expect. */
	uint64_t *tcb = (uint64_t *)(a + tp_off);
	tcb[0] = (uintptr_t)tcb;
	tcb[5] = __stack_chk_guard;
	uint64_t v = (uintptr_t)tcb;
	__asm__ volatile("wrmsr" : : "c"(0xc0000100u), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void metal_ap_main(unsigned cpu)
{
	metal_idt_load();
	metal_tls_setup(ap_tls);
	__atomic_store_n(&ap_alive, cpu, __ATOMIC_RELEASE);
	/* Counted online before it runs anything that may take a lock. */
	while (metal_cpus_online() <= cpu)
		__asm__ volatile("pause");
	ap_entry(cpu);
	metal_halt();
}

static void wait_us(uint64_t us)
{
	uint64_t t0 = metal_rdtsc(), span = metal_tsc_hz() / 1000000u * us;
	while (metal_rdtsc() - t0 < span)
		__asm__ volatile("pause");
}

static void send_ipi(uint32_t apic, uint32_t cmd)
{
	*lapic(0x310) = apic << 24;
	*lapic(0x300) = cmd;
	for (unsigned i = 0; i < 100000 && (*lapic(0x300) & (1u << 12)); i++) /* delivery pending */
		__asm__ volatile("pause");
}

static int start_one(uint32_t apic, unsigned cpu)
{
	uint8_t *stack = metal_alloc_pages(AP_STACK, 4096);
	ap_tls = metal_alloc_pages(METAL_TLS_AREA, 4096);
	if (!stack || !ap_tls)
		return -1;
	uintptr_t base = SMP_TRAMP;
	__asm__("" : "+r"(base)); /* a low address, not a null pointer */
	uint8_t *t = (uint8_t *)base;
	memcpy(t, smp_tramp_start, (size_t)(smp_tramp_end - smp_tramp_start));
	uint64_t cr3, top = (uintptr_t)stack + AP_STACK;
	uint32_t c = cpu;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	memcpy(t + (smp_tramp_cr3 - smp_tramp_start), &cr3, 8);
	memcpy(t + (smp_tramp_stack - smp_tramp_start), &top, 8);
	memcpy(t + (smp_tramp_cpu - smp_tramp_start), &c, 4);
	__atomic_store_n(&ap_alive, 0, __ATOMIC_RELEASE);
	send_ipi(apic, 0x4500); /* INIT */
	wait_us(10000);
	for (int i = 0; i < 2 && !__atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE); i++) {
		send_ipi(apic, 0x4600 | (SMP_TRAMP >> 12)); /* STARTUP */
		wait_us(200);
	}
	for (unsigned ms = 0; ms < 500 && __atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE) != cpu; ms++)
		wait_us(1000);
	return __atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE) == cpu ? 0 : -1;
}

unsigned metal_smp_start(unsigned want, void (*entry)(unsigned cpu))
{
	const uint8_t *madt = metal_acpi_table("APIC");
	if (!madt || metal_cpus_online() > 1 || !metal_tsc_hz())
		return metal_cpus_online();
	uint32_t len;
	memcpy(&len, madt + 4, 4);
	ap_entry = entry;
	apic_ids[0] = lapic_id();
	*lapic(0xf0) |= 0x100; /* software-enabled, to send IPIs */
	for (uint32_t off = 44; off + 2 <= len && metal_cpus_online() < want && metal_cpus_online() < SMP_MAX_CPUS;) {
		uint8_t type = madt[off], elen = madt[off + 1];
		if (elen < 2 || off + elen > len)
			break;
		if (type == 0 && elen >= 8) {
			uint32_t flags;
			memcpy(&flags, madt + off + 4, 4);
			uint8_t id = madt[off + 3];
			unsigned cpu = metal_cpus_online();
			if ((flags & 1) && id != apic_ids[0]) {
				if (start_one(id, cpu) == 0) {
					apic_ids[cpu] = id;
					__atomic_store_n(&online, cpu + 1, __ATOMIC_RELEASE);
				} else
					metal_log("CPU with APIC id %u did not start", id);
			}
		}
		off += elen;
	}
	return metal_cpus_online();
}
