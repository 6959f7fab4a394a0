/* fuzz_gdb — libFuzzer target for the gdb stub's input side: the packet
 * framing (src/gdb/gdb_packet.c) and the command decoder (src/gdb/gdb_stub.c)
 * over a fake target (tests/unit/fake_gdb_target.h). The input is the byte
 * stream a client sends; every packet it completes is decoded and answered,
 * the answer framed, and after each one the stub's promises are checked: a
 * reply fits its buffer, breakpoint tables stay within bounds, a detach
 * leaves no 0xCC and no guest debug behind. Debug exits are classified at
 * random points too. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/exit.h"
#include "fake_gdb_target.h"
#include "gdb/gdb_packet.h"

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static struct fake_target ft;
static struct gdb_stub stub;
static struct gdb_rx rx;
static char reply[GDB_REPLY_MIN + GDB_PKT_MAX];
static char framed[2 * sizeof(reply) + 8];
static uint8_t pristine[FT_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The same 64 KiB pattern every run: made once, copied in after (a loop
	 * of 65,536 instrumented compares per run was most of its cost). */
	static bool made;
	if (!made) {
		for (unsigned i = 0; i < FT_SIZE; i++)
			pristine[i] = (uint8_t)(i * 7 + 1);
		made = true;
	}
	memset(&ft, 0, sizeof(ft));
	memcpy(ft.mem, pristine, FT_SIZE);
	ft.regs[0].rip = FT_BASE + 0x100;
	gdb_stub_init(&stub, &ft_ops, &ft, FT_CPUS);
	gdb_stub_attach(&stub, 0);
	gdb_rx_init(&rx);
	bool dirty = false; /* memory written through M/X: 0xCC checks off */
	for (size_t i = 0; i < size; i++) {
		enum gdb_rx_event e = gdb_rx_byte(&rx, data[i]);
		CHECK(rx.len <= GDB_PKT_MAX);
		if (e == GDB_RX_INTERRUPT) {
			struct vexit ex = { .reason = VEXIT_DEBUG, .exception = i & 1 ? 3 : 1,
					    .pc = FT_BASE + (data[i] * 16u), .dr6 = data[i] };
			struct gdb_stop st;
			gdb_stub_classify(&stub, data[i] & 1, &ex, &st);
			CHECK(st.cpu < FT_CPUS);
			size_t n;
			if (gdb_stub_stopped(&stub, &st, reply, sizeof(reply), &n))
				CHECK(n < sizeof(reply));
			continue;
		}
		if (e != GDB_RX_PACKET)
			continue;
		if (rx.len && (rx.buf[0] == 'M' || rx.buf[0] == 'X'))
			dirty = true;
		size_t n = 0;
		enum gdb_action a = gdb_stub_command(&stub, rx.buf, rx.len, reply, sizeof(reply), &n);
		CHECK(n < sizeof(reply));
		CHECK(gdb_frame(framed, sizeof(framed), reply, n) > 0);
		for (int b = 0; b < GDB_MAX_SW_BP; b++)
			if (stub.sw[b].used)
				CHECK(stub.sw[b].addr - FT_BASE < FT_SIZE);
		if (a == GDB_ACT_DETACH || a == GDB_ACT_KILL) {
			for (unsigned c = 0; c < FT_CPUS; c++)
				CHECK(!ft.debug[c].sw_bp && !ft.debug[c].hw_bp && !ft.debug[c].single_step);
			if (!dirty)
				CHECK(memcmp(ft.mem, pristine, FT_SIZE) == 0);
			gdb_stub_attach(&stub, 0);
		}
	}
	return 0;
}
