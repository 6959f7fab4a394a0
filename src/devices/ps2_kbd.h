/* ps2_kbd — the PS/2 keyboard behind the i8042: its command protocol (reset,
 * identify, LEDs, scancode set, typematic, scanning on/off) and the scancodes
 * of Ctrl+Alt+Del. Pure state machine, no lock and no I/O: the controller
 * (devices/i8042.c) owns it, serialises calls under its own lock and queues
 * the bytes these functions hand back.
 *
 * `xlate` is the controller's translation bit (command byte bit 6). A real
 * 8042 rewrites every keyboard byte from set 2 to set 1 when it is on; this
 * model instead emits the already-translated bytes for the few values where
 * the two differ (the second ID byte, the scancode-set answer, the keys). */
#ifndef VIGIL_DEVICES_PS2_KBD_H
#define VIGIL_DEVICES_PS2_KBD_H

#include <stdbool.h>
#include <stdint.h>

/* Most bytes one call can produce (set 2's Ctrl+Alt+Del make and break). */
#define PS2_KBD_MAX_OUT 11

#define PS2_KBD_ACK    0xfa
#define PS2_KBD_RESEND 0xfe
#define PS2_KBD_BAT_OK 0xaa

struct ps2_kbd {
	uint8_t pending;   /* command waiting for its argument byte, 0 if none */
	uint8_t set;	   /* scancode set 1..3 */
	uint8_t leds;	   /* ScrollLock 0x1, NumLock 0x2, CapsLock 0x4 */
	uint8_t typematic; /* rate/delay byte of 0xf3 */
	uint8_t last;	   /* last byte sent, for 0xfe (resend) */
	bool scanning;	   /* keys are reported (0xf4 on, 0xf5 off) */
};

/* Power-on state: set 2, scanning, LEDs off. */
void ps2_kbd_init(struct ps2_kbd *kb);

/* The guest wrote `byte` to the keyboard (port 0x60 with no controller
 * command pending). Fills out[] with the reply; returns its length (0..3).
 * A byte >= 0x80 while an argument is awaited starts a new command. */
unsigned ps2_kbd_write(struct ps2_kbd *kb, uint8_t byte, bool xlate, uint8_t out[PS2_KBD_MAX_OUT]);

/* Ctrl, Alt, Del pressed then released in that order, in the scancodes the
 * guest asked for. Returns the length (8..11), or 0 when scanning is off. */
unsigned ps2_kbd_ctrl_alt_del(struct ps2_kbd *kb, bool xlate, uint8_t out[PS2_KBD_MAX_OUT]);

struct snap_writer;
struct snap_reader;
/* Snapshots: the keyboard's fields, inside the controller's section.
 * Restore checks them (a scancode set outside 1..3 would index a table)
 * and leaves *kb alone on error: 0 or -1 (snap error set). */
void ps2_kbd_save(const struct ps2_kbd *kb, struct snap_writer *w);
int ps2_kbd_restore(struct ps2_kbd *kb, struct snap_reader *r);

#endif
