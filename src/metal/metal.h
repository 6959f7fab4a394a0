/* metal — what the bare-metal platform (vigil-metal, a Type I build booted
 * by multiboot) offers the rest of the image: its console, its memory, the
 * machine's clock and its power. It plays the part Linux plays for the
 * hosted build; the SVM backend (src/svm) and the metal main build on it.
 * Single address space, mapped 1:1 (virtual == physical). */
#ifndef VIGIL_METAL_METAL_H
#define VIGIL_METAL_METAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

/* The machine's COM1, polled: vigil-metal's own lines and the guest's COM1. */
void metal_serial_init(void);
void metal_serial_putc(char c);
void metal_serial_write(const char *s, size_t n);
/* A byte typed on COM1, or -1 when none is waiting. */
int metal_serial_getc(void);
/* Whether the last byte written was a newline (or nothing was written):
 * metal_log starts its line on a fresh one after the guest's output. */
bool metal_serial_at_line_start(void);

/* One line "vigil-metal: ...\n" (the prefix is added). */
void metal_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void metal_vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Physically contiguous, zeroed memory from the machine's free RAM (the
 * multiboot map less the image and its modules), `align` a power of two.
 * NULL when none is left. Never freed: guest RAM, VMCBs, tables. */
void *metal_alloc_pages(size_t bytes, size_t align);
/* What metal_alloc_pages could still give, in bytes. */
uint64_t metal_free_bytes(void);

/* The TSC's rate (Hz), measured at start against the PIT; and time since boot. */
void metal_clock_init(void);
uint64_t metal_tsc_hz(void);
uint64_t metal_now_ns(void);
/* Seconds since 1970-01-01 UTC: the machine's CMOS clock read at start,
 * advanced by the TSC. */
int64_t metal_wall_s(void);
/* The two as the core's clock (core/clock.h): what the board, the devices'
 * deadlines and the trace run on. */
struct vclock metal_vclock(void);

/* The platform's poll loop (exec_poll.c): deferred device work, timers,
 * doorbells and COM1 input. metal's main runs it before every guest entry;
 * a backend waiting for the guest (HLT with nothing pending) calls it while
 * it waits. Never from an interrupt handler. */
void metal_poll(void);

/* Powers the machine off through ACPI (the FADT's PM1 control block and
 * the DSDT's \_S5), so QEMU exits; halts forever if that fails. `code` is
 * vigil run's exit code for what ended the guest, logged first. */
__attribute__((noreturn)) void metal_poweroff(int code);
__attribute__((noreturn)) void metal_halt(void);
/* vigil-metal's own code gave up (abort, a failed assertion, a host
 * fault, a deadlock on the only CPU): a line "vigil-metal: fatal: why",
 * then poweroff with METAL_EXIT_FATAL. */
#define METAL_EXIT_FATAL 3
__attribute__((noreturn)) void metal_crash(const char *why);

/* Host CPUs running vigil-metal code (1 until application processors are
 * started): the lock shim spins only when another CPU could let go. */
unsigned metal_cpus_online(void);

/* This CPU's thread-local block and TCB (src/metal/smp.c): `area` NULL for
 * the boot CPU's static one, else METAL_TLS_AREA bytes, 4 KiB-aligned. */
#define METAL_TLS_AREA 16384
void metal_tls_setup(void *area);

/* Starts the machine's application processors (the ACPI MADT's enabled
 * local APICs) with INIT/SIPI, up to `want` CPUs in all; each runs
 * `entry(cpu)` (cpu 1, 2, ...) on its own stack with the host IDT and its
 * own TLS, and must not return. The number of CPUs online after, the
 * boot CPU included. (For SMP: one vCPU loop per host CPU.) */
unsigned metal_smp_start(unsigned want, void (*entry)(unsigned cpu));
/* The calling CPU's index (0: the boot CPU). */
unsigned metal_cpu_index(void);

/* An ACPI table of the machine's firmware by signature, or NULL. */
const void *metal_acpi_table(const char *sig);

/* A periodic host tick (the local APIC timer, src/metal/timer.c) of `hz`
 * that calls `tick` from its interrupt handler (so: only sets flags, e.g.
 * kicks a vCPU). It fires while host IF=1, i.e. while a guest runs. -1
 * when the machine's local APIC is unusable (then there is no tick). */
int metal_timer_start(unsigned hz, void (*tick)(void));
uint64_t metal_timer_ticks(void);

/* The host IDT (src/metal/idt.c): every exception prints a line and
 * powers off; vectors 32-255 count and EOI unless a handler is set.
 * `fn` runs with interrupts off on the interrupted stack. */
void metal_idt_init(void);
/* Loads the same IDT on an application processor. */
void metal_idt_load(void);
void metal_idt_set(uint8_t vector, void (*fn)(uint8_t vector));

/* Port I/O on the host machine. */
static inline void metal_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void metal_outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t metal_inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t metal_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

#endif
