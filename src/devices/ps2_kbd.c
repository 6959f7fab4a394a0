/* ps2_kbd — the keyboard's side of the PS/2 protocol (see ps2_kbd.h).
 * Commands follow the IBM PS/2 keyboard reference; every command and every
 * argument is acknowledged with 0xfa, unknown commands get 0xfe. What Linux's
 * atkbd sends at probe time: 0xf2 (get ID), 0xf5 (deactivate), 0xed + LEDs,
 * 0xf3 + rate, 0xf4 (enable); 0xff only with atkbd.reset, 0xf0 only when the
 * controller does not translate. */
#include "devices/ps2_kbd.h"

#include <string.h>

#include "core/snap.h"

#define KBD_SET_LEDS   0xed
#define KBD_ECHO       0xee
#define KBD_SCANSET    0xf0
#define KBD_GET_ID     0xf2
#define KBD_TYPEMATIC  0xf3
#define KBD_ENABLE     0xf4
#define KBD_DISABLE    0xf5
#define KBD_DEFAULTS   0xf6
#define KBD_SET3_FIRST 0xf7 /* 0xf7..0xfd: per-key modes, set 3 only */
#define KBD_SET3_LAST  0xfd
#define KBD_RESEND     0xfe
#define KBD_RESET      0xff

/* An MF2 keyboard answers 0xf2 with 0xab 0x83; through a translating 8042
 * the 0x83 arrives as its set-1 image 0x41 (Linux accepts both). */
#define KBD_ID0	       0xab
#define KBD_ID1	       0x83
#define KBD_ID1_XLATED 0x41

#define KBD_TYPEMATIC_DEFAULT 0x2b /* 10.9 cps, 500 ms */

static void defaults(struct ps2_kbd *kb)
{
	kb->typematic = KBD_TYPEMATIC_DEFAULT;
	kb->pending = 0;
}

void ps2_kbd_init(struct ps2_kbd *kb)
{
	memset(kb, 0, sizeof(*kb));
	defaults(kb);
	kb->set = 2;
	kb->scanning = true;
}

/* The set number as 0xf0 0x00 reports it: through translation it is
 * rewritten like any set-2 code would be (1 -> 0x43, 2 -> 0x41, 3 -> 0x3f). */
static uint8_t set_answer(uint8_t set, bool xlate)
{
	static const uint8_t xlated[4] = {0, 0x43, 0x41, 0x3f};

	return xlate ? xlated[set] : set;
}

static unsigned argument(struct ps2_kbd *kb, uint8_t byte, bool xlate, uint8_t *out)
{
	uint8_t cmd = kb->pending;

	kb->pending = 0;
	switch (cmd) {
	case KBD_SET_LEDS:
		kb->leds = byte & 0x07;
		break;
	case KBD_TYPEMATIC:
		kb->typematic = byte & 0x7f;
		break;
	case KBD_SCANSET:
		if (byte == 0) {
			out[0] = PS2_KBD_ACK;
			out[1] = set_answer(kb->set, xlate);
			return 2;
		}
		if (byte > 3) {
			out[0] = PS2_KBD_RESEND;
			return 1;
		}
		kb->set = byte;
		break;
	}
	out[0] = PS2_KBD_ACK;
	return 1;
}

static unsigned command(struct ps2_kbd *kb, uint8_t byte, bool xlate, uint8_t *out)
{
	kb->pending = 0;
	switch (byte) {
	case KBD_SET_LEDS:
	case KBD_SCANSET:
	case KBD_TYPEMATIC:
		kb->pending = byte;
		break;
	case KBD_ECHO:
		out[0] = KBD_ECHO;
		return 1;
	case KBD_GET_ID:
		out[0] = PS2_KBD_ACK;
		out[1] = KBD_ID0;
		out[2] = xlate ? KBD_ID1_XLATED : KBD_ID1;
		return 3;
	case KBD_ENABLE:
		kb->scanning = true;
		break;
	case KBD_DISABLE:
		/* Also restores the defaults, as on the real keyboard. */
		defaults(kb);
		kb->scanning = false;
		break;
	case KBD_DEFAULTS:
		defaults(kb);
		break;
	case KBD_RESEND:
		out[0] = kb->last;
		return 1;
	case KBD_RESET:
		ps2_kbd_init(kb);
		out[0] = PS2_KBD_ACK;
		out[1] = PS2_KBD_BAT_OK;
		return 2;
	default:
		if (byte >= KBD_SET3_FIRST && byte <= KBD_SET3_LAST)
			break; /* accepted, no effect: every key is make/break */
		out[0] = PS2_KBD_RESEND;
		return 1;
	}
	out[0] = PS2_KBD_ACK;
	return 1;
}

unsigned ps2_kbd_write(struct ps2_kbd *kb, uint8_t byte, bool xlate, uint8_t out[PS2_KBD_MAX_OUT])
{
	/* No argument reaches 0x80 (LEDs 0..7, rate 0..0x7f, set 0..3): a byte
	 * that high is a new command, which lets a driver that lost track
	 * recover with 0xff. */
	bool arg = kb->pending && byte < 0x80;
	unsigned n = arg ? argument(kb, byte, xlate, out) : command(kb, byte, xlate, out);

	/* 0xfe is answered with the previous byte, so it must not replace it. */
	if (n && byte != KBD_RESEND)
		kb->last = out[n - 1];
	return n;
}

unsigned ps2_kbd_ctrl_alt_del(struct ps2_kbd *kb, bool xlate, uint8_t out[PS2_KBD_MAX_OUT])
{
	/* Left Ctrl, left Alt, Delete (an 0xe0-prefixed key) down, then up.
	 * Set 1 breaks are make | 0x80; sets 2 and 3 prefix 0xf0 (after 0xe0). */
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xf0, 0x14, 0xf0, 0x11, 0xe0, 0xf0, 0x71};
	static const uint8_t set3[] = {0x11, 0x19, 0x64, 0xf0, 0x11, 0xf0, 0x19, 0xf0, 0x64};
	const uint8_t *seq = set2;
	unsigned n = sizeof(set2);

	_Static_assert(sizeof(set2) <= PS2_KBD_MAX_OUT, "out[] holds the longest sequence");
	if (!kb->scanning)
		return 0;
	if (xlate || kb->set == 1) {
		seq = set1;
		n = sizeof(set1);
	} else if (kb->set == 3) {
		seq = set3;
		n = sizeof(set3);
	}
	memcpy(out, seq, n);
	kb->last = out[n - 1];
	return n;
}

void ps2_kbd_save(const struct ps2_kbd *kb, struct snap_writer *w)
{
	snap_put_u8(w, kb->pending);
	snap_put_u8(w, kb->set);
	snap_put_u8(w, kb->leds);
	snap_put_u8(w, kb->typematic);
	snap_put_u8(w, kb->last);
	snap_put_bool(w, kb->scanning);
}

int ps2_kbd_restore(struct ps2_kbd *kb, struct snap_reader *r)
{
	struct ps2_kbd t;

	t.pending = snap_get_u8(r);
	t.set = snap_get_u8(r);
	t.leds = snap_get_u8(r);
	t.typematic = snap_get_u8(r);
	t.last = snap_get_u8(r);
	t.scanning = snap_get_bool(r);
	if (snap_error(r)[0])
		return -1;
	/* set indexes set_answer()'s table: 1..3 only. */
	if (t.set < 1 || t.set > 3)
		return snap_fail(r, "keyboard scancode set %u", t.set);
	if (t.pending != 0 && t.pending != KBD_SET_LEDS && t.pending != KBD_SCANSET && t.pending != KBD_TYPEMATIC)
		return snap_fail(r, "keyboard command 0x%02x cannot be waiting for an argument", t.pending);
	if (t.leds > 7 || t.typematic > 0x7f)
		return snap_fail(r, "keyboard LEDs 0x%02x or typematic 0x%02x out of range", t.leds, t.typematic);
	*kb = t;
	return 0;
}
