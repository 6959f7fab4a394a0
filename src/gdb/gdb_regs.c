/* The register file of gdb_regs.h. */
#include "gdb/gdb_regs.h"

#include <stdbool.h>
#include <string.h>

#include "core/le.h"

/* x86-64 only: gdb's amd64 core (its x87 registers read as zero), the FS/GS
 * bases, and the control registers in a feature of vigil's own. The order
 * here is the register numbering of g/G/p/P. */
const char gdb_target_xml[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
	"<target version=\"1.0\">\n"
	"<architecture>i386:x86-64</architecture>\n"
	"<feature name=\"org.gnu.gdb.i386.core\">\n"
	"<flags id=\"i386_eflags\" size=\"4\">"
	"<field name=\"CF\" start=\"0\" end=\"0\"/>"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
	"<field name=\"ID\" start=\"21\" end=\"21\"/></flags>\n"
	"<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
	"<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
	"<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
	"<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>\n"
	"<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"</feature>\n"
	"<feature name=\"org.gnu.gdb.i386.segments\">\n"
	"<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/>\n"
	"<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
	"</feature>\n"
	"<feature name=\"org.vigil.x86.control\">\n"
	"<reg name=\"cr0\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"<reg name=\"cr2\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"<reg name=\"cr3\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"<reg name=\"cr4\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"<reg name=\"cr8\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"<reg name=\"efer\" bitsize=\"64\" type=\"int64\" group=\"system\"/>\n"
	"</feature>\n"
	"</target>\n";

/* Register numbers of the description above. */
enum { R_RIP = 16, R_EFLAGS, R_CS, R_SS, R_DS, R_ES, R_FS, R_GS, R_ST0, R_FCTRL = 32, R_FS_BASE = 40,
       R_GS_BASE, R_CR0, R_CR2, R_CR3, R_CR4, R_CR8, R_EFER };
_Static_assert(R_EFER + 1 == GDB_NR_REGS, "the description and GDB_NR_REGS agree");

unsigned gdb_reg_size(unsigned r)
{
	if (r < R_EFLAGS || (r >= R_FS_BASE && r < GDB_NR_REGS))
		return 8;
	if (r >= R_ST0 && r < R_FCTRL)
		return 10;
	return 4;
}

/* The register's place in struct vcpu_state; NULL for the x87 ones, which
 * read as zero and ignore writes. *seg: a selector (16 bits held). */
static void *reg_ptr(struct vcpu_state *s, unsigned r, bool *seg)
{
	uint64_t *gpr[16] = { &s->rax, &s->rbx, &s->rcx, &s->rdx, &s->rsi, &s->rdi, &s->rbp, &s->rsp,
			      &s->r8,  &s->r9,  &s->r10, &s->r11, &s->r12, &s->r13, &s->r14, &s->r15 };
	struct x86_seg *segs[6] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs };
	*seg = false;
	if (r < 16)
		return gpr[r];
	if (r >= R_CS && r <= R_GS) {
		*seg = true;
		return &segs[r - R_CS]->selector;
	}
	switch (r) {
	case R_RIP: return &s->rip;
	case R_EFLAGS: return &s->rflags;
	case R_FS_BASE: return &s->fs.base;
	case R_GS_BASE: return &s->gs.base;
	case R_CR0: return &s->cr0;
	case R_CR2: return &s->cr2;
	case R_CR3: return &s->cr3;
	case R_CR4: return &s->cr4;
	case R_CR8: return &s->cr8;
	case R_EFER: return &s->efer;
	}
	return NULL;
}

/* Register r's value, little-endian, into out (gdb_reg_size(r) bytes). */
void gdb_reg_get(struct vcpu_state *s, unsigned r, uint8_t *out)
{
	bool seg;
	void *p = reg_ptr(s, r, &seg);
	unsigned n = gdb_reg_size(r);
	uint64_t v = 0;

	memset(out, 0, n);
	if (!p)
		return;
	if (seg)
		v = *(uint16_t *)p;
	else
		v = *(uint64_t *)p;
	le_store(out, n, v);
}

/* Segment selectors are shown, not loaded: writing one alone would leave
 * the hidden part stale, so such writes are dropped. */
void gdb_reg_set(struct vcpu_state *s, unsigned r, const uint8_t *in)
{
	bool seg;
	void *p = reg_ptr(s, r, &seg);
	unsigned n = gdb_reg_size(r);

	if (!p || seg)
		return;
	uint64_t v = le_load(in, n);
	if (r == R_EFLAGS)
		v = (s->rflags & ~0xffffffffull) | (v & 0xffffffffull);
	*(uint64_t *)p = v;
}

