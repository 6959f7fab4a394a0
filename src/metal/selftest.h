/* selftest — --selftest KIND, for tests/metal.sh: "libc" checks the shim
 * (heap, conversions, sorting, calendar, formatting) on the machine itself
 * and powers off with 0 or 1; "fault", "abort" and "deadlock" make
 * vigil-metal fail on purpose, to show its own failures end in a line and
 * a poweroff. Never returns. */
#ifndef VIGIL_METAL_SELFTEST_H
#define VIGIL_METAL_SELFTEST_H

__attribute__((noreturn)) void metal_selftest(const char *kind);

#endif
