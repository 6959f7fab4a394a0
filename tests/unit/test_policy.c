/* The compiled policy engine: what a decision is (first match in rule
 * order, the built-in defaults, permissive mode, audit, hit counts), for
 * every resource; what policy_compile refuses and the line it says; that
 * 10,000 rules compile and decide and 100,000 are refused at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "policy_spec_build.h"

static struct policy *compile_ok(const struct policy_spec *s)
{
	char err[256] = "";
	struct policy *p = policy_compile(s, err, sizeof(err));
	if (!p)
		fail_msg("compile: %s", err);
	return p;
}

static void expect_refused(struct policy_spec *s, const char *want)
{
	char err[256] = "";
	struct policy *p = policy_compile(s, err, sizeof(err));
	if (p) {
		policy_free(p);
		fail_msg("compiled, wanted \"%s\"", want);
	}
	if (strcmp(err, want) != 0)
		fail_msg("err \"%s\", wanted \"%s\"", err, want);
	policy_spec_free(s);
}

static void test_first_match_and_straddle(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "hi-provide", POL_RES_PIO, POLICY_PROVIDE);
	sb_range(r, 0x3f9, 0x3f9);
	r = sb_add(&s, "com1-deny", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x3f8, 0x3ff);
	r = sb_add(&s, "next-redirect", POL_RES_PIO, POLICY_REDIRECT);
	sb_range(r, 0x400, 0x401);
	r->has_value = true;
	r->value = 7;
	struct policy *p = compile_ok(&s);
	struct policy_decision d;

	policy_decide_access(p, POLICY_PIO, 0x3f9, 1, false, true, &d);
	assert_int_equal(d.rule, 0); /* the first rule wins where both match */
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	assert_false(d.audit);
	assert_ptr_equal(d.r, &policy_spec_of(p)->rules[0]);
	policy_decide_access(p, POLICY_PIO, 0x3f8, 1, true, true, &d);
	assert_int_equal(d.rule, 1);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_true(d.audit);
	assert_true(d.enforced);
	/* Straddling: each byte's own rule counts (0x3f8's is the deny,
	 * 0x3f9's the provide), and a deny among them decides. */
	policy_decide_access(p, POLICY_PIO, 0x3f8, 2, false, true, &d);
	assert_int_equal(d.rule, 1);
	policy_decide_access(p, POLICY_PIO, 0x3f9, 1, false, true, &d);
	assert_int_equal(d.rule, 0);
	policy_decide_access(p, POLICY_PIO, 0x3fe, 4, false, true, &d);
	assert_int_equal(d.rule, 1);
	policy_decide_access(p, POLICY_PIO, 0x3ff, 2, false, true, &d);
	assert_int_equal(d.rule, 1);
	policy_decide_access(p, POLICY_PIO, 0x3f6, 2, false, true, &d);
	assert_int_equal(d.rule, -1); /* just below */
	policy_decide_access(p, POLICY_PIO, 0x401, 1, false, true, &d);
	assert_int_equal(d.rule, 2);
	assert_int_equal(d.verdict, POLICY_REDIRECT);
	assert_int_equal(d.r->value, 7);
	/* Port rules do not govern MMIO or MSRs at the same numbers. */
	policy_decide_access(p, POLICY_MMIO, 0x3f8, 1, false, true, &d);
	assert_int_equal(d.rule, -1);
	policy_decide_msr(p, 0x3f8, false, &d);
	assert_int_equal(d.rule, -1);

	assert_int_equal(policy_rule_hits(p, 0), 2);
	assert_int_equal(policy_rule_hits(p, 1), 4);
	assert_int_equal(policy_rule_hits(p, 2), 1);
	assert_int_equal(policy_rule_hits(p, 99), 0);
	policy_free(p);
	policy_spec_free(&s);
}

/* A wide access or a long disk request over an earlier provide's units and
 * a later deny's is denied (the provide must not carry the deny's units),
 * and one over a provide's and a redirect's is redirected; within the
 * provide's units alone it is provided. Ports (the 64K table), MMIO (the
 * range tables) and disk sectors alike. */
static void test_strictest_byte_rule_decides(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "watch", POL_RES_PIO, POLICY_PROVIDE);
	r->audit = true;
	sb_range(r, 0x3f8, 0x3f8);
	sb_range(sb_add(&s, "no-ctl", POL_RES_PIO, POLICY_DENY), 0x3f9, 0x3ff);
	r = sb_add(&s, "mmio-watch", POL_RES_MMIO, POLICY_PROVIDE);
	r->audit = true;
	sb_range(r, 0xd0000000, 0xd00000ff);
	r = sb_add(&s, "mmio-fixed", POL_RES_MMIO, POLICY_REDIRECT);
	sb_range(r, 0xd0000100, 0xd00001ff);
	r->has_value = true;
	sb_range(sb_add(&s, "mmio-no", POL_RES_MMIO, POLICY_DENY), 0xd0000200, 0xd0000fff);
	r = sb_add(&s, "disk-watch", POL_RES_DISK, POLICY_PROVIDE);
	strcpy(r->drive, "d");
	r->audit = true;
	sb_range(r, 0, 99);
	r = sb_add(&s, "disk-no", POL_RES_DISK, POLICY_DENY);
	strcpy(r->drive, "d");
	sb_range(r, 100, 199);
	struct policy *p = compile_ok(&s);
	struct policy_decision d;

	policy_decide_access(p, POLICY_PIO, 0x3f8, 4, true, true, &d);
	assert_int_equal(d.rule, 1);
	policy_decide_access(p, POLICY_PIO, 0x3f8, 1, true, true, &d);
	assert_int_equal(d.rule, 0);
	policy_decide_access(p, POLICY_MMIO, 0xd00000fc, 8, true, true, &d);
	assert_int_equal(d.rule, 3);
	assert_int_equal(d.verdict, POLICY_REDIRECT);
	policy_decide_access(p, POLICY_MMIO, 0xd00001fc, 8, true, true, &d);
	assert_int_equal(d.rule, 3); /* the redirect comes first of the two strict ones */
	policy_decide_access(p, POLICY_MMIO, 0xd00001fc, 4, true, true, &d);
	assert_int_equal(d.rule, 3);
	policy_decide_access(p, POLICY_MMIO, 0xd00002fc, 8, true, true, &d);
	assert_int_equal(d.rule, 4);
	policy_decide_access(p, POLICY_MMIO, 0xd00000f8, 8, true, true, &d);
	assert_int_equal(d.rule, 2);
	policy_decide_disk(p, "d", REQ_WRITE, 96, 8, false, &d);
	assert_int_equal(d.rule, 6);
	assert_int_equal(d.verdict, POLICY_DENY);
	policy_decide_disk(p, "d", REQ_WRITE, 0, 100, false, &d);
	assert_int_equal(d.rule, 5);
	policy_decide_disk(p, "d", REQ_READ, 0, 1000000, false, &d);
	assert_int_equal(d.rule, 6);
	policy_free(p);
	policy_spec_free(&s);
}

static void test_defaults_and_modes(void **state)
{
	(void)state;
	struct policy *p = policy_default();
	struct policy_decision d;
	policy_decide_access(p, POLICY_PIO, 0x80, 1, false, true, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	assert_false(d.audit);
	assert_int_equal(d.rule, -1);
	assert_null(d.r);
	assert_true(d.enforced);
	policy_decide_access(p, POLICY_MMIO, 0xfee00000, 4, true, false, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_true(d.audit); /* the built-in deny is audited */
	assert_int_equal(d.rule, -1);
	policy_decide_msr(p, 0x10, true, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	policy_decide_vsock(p, POL_VSOCK_G2H, 52, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0x01020304, 80, &d);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	uint32_t regs[4] = { 1, 2, 3, 4 };
	assert_int_equal(policy_cpuid(p, 1, 0, regs), -1);
	assert_int_equal(regs[0], 1);
	assert_null(policy_rtc(p));
	policy_free(p);

	/* Permissive: the same decisions, not enforced. */
	struct policy_spec s = { .mode = POLICY_PERMISSIVE };
	struct policy_rule *r = sb_add(&s, "deny-msr", POL_RES_MSR, POLICY_DENY);
	sb_range(r, 0x10, 0x10);
	r->audit = false; /* the rule's own audit is copied */
	p = compile_ok(&s);
	policy_decide_msr(p, 0x10, false, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_false(d.enforced);
	assert_false(d.audit);
	assert_int_equal(policy_effect(&d), POLICY_PROVIDE);
	policy_decide_access(p, POLICY_PIO, 0x80, 1, false, false, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_false(d.enforced);
	assert_true(d.audit);
	policy_free(p);
	policy_spec_free(&s);
}

static void test_top_of_address_space(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "top", POL_RES_MMIO, POLICY_DENY);
	sb_range(r, UINT64_MAX, UINT64_MAX);
	r = sb_add(&s, "zero", POL_RES_MMIO, POLICY_DENY);
	sb_range(r, 0, 0);
	struct policy *p = compile_ok(&s);
	struct policy_decision d;
	/* An 8-byte access at the very top does not wrap round to 0. */
	policy_decide_access(p, POLICY_MMIO, UINT64_MAX - 3, 8, false, true, &d);
	assert_int_equal(d.rule, 0);
	policy_decide_access(p, POLICY_MMIO, UINT64_MAX - 8, 8, false, true, &d);
	assert_int_equal(d.rule, -1);
	policy_decide_access(p, POLICY_MMIO, 0, 0, false, true, &d);
	assert_int_equal(d.rule, 1);
	policy_free(p);
	policy_spec_free(&s);
}

static void test_disk(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "boot-ro", POL_RES_DISK, POLICY_DENY);
	strcpy(r->drive, "rootfs");
	r->access = POL_ACC_WRITE;
	sb_range(r, 0, 2047);
	r = sb_add(&s, "rootfs-cow", POL_RES_DISK, POLICY_REDIRECT);
	strcpy(r->drive, "rootfs");
	r->access = POL_ACC_WRITE;
	r->overlay = strdup("/tmp/ov");
	r = sb_add(&s, "data-flush", POL_RES_DISK, POLICY_DENY);
	strcpy(r->drive, "data");
	r->access = POL_ACC_FLUSH;
	r = sb_add(&s, "data-all", POL_RES_DISK, POLICY_PROVIDE);
	strcpy(r->drive, "data");
	r->audit = true;
	struct policy *p = compile_ok(&s);
	struct policy_decision d;

	policy_decide_disk(p, "rootfs", REQ_WRITE, 2040, 16, false, &d); /* overlaps the deny */
	assert_int_equal(d.rule, 0);
	policy_decide_disk(p, "rootfs", REQ_WRITE, 2048, 16, false, &d);
	assert_int_equal(d.rule, 1);
	assert_int_equal(d.verdict, POLICY_REDIRECT);
	assert_string_equal(d.r->overlay, "/tmp/ov");
	policy_decide_disk(p, "rootfs", REQ_READ, 0, 8, false, &d);
	assert_int_equal(d.rule, -1);
	policy_decide_disk(p, "data", REQ_FLUSH, 0, 0, false, &d);
	assert_int_equal(d.rule, 2);
	policy_decide_disk(p, "data", REQ_OTHER, 0, 0, false, &d);
	assert_int_equal(d.rule, 3);
	assert_true(d.audit);
	policy_decide_disk(p, "data", REQ_READ, UINT64_MAX - 1, 100, false, &d); /* no wrap */
	assert_int_equal(d.rule, 3);
	policy_decide_disk(p, "other", REQ_WRITE, 0, 1, false, &d);
	assert_int_equal(d.rule, -1);
	assert_int_equal(d.verdict, POLICY_PROVIDE);
	/* A read-only drive refuses writes, whatever a rule says... */
	policy_decide_disk(p, "data", REQ_WRITE, 0, 1, true, &d);
	assert_int_equal(d.rule, 3);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_true(d.enforced);
	policy_decide_disk(p, "other", REQ_WRITE, 0, 1, true, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_true(d.audit);
	policy_free(p);
	/* ...and whatever the mode says. */
	s.mode = POLICY_PERMISSIVE;
	p = compile_ok(&s);
	policy_decide_disk(p, "data", REQ_WRITE, 0, 1, true, &d);
	assert_int_equal(policy_effect(&d), POLICY_DENY);
	policy_decide_disk(p, "data", REQ_READ, 0, 1, true, &d);
	assert_int_equal(policy_effect(&d), POLICY_PROVIDE);
	policy_free(p);
	policy_spec_free(&s);
}

static void test_net(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "dns", POL_RES_NET, POLICY_PROVIDE);
	r->proto = POL_PROTO_UDP;
	r->dst_ip = 0x0a000203;
	r->dst_prefix = 32;
	sb_range(r, 53, 53);
	r = sb_add(&s, "web-eth0", POL_RES_NET, POLICY_REDIRECT);
	strcpy(r->iface, "eth0");
	r->proto = POL_PROTO_TCP;
	r->dst_ip = 0xc0a80000;
	r->dst_prefix = 16;
	sb_range(r, 80, 80);
	sb_range(r, 443, 443);
	r->to_ip = 0x7f000001;
	r->to_port = 8080;
	r = sb_add(&s, "in-ssh", POL_RES_NET, POLICY_PROVIDE);
	r->dir = POL_DIR_INGRESS;
	r->proto = POL_PROTO_TCP;
	sb_range(r, 22, 22);
	r = sb_add(&s, "rest", POL_RES_NET, POLICY_DENY);
	struct policy *p = compile_ok(&s);
	struct policy_decision d;

	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_UDP, 0x0a000203, 53, &d);
	assert_int_equal(d.rule, 0);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_UDP, 0x0a000204, 53, &d);
	assert_int_equal(d.rule, 3);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0x0a000203, 53, &d);
	assert_int_equal(d.rule, 3);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0xc0a81234, 443, &d);
	assert_int_equal(d.rule, 1);
	assert_int_equal(d.r->to_port, 8080);
	policy_decide_net(p, "eth1", POL_DIR_EGRESS, POL_PROTO_TCP, 0xc0a81234, 443, &d);
	assert_int_equal(d.rule, 3);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0xc0a91234, 80, &d);
	assert_int_equal(d.rule, 3);
	policy_decide_net(p, "eth1", POL_DIR_INGRESS, POL_PROTO_TCP, 0x01020304, 22, &d);
	assert_int_equal(d.rule, 2);
	policy_decide_net(p, "eth1", POL_DIR_INGRESS, POL_PROTO_TCP, 0x01020304, 23, &d);
	assert_int_equal(d.rule, -1); /* no ingress deny: default provide */
	policy_decide_net(p, "eth1", POL_DIR_EGRESS, POL_PROTO_ICMP, 0x01020304, 0, &d);
	assert_int_equal(d.rule, 3);
	policy_free(p);
	policy_spec_free(&s);
}

static void test_vsock_cpuid_rtc(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "agent", POL_RES_VSOCK, POLICY_REDIRECT);
	sb_range(r, 52, 52);
	r->to_vport = 1024;
	r = sb_add(&s, "no-g2h", POL_RES_VSOCK, POLICY_DENY);
	r = sb_add(&s, "leaf1-sub0", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->has_subleaf = true;
	r->regs[2] = (struct policy_cpuid_reg){ 0x80000000u, 0 }; /* hypervisor bit off */
	r = sb_add(&s, "leaf1", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->regs[0] = (struct policy_cpuid_reg){ 0xffffffffu, 0x12345 };
	r = sb_add(&s, "leaf7-sub1", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 7;
	r->has_subleaf = true;
	r->subleaf = 1;
	r->regs[3] = (struct policy_cpuid_reg){ 0xf, 0x5 };
	r = sb_add(&s, "clock", POL_RES_RTC, POLICY_REDIRECT);
	r->rtc_kind = POL_RTC_OFFSET;
	r->offset_s = -3600;
	struct policy *p = compile_ok(&s);
	struct policy_decision d;

	policy_decide_vsock(p, POL_VSOCK_G2H, 52, &d);
	assert_int_equal(d.rule, 0);
	assert_int_equal(d.r->to_vport, 1024);
	policy_decide_vsock(p, POL_VSOCK_G2H, 53, &d);
	assert_int_equal(d.rule, 1);
	policy_decide_vsock(p, POL_VSOCK_H2G, 52, &d);
	assert_int_equal(d.rule, -1);

	uint32_t regs[4] = { 0xaaaa, 0xbbbb, 0xffffffffu, 0xcccc };
	assert_int_equal(policy_cpuid(p, 1, 0, regs), 2);
	assert_int_equal(regs[2], 0x7fffffffu);
	assert_int_equal(regs[0], 0xaaaa);
	assert_int_equal(policy_cpuid(p, 1, 5, regs), 3);
	assert_int_equal(regs[0], 0x12345);
	regs[3] = 0xfffffff0u;
	assert_int_equal(policy_cpuid(p, 7, 1, regs), 4);
	assert_int_equal(regs[3], 0xfffffff5u);
	assert_int_equal(policy_cpuid(p, 7, 0, regs), -1);
	assert_int_equal(policy_cpuid(p, 2, 0, regs), -1);
	assert_int_equal(policy_rule_hits(p, 3), 1);
	assert_ptr_equal(policy_rtc(p), &policy_spec_of(p)->rules[5]);
	assert_int_equal(policy_rtc(p)->offset_s, -3600);
	policy_free(p);
	policy_spec_free(&s);
}

struct msr_seen {
	unsigned n;
	uint32_t first[8], last[8];
	bool read[8], write[8];
};

static void on_msr(void *ctx, uint32_t first, uint32_t last, bool read, bool write)
{
	struct msr_seen *m = ctx;
	assert_true(m->n < 8);
	m->first[m->n] = first, m->last[m->n] = last, m->read[m->n] = read, m->write[m->n] = write;
	m->n++;
}

static void test_msr_ranges(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "quiet", POL_RES_MSR, POLICY_PROVIDE);
	sb_range(r, 0x100, 0x10f); /* a silent provide: KVM's, not trapped */
	r = sb_add(&s, "deny-rd", POL_RES_MSR, POLICY_DENY);
	r->access = POL_ACC_READ;
	sb_range(r, 0x0, 0x1ff);
	r = sb_add(&s, "deny-wr", POL_RES_MSR, POLICY_DENY);
	r->access = POL_ACC_WRITE;
	sb_range(r, 0x180, 0x2ff);
	r = sb_add(&s, "watch", POL_RES_MSR, POLICY_PROVIDE);
	r->audit = true;
	sb_range(r, 0x300, 0x300);
	sb_range(r, 0xffffffff, 0xffffffff);
	struct policy *p = compile_ok(&s);
	struct msr_seen m = { 0 };
	policy_msr_ranges(p, on_msr, &m);
	/* 0-ff r, 100-10f none, 110-17f r, 180-1ff rw, 200-2ff w, 300 rw, ffffffff rw */
	uint32_t want[][4] = { { 0x0, 0xff, 1, 0 },	{ 0x110, 0x17f, 1, 0 }, { 0x180, 0x1ff, 1, 1 },
			       { 0x200, 0x2ff, 0, 1 },	{ 0x300, 0x300, 1, 1 }, { 0xffffffff, 0xffffffff, 1, 1 } };
	assert_int_equal(m.n, 6);
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(m.first[i], want[i][0]);
		assert_int_equal(m.last[i], want[i][1]);
		assert_int_equal(m.read[i], want[i][2]);
		assert_int_equal(m.write[i], want[i][3]);
	}
	policy_free(p);
	policy_spec_free(&s);
}

static void test_spec_is_copied(void **state)
{
	(void)state;
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	struct policy_rule *r = sb_add(&s, "d", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x60, 0x64);
	struct policy *p = compile_ok(&s);
	policy_spec_free(&s); /* the policy keeps its own copy */
	const struct policy_spec *c = policy_spec_of(p);
	assert_int_equal(c->nrules, 1);
	assert_string_equal(c->rules[0].id, "d");
	assert_int_equal(c->rules[0].ranges[0].last, 0x64);
	policy_free(p);
}

/* --- refusals ------------------------------------------------------------- */
static struct policy_rule *one(struct policy_spec *s, const char *id, enum policy_resource res,
			       enum policy_verdict v)
{
	memset(s, 0, sizeof(*s));
	return sb_add(s, id, res, v);
}

static void test_refusals(void **state)
{
	(void)state;
	struct policy_spec s;
	struct policy_rule *r;

	r = one(&s, "all-ports", POL_RES_PIO, POLICY_PROVIDE);
	sb_range(r, 0, 0xffff);
	r = sb_add(&s, "com2-deny", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x2f8, 0x2ff);
	expect_refused(&s, "rule \"com2-deny\": ports: never matches (rule \"all-ports\" covers 0x2f8-0x2ff first)");

	r = one(&s, "lo", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x2f8, 0x2fb);
	r = sb_add(&s, "hi", POL_RES_PIO, POLICY_PROVIDE);
	sb_range(r, 0x2fc, 0x2ff);
	r = sb_add(&s, "both", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x2f8, 0x2ff);
	expect_refused(&s, "rule \"both\": ports: never matches (earlier rules cover 0x2f8-0x2ff, the first is \"lo\")");

	/* Shadowed for reads only is not shadowed. */
	r = one(&s, "rd", POL_RES_PIO, POLICY_DENY);
	r->access = POL_ACC_READ;
	sb_range(r, 0x60, 0x60);
	r = sb_add(&s, "any", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x60, 0x60);
	struct policy *p = compile_ok(&s);
	policy_free(p);
	r = sb_add(&s, "wr", POL_RES_PIO, POLICY_DENY);
	r->access = POL_ACC_WRITE;
	sb_range(r, 0x60, 0x60);
	expect_refused(&s, "rule \"wr\": ports: never matches (rule \"any\" covers 0x60 first)");

	r = one(&s, "rev", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x3ff, 0x3f8);
	expect_refused(&s, "rule \"rev\": ports: reversed range 0x3ff-0x3f8");
	r = one(&s, "rev-disk", POL_RES_DISK, POLICY_DENY);
	strcpy(r->drive, "rootfs");
	sb_range(r, 100, 10);
	expect_refused(&s, "rule \"rev-disk\": sectors: reversed range 100-10");
	r = one(&s, "big", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0xfff0, 0x10000);
	expect_refused(&s, "rule \"big\": ports: 0x10000 is past the last, 0xffff");
	r = one(&s, "nothing", POL_RES_MMIO, POLICY_DENY);
	expect_refused(&s, "rule \"nothing\": addresses: none given");
	r = one(&s, "flush", POL_RES_PIO, POLICY_DENY);
	r->access = POL_ACC_FLUSH;
	sb_range(r, 1, 1);
	expect_refused(&s, "rule \"flush\": access: flush is for disk rules only");
	r = one(&s, "rdr", POL_RES_PIO, POLICY_REDIRECT);
	sb_range(r, 1, 1);
	expect_refused(&s, "rule \"rdr\": value: a redirect needs \"value\" or \"to\"");
	r = one(&s, "rdr2", POL_RES_MMIO, POLICY_REDIRECT);
	sb_range(r, 1, 1);
	r->has_value = r->has_to = true;
	expect_refused(&s, "rule \"rdr2\": to: a redirect takes \"value\" or \"to\", not both");
	r = one(&s, "to-far", POL_RES_PIO, POLICY_REDIRECT);
	sb_range(r, 0x10, 0x1f);
	r->has_to = true;
	r->to = 0xfff8;
	expect_refused(&s, "rule \"to-far\": to: 0xfff8 plus range 0x10-0x1f runs past 0xffff");
	r = one(&s, "msr-to", POL_RES_MSR, POLICY_REDIRECT);
	sb_range(r, 0x10, 0x10);
	r->has_to = true;
	expect_refused(&s, "rule \"msr-to\": to: not a field of msr rules");
	r = one(&s, "msr-rdr", POL_RES_MSR, POLICY_REDIRECT);
	sb_range(r, 0x10, 0x10);
	expect_refused(&s, "rule \"msr-rdr\": value: an msr redirect needs the value reads return");
	r = one(&s, "deny-val", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 0x10, 0x10);
	r->has_value = true;
	expect_refused(&s, "rule \"deny-val\": value: only a redirect takes one");
	r = one(&s, "cpuid-deny", POL_RES_CPUID, POLICY_DENY);
	r->regs[0].mask = 1;
	expect_refused(&s, "rule \"cpuid-deny\": verdict: cpuid rules take redirect only");
	r = one(&s, "cpuid-empty", POL_RES_CPUID, POLICY_REDIRECT);
	expect_refused(&s, "rule \"cpuid-empty\": registers: none given");
	r = one(&s, "c1", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->regs[0].mask = 1;
	r = sb_add(&s, "c1-sub", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->has_subleaf = true;
	r->subleaf = 2;
	r->regs[1].mask = 1;
	expect_refused(&s, "rule \"c1-sub\": subleaf: never matches (rule \"c1\" redirects every subleaf of leaf 0x1 first)");
	r = one(&s, "c1", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->regs[0].mask = 1;
	r = sb_add(&s, "c1-again", POL_RES_CPUID, POLICY_REDIRECT);
	r->leaf = 1;
	r->regs[1].mask = 1;
	expect_refused(&s, "rule \"c1-again\": leaf: never matches (rule \"c1\" redirects leaf 0x1 first)");
	r = one(&s, "rtc-deny", POL_RES_RTC, POLICY_DENY);
	expect_refused(&s, "rule \"rtc-deny\": verdict: rtc rules take redirect only");
	r = one(&s, "t1", POL_RES_RTC, POLICY_REDIRECT);
	r = sb_add(&s, "t2", POL_RES_RTC, POLICY_REDIRECT);
	expect_refused(&s, "rule \"t2\": verdict: never matches (rule \"t1\" sets the clock first)");
	r = one(&s, "cow", POL_RES_DISK, POLICY_REDIRECT);
	strcpy(r->drive, "rootfs");
	expect_refused(&s, "rule \"cow\": overlay: a disk redirect needs one");
	r = one(&s, "nodrive", POL_RES_DISK, POLICY_DENY);
	expect_refused(&s, "rule \"nodrive\": drive: missing");
	r = one(&s, "d-all", POL_RES_DISK, POLICY_PROVIDE);
	strcpy(r->drive, "rootfs");
	r = sb_add(&s, "d-wr", POL_RES_DISK, POLICY_DENY);
	strcpy(r->drive, "rootfs");
	r->access = POL_ACC_WRITE;
	sb_range(r, 100, 200);
	expect_refused(&s, "rule \"d-wr\": sectors: never matches (rule \"d-all\" covers 100-200 first)");
	r = one(&s, "net-rdr", POL_RES_NET, POLICY_REDIRECT);
	expect_refused(&s, "rule \"net-rdr\": to: a net redirect needs HOST:PORT");
	r = one(&s, "icmp-ports", POL_RES_NET, POLICY_DENY);
	r->proto = POL_PROTO_ICMP;
	sb_range(r, 1, 2);
	expect_refused(&s, "rule \"icmp-ports\": ports: icmp has no ports");
	r = one(&s, "cidr", POL_RES_NET, POLICY_DENY);
	r->dst_prefix = 33;
	expect_refused(&s, "rule \"cidr\": dst: prefix /33 is longer than 32");
	r = one(&s, "n1", POL_RES_NET, POLICY_DENY);
	strcpy(r->iface, "eth0");
	r->dst_ip = 0x0a000001;
	r->dst_prefix = 8;
	sb_range(r, 80, 80);
	r = sb_add(&s, "n2", POL_RES_NET, POLICY_PROVIDE);
	strcpy(r->iface, "eth0");
	r->dst_ip = 0x0a0000ff; /* the same /8 */
	r->dst_prefix = 8;
	sb_range(r, 80, 80);
	expect_refused(&s, "rule \"n2\": ports: never matches (rule \"n1\" matches the same flows first)");
	r = one(&s, "n-all", POL_RES_NET, POLICY_DENY);
	r->proto = POL_PROTO_TCP;
	r = sb_add(&s, "n-web", POL_RES_NET, POLICY_PROVIDE);
	r->proto = POL_PROTO_TCP;
	r->dst_ip = 0x01020304;
	r->dst_prefix = 32;
	sb_range(r, 443, 443);
	expect_refused(&s, "rule \"n-web\": ports: never matches (rule \"n-all\" matches every flow to 443 first)");
	r = one(&s, "v-rdr", POL_RES_VSOCK, POLICY_REDIRECT);
	expect_refused(&s, "rule \"v-rdr\": to_port: a vsock redirect needs one");
	r = one(&s, "v-all", POL_RES_VSOCK, POLICY_DENY);
	r = sb_add(&s, "v-52", POL_RES_VSOCK, POLICY_PROVIDE);
	sb_range(r, 52, 52);
	expect_refused(&s, "rule \"v-52\": ports: never matches (rule \"v-all\" covers 52 first)");
	r = one(&s, "mixed", POL_RES_PIO, POLICY_DENY);
	sb_range(r, 1, 1);
	strcpy(r->drive, "rootfs");
	expect_refused(&s, "rule \"mixed\": drive: not a field of pio rules");
	r = one(&s, "vs-acc", POL_RES_VSOCK, POLICY_DENY);
	r->access = POL_ACC_READ;
	expect_refused(&s, "rule \"vs-acc\": access: not a field of vsock rules");

	r = one(&s, "", POL_RES_VSOCK, POLICY_DENY);
	expect_refused(&s, "rule #0: id: empty");
	r = one(&s, "x", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 1, 1);
	memset(r->id, 'a', sizeof(r->id)); /* no terminator */
	expect_refused(&s, "rule #0: id: longer than 47 bytes");
	r = one(&s, "same", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 1, 1);
	r = sb_add(&s, "other", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 2, 2);
	r = sb_add(&s, "same", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 3, 3);
	expect_refused(&s, "rule \"same\": id: duplicate (rule #0 has it too)");
	r = one(&s, "many", POL_RES_VSOCK, POLICY_DENY);
	for (unsigned i = 0; i <= POLICY_MAX_RANGES; i++)
		sb_range(r, i, i);
	expect_refused(&s, "rule \"many\": ports: 257 ranges, at most 256");

	/* Of rules that repeat an id or never match, the earliest is named. */
	r = one(&s, "a", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 1, 1);
	r = sb_add(&s, "b", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 1, 1);
	r = sb_add(&s, "a", POL_RES_VSOCK, POLICY_DENY);
	sb_range(r, 2, 2);
	expect_refused(&s, "rule \"b\": ports: never matches (rule \"a\" covers 1 first)");

	memset(&s, 0, sizeof(s));
	s.mode = (enum policy_mode)7;
	expect_refused(&s, "policy: mode: unknown (7)");
}

/* --- scale ---------------------------------------------------------------- */
static struct policy_spec many_rules(unsigned n)
{
	struct policy_spec s = { .mode = POLICY_ENFORCE, .nrules = n, .rules = calloc(n, sizeof(struct policy_rule)) };
	assert_non_null(s.rules);
	for (unsigned i = 0; i < n; i++) {
		struct policy_rule *r = &s.rules[i];
		snprintf(r->id, sizeof(r->id), "r%u", i);
		r->resource = i % 2 ? POL_RES_MMIO : POL_RES_PIO;
		r->verdict = i % 3 ? POLICY_DENY : POLICY_PROVIDE;
		r->audit = r->verdict == POLICY_DENY;
		sb_range(r, (uint64_t)i * 4, (uint64_t)i * 4 + 1);
		r->ranges[0].first &= 0xffff, r->ranges[0].last &= 0xffff;
		if (r->resource == POL_RES_MMIO)
			r->ranges[0].first += 0x100000000ull, r->ranges[0].last += 0x100000000ull;
	}
	return s;
}

static double seconds(clock_t a, clock_t b)
{
	return (double)(b - a) / CLOCKS_PER_SEC;
}

static void test_ten_thousand_rules(void **state)
{
	(void)state;
	struct policy_spec s = many_rules(10000);
	clock_t t0 = clock();
	struct policy *p = compile_ok(&s);
	double dt = seconds(t0, clock());
	print_message("10000 rules compiled in %.3f s\n", dt);
	assert_true(dt < 1.0);
	struct policy_decision d;
	for (unsigned i = 0; i < 10000; i++) {
		const struct policy_rule *r = &s.rules[i];
		policy_decide_access(p, r->resource == POL_RES_PIO ? POLICY_PIO : POLICY_MMIO, r->ranges[0].last, 1,
				     i % 5 == 0, true, &d);
		assert_int_equal(d.rule, (int)i);
		policy_decide_access(p, r->resource == POL_RES_PIO ? POLICY_PIO : POLICY_MMIO, r->ranges[0].last + 1,
				     1, false, true, &d);
		assert_int_equal(d.rule, -1);
	}
	policy_free(p);
	policy_spec_free(&s);
}

static void test_too_many_rules(void **state)
{
	(void)state;
	struct policy_spec s = many_rules(100000);
	char err[128];
	clock_t t0 = clock();
	assert_null(policy_compile(&s, err, sizeof(err)));
	assert_true(seconds(t0, clock()) < 0.01);
	assert_string_equal(err, "policy: 100000 rules, at most 65536");
	policy_spec_free(&s);
}

/* Net rules whose candidate lists would outgrow the bound are refused, fast. */
static void test_net_bounded(void **state)
{
	(void)state;
	unsigned n = 8000;
	struct policy_spec s = { .mode = POLICY_ENFORCE, .nrules = n, .rules = calloc(n, sizeof(struct policy_rule)) };
	assert_non_null(s.rules);
	for (unsigned i = 0; i < n; i++) {
		struct policy_rule *r = &s.rules[i];
		snprintf(r->id, sizeof(r->id), "n%u", i);
		r->resource = POL_RES_NET;
		r->verdict = POLICY_DENY;
		r->dst_ip = 0x0a000000u + i;
		r->dst_prefix = 32;
		sb_range(r, i, 0xffff);
	}
	char err[256];
	clock_t t0 = clock();
	struct policy *p = policy_compile(&s, err, sizeof(err));
	assert_null(p);
	print_message("refused in %.3f s: %s\n", seconds(t0, clock()), err);
	assert_true(seconds(t0, clock()) < 1.0);
	assert_string_equal(err, "policy: net rules: more than 16777216 (port range, rule) pairs to tell apart; "
				 "give rules fewer overlapping port ranges");
	s.nrules = 4000; /* half as many: 8M pairs, fine */
	p = compile_ok(&s);
	struct policy_decision d;
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0x0a000000u + 3999, 0xffff, &d);
	assert_int_equal(d.rule, 3999);
	policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0x0a000000u + 3999, 3998, &d);
	assert_int_equal(d.rule, -1);
	policy_free(p);
	s.nrules = n;
	policy_spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_match_and_straddle),
		cmocka_unit_test(test_strictest_byte_rule_decides),
		cmocka_unit_test(test_defaults_and_modes),
		cmocka_unit_test(test_top_of_address_space),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_vsock_cpuid_rtc),
		cmocka_unit_test(test_msr_ranges),
		cmocka_unit_test(test_spec_is_copied),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_ten_thousand_rules),
		cmocka_unit_test(test_too_many_rules),
		cmocka_unit_test(test_net_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
