/* The remote protocol's commands, over struct gdb_target_ops. Every length
 * and number a client sends is checked before it is used: a reply never
 * outgrows its buffer, memory moves at most GDB_MAX_MEM bytes at a time. */
#include "gdb/gdb_stub.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/exit.h"
#include "gdb/gdb_packet.h"
#include "gdb/gdb_regs.h"

#define SIGTRAP_NR 5
#define SIGINT_NR 2
#define INT3 0xcc

void gdb_stub_init(struct gdb_stub *s, const struct gdb_target_ops *ops, void *t, unsigned ncpus)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->t = t;
	s->ncpus = ncpus ? ncpus : 1;
	s->step_cpu = -1;
	s->stepover_cpu = -1;
}

void gdb_stub_attach(struct gdb_stub *s, unsigned cpu)
{
	s->attached = true;
	s->no_ack = false;
	s->g_cpu = s->c_cpu = cpu < s->ncpus ? cpu : 0;
	s->last = (struct gdb_stop){ .cpu = s->g_cpu, .kind = GDB_STOP_STEP };
	s->step_cpu = s->stepover_cpu = -1;
}

/* Guest debug as the breakpoint tables and the resume ask, on every vCPU. */
static int apply_debug(struct gdb_stub *s)
{
	static const unsigned rw[5] = { 0, 0, 1, 3, 3 };           /* by type: exec, write, read=access, access */
	static const unsigned lenbits[9] = { 0, 0, 1, 0, 3, 0, 0, 0, 2 };
	struct vcpu_debug d = { 0 };
	int r = 0;

	for (unsigned i = 0; i < GDB_MAX_SW_BP; i++)
		d.sw_bp |= s->sw[i].used;
	for (unsigned i = 0; i < GDB_MAX_HW_BP; i++) {
		const struct gdb_hw_bp *h = &s->hw[i];
		if (!h->used)
			continue;
		d.hw_bp = true;
		d.dr[i] = h->addr;
		d.dr7 |= (2ull << (2 * i)) | ((uint64_t)rw[h->type] << (16 + 4 * i)) |
			 ((uint64_t)(h->type == 1 ? 0 : lenbits[h->len]) << (18 + 4 * i));
	}
	if (d.hw_bp)
		d.dr7 |= 1u << 9; /* GE: exact data breakpoints (harmless, as gdb's stubs do) */
	for (unsigned c = 0; c < s->ncpus; c++) {
		struct vcpu_debug dc = d;
		dc.single_step = (int)c == s->step_cpu;
		if (s->ops->set_debug(s->t, c, &dc) < 0)
			r = -1;
	}
	return r;
}

static int find_sw(const struct gdb_stub *s, uint64_t addr)
{
	for (int i = 0; i < GDB_MAX_SW_BP; i++)
		if (s->sw[i].used && s->sw[i].addr == addr)
			return i;
	return -1;
}

/* Reads guest memory as gdb should see it: its own 0xCC bytes hidden. */
static int read_mem(struct gdb_stub *s, uint64_t addr, uint8_t *buf, size_t len)
{
	if (s->ops->read_mem(s->t, s->g_cpu, addr, buf, len) < 0)
		return -1;
	for (int i = 0; i < GDB_MAX_SW_BP; i++) {
		const struct gdb_sw_bp *b = &s->sw[i];
		if (b->used && b->addr - addr < len)
			buf[b->addr - addr] = b->orig;
	}
	return 0;
}

/* Writes guest memory; a byte under one of gdb's breakpoints changes the
 * remembered original and keeps the 0xCC in place. */
static int write_mem(struct gdb_stub *s, uint64_t addr, const uint8_t *src, size_t len)
{
	uint8_t buf[GDB_MAX_MEM];
	if (len > sizeof(buf))
		return -1;
	memcpy(buf, src, len);
	for (int i = 0; i < GDB_MAX_SW_BP; i++) {
		struct gdb_sw_bp *b = &s->sw[i];
		if (b->used && b->addr - addr < len) {
			b->orig = buf[b->addr - addr];
			buf[b->addr - addr] = INT3;
		}
	}
	return s->ops->write_mem(s->t, s->g_cpu, addr, buf, len);
}

struct out {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
}

static void out_bytes(struct out *o, const char *b, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, b, n);
	o->len += n;
}

static void stop_reply(const struct gdb_stub *s, const struct gdb_stop *st, struct out *o)
{
	static const char *const watch[5] = { NULL, NULL, "watch", "rwatch", "awatch" };
	outf(o, "T%02xthread:%x;", st->kind == GDB_STOP_INTERRUPT ? SIGINT_NR : SIGTRAP_NR, st->cpu + 1);
	if (st->kind == GDB_STOP_WATCH && st->watch_type >= 2 && st->watch_type <= 4)
		outf(o, "%s:%llx;", watch[st->watch_type], (unsigned long long)st->addr);
	else if (st->kind == GDB_STOP_SWBP)
		outf(o, "swbreak:;");
	else if (st->kind == GDB_STOP_HWBP)
		outf(o, "hwbreak:;");
	(void)s;
}

static bool prefix(const char *pkt, size_t len, const char *p)
{
	size_t n = strlen(p);
	return len >= n && memcmp(pkt, p, n) == 0;
}

/* A thread id: 1..n, 0 (any: the current one) or -1 (all). */
static int parse_thread(const struct gdb_stub *s, const char *p, const char *end, int *cpu)
{
	uint64_t v;
	if (end - p == 2 && p[0] == '-' && p[1] == '1') {
		*cpu = -1;
		return 0;
	}
	if (gdb_parse_hex(&p, end, &v) < 0 || p != end)
		return -1;
	if (v == 0) {
		*cpu = 0;
		return 0;
	}
	if (v > s->ncpus)
		return -1;
	*cpu = (int)v - 1;
	return 0;
}

/* "ADDR,LEN" then `stop` (':' or end); LEN capped at `max`. */
static int parse_addr_len(const char **p, const char *end, uint64_t *addr, uint64_t *len)
{
	if (gdb_parse_hex(p, end, addr) < 0 || *p >= end || **p != ',')
		return -1;
	(*p)++;
	return gdb_parse_hex(p, end, len);
}

static void cmd_g(struct gdb_stub *s, struct out *o)
{
	struct vcpu_state st;
	uint8_t b[GDB_REG_MAX];
	if (s->ops->get_regs(s->t, s->g_cpu, &st) < 0) {
		outf(o, "E01");
		return;
	}
	for (unsigned r = 0; r < GDB_NR_REGS; r++) {
		gdb_reg_get(&st, r, b);
		char hex[20];
		out_bytes(o, hex, gdb_put_hex(hex, b, gdb_reg_size(r)));
	}
}

static void cmd_G(struct gdb_stub *s, const char *p, const char *end, struct out *o)
{
	struct vcpu_state st;
	if (s->ops->get_regs(s->t, s->g_cpu, &st) < 0) {
		outf(o, "E01");
		return;
	}
	/* gdb may send fewer registers than described: those it sends. */
	for (unsigned r = 0; r < GDB_NR_REGS && p < end; r++) {
		uint8_t b[GDB_REG_MAX];
		size_t n = gdb_reg_size(r);
		if ((size_t)(end - p) < 2 * n || gdb_get_hex(b, p, n) < 0) {
			outf(o, "E16");
			return;
		}
		gdb_reg_set(&st, r, b);
		p += 2 * n;
	}
	outf(o, s->ops->set_regs(s->t, s->g_cpu, &st) < 0 ? "E01" : "OK");
}

static void cmd_p(struct gdb_stub *s, const char *p, const char *end, struct out *o, bool write)
{
	uint64_t r;
	struct vcpu_state st;
	if (gdb_parse_hex(&p, end, &r) < 0 || r >= GDB_NR_REGS || (write ? (p >= end || *p != '=') : p != end)) {
		outf(o, "E16");
		return;
	}
	if (s->ops->get_regs(s->t, s->g_cpu, &st) < 0) {
		outf(o, "E01");
		return;
	}
	uint8_t b[GDB_REG_MAX];
	size_t n = gdb_reg_size((unsigned)r);
	if (!write) {
		char hex[20];
		gdb_reg_get(&st, (unsigned)r, b);
		out_bytes(o, hex, gdb_put_hex(hex, b, n));
		return;
	}
	p++;
	if ((size_t)(end - p) != 2 * n || gdb_get_hex(b, p, n) < 0) {
		outf(o, "E16");
		return;
	}
	gdb_reg_set(&st, (unsigned)r, b);
	outf(o, s->ops->set_regs(s->t, s->g_cpu, &st) < 0 ? "E01" : "OK");
}

static void cmd_m(struct gdb_stub *s, const char *p, const char *end, struct out *o)
{
	uint64_t addr, len;
	uint8_t buf[GDB_MAX_MEM];
	if (parse_addr_len(&p, end, &addr, &len) < 0 || p != end) {
		outf(o, "E16");
		return;
	}
	if (len > GDB_MAX_MEM)
		len = GDB_MAX_MEM; /* a short read: gdb asks again for the rest */
	if (read_mem(s, addr, buf, len) < 0) {
		outf(o, "E14");
		return;
	}
	if (o->cap - o->len < 2 * len)
		len = (o->cap - o->len) / 2;
	o->len += gdb_put_hex(o->p + o->len, buf, len);
}

/* M (hex) and X (binary, already unescaped by the framing). */
static void cmd_M(struct gdb_stub *s, const char *p, const char *end, struct out *o, bool binary)
{
	uint64_t addr, len;
	uint8_t buf[GDB_MAX_MEM];
	if (parse_addr_len(&p, end, &addr, &len) < 0 || p >= end || *p != ':' || len > GDB_MAX_MEM) {
		outf(o, "E16");
		return;
	}
	p++;
	size_t have = (size_t)(end - p);
	if (binary ? have != len : (have != 2 * len || gdb_get_hex(buf, p, len) < 0)) {
		outf(o, "E16");
		return;
	}
	if (binary)
		memcpy(buf, p, len);
	if (len && write_mem(s, addr, buf, len) < 0)
		outf(o, "E14");
	else
		outf(o, "OK");
}

static void cmd_Z(struct gdb_stub *s, const char *p, const char *end, struct out *o, bool insert)
{
	uint64_t type, addr, kind;
	if (end - p < 2 || gdb_hexval((unsigned char)p[0]) < 0 || p[1] != ',') {
		outf(o, "E16");
		return;
	}
	type = (uint64_t)gdb_hexval((unsigned char)p[0]);
	p += 2;
	/* Conditions and commands after ';' are gdb's to evaluate: ignored. */
	const char *semi = memchr(p, ';', (size_t)(end - p));
	if (semi)
		end = semi;
	if (parse_addr_len(&p, end, &addr, &kind) < 0 || p != end || type > 4) {
		outf(o, type > 4 ? "" : "E16");
		return;
	}
	if (type == 0) {
		int i = find_sw(s, addr);
		if (!insert) {
			if (i >= 0) {
				s->ops->write_mem(s->t, s->g_cpu, addr, &s->sw[i].orig, 1);
				s->sw[i].used = false;
			}
			outf(o, "OK");
			return;
		}
		if (i >= 0) {
			outf(o, "OK");
			return;
		}
		for (i = 0; i < GDB_MAX_SW_BP && s->sw[i].used; i++)
			;
		uint8_t orig, cc = INT3;
		if (i == GDB_MAX_SW_BP) {
			outf(o, "E28");
			return;
		}
		if (s->ops->read_mem(s->t, s->g_cpu, addr, &orig, 1) < 0 ||
		    s->ops->write_mem(s->t, s->g_cpu, addr, &cc, 1) < 0) {
			outf(o, "E14");
			return;
		}
		s->sw[i] = (struct gdb_sw_bp){ .addr = addr, .orig = orig, .used = true };
		outf(o, "OK");
		return;
	}
	unsigned len = type == 1 ? 1 : (unsigned)kind;
	if (type != 1 && ((len != 1 && len != 2 && len != 4 && len != 8) || (addr & (len - 1)))) {
		outf(o, "E16");
		return;
	}
	int i, free_slot = -1;
	for (i = 0; i < GDB_MAX_HW_BP; i++) {
		if (s->hw[i].used && s->hw[i].addr == addr && s->hw[i].type == type && s->hw[i].len == len)
			break;
		if (!s->hw[i].used && free_slot < 0)
			free_slot = i;
	}
	if (!insert) {
		if (i < GDB_MAX_HW_BP)
			s->hw[i].used = false;
		outf(o, "OK");
		return;
	}
	if (i == GDB_MAX_HW_BP) {
		if (free_slot < 0) {
			outf(o, "E28");
			return;
		}
		s->hw[free_slot] = (struct gdb_hw_bp){ .addr = addr, .type = (unsigned)type, .len = len, .used = true };
	}
	outf(o, "OK");
}

/* Starts a resume: `step` on vCPU `cpu` (or all continue). A vCPU resting
 * on one of gdb's INT3s first steps over the original instruction. */
static enum gdb_action resume(struct gdb_stub *s, int step_cpu, struct out *o)
{
	s->step_cpu = step_cpu;
	s->gdb_step = step_cpu >= 0;
	s->stepover_cpu = -1;
	unsigned cpu = step_cpu >= 0 ? (unsigned)step_cpu : s->c_cpu;
	struct vcpu_state st;
	int bp;
	if (s->ops->get_regs(s->t, cpu, &st) == 0 && (bp = find_sw(s, st.rip)) >= 0) {
		s->ops->write_mem(s->t, cpu, st.rip, &s->sw[bp].orig, 1);
		s->stepover_cpu = (int)cpu;
		s->stepover_bp = bp;
		s->step_cpu = (int)cpu;
	}
	if (apply_debug(s) < 0) {
		outf(o, "E01");
		return GDB_ACT_REPLY;
	}
	return GDB_ACT_RESUME;
}

/* `c [addr]` / `s [addr]`: resume at addr when given. */
static enum gdb_action cmd_cs(struct gdb_stub *s, const char *p, const char *end, struct out *o, bool step)
{
	uint64_t addr;
	if (p < end) {
		struct vcpu_state st;
		if (gdb_parse_hex(&p, end, &addr) < 0 || p != end || s->ops->get_regs(s->t, s->c_cpu, &st) < 0) {
			outf(o, "E16");
			return GDB_ACT_REPLY;
		}
		st.rip = addr;
		if (s->ops->set_regs(s->t, s->c_cpu, &st) < 0) {
			outf(o, "E01");
			return GDB_ACT_REPLY;
		}
	}
	return resume(s, step ? (int)s->c_cpu : -1, o);
}

/* vCont;ACTION[:THREAD]...: in all-stop only whether one thread steps
 * matters (every other one continues). */
static enum gdb_action cmd_vcont(struct gdb_stub *s, const char *p, const char *end, struct out *o)
{
	int step_cpu = -1;
	bool any = false;
	while (p < end && *p == ';') {
		p++;
		char a = p < end ? *p++ : 0;
		if (a == 'C' || a == 'S') { /* signals mean nothing to a VM: skip the number */
			uint64_t sig;
			if (gdb_parse_hex(&p, end, &sig) < 0)
				goto bad;
			a = (char)(a - 'A' + 'a');
		}
		if (a != 'c' && a != 's')
			goto bad;
		int cpu = -1;
		if (p < end && *p == ':') {
			const char *t = ++p;
			while (p < end && *p != ';')
				p++;
			if (parse_thread(s, t, p, &cpu) < 0)
				goto bad;
		}
		if (a == 's' && step_cpu < 0)
			step_cpu = cpu >= 0 ? cpu : (int)s->c_cpu;
		any = true;
	}
	if (!any || p != end)
		goto bad;
	return resume(s, step_cpu, o);
bad:
	outf(o, "E16");
	return GDB_ACT_REPLY;
}

static void cmd_xfer(const char *p, const char *end, struct out *o)
{
	uint64_t off, len;
	if (parse_addr_len(&p, end, &off, &len) < 0 || p != end) {
		outf(o, "E16");
		return;
	}
	size_t total = strlen(gdb_target_xml);
	if (off >= total) {
		outf(o, "l");
		return;
	}
	size_t room = (o->cap - o->len) / 2 - 1; /* framing may escape every byte */
	if (len > room)
		len = room;
	size_t n = total - off < len ? total - off : len;
	outf(o, "%c", off + n < total ? 'm' : 'l');
	out_bytes(o, gdb_target_xml + off, n);
}

static void cmd_q(struct gdb_stub *s, const char *pkt, size_t len, struct out *o)
{
	const char *end = pkt + len;
	if (prefix(pkt, len, "qSupported")) {
		outf(o, "PacketSize=%x;qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+",
		     GDB_PKT_MAX);
	} else if (prefix(pkt, len, "qXfer:features:read:target.xml:")) {
		cmd_xfer(pkt + 31, end, o);
	} else if (prefix(pkt, len, "qXfer:features:read:")) {
		outf(o, "E00");
	} else if (len == 2 && pkt[1] == 'C') {
		outf(o, "QC%x", s->g_cpu + 1);
	} else if (len == 12 && prefix(pkt, len, "qfThreadInfo")) {
		outf(o, "m");
		for (unsigned i = 0; i < s->ncpus; i++)
			outf(o, i ? ",%x" : "%x", i + 1);
	} else if (len == 12 && prefix(pkt, len, "qsThreadInfo")) {
		outf(o, "l");
	} else if (prefix(pkt, len, "qAttached")) {
		outf(o, "1");
	} else if (prefix(pkt, len, "qThreadExtraInfo,")) {
		int cpu;
		if (parse_thread(s, pkt + 17, end, &cpu) < 0 || cpu < 0) {
			outf(o, "E16");
			return;
		}
		char name[32], hex[64];
		int n = snprintf(name, sizeof(name), "vCPU %d", cpu);
		out_bytes(o, hex, gdb_put_hex(hex, (const uint8_t *)name, (size_t)n));
	}
	/* anything else: empty, "not supported" */
}

enum gdb_action gdb_stub_command(struct gdb_stub *s, const char *pkt, size_t len, char *reply, size_t cap,
				 size_t *rlen)
{
	struct out o = { .p = reply, .cap = cap };
	const char *end = pkt + len;
	enum gdb_action act = GDB_ACT_REPLY;
	int cpu;

	reply[0] = '\0';
	if (len == 0)
		goto done;
	switch (pkt[0]) {
	case '?': stop_reply(s, &s->last, &o); break;
	case 'g':
		if (len == 1)
			cmd_g(s, &o);
		break;
	case 'G': cmd_G(s, pkt + 1, end, &o); break;
	case 'p': cmd_p(s, pkt + 1, end, &o, false); break;
	case 'P': cmd_p(s, pkt + 1, end, &o, true); break;
	case 'm': cmd_m(s, pkt + 1, end, &o); break;
	case 'M': cmd_M(s, pkt + 1, end, &o, false); break;
	case 'X': cmd_M(s, pkt + 1, end, &o, true); break;
	case 'Z': cmd_Z(s, pkt + 1, end, &o, true); break;
	case 'z': cmd_Z(s, pkt + 1, end, &o, false); break;
	case 'c': act = cmd_cs(s, pkt + 1, end, &o, false); break;
	case 's': act = cmd_cs(s, pkt + 1, end, &o, true); break;
	case 'H':
		if (len < 3 || (pkt[1] != 'g' && pkt[1] != 'c') || parse_thread(s, pkt + 2, end, &cpu) < 0) {
			outf(&o, "E16");
			break;
		}
		if (cpu > 0 || (cpu == 0 && pkt[1] == 'g'))
			*(pkt[1] == 'g' ? &s->g_cpu : &s->c_cpu) = (unsigned)cpu;
		outf(&o, "OK");
		break;
	case 'T':
		outf(&o, parse_thread(s, pkt + 1, end, &cpu) == 0 && cpu >= 0 ? "OK" : "E16");
		break;
	case 'q': cmd_q(s, pkt, len, &o); break;
	case 'Q':
		if (len == 15 && prefix(pkt, len, "QStartNoAckMode")) {
			outf(&o, "OK");
			s->no_ack = true; /* after this reply, which is still acked */
		}
		break;
	case 'v':
		if (len == 6 && prefix(pkt, len, "vCont?"))
			outf(&o, "vCont;c;C;s;S");
		else if (prefix(pkt, len, "vCont;"))
			act = cmd_vcont(s, pkt + 5, end, &o);
		else if (len == 7 && prefix(pkt, len, "vKill;"))
			act = GDB_ACT_KILL;
		/* vMustReplyEmpty and the rest: empty */
		break;
	case 'D':
		gdb_stub_detach(s);
		outf(&o, "OK");
		act = GDB_ACT_DETACH;
		break;
	case 'k': act = GDB_ACT_KILL; break;
	default: break;
	}
	if (act == GDB_ACT_KILL) {
		gdb_stub_detach(s);
		s->ops->kill(s->t);
		o.len = 0;
		outf(&o, "OK");
	}
done:
	*rlen = o.len;
	return act;
}

enum gdb_verdict gdb_stub_classify(const struct gdb_stub *s, unsigned cpu, const struct vexit *ex,
				   struct gdb_stop *stop)
{
	*stop = (struct gdb_stop){ .cpu = cpu < s->ncpus ? cpu : 0, .kind = GDB_STOP_STEP };
	if (ex->exception == 3) {
		if (find_sw(s, ex->pc) < 0)
			return GDB_DBG_REINJECT;
		stop->kind = GDB_STOP_SWBP;
		return s->attached ? GDB_DBG_STOP : GDB_DBG_IGNORE;
	}
	if (!s->attached)
		return GDB_DBG_IGNORE;
	for (unsigned i = 0; i < GDB_MAX_HW_BP; i++) {
		if (!(ex->dr6 & (1u << i)) || !s->hw[i].used)
			continue;
		if (s->hw[i].type == 1) {
			stop->kind = GDB_STOP_HWBP;
		} else {
			stop->kind = GDB_STOP_WATCH;
			stop->addr = s->hw[i].addr;
			stop->watch_type = s->hw[i].type;
		}
		return GDB_DBG_STOP;
	}
	/* A single step (DR6.BS), or a #DB nothing else explains: a trap. */
	return GDB_DBG_STOP;
}

bool gdb_stub_stopped(struct gdb_stub *s, const struct gdb_stop *stop, char *reply, size_t cap, size_t *rlen)
{
	struct out o = { .p = reply, .cap = cap };
	int ov = s->stepover_cpu;
	if (ov >= 0) {
		uint8_t cc = INT3;
		s->stepover_cpu = -1;
		if (s->sw[s->stepover_bp].used)
			s->ops->write_mem(s->t, (unsigned)ov, s->sw[s->stepover_bp].addr, &cc, 1);
		/* The step over the breakpoint was ours alone: on with the
		 * continue gdb asked for, unless it asked for this step. */
		if (stop->kind == GDB_STOP_STEP && (unsigned)ov == stop->cpu && s->step_cpu == ov &&
		    !s->gdb_step) {
			s->step_cpu = -1;
			if (apply_debug(s) == 0)
				return false;
		}
	}
	s->step_cpu = -1;
	s->last = *stop;
	s->g_cpu = s->c_cpu = stop->cpu;
	apply_debug(s); /* no step left armed */
	stop_reply(s, stop, &o);
	*rlen = o.len;
	return true;
}

void gdb_stub_detach(struct gdb_stub *s)
{
	for (int i = 0; i < GDB_MAX_SW_BP; i++)
		if (s->sw[i].used) {
			s->ops->write_mem(s->t, s->g_cpu, s->sw[i].addr, &s->sw[i].orig, 1);
			s->sw[i].used = false;
		}
	memset(s->hw, 0, sizeof(s->hw));
	s->step_cpu = s->stepover_cpu = -1;
	s->attached = false;
	apply_debug(s);
}
