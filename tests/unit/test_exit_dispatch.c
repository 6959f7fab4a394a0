/* Unit tests for the exit path (core/exit.c), the per-vCPU exit and access
 * counters (core/monitor.c), the policy (core/policy.c) and the VM's stop
 * state (core/vm.c): synthetic exits against fake devices. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exit.h"
#include "core/monitor.h"
#include "core/policy.h"
#include "core/vm.h"
#include "policy_spec_build.h"

#define COM1 0x3f8
#define MMIO_BASE 0xd0000000ULL
#define MMIO_LEN 0x1000

/* A device that records every access; reads return 0x40 + offset + i. */
struct call {
	uint64_t offset;
	uint32_t len;
	bool write;
	uint8_t data[8];
};

struct fake_dev {
	unsigned n;
	struct call calls[16];
};

static void fake_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fake_dev *d = dev;
	assert_true(len >= 1 && len <= 8);
	if (!is_write)
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(0x40 + offset + i);
	if (d->n < 16) {
		struct call *c = &d->calls[d->n];
		c->offset = offset;
		c->len = len;
		c->write = is_write;
		memcpy(c->data, data, len);
	}
	d->n++;
}

struct fixture {
	struct vm vm;
	struct fake_dev com, mmio;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || vm_init(&f->vm, 2) != 0)
		return -1;
	if (bus_add(&f->vm.pio, COM1, 8, "com1", fake_io, &f->com) != 0 ||
	    bus_add(&f->vm.mmio, MMIO_BASE, MMIO_LEN, "fakemmio", fake_io, &f->mmio) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vm_fini(&f->vm);
	free(f);
	return 0;
}

static struct vexit io(bool write, uint64_t port, uint32_t len, uint32_t count, uint8_t *data)
{
	return (struct vexit){ .reason = VEXIT_IO, .write = write, .addr = port, .len = len,
			       .count = count, .data = data };
}

static struct vexit mmio(bool write, uint64_t gpa, uint32_t len, uint8_t *data)
{
	return (struct vexit){ .reason = VEXIT_MMIO, .write = write, .addr = gpa, .len = len,
			       .count = 1, .data = data };
}

static void expect_counts(const struct vcpu_stats *s, enum policy_space sp, uint64_t addr, uint64_t count,
			  uint64_t denied)
{
	uint64_t c = 0xdead, d = 0xdead;
	assert_true(mon_lookup(s, sp, addr, &c, &d));
	assert_int_equal(c, count);
	assert_int_equal(d, denied);
}

static void expect_unseen(const struct vcpu_stats *s, enum policy_space sp, uint64_t addr)
{
	uint64_t c = 0xdead, d = 0xdead;
	assert_false(mon_lookup(s, sp, addr, &c, &d));
	assert_int_equal(c, 0xdead); /* untouched */
}

static void test_claimed_port_write(void **state)
{
	struct fixture *f = *state;
	uint8_t data[1] = { 0x83 };
	struct vexit ex = io(true, COM1 + 3, 1, 1, data);

	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 1);
	assert_int_equal(f->com.calls[0].offset, 3);
	assert_int_equal(f->com.calls[0].len, 1);
	assert_true(f->com.calls[0].write);
	assert_int_equal(f->com.calls[0].data[0], 0x83);
	assert_int_equal(f->mmio.n, 0);

	/* Counted for vCPU 1 only. */
	const struct vcpu_stats *s1 = &f->vm.stats[1], *s0 = &f->vm.stats[0];
	expect_counts(s1, POLICY_PIO, COM1 + 3, 1, 0);
	expect_unseen(s1, POLICY_PIO, COM1);
	expect_unseen(s1, POLICY_MMIO, COM1 + 3);
	expect_unseen(s0, POLICY_PIO, COM1 + 3);
	assert_int_equal(s1->reasons[VEXIT_IO], 1);
	assert_int_equal(s1->accesses, 1);
	assert_int_equal(s1->denied, 0);
	assert_int_equal(s0->reasons[VEXIT_IO], 0);
	assert_int_equal(s0->accesses, 0);
}

static void test_claimed_port_read(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4] = { 0, 0, 0, 0 };
	struct vexit ex = io(false, COM1 + 4, 4, 0, data); /* count 0 means 1 */

	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 1);
	assert_int_equal(f->com.calls[0].offset, 4);
	assert_int_equal(f->com.calls[0].len, 4);
	assert_false(f->com.calls[0].write);
	uint8_t want[4] = { 0x44, 0x45, 0x46, 0x47 };
	assert_memory_equal(data, want, 4);
	expect_counts(&f->vm.stats[0], POLICY_PIO, COM1 + 4, 1, 0);
}

static void test_unclaimed_read_all_ones(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lens[] = { 1, 2, 4, 8 };
	uint64_t n = 0;

	for (unsigned i = 0; i < 4; i++) {
		uint8_t data[16];
		memset(data, 0x11, sizeof(data));
		struct vexit ex = io(false, 0x80, lens[i], 1, data);
		assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
		for (uint32_t b = 0; b < lens[i]; b++)
			assert_int_equal(data[b], 0xff);
		assert_int_equal(data[lens[i]], 0x11); /* not a byte more */
		n++;
		expect_counts(&f->vm.stats[0], POLICY_PIO, 0x80, n, n);
	}
	/* A read straddling the end of COM1's range is unclaimed too. */
	uint8_t data[4] = { 0 };
	struct vexit ex = io(false, COM1 + 6, 4, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	static const uint8_t ones4[4] = { 0xff, 0xff, 0xff, 0xff };
	assert_memory_equal(data, ones4, 4);
	expect_counts(&f->vm.stats[0], POLICY_PIO, COM1 + 6, 1, 1);

	assert_int_equal(f->com.n, 0);
	assert_int_equal(f->vm.stats[0].accesses, 5);
	assert_int_equal(f->vm.stats[0].denied, 5);
	assert_int_equal(f->vm.stats[0].reasons[VEXIT_IO], 5);
}

static void test_unclaimed_write_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t data[2] = { 0x12, 0x34 };
	struct vexit ex = io(true, 0x3f0, 2, 1, data);

	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0);
	assert_int_equal(data[0], 0x12); /* a dropped write leaves the buffer alone */
	assert_int_equal(data[1], 0x34);
	expect_counts(&f->vm.stats[1], POLICY_PIO, 0x3f0, 1, 1);
	assert_int_equal(f->vm.stats[1].denied, 1);
	assert_int_equal(f->vm.stats[1].accesses, 1);
	assert_int_equal(f->vm.stats[0].denied, 0);
}

static void test_rep_io(void **state)
{
	struct fixture *f = *state;
	uint8_t out[3] = { 'a', 'b', 'c' };
	struct vexit ex = io(true, COM1, 1, 3, out);

	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(f->com.calls[i].offset, 0);
		assert_int_equal(f->com.calls[i].len, 1);
		assert_true(f->com.calls[i].write);
		assert_int_equal(f->com.calls[i].data[0], 'a' + i);
	}
	/* One exit; each element goes through the policy and is counted. */
	assert_int_equal(f->vm.stats[0].reasons[VEXIT_IO], 1);
	expect_counts(&f->vm.stats[0], POLICY_PIO, COM1, 3, 0);
	assert_int_equal(f->vm.stats[0].accesses, 3);

	/* REP INSW: consecutive elements of `data`. */
	uint8_t in[8];
	memset(in, 0, sizeof(in));
	ex = io(false, COM1 + 2, 2, 3, in);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 6);
	uint8_t want[8] = { 0x42, 0x43, 0x42, 0x43, 0x42, 0x43, 0, 0 };
	assert_memory_equal(in, want, 8);

	/* REP INSB from nowhere: every element all ones, nothing past them. */
	memset(in, 0, sizeof(in));
	ex = io(false, 0x1234, 2, 3, in);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0 };
	assert_memory_equal(in, ones, 8);
	expect_counts(&f->vm.stats[0], POLICY_PIO, 0x1234, 3, 3);
	assert_int_equal(f->vm.stats[0].accesses, 9);
	assert_int_equal(f->vm.stats[0].denied, 3);
}

static void test_mmio(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct vexit ex = mmio(true, MMIO_BASE + 0x10, 4, data);
	ex.count = 5; /* ignored for MMIO */

	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 1);
	assert_int_equal(f->com.n, 0);
	assert_int_equal(f->mmio.calls[0].offset, 0x10);
	assert_int_equal(f->mmio.calls[0].len, 4);
	assert_memory_equal(f->mmio.calls[0].data, data, 4);
	expect_counts(&f->vm.stats[1], POLICY_MMIO, MMIO_BASE + 0x10, 1, 0);
	expect_unseen(&f->vm.stats[1], POLICY_PIO, MMIO_BASE + 0x10);
	assert_int_equal(f->vm.stats[1].reasons[VEXIT_MMIO], 1);

	ex = mmio(false, MMIO_BASE + MMIO_LEN - 8, 8, data);
	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 2);
	assert_int_equal(f->mmio.calls[1].offset, MMIO_LEN - 8);
	assert_int_equal(data[0], (uint8_t)(0x40 + MMIO_LEN - 8));

	/* Straddling the end and just past it: denied, all ones. */
	memset(data, 0, sizeof(data));
	ex = mmio(false, MMIO_BASE + MMIO_LEN - 4, 8, data);
	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	uint8_t ones[8];
	memset(ones, 0xff, 8);
	assert_memory_equal(data, ones, 8);
	ex = mmio(true, MMIO_BASE + MMIO_LEN, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 2);
	assert_int_equal(f->vm.stats[1].denied, 2);
	assert_int_equal(f->vm.stats[1].accesses, 4);
	assert_int_equal(f->vm.stats[1].reasons[VEXIT_MMIO], 4);
}

/* KVM splits a guest MMIO access that crosses a page at the page's end: a
 * 4-byte store at offset 0xffd exits as 3 bytes then 1. Each odd piece
 * reaches the device byte by byte (the policy asked for each), a read
 * gets each byte, and the VM runs on. */
static void test_mmio_odd_pieces(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8 };

	struct vexit ex = mmio(true, MMIO_BASE + 0xffd, 3, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(f->mmio.calls[i].offset, 0xffd + i);
		assert_int_equal(f->mmio.calls[i].len, 1);
		assert_true(f->mmio.calls[i].write);
		assert_int_equal(f->mmio.calls[i].data[0], 0xa1 + i);
	}
	assert_int_equal(f->vm.stats[0].accesses, 3);

	memset(data, 0, sizeof(data));
	ex = mmio(false, MMIO_BASE + 0x20, 7, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 10);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(data[i], (uint8_t)(0x40 + 0x20 + i));
	assert_int_equal(data[7], 0);

	/* Past the device's end: its bytes from it, the rest all ones. */
	memset(data, 0, sizeof(data));
	ex = mmio(false, MMIO_BASE + MMIO_LEN - 2, 5, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 12);
	assert_int_equal(data[0], (uint8_t)(0x40 + MMIO_LEN - 2));
	assert_int_equal(data[2], 0xff);
	assert_int_equal(data[4], 0xff);
	assert_int_equal(f->vm.stats[0].denied, 3);
}

static void test_bad_access_crashes(void **state)
{
	struct fixture *f = *state;
	uint8_t data[16];
	static const uint32_t bad[] = { 0, 3, 5, 16, 0xffffffff };
	static const uint32_t bad_mmio[] = { 0, 9, 16, 0xffffffff };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(data, 0x11, sizeof(data));
		struct vexit ex = io(false, COM1, bad[i], 1, data);
		assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
		assert_int_equal(data[0], 0x11);
	}
	for (unsigned i = 0; i < sizeof(bad_mmio) / sizeof(bad_mmio[0]); i++) {
		memset(data, 0x11, sizeof(data));
		struct vexit ex = mmio(true, MMIO_BASE, bad_mmio[i], data);
		assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
		assert_int_equal(data[0], 0x11);
	}
	struct vexit ex = io(true, COM1, 1, 1, NULL);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
	assert_int_equal(f->com.n, 0);
	assert_int_equal(f->mmio.n, 0);
	/* The exits are counted; no access happened. */
	assert_int_equal(f->vm.stats[0].reasons[VEXIT_IO], 6);
	assert_int_equal(f->vm.stats[0].reasons[VEXIT_MMIO], 4);
	assert_int_equal(f->vm.stats[0].accesses, 0);
}

static void test_other_reasons(void **state)
{
	struct fixture *f = *state;
	struct vexit ex = { .reason = VEXIT_SHUTDOWN };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);

	ex = (struct vexit){ .reason = VEXIT_SYSTEM_EVENT, .event = VEXIT_EVENT_POWEROFF };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_POWEROFF);
	ex.event = VEXIT_EVENT_RESET;
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_RESET);
	ex.event = VEXIT_EVENT_CRASH;
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);

	ex = (struct vexit){ .reason = VEXIT_INTR };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	ex = (struct vexit){ .reason = VEXIT_HLT };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	ex = (struct vexit){ .reason = VEXIT_INTERNAL_ERROR, .hw_reason = 1 };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
	ex = (struct vexit){ .reason = VEXIT_FAIL_ENTRY, .hw_reason = 0x80000021 };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
	ex = (struct vexit){ .reason = VEXIT_UNKNOWN, .hw_reason = 99 };
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);
	ex = (struct vexit){ .reason = VEXIT__COUNT }; /* not a reason: counted as unknown */
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_CRASH);

	const struct vcpu_stats *s = &f->vm.stats[0];
	assert_int_equal(s->reasons[VEXIT_IO], 0);
	assert_int_equal(s->reasons[VEXIT_MMIO], 0);
	assert_int_equal(s->reasons[VEXIT_HLT], 1);
	assert_int_equal(s->reasons[VEXIT_SHUTDOWN], 1);
	assert_int_equal(s->reasons[VEXIT_SYSTEM_EVENT], 3);
	assert_int_equal(s->reasons[VEXIT_INTERNAL_ERROR], 1);
	assert_int_equal(s->reasons[VEXIT_FAIL_ENTRY], 1);
	assert_int_equal(s->reasons[VEXIT_INTR], 2);
	assert_int_equal(s->reasons[VEXIT_UNKNOWN], 2);
	assert_int_equal(s->accesses, 0);
	for (int r = 0; r < VEXIT__COUNT; r++)
		assert_int_equal(f->vm.stats[1].reasons[r], 0);
	/* exit_dispatch only reports; it never stops the VM itself. */
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_NONE);
}

static void test_policy_deny_ports(void **state)
{
	struct fixture *f = *state;
	struct policy_range ports = { COM1 + 2, COM1 + 3 };
	struct policy_rule rule = { .id = "no-com1-hi", .resource = POL_RES_PIO, .verdict = POLICY_DENY,
				    .audit = true, .nranges = 1, .ranges = &ports };
	struct policy_spec spec = { .mode = POLICY_ENFORCE, .nrules = 1, .rules = &rule };
	char err[128];
	struct policy *pol = policy_compile(&spec, err, sizeof(err));
	assert_non_null(pol);
	policy_free(policy_swap(&f->vm.policy, pol));

	uint8_t data[2] = { 0x55, 0x66 };
	struct vexit ex = io(true, COM1 + 2, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0); /* claimed, but denied */
	expect_counts(&f->vm.stats[0], POLICY_PIO, COM1 + 2, 1, 1);

	/* A read overlapping the denied range by one byte sees all ones. */
	ex = io(false, COM1 + 1, 2, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	ex = io(false, COM1 + 3, 2, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0);

	/* Just outside, on both sides: allowed. */
	ex = io(false, COM1, 2, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 1);
	assert_int_equal(data[0], 0x40);
	ex = io(true, COM1 + 4, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 2);
	assert_int_equal(f->vm.stats[0].denied, 3);
	assert_int_equal(f->vm.stats[0].accesses, 5);

	/* Port rules do not touch MMIO at the same numbers. */
	struct policy_decision d;
	policy_decide_access(pol, POLICY_MMIO, COM1 + 2, 1, false, true, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	assert_int_equal(d.rule, -1);
	policy_decide_access(pol, POLICY_PIO, COM1 + 2, 1, false, true, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_int_equal(d.rule, 0);
	assert_true(d.audit);
	policy_decide_access(pol, POLICY_PIO, COM1, 4, true, true, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	policy_decide_access(pol, POLICY_PIO, COM1, 2, true, true, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	/* Unclaimed is denied by default. */
	struct policy *empty = policy_default();
	policy_decide_access(empty, POLICY_PIO, 0x80, 1, false, false, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	policy_decide_access(empty, POLICY_MMIO, 0x80, 1, true, false, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	policy_free(empty);
}

/* A wide access over bytes of an earlier provide rule and of a later deny
 * rule is denied whole (each byte's rule is its first; the access takes
 * the strictest of them): OUTL at 0x3f8 would write the denied 0x3f9-0x3fb,
 * an 8-byte MMIO write at base+0xfc the denied base+0x100. Alone, the
 * provided bytes are still provided. */
static void test_policy_wide_access_over_a_deny(void **state)
{
	struct fixture *f = *state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "watch-com1-data", POL_RES_PIO, POLICY_PROVIDE);
	r->audit = true;
	sb_range(r, COM1, COM1);
	sb_range(sb_add(&s, "no-com1-ctl", POL_RES_PIO, POLICY_DENY), COM1 + 1, COM1 + 7);
	struct policy_rule *m = sb_add(&s, "watch-mmio-lo", POL_RES_MMIO, POLICY_PROVIDE);
	m->audit = true;
	sb_range(m, MMIO_BASE, MMIO_BASE + 0xff);
	sb_range(sb_add(&s, "no-mmio-hi", POL_RES_MMIO, POLICY_DENY), MMIO_BASE + 0x100, MMIO_BASE + 0xfff);
	char err[128];
	struct policy *pol = policy_compile(&s, err, sizeof(err));
	assert_non_null(pol);
	policy_free(policy_swap(&f->vm.policy, pol));

	uint8_t w[8] = { 0x41, 0x0f, 0xc7, 0x80 };
	struct vexit ex = io(true, COM1, 4, 1, w);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0);
	ex = io(true, COM1, 1, 1, w);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 1);
	ex = mmio(true, MMIO_BASE + 0xfc, 8, w);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 0);
	ex = mmio(true, MMIO_BASE + 0xf8, 8, w);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->mmio.n, 1);
	assert_int_equal(policy_rule_hits(pol, 1), 1);
	assert_int_equal(policy_rule_hits(pol, 3), 1);
	policy_spec_free(&s);
}

/* A doorbell KVM caught (no exit) is judged as the MMIO write it was: a
 * deny on its address refuses it, and the rule counts it. */
static void test_doorbell_judged(void **state)
{
	struct fixture *f = *state;
	assert_true(exit_judge_doorbell(&f->vm, MMIO_BASE + 0x10, 2));
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	sb_range(sb_add(&s, "no-kick", POL_RES_MMIO, POLICY_DENY), MMIO_BASE + 0x10, MMIO_BASE + 0x11);
	char err[128];
	struct policy *pol = policy_compile(&s, err, sizeof(err));
	assert_non_null(pol);
	policy_free(policy_swap(&f->vm.policy, pol));
	assert_false(exit_judge_doorbell(&f->vm, MMIO_BASE + 0x10, 2));
	assert_true(exit_judge_doorbell(&f->vm, MMIO_BASE + 0x14, 2));
	assert_int_equal(policy_rule_hits(pol, 0), 1);
	assert_int_equal(f->mmio.n, 0); /* judged only: the transport carries it out */
	policy_spec_free(&s);
}

/* Redirects: a read of 0x2f8-0x2ff returns a fixed value (writes dropped);
 * 0x2e8-0x2ef goes to the same offset at COM1; an access that starts below
 * the redirected range and only straddles into it reads as denied. */
static void test_policy_redirect(void **state)
{
	struct fixture *f = *state;
	struct policy_range fixed = { 0x2f8, 0x2ff }, moved = { 0x2e8, 0x2ef };
	struct policy_rule rules[2] = {
		{ .id = "com2-value", .resource = POL_RES_PIO, .verdict = POLICY_REDIRECT, .audit = true,
		  .nranges = 1, .ranges = &fixed, .has_value = true, .value = 0xa5 },
		{ .id = "com4-to-com1", .resource = POL_RES_PIO, .verdict = POLICY_REDIRECT, .audit = true,
		  .nranges = 1, .ranges = &moved, .has_to = true, .to = COM1 },
	};
	struct policy_spec spec = { .mode = POLICY_ENFORCE, .nrules = 2, .rules = rules };
	char err[160];
	struct policy *pol = policy_compile(&spec, err, sizeof(err));
	assert_non_null(pol);
	policy_free(policy_swap(&f->vm.policy, pol));

	uint8_t data[2] = { 0, 0 };
	struct vexit ex = io(false, 0x2fa, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(data[0], 0xa5);
	ex = io(true, 0x2fa, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 0); /* dropped, nobody saw it */

	ex = io(false, 0x2eb, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 1);
	assert_int_equal(f->com.calls[0].offset, 3);
	assert_int_equal(data[0], 0x43);
	ex = io(true, 0x2e9, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 2);
	assert_true(f->com.calls[1].write);
	assert_int_equal(f->com.calls[1].offset, 1);

	/* 0x2e7-0x2e8: starts below the range; no offset to keep. */
	ex = io(false, 0x2e7, 2, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->com.n, 2);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(policy_rule_hits(pol, 0), 2);
	assert_int_equal(policy_rule_hits(pol, 1), 3);
}

static void test_monitor_overflow(void **state)
{
	struct fixture *f = *state;
	const unsigned n = MON_SLOTS + 300;
	uint8_t data[4];

	for (int round = 0; round < 2; round++)
		for (unsigned i = 0; i < n; i++) {
			struct vexit ex = mmio(false, 0xe0000000ULL + (uint64_t)i * 0x1000, 4, data);
			assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
		}
	const struct vcpu_stats *s = &f->vm.stats[1];
	assert_int_equal(s->accesses, 2 * n);
	assert_int_equal(s->denied, 2 * n);
	assert_true(s->untracked >= 2 * (n - MON_SLOTS));
	uint64_t tracked = 0, slots = 0;
	for (unsigned i = 0; i < MON_SLOTS; i++)
		if (s->slots[i].key) {
			slots++;
			tracked += s->slots[i].count;
			assert_int_equal(s->slots[i].count, 2); /* each seen twice */
			assert_int_equal(s->slots[i].denied, 2);
		}
	assert_true(slots <= MON_SLOTS);
	assert_int_equal(tracked + s->untracked, 2 * n);

	/* The report says how much it could not attribute. */
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_non_null(out);
	mon_report(out, f->vm.stats, f->vm.ncpus, vm_device_name, &f->vm);
	fclose(out);
	char want[96];
	snprintf(want, sizeof(want), "vcpu1 denied: %u of %u accesses (%llu to addresses not tracked)",
		 2 * n, 2 * n, (unsigned long long)s->untracked);
	assert_non_null(strstr(buf, want));
	free(buf);
}

static void test_mon_report(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4] = { 0 };
	struct vexit ex = io(true, COM1, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	ex = mmio(false, MMIO_BASE + 0x10, 4, data);
	assert_int_equal(exit_dispatch(&f->vm, 0, &ex), VM_STOP_NONE);
	ex = io(false, 0x80, 1, 1, data);
	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);
	ex = (struct vexit){ .reason = VEXIT_HLT };
	assert_int_equal(exit_dispatch(&f->vm, 1, &ex), VM_STOP_NONE);

	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_non_null(out);
	mon_report(out, f->vm.stats, f->vm.ncpus, vm_device_name, &f->vm);
	fclose(out);

	static const char *const want[] = {
		"--- vigil stats: 2 vCPUs ---\n",
		"vcpu0 exits: 3 io=2 mmio=1\n",
		"vcpu0 port 0x3f8 com1: 2\n",
		"vcpu0 mmio 0xd0000010 fakemmio: 1\n",
		"vcpu0 denied: 0 of 3 accesses\n",
		"vcpu1 exits: 2 io=1 hlt=1\n",
		"vcpu1 port 0x80 (unclaimed): 1 denied=1\n",
		"vcpu1 denied: 1 of 1 accesses\n",
		"total exits: 5\n",
		"total denied: 1\n",
	};
	const char *at = buf;
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *p = strstr(at, want[i]);
		if (!p)
			fail_msg("missing (in order) \"%s\" in report:\n%s", want[i], buf);
		at = p + strlen(want[i]);
	}
	assert_null(strstr(buf, "vcpu1 port 0x3f8"));
	assert_null(strstr(buf, "not tracked"));
	free(buf);

	/* Without a namer, every address reads as unclaimed. */
	buf = NULL;
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	mon_report(out, f->vm.stats, 1, NULL, NULL);
	fclose(out);
	assert_non_null(strstr(buf, "--- vigil stats: 1 vCPU ---\n"));
	assert_non_null(strstr(buf, "vcpu0 port 0x3f8 (unclaimed): 2\n"));
	assert_null(strstr(buf, "vcpu1"));
	assert_non_null(strstr(buf, "total exits: 3\n"));
	free(buf);
}

/* --- vm --- */

struct kicks {
	unsigned n;
};

static void count_kick(void *hv, unsigned cpu)
{
	(void)cpu;
	((struct kicks *)hv)->n++;
}

static int never_run(void *hv, unsigned cpu, struct vexit *ex)
{
	(void)hv, (void)cpu, (void)ex;
	return -1;
}

static void test_vm_request_stop_first_wins(void **state)
{
	struct fixture *f = *state;
	struct kicks k = { 0 };
	struct hv_ops hv = { .kick = count_kick, .run = never_run, .hv = &k };
	assert_int_equal(vcpus_init(&f->vm, &hv), 0);

	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_NONE);
	vm_request_stop(&f->vm, VM_STOP_RESET);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_RESET);
	vm_request_stop(&f->vm, VM_STOP_POWEROFF);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_RESET);
	struct vmctl c = vm_ctl(&f->vm);
	vmctl_stop(&c, VM_STOP_PANIC);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_RESET);
	assert_int_equal(k.n, 3 * f->vm.ncpus); /* every request kicks every vCPU */

	/* A fresh VM through the device handle; no kick hook set. */
	struct vm vm2;
	assert_int_equal(vm_init(&vm2, 1), 0);
	c = vm_ctl(&vm2);
	vmctl_stop(&c, VM_STOP_POWEROFF); /* 0: must not read as "not stopped" */
	assert_int_equal(vm_stop_reason(&vm2), VM_STOP_POWEROFF);
	vmctl_stop(&c, VM_STOP_CRASH);
	assert_int_equal(vm_stop_reason(&vm2), VM_STOP_POWEROFF);
	vm_fini(&vm2);
	assert_null(vm2.stats);

	struct vmctl none = { 0 };
	vmctl_stop(&none, VM_STOP_CRASH); /* no hook: nothing happens */
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(vm_device_name(&f->vm, POLICY_PIO, COM1 + 7), "com1");
	assert_null(vm_device_name(&f->vm, POLICY_PIO, COM1 + 8));
	assert_null(vm_device_name(&f->vm, POLICY_MMIO, COM1));
	assert_string_equal(vm_device_name(&f->vm, POLICY_MMIO, MMIO_BASE), "fakemmio");

	assert_string_equal(vexit_reason_name(VEXIT_IO), "io");
	assert_string_equal(vexit_reason_name(VEXIT_SYSTEM_EVENT), "system_event");
	assert_string_equal(vexit_reason_name(VEXIT__COUNT), "unknown");
	for (int r = 0; r < VEXIT__COUNT; r++)
		assert_non_null(vexit_reason_name(r));
	assert_string_equal(vm_stop_name(VM_STOP_POWEROFF), "guest powered off");
	assert_string_equal(vm_stop_name(VM_STOP_NONE), "not stopped");
	assert_int_equal(VM_STOP_POWEROFF, 0);
	assert_int_equal(VM_STOP_CRASH, 3);
}

/* Two vCPU threads dispatching at once: each only writes its own stats. */
struct worker {
	struct vm *vm;
	unsigned cpu;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint8_t data[1] = { 0 };
	for (unsigned i = 0; i < 20000; i++) {
		struct vexit ex = io(false, 0x100 + (i & 7) + w->cpu * 8, 1, 1, data);
		exit_dispatch(w->vm, w->cpu, &ex);
	}
	return NULL;
}

static void test_concurrent_vcpus(void **state)
{
	struct fixture *f = *state;
	pthread_t t[2];
	struct worker w[2] = { { &f->vm, 0 }, { &f->vm, 1 } };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (unsigned c = 0; c < 2; c++) {
		assert_int_equal(f->vm.stats[c].reasons[VEXIT_IO], 20000);
		assert_int_equal(f->vm.stats[c].accesses, 20000);
		assert_int_equal(f->vm.stats[c].denied, 20000);
		for (unsigned p = 0; p < 8; p++)
			expect_counts(&f->vm.stats[c], POLICY_PIO, 0x100 + p + c * 8, 2500, 2500);
		expect_unseen(&f->vm.stats[c], POLICY_PIO, 0x100 + (1 - c) * 8);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_claimed_port_write),
		T(test_claimed_port_read),
		T(test_unclaimed_read_all_ones),
		T(test_unclaimed_write_dropped),
		T(test_rep_io),
		T(test_mmio),
		T(test_mmio_odd_pieces),
		T(test_bad_access_crashes),
		T(test_other_reasons),
		T(test_policy_deny_ports),
		T(test_policy_redirect),
		T(test_policy_wide_access_over_a_deny),
		T(test_doorbell_judged),
		T(test_monitor_overflow),
		T(test_mon_report),
		T(test_vm_request_stop_first_wins),
		T(test_names),
		T(test_concurrent_vcpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
