/* policy — for every resource the guest reaches for (a port, an MMIO
 * address, an MSR, a CPUID leaf, a disk sector, a network flow, a vsock
 * port, the wall clock) decides whether vigil provides it, redirects the
 * guest to something else, or denies it.
 *
 * Three layers:
 *  - `struct policy_spec`: the rules as written (docs/POLICY.md), filled by
 *    the JSON reader (vmm/policy_json.c) — plain data, owned by its maker;
 *  - `struct policy`: compiled from a spec into lookup tables, immutable
 *    after policy_compile() except for its per-rule hit counters; a
 *    decision costs the same with 1 rule or 10,000 (no linear scan);
 *  - `struct policy_slot`: the policy in force for a VM, read from vCPU and
 *    device threads without a lock, replaced as a whole by policy_swap().
 *
 * Callers of the decide functions: exit_dispatch() (pio, mmio, msr),
 * dev_request*() (disk and other device requests), the net and vsock
 * backends, the board (cpuid, rtc). Deciding allocates nothing and makes no
 * syscall. Where no rule matches the built-in defaults hold: a claimed
 * access is provided, an unclaimed one denied, a write to a read-only disk
 * denied, everything else provided. */
#ifndef VIGIL_CORE_POLICY_H
#define VIGIL_CORE_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/devreq.h"

/* Address spaces the monitor counts in (MSRs: only those the filter hands over). */
enum policy_space { POLICY_PIO, POLICY_MMIO, POLICY_MSR };

enum policy_resource {
	POL_RES_PIO,
	POL_RES_MMIO,
	POL_RES_MSR,
	POL_RES_CPUID,
	POL_RES_DISK,
	POL_RES_NET,
	POL_RES_VSOCK,
	POL_RES_RTC,
	POL_RES__COUNT
};

enum policy_verdict { POLICY_PROVIDE, POLICY_REDIRECT, POLICY_DENY };
enum policy_mode { POLICY_ENFORCE, POLICY_PERMISSIVE };
/* pio, mmio, msr: any/read/write; disk also flush. */
enum policy_access { POL_ACC_ANY, POL_ACC_READ, POL_ACC_WRITE, POL_ACC_FLUSH };
enum policy_dir { POL_DIR_EGRESS, POL_DIR_INGRESS };
enum policy_proto { POL_PROTO_ANY, POL_PROTO_TCP, POL_PROTO_UDP, POL_PROTO_ICMP };
enum policy_vsock_dir { POL_VSOCK_G2H, POL_VSOCK_H2G };
enum policy_rtc_kind { POL_RTC_EPOCH, POL_RTC_OFFSET };

#define POLICY_ID_MAX 47        /* a rule id: 1..47 bytes (copied into trace/audit records) */
#define POLICY_NAME_MAX 64      /* a drive or interface id, as in the registry */
#define POLICY_MAX_RULES 65536  /* more is refused with a message */
#define POLICY_MAX_RANGES 256   /* ranges in one rule's list */

struct policy_range {
	uint64_t first, last; /* inclusive; first <= last */
};

/* One CPUID register: the bits set in `mask` are forced to `value`'s
 * (a whole value: mask = 0xffffffff; Firecracker's "0b..x.." bitmap: the
 * non-x positions). mask 0: the register is left alone. */
struct policy_cpuid_reg {
	uint32_t mask, value;
};

struct policy_rule {
	char id[POLICY_ID_MAX + 1];
	enum policy_resource resource;
	enum policy_verdict verdict;
	bool audit; /* defaults applied by the reader: deny/redirect true, provide false */

	/* pio, mmio, msr, disk */
	enum policy_access access;
	/* pio "ports", mmio "addresses", msr "msrs", disk "sectors", net
	 * "ports", vsock "ports". 0 ranges: any (disk, net, vsock only). */
	unsigned nranges;
	struct policy_range *ranges;

	/* redirect of pio, mmio, msr: a read returns `value` (writes dropped);
	 * or, pio/mmio only, the access goes to `to` + (addr - range first). */
	bool has_value;
	uint64_t value;
	bool has_to;
	uint64_t to;

	/* cpuid: the leaf (and subleaf) whose result is redirected */
	uint32_t leaf;
	bool has_subleaf;
	uint32_t subleaf;
	struct policy_cpuid_reg regs[4]; /* eax, ebx, ecx, edx */

	/* disk: the drive_id, and for redirect the copy-on-write overlay */
	char drive[POLICY_NAME_MAX + 1];
	char *overlay; /* malloc'd path or NULL */

	/* net: the iface_id ("" = every interface), direction, protocol, the
	 * remote address as a CIDR (host byte order; prefix 0 = any), and for
	 * redirect the host address and port the connection goes to instead */
	char iface[POLICY_NAME_MAX + 1];
	enum policy_dir dir;
	enum policy_proto proto;
	uint32_t dst_ip;
	unsigned dst_prefix;
	uint32_t to_ip;
	uint16_t to_port;

	/* vsock: the direction, ports in `ranges`, redirect target */
	enum policy_vsock_dir vdir;
	uint32_t to_vport;

	/* rtc: the guest's wall clock starts at epoch_s (+ epoch_ns), or runs
	 * offset_s from the host's */
	enum policy_rtc_kind rtc_kind;
	int64_t epoch_s;
	uint32_t epoch_ns;
	int64_t offset_s;
};

struct policy_spec {
	enum policy_mode mode;
	unsigned nrules;
	struct policy_rule *rules;
	/* User-mode networking: most host connections the VM may hold at
	 * once (0: vigil's default, POLICY_DEFAULT_HOST_CONNS). */
	unsigned max_host_connections;
};
#define POLICY_DEFAULT_HOST_CONNS 256

/* Frees what a spec owns (rules, ranges, overlay paths) and zeroes it. */
void policy_spec_free(struct policy_spec *s);
/* A deep copy; 0 or -ENOMEM. */
int policy_spec_copy(struct policy_spec *dst, const struct policy_spec *src);

/* --- the compiled policy -------------------------------------------------- */
struct policy;

/* Compiles (and keeps a deep copy of) `s`. NULL with one line in err naming
 * the rule and the field when it cannot be used: duplicate ids, a rule that
 * can never match because earlier ones cover it, a redirect with no target,
 * too many rules. Never from the exit path. */
struct policy *policy_compile(const struct policy_spec *s, char *err, size_t errlen);
void policy_free(struct policy *p);
/* The spec it was compiled from (GET /policy). */
const struct policy_spec *policy_spec_of(const struct policy *p);
/* How often rule `i` decided so far (from any thread; never torn). */
uint64_t policy_rule_hits(const struct policy *p, unsigned i);
/* Adds n to rule i's hits (a snapshot's counts carried into a restore). */
void policy_rule_hits_add(const struct policy *p, unsigned i, uint64_t n);

struct policy_decision {
	enum policy_verdict verdict; /* what the policy decided */
	bool enforced;               /* false in permissive mode: what happens is provide */
	bool audit;                  /* the rule (or default) asks for an audit record */
	int rule;                    /* index into the spec's rules; -1: a built-in default */
	const struct policy_rule *r; /* that rule, or NULL; valid until policy_leave() */
};

/* What actually happens to the access. */
static inline enum policy_verdict policy_effect(const struct policy_decision *d)
{
	return d->enforced ? d->verdict : POLICY_PROVIDE;
}

/* The compiled policy's first members (policy_impl.h's struct policy
 * starts with them; policy.c asserts it), visible so that the decision on
 * a port, which every port exit asks for, is inlined into the exit path. */
struct policy_head {
	struct policy_spec spec;
	_Atomic uint64_t *hits;  /* spec.nrules */
	uint32_t *port_rule[2];  /* [write]: 64K rule indices, UINT32_MAX none (NULL: no pio rules) */
};

/* policy_decide_access past the port table: MMIO, and ports when the
 * policy has no port rules or the access is wider than the table (policy.c). */
void policy_decide_access_table(const struct policy *p, enum policy_space sp, uint64_t addr, uint32_t len,
				bool write, bool claimed, struct policy_decision *d);

/* A decision by the built-in default (rule -1), the record written whole.
 * The built-in deny (an unclaimed address, a write to a read-only disk) is
 * audited too: the audit log shows every refusal. */
static inline void policy_by_default(const struct policy *p, enum policy_verdict v, struct policy_decision *d)
{
	const struct policy_head *h = (const struct policy_head *)(const void *)p;
	*d = (struct policy_decision){
		.verdict = v, .enforced = h->spec.mode == POLICY_ENFORCE, .audit = v == POLICY_DENY, .rule = -1
	};
}

/* A decision by rule i (counted in its hits), the record written whole. */
static inline void policy_by_rule(const struct policy *p, uint32_t i, struct policy_decision *d)
{
	const struct policy_head *h = (const struct policy_head *)(const void *)p;
	const struct policy_rule *r = &h->spec.rules[i];
	atomic_fetch_add_explicit(&h->hits[i], 1, memory_order_relaxed);
	*d = (struct policy_decision){
		.verdict = r->verdict, .enforced = h->spec.mode == POLICY_ENFORCE, .audit = r->audit, .rule = (int)i, .r = r
	};
}

/* A guest access to a port or a guest-physical address. `claimed`: a
 * device claims it (the default then is provide, else deny). Each byte's
 * rule is the first matching it (rule order); the access takes the first
 * of its bytes' rules that is not a plain provide if there is one, else
 * the first: a wide access over a deny's bytes and a provide's is denied.
 * Ports: one load per byte from the 64K port table; everything else goes
 * to policy.c's tables (ptab_decide). */
static inline void policy_decide_access(const struct policy *p, enum policy_space sp, uint64_t addr, uint32_t len,
					bool write, bool claimed, struct policy_decision *d)
{
	const uint32_t *ports = ((const struct policy_head *)(const void *)p)->port_rule[write];

	if (__builtin_expect(sp != POLICY_PIO || addr > 0xffff || len > 8 || !ports, 0)) {
		policy_decide_access_table(p, sp, addr, len, write, claimed, d);
		return;
	}
	uint32_t i = ports[addr];
	if (__builtin_expect(len > 1, 0)) {
		const struct policy_rule *rules = ((const struct policy_head *)(const void *)p)->spec.rules;
		uint64_t last = addr + (len - 1) > 0xffff ? 0xffff : addr + (len - 1);
		uint32_t strict = UINT32_MAX;
		for (uint64_t a = addr; a <= last; a++) {
			uint32_t v = ports[a];
			i = v < i ? v : i;
			if (v != UINT32_MAX && v < strict && rules[v].verdict != POLICY_PROVIDE)
				strict = v;
		}
		if (strict != UINT32_MAX)
			i = strict;
	}
	if (i == UINT32_MAX)
		policy_by_default(p, claimed ? POLICY_PROVIDE : POLICY_DENY, d);
	else
		policy_by_rule(p, i, d);
}
/* An RDMSR / WRMSR that KVM's filter sent to vigil. Default: provide. */
void policy_decide_msr(const struct policy *p, uint32_t msr, bool write, struct policy_decision *d);
/* A disk request on drive `drive` covering [sector, sector + nsectors).
 * Default: provide, but a write to a read-only drive is denied. */
void policy_decide_disk(const struct policy *p, const char *drive, enum req_kind kind, uint64_t sector,
			uint64_t nsectors, bool read_only, struct policy_decision *d);
/* A flow on user-mode networking or TAP: `ip`/`port` is the remote end
 * (the destination for egress, the source for ingress), host byte order;
 * port 0 for ICMP. Default: provide. */
void policy_decide_net(const struct policy *p, const char *iface, enum policy_dir dir,
		       enum policy_proto proto, uint32_t ip, uint16_t port, struct policy_decision *d);
/* A vsock connection to `port` (guest-to-host: the host port the guest
 * connects to; host-to-guest: the guest port). Default: provide. */
void policy_decide_vsock(const struct policy *p, enum policy_vsock_dir dir, uint32_t port,
			 struct policy_decision *d);

/* Applies the cpuid redirect rules to one leaf's result, in place
 * (regs: eax, ebx, ecx, edx); the first matching rule decides. Returns the
 * index of the rule applied, or -1. */
int policy_cpuid(const struct policy *p, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
/* The rtc redirect in force, if any: the first rtc rule. */
const struct policy_rule *policy_rtc(const struct policy *p);

/* The MSR ranges KVM's filter must hand to vigil (every MSR some rule
 * denies, redirects or audits; in permissive mode too). fn is called once
 * per disjoint range with whether reads and writes are to be trapped. */
void policy_msr_ranges(const struct policy *p,
		       void (*fn)(void *ctx, uint32_t first, uint32_t last, bool read, bool write), void *ctx);

/* --- the policy in force ----------------------------------------------------
 * Readers (vCPU and device threads) bracket every use of a decision with
 * enter/leave; a thread registers itself on first use. policy_swap()
 * publishes a new policy, waits until no reader is still inside the old
 * one (a reader is inside for one decision, never across a guest entry),
 * and returns the old one for the caller to free. */
#define POLICY_MAX_READERS 128

struct policy_reader {
	_Atomic uint64_t seq; /* odd while inside */
	char pad[56];
};

struct policy_slot {
	_Atomic(struct policy *) cur;
	_Atomic unsigned nreaders;
	/* policy_swap() adds 1 once the new policy is published: a reader
	 * that caches what it derived from a policy (net_filter's flows) sees
	 * a swap even when the new policy landed at the old one's address. */
	_Atomic uint64_t swaps;
	struct policy_reader readers[POLICY_MAX_READERS];
	/* Readers past POLICY_MAX_READERS: how many are inside right now. */
	_Atomic uint64_t overflow;
	/* Set by policy_slot_init, unique per init: a thread's registration
	 * with an earlier slot at the same address is not reused. */
	uint64_t gen;
	/* readers[0..nvcpu-1] belong to vCPUs 0..nvcpu-1 (policy_enter_vcpu). */
	unsigned nvcpu;
};

/* Sets up a slot holding `p` (may be the default policy). */
void policy_slot_init(struct policy_slot *s, struct policy *p);
/* Frees the policy in force. */
void policy_slot_fini(struct policy_slot *s);
const struct policy *policy_enter(struct policy_slot *s);
void policy_leave(struct policy_slot *s);
/* The exit path's readers: keeps readers[0..n-1] for vCPUs 0..n-1, before
 * any thread reads the slot. n is capped at half the readers. */
void policy_slot_reserve_vcpus(struct policy_slot *s, unsigned n);
/* enter/leave for vCPU `cpu`'s own thread, not nested within itself: its
 * counter by index, with no thread-local lookup, and plain stores since
 * only that thread writes it. The seq_cst store (an XCHG on x86) stands
 * for the generic enter's seq_cst increment in policy_slot.c's argument. */
static inline const struct policy *policy_enter_vcpu(struct policy_slot *s, unsigned cpu)
{
	if (__builtin_expect(cpu >= s->nvcpu, 0))
		return policy_enter(s);
	_Atomic uint64_t *seq = &s->readers[cpu].seq;
	atomic_store(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1);
	return atomic_load(&s->cur);
}
static inline void policy_leave_vcpu(struct policy_slot *s, unsigned cpu)
{
	if (__builtin_expect(cpu >= s->nvcpu, 0)) {
		policy_leave(s);
		return;
	}
	_Atomic uint64_t *seq = &s->readers[cpu].seq;
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1, memory_order_release);
}
/* Not from a reader. Returns the old policy once no reader uses it. */
struct policy *policy_swap(struct policy_slot *s, struct policy *np);

/* The policy with no rules (the built-in defaults), enforcing. */
struct policy *policy_default(void);

/* Names for JSON and reports. */
const char *policy_verdict_name(enum policy_verdict v);
const char *policy_resource_name(enum policy_resource r);

#endif
