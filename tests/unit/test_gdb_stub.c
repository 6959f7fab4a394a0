/* The gdb stub's commands against a fake target (fake_gdb_target.h): each
 * packet gdb sends, its reply, and what it did to registers, memory and
 * guest debug; the classification of debug exits; detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/exit.h"
#include "fake_gdb_target.h"
#include "gdb/gdb_packet.h"

static struct fake_target ft;
static struct gdb_stub stub;
static char reply[GDB_REPLY_MIN + 1024];
static size_t rlen;

static int setup(void **state)
{
	(void)state;
	memset(&ft, 0, sizeof(ft));
	for (unsigned i = 0; i < FT_SIZE; i++)
		ft.mem[i] = (uint8_t)i;
	ft.regs[0].rip = 0x10100;
	ft.regs[0].rax = 0x1122334455667788ull;
	ft.regs[0].rflags = 0x246;
	ft.regs[0].cs.selector = 0x10;
	ft.regs[0].cr3 = 0x9000;
	ft.regs[0].fs.base = 0xabc;
	ft.regs[1].rip = 0x10200;
	gdb_stub_init(&stub, &ft_ops, &ft, FT_CPUS);
	gdb_stub_attach(&stub, 0);
	return 0;
}

static enum gdb_action cmd(const char *p)
{
	enum gdb_action a = gdb_stub_command(&stub, p, strlen(p), reply, sizeof(reply), &rlen);
	reply[rlen] = '\0';
	return a;
}

#define REPLY(p, want)                                  \
	do {                                            \
		assert_int_equal(cmd(p), GDB_ACT_REPLY); \
		assert_string_equal(reply, want);       \
	} while (0)

static void test_queries(void **state)
{
	(void)state;
	cmd("qSupported:multiprocess+;swbreak+;xmlRegisters=i386");
	assert_non_null(strstr(reply, "PacketSize=4000"));
	assert_non_null(strstr(reply, "qXfer:features:read+"));
	assert_non_null(strstr(reply, "QStartNoAckMode+"));
	REPLY("?", "T05thread:1;");
	REPLY("qC", "QC1");
	REPLY("qfThreadInfo", "m1,2");
	REPLY("qsThreadInfo", "l");
	REPLY("qAttached", "1");
	REPLY("vMustReplyEmpty", "");
	REPLY("qTStatus", "");
	REPLY("frobnicate", "");
	REPLY("T2", "OK");
	REPLY("T3", "E16");
	REPLY("Hg2", "OK");
	REPLY("qC", "QC2");
	REPLY("Hg0", "OK");
	REPLY("Hc-1", "OK");
	REPLY("Hg9", "E16");
	REPLY("vCont?", "vCont;c;C;s;S");
	assert_false(stub.no_ack);
	REPLY("QStartNoAckMode", "OK");
	assert_true(stub.no_ack);
}

static void test_target_xml(void **state)
{
	(void)state;
	char all[8192] = "";
	size_t have = 0;
	/* in small pieces, as gdb reads it */
	for (int i = 0; i < 100; i++) {
		char q[80];
		snprintf(q, sizeof(q), "qXfer:features:read:target.xml:%zx,100", have);
		cmd(q);
		assert_true(reply[0] == 'm' || reply[0] == 'l');
		memcpy(all + have, reply + 1, rlen - 1);
		have += rlen - 1;
		if (reply[0] == 'l')
			break;
	}
	all[have] = '\0';
	assert_string_equal(all, gdb_target_xml);
	assert_non_null(strstr(all, "<architecture>i386:x86-64</architecture>"));
	assert_non_null(strstr(all, "org.gnu.gdb.i386.core"));
	assert_non_null(strstr(all, "name=\"fs_base\""));
	assert_non_null(strstr(all, "name=\"cr3\""));
	assert_non_null(strstr(all, "name=\"efer\""));
	REPLY("qXfer:features:read:target.xml:ffffff,10", "l");
	REPLY("qXfer:features:read:other.xml:0,10", "E00");
	REPLY("qXfer:features:read:target.xml:zz", "E16");
}

static void test_registers(void **state)
{
	(void)state;
	cmd("g");
	/* rax first, little-endian; 48 registers: 16*8+8+4+6*4+8*10+8*4+2*8+6*8 bytes */
	assert_int_equal(rlen, 2 * (16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 2 * 8 + 6 * 8));
	assert_memory_equal(reply, "8877665544332211", 16);
	REPLY("p10", "0001010000000000"); /* rip */
	REPLY("p11", "46020000");         /* eflags */
	REPLY("p12", "10000000");         /* cs */
	REPLY("p28", "bc0a000000000000"); /* fs_base */
	REPLY("p2c", "0090000000000000"); /* cr3 */
	REPLY("p18", "00000000000000000000"); /* st0: zero */
	REPLY("p30", "E16");              /* past the last */
	REPLY("P10=0002010000000000", "OK");
	assert_int_equal(ft.regs[0].rip, 0x10200);
	REPLY("P12=33000000", "OK");     /* selectors are not loaded alone */
	assert_int_equal(ft.regs[0].cs.selector, 0x10);
	REPLY("P10=00", "E16");
	REPLY("P10=zz02010000000000", "E16");
	/* G: what g gave, with rbx changed, goes back whole */
	cmd("g");
	char g[2048];
	memcpy(g + 1, reply, rlen + 1);
	g[0] = 'G';
	memcpy(g + 1 + 16, "efbeadde00000000", 16);
	REPLY(g, "OK");
	assert_int_equal(ft.regs[0].rbx, 0xdeadbeef);
	assert_int_equal(ft.regs[0].rax, 0x1122334455667788ull);
	REPLY("G123", "E16");
	/* another thread's registers after Hg */
	REPLY("Hg2", "OK");
	REPLY("p10", "0002010000000000");
}

static void test_memory(void **state)
{
	(void)state;
	REPLY("m10010,4", "10111213");
	REPLY("m20000,1", "E14");             /* outside */
	REPLY("m10010", "E16");
	REPLY("m,4", "E16");
	cmd("m10000,ffffffffffffffff");       /* capped, not trusted */
	assert_int_equal(rlen, 2 * GDB_MAX_MEM);
	REPLY("M10010,2:abcd", "OK");
	assert_int_equal(ft.mem[0x10], 0xab);
	assert_int_equal(ft.mem[0x11], 0xcd);
	REPLY("M10010,2:ab", "E16");          /* length and data disagree */
	REPLY("M10010,ffffffff:ab", "E16");
	char x[] = "X10020,3:a#b";
	assert_int_equal(gdb_stub_command(&stub, x, sizeof(x) - 1, reply, sizeof(reply), &rlen), GDB_ACT_REPLY);
	assert_memory_equal(ft.mem + 0x20, "a#b", 3);
	REPLY("X10020,0:", "OK");
}

static void test_sw_breakpoints(void **state)
{
	(void)state;
	REPLY("Z0,10040,1", "OK");
	assert_int_equal(ft.mem[0x40], 0xcc);
	REPLY("m10040,2", "4041"); /* gdb sees the original byte */
	REPLY("Z0,10040,1", "OK"); /* twice: still one */
	REPLY("M10040,1:99", "OK"); /* a write under a breakpoint keeps it */
	assert_int_equal(ft.mem[0x40], 0xcc);
	REPLY("m10040,1", "99");
	REPLY("Z0,30000,1", "E14");
	/* a debug exit at it is ours; an INT3 elsewhere goes back to the guest */
	struct vexit ex = { .reason = VEXIT_DEBUG, .exception = 3, .pc = 0x10040 };
	struct gdb_stop st;
	assert_int_equal(gdb_stub_classify(&stub, 1, &ex, &st), GDB_DBG_STOP);
	assert_int_equal(st.kind, GDB_STOP_SWBP);
	assert_int_equal(st.cpu, 1);
	ex.pc = 0x10041;
	assert_int_equal(gdb_stub_classify(&stub, 1, &ex, &st), GDB_DBG_REINJECT);
	/* continue intercepts INT3 on every vCPU */
	assert_int_equal(cmd("c"), GDB_ACT_RESUME);
	assert_true(ft.debug[0].sw_bp && ft.debug[1].sw_bp);
	assert_false(ft.debug[0].single_step);
	REPLY("z0,10040,1", "OK");
	assert_int_equal(ft.mem[0x40], 0x99);
}

static void test_step_over_sw_breakpoint(void **state)
{
	(void)state;
	REPLY("Z0,10100,1", "OK"); /* where vCPU 0 stands */
	assert_int_equal(cmd("c"), GDB_ACT_RESUME);
	/* the original instruction is back and vCPU 0 steps alone */
	assert_int_equal(ft.mem[0x100], 0x00);
	assert_true(ft.debug[0].single_step);
	assert_false(ft.debug[1].single_step);
	struct gdb_stop st = { .cpu = 0, .kind = GDB_STOP_STEP };
	/* that step is not reported: the INT3 returns, the continue goes on */
	assert_false(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	assert_int_equal(ft.mem[0x100], 0xcc);
	assert_false(ft.debug[0].single_step);
	/* the next stop is */
	st.kind = GDB_STOP_SWBP;
	assert_true(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	reply[rlen] = '\0';
	assert_string_equal(reply, "T05thread:1;swbreak:;");
}

static void test_hw_breakpoints_and_watchpoints(void **state)
{
	(void)state;
	REPLY("Z1,ffffffff81000000,1", "OK");
	REPLY("Z2,10008,8", "OK");
	REPLY("Z3,10010,4", "OK");
	REPLY("Z4,10020,2", "OK");
	REPLY("Z4,10030,1", "E28"); /* four in all */
	REPLY("Z2,10001,4", "E16"); /* unaligned */
	REPLY("Z2,10000,3", "E16"); /* no such length */
	REPLY("Z9,10000,1", "");    /* not a type */
	assert_int_equal(cmd("vCont;c"), GDB_ACT_RESUME);
	const struct vcpu_debug *d = &ft.debug[1];
	assert_true(d->hw_bp);
	assert_int_equal(d->dr[0], 0xffffffff81000000ull);
	assert_int_equal(d->dr[1], 0x10008);
	/* DR7: L0..L3; exec len 0; write len 8 (10); read/access as RW (11) len 4 (11), len 2 (01) */
	assert_int_equal(d->dr7 & 0xff, 0xaa);
	assert_int_equal((d->dr7 >> 16) & 0xf, 0x0);
	assert_int_equal((d->dr7 >> 20) & 0xf, 0x9);
	assert_int_equal((d->dr7 >> 24) & 0xf, 0xf);
	assert_int_equal((d->dr7 >> 28) & 0xf, 0x7);
	struct vexit ex = { .reason = VEXIT_DEBUG, .exception = 1, .dr6 = 1u << 1 };
	struct gdb_stop st;
	assert_int_equal(gdb_stub_classify(&stub, 0, &ex, &st), GDB_DBG_STOP);
	assert_int_equal(st.kind, GDB_STOP_WATCH);
	assert_true(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	reply[rlen] = '\0';
	assert_string_equal(reply, "T05thread:1;watch:10008;");
	ex.dr6 = 1;
	gdb_stub_classify(&stub, 1, &ex, &st);
	assert_int_equal(st.kind, GDB_STOP_HWBP);
	assert_true(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	reply[rlen] = '\0';
	assert_string_equal(reply, "T05thread:2;hwbreak:;");
	REPLY("qC", "QC2"); /* the stopped thread is current */
	REPLY("z2,10008,8", "OK");
	REPLY("Z4,10030,1", "OK"); /* a slot is free again */
}

static void test_step_and_resume_forms(void **state)
{
	(void)state;
	assert_int_equal(cmd("vCont;s:2;c"), GDB_ACT_RESUME);
	assert_true(ft.debug[1].single_step);
	assert_false(ft.debug[0].single_step);
	struct gdb_stop st = { .cpu = 1, .kind = GDB_STOP_STEP };
	assert_true(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	reply[rlen] = '\0';
	assert_string_equal(reply, "T05thread:2;");
	assert_false(ft.debug[1].single_step); /* no step left armed */
	assert_int_equal(cmd("s"), GDB_ACT_RESUME); /* the current thread: 2 */
	assert_true(ft.debug[1].single_step);
	assert_int_equal(cmd("c10300"), GDB_ACT_RESUME); /* resume at an address */
	assert_int_equal(ft.regs[1].rip, 0x10300);
	assert_false(ft.debug[1].single_step);
	REPLY("vCont;x", "E16");
	REPLY("vCont;s:9", "E16");
	REPLY("czz", "E16");
	assert_int_equal(cmd("vCont;C05:1;c"), GDB_ACT_RESUME);
	st = (struct gdb_stop){ .cpu = 0, .kind = GDB_STOP_INTERRUPT };
	assert_true(gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &rlen));
	reply[rlen] = '\0';
	assert_string_equal(reply, "T02thread:1;");
	REPLY("?", "T02thread:1;");
}

static void test_detach_and_kill(void **state)
{
	(void)state;
	REPLY("Z0,10050,1", "OK");
	REPLY("Z1,10060,1", "OK");
	assert_int_equal(cmd("D"), GDB_ACT_DETACH);
	assert_string_equal(reply, "OK");
	assert_int_equal(ft.mem[0x50], 0x50); /* the original byte is back */
	for (int i = 0; i < FT_CPUS; i++) {
		assert_false(ft.debug[i].sw_bp || ft.debug[i].hw_bp || ft.debug[i].single_step);
	}
	/* detached: nothing of the guest's is stopped for */
	struct vexit ex = { .reason = VEXIT_DEBUG, .exception = 1, .dr6 = 1 };
	struct gdb_stop st;
	assert_int_equal(gdb_stub_classify(&stub, 0, &ex, &st), GDB_DBG_IGNORE);
	gdb_stub_attach(&stub, 0);
	REPLY("Z0,10050,1", "OK");
	assert_int_equal(cmd("k"), GDB_ACT_KILL);
	assert_int_equal(ft.killed, 1);
	assert_int_equal(ft.mem[0x50], 0x50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_queries, setup),
		cmocka_unit_test_setup(test_target_xml, setup),
		cmocka_unit_test_setup(test_registers, setup),
		cmocka_unit_test_setup(test_memory, setup),
		cmocka_unit_test_setup(test_sw_breakpoints, setup),
		cmocka_unit_test_setup(test_step_over_sw_breakpoint, setup),
		cmocka_unit_test_setup(test_hw_breakpoints_and_watchpoints, setup),
		cmocka_unit_test_setup(test_step_and_resume_forms, setup),
		cmocka_unit_test_setup(test_detach_and_kill, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
