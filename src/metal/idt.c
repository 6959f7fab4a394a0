/* idt — the host's interrupt descriptor table, so that a bug in
 * vigil-metal (a page fault, a #GP on a bad MSR, a divide by zero) is one
 * line, "vigil-metal: host fault #14 (page fault) at RIP ...", and a
 * poweroff, never a silent triple fault. Vectors 32-255 go to a handler
 * set with metal_idt_set (the SVM backend's host timer, say), else they are
 * counted, acknowledged at the local APIC and otherwise ignored. */
#include <stdint.h>

#include "metal/metal.h"

/* What idt_stubs.S pushed, lowest address first, then the CPU's frame. */
struct idt_frame {
	uint64_t rbp, rbx, r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

extern char metal_idt_stubs[];
void metal_idt_dispatch(struct idt_frame *f);

static struct idt_gate idt[256] __attribute__((aligned(16)));
static void (*handlers[256])(uint8_t vector);
static uint64_t unexpected[256];

static const char *const names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range", "invalid opcode",
	"device not available", "double fault", "coprocessor segment overrun", "invalid TSS",
	"segment not present", "stack fault", "general protection", "page fault", "reserved",
	"x87 floating point", "alignment check", "machine check", "SIMD floating point",
	"virtualization", "control protection", "reserved", "reserved", "reserved", "reserved",
	"reserved", "reserved", "hypervisor injection", "VMM communication", "security", "reserved",
};

static void lapic_eoi(void)
{
	*(volatile uint32_t *)(uintptr_t)0xfee000b0u = 0;
}

void metal_idt_dispatch(struct idt_frame *f)
{
	uint8_t v = (uint8_t)f->vector;
	if (v >= 32) {
		if (handlers[v]) {
			handlers[v](v);
			return;
		}
		if (!unexpected[v]++)
			metal_log("unexpected host interrupt, vector %u (ignored from now on)", v);
		if (v != 0x27 && v != 0x2f) /* the PIC's spurious IRQs are not in service */
			lapic_eoi();
		return;
	}
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	metal_log("host fault #%u (%s) at RIP %#llx, error %#llx, CR2 %#llx, RSP %#llx", v, names[v],
		  (unsigned long long)f->rip, (unsigned long long)f->error, (unsigned long long)cr2,
		  (unsigned long long)f->rsp);
	metal_log("  rax %#llx rbx %#llx rcx %#llx rdx %#llx rsi %#llx rdi %#llx rbp %#llx",
		  (unsigned long long)f->rax, (unsigned long long)f->rbx, (unsigned long long)f->rcx,
		  (unsigned long long)f->rdx, (unsigned long long)f->rsi, (unsigned long long)f->rdi,
		  (unsigned long long)f->rbp);
	metal_crash("host fault");
}

void metal_idt_set(uint8_t vector, void (*fn)(uint8_t vector))
{
	handlers[vector] = fn;
}

/* The legacy PICs: their IRQs moved off the exception vectors (a BIOS
 * leaves the master at 0x08, where IRQ 0 would look like a double fault)
 * to 0x20-0x2f, and all masked: vigil-metal polls its devices. */
static void pic_quiet(void)
{
	static const uint8_t init[2][4] = { { 0x11, 0x20, 0x04, 0x01 }, { 0x11, 0x28, 0x02, 0x01 } };
	for (int i = 0; i < 4; i++) {
		metal_outb(0x20 + (i ? 1 : 0), init[0][i]);
		metal_outb(0xa0 + (i ? 1 : 0), init[1][i]);
	}
	metal_outb(0x21, 0xff);
	metal_outb(0xa1, 0xff);
}

void metal_idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void metal_idt_init(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uintptr_t)metal_idt_stubs + 16 * v;
		idt[v] = (struct idt_gate){ .off_lo = (uint16_t)a, .sel = cs, .type = 0x8e, /* present, interrupt gate */
					    .off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32) };
	}
	metal_idt_load();
	pic_quiet();
}
