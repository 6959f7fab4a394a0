#include "devices/rtc_cmos.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"

#define RTC_SEC     0x00
#define RTC_MIN     0x02
#define RTC_HOUR    0x04
#define RTC_WDAY    0x06
#define RTC_MDAY    0x07
#define RTC_MON     0x08
#define RTC_YEAR    0x09
#define RTC_REG_A   0x0a
#define RTC_REG_B   0x0b
#define RTC_REG_C   0x0c
#define RTC_REG_D   0x0d
#define RTC_CENTURY 0x32 /* the index vigil's FADT names */
#define RTC_RAM_SIZE 128

#define RTC_A_UIP   0x80
#define RTC_B_SET   0x80
#define RTC_B_DM    0x04 /* binary, not BCD */
#define RTC_B_24H   0x02
#define RTC_D_VRT   0x80 /* battery good: RAM and time valid */
#define RTC_HOUR_PM 0x80

struct rtc_cmos {
	pthread_mutex_t lock;
	struct irq_line irq;
	time_t (*now)(void); /* tests' clock, or NULL: clk's wall clock */
	struct vclock clk;
	int64_t offset; /* guest time minus host time, seconds */
	uint8_t index;
	/* Time registers hold the last latched time: they are only
	 * meaningful while B.SET freezes them for the guest to overwrite. */
	uint8_t ram[RTC_RAM_SIZE];
};

static int64_t rtc_now(const struct rtc_cmos *r)
{
	return r->now ? (int64_t)r->now() : vclock_wall_s(&r->clk);
}

static bool rtc_is_time_reg(uint8_t i)
{
	switch (i) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MON: case RTC_YEAR: case RTC_CENTURY:
		return true;
	default:
		return false;
	}
}

static uint8_t rtc_enc(uint8_t b, int v)
{
	if (v < 0)
		v = 0;
	if (b & RTC_B_DM)
		return (uint8_t)v;
	v %= 100;
	return (uint8_t)((v / 10) << 4 | v % 10);
}

/* Hostile BCD (nibbles above 9) decodes to an out-of-range value that
 * timegm() normalizes; it cannot index anything. */
static int rtc_dec(uint8_t b, uint8_t v)
{
	return (b & RTC_B_DM) ? v : (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_enc_hour(uint8_t b, int h)
{
	if (b & RTC_B_24H)
		return rtc_enc(b, h);
	return (uint8_t)(rtc_enc(b, h % 12 == 0 ? 12 : h % 12) | (h >= 12 ? RTC_HOUR_PM : 0));
}

static int rtc_dec_hour(uint8_t b, uint8_t v)
{
	if (b & RTC_B_24H)
		return rtc_dec(b, v);
	return rtc_dec(b, (uint8_t)(v & ~RTC_HOUR_PM)) % 12 + ((v & RTC_HOUR_PM) ? 12 : 0);
}

/* Copies the guest's current time into the time registers, in the
 * format register B asks for. */
static void rtc_latch(struct rtc_cmos *r)
{
	time_t t = (time_t)((int64_t)rtc_now(r) + r->offset);
	uint8_t b = r->ram[RTC_REG_B];
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_mday = 1;
	}
	int year = tm.tm_year + 1900;
	r->ram[RTC_SEC] = rtc_enc(b, tm.tm_sec);
	r->ram[RTC_MIN] = rtc_enc(b, tm.tm_min);
	r->ram[RTC_HOUR] = rtc_enc_hour(b, tm.tm_hour);
	r->ram[RTC_WDAY] = rtc_enc(b, tm.tm_wday + 1);
	r->ram[RTC_MDAY] = rtc_enc(b, tm.tm_mday);
	r->ram[RTC_MON] = rtc_enc(b, tm.tm_mon + 1);
	r->ram[RTC_YEAR] = rtc_enc(b, year % 100);
	r->ram[RTC_CENTURY] = rtc_enc(b, year / 100);
}

/* Takes the time registers, as the guest left them, as the new guest
 * time. The day of the week is derived from the date, so it is ignored. */
static void rtc_commit(struct rtc_cmos *r, uint8_t b)
{
	struct tm tm = {
		.tm_sec = rtc_dec(b, r->ram[RTC_SEC]),
		.tm_min = rtc_dec(b, r->ram[RTC_MIN]),
		.tm_hour = rtc_dec_hour(b, r->ram[RTC_HOUR]),
		.tm_mday = rtc_dec(b, r->ram[RTC_MDAY]),
		.tm_mon = rtc_dec(b, r->ram[RTC_MON]) - 1,
		.tm_year = rtc_dec(b, r->ram[RTC_CENTURY]) * 100 + rtc_dec(b, r->ram[RTC_YEAR]) - 1900,
	};
	time_t t = timegm(&tm);

	if (t != (time_t)-1)
		r->offset = (int64_t)t - (int64_t)rtc_now(r);
}

static void rtc_write_b(struct rtc_cmos *r, uint8_t v)
{
	uint8_t old = r->ram[RTC_REG_B];

	/* The guest wrote the time in the format in force while SET was on. */
	if ((old & RTC_B_SET) && !(v & RTC_B_SET))
		rtc_commit(r, old);
	r->ram[RTC_REG_B] = v;
	/* Freeze the time so fields the guest does not rewrite keep their
	 * values (Linux writes no century, DOS no day of week). */
	if ((v & RTC_B_SET) && !(old & RTC_B_SET))
		rtc_latch(r);
}

static void rtc_write(struct rtc_cmos *r, uint8_t v)
{
	uint8_t i = r->index;

	switch (i) {
	case RTC_REG_A:
		r->ram[i] = (uint8_t)(v & ~RTC_A_UIP);
		return;
	case RTC_REG_B:
		rtc_write_b(r, v);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return; /* read-only */
	}
	if (rtc_is_time_reg(i) && !(r->ram[RTC_REG_B] & RTC_B_SET)) {
		/* A single field written on the running clock. */
		rtc_latch(r);
		r->ram[i] = v;
		rtc_commit(r, r->ram[RTC_REG_B]);
		return;
	}
	r->ram[i] = v;
}

static uint8_t rtc_read(struct rtc_cmos *r)
{
	uint8_t i = r->index, v;

	switch (i) {
	case RTC_REG_A:
		/* UIP never set: the guest's wait for the end of an update
		 * ends at once, and reads are never torn anyway. */
		return (uint8_t)(r->ram[i] & ~RTC_A_UIP);
	case RTC_REG_C:
		v = r->ram[i];
		r->ram[i] = 0;
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	}
	if (rtc_is_time_reg(i) && !(r->ram[RTC_REG_B] & RTC_B_SET))
		rtc_latch(r);
	return r->ram[i];
}

void rtc_cmos_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc_cmos *r = dev;

	if (len == 0)
		return;
	if (!is_write)
		memset(data, 0xff, len);
	if (offset != 1 && !(offset == 0 && is_write))
		return; /* the index port is write-only */
	pthread_mutex_lock(&r->lock);
	if (offset == 0)
		r->index = data[0] & (RTC_RAM_SIZE - 1);
	else if (is_write)
		rtc_write(r, data[0]);
	else
		data[0] = rtc_read(r);
	pthread_mutex_unlock(&r->lock);
}

static struct rtc_cmos *rtc_new(struct irq_line irq, time_t (*now)(void), const struct vclock *clk)
{
	struct rtc_cmos *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->irq = irq;
	r->now = now;
	if (clk)
		r->clk = *clk;
	/* What a PC BIOS leaves: 32.768 kHz divider, 1024 Hz rate, 24-hour
	 * BCD, time valid. */
	r->ram[RTC_REG_A] = 0x26;
	r->ram[RTC_REG_B] = RTC_B_24H;
	r->ram[RTC_REG_D] = RTC_D_VRT;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

struct rtc_cmos *rtc_cmos_new_with_clock(struct irq_line irq, time_t (*now)(void))
{
	return rtc_new(irq, now, NULL);
}

struct rtc_cmos *rtc_cmos_new(struct irq_line irq, const struct vclock *clk)
{
	return rtc_new(irq, NULL, clk);
}

void rtc_cmos_free(struct rtc_cmos *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void rtc_cmos_reset(struct rtc_cmos *r)
{
	/* RESET on an MC146818 clears the interrupt enables (PIE, AIE, UIE),
	 * SQWE and the flags in C; the time, the alarm and the RAM are
	 * battery-backed and stay. */
	pthread_mutex_lock(&r->lock);
	r->ram[RTC_REG_B] &= (uint8_t)~0x78;
	r->ram[RTC_REG_C] = 0;
	irq_set(&r->irq, 0);
	pthread_mutex_unlock(&r->lock);
}

/* ---- snapshots ---------------------------------------------------------- */

#define RTC_SNAP_VERSION 1

/* The CMOS bytes, the index, the guest's offset from the host's wall clock
 * and the guest time it made at the save. The offset is what keeps a
 * guest-set clock (hwclock -w) where the guest put it; the guest time at the
 * save keeps the clock from running backwards on a host whose clock is
 * behind the saving host's. */
int rtc_cmos_save(struct vdev *d, struct snap_writer *w)
{
	struct rtc_cmos *r = d->impl;

	pthread_mutex_lock(&r->lock);
	snap_begin(w, d->id, d->kind, RTC_SNAP_VERSION);
	snap_put(w, r->ram, RTC_RAM_SIZE);
	snap_put_u8(w, r->index);
	snap_put_u64(w, (uint64_t)r->offset);
	snap_put_u64(w, (uint64_t)(rtc_now(r) + r->offset));
	snap_end(w);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Offsets beyond this many seconds (about 290,000 years) are not a clock
 * anyone set: they would overflow time_t arithmetic. */
#define RTC_OFFSET_MAX (INT64_C(1) << 53)

int rtc_cmos_restore(struct vdev *d, struct snap_reader *sr)
{
	struct rtc_cmos *r = d->impl;
	uint8_t ram[RTC_RAM_SIZE];

	if (snap_open_section(sr, d->id, d->kind, RTC_SNAP_VERSION, NULL) < 0)
		return -1;
	snap_get(sr, ram, sizeof(ram));
	uint8_t index = snap_get_u8(sr);
	int64_t offset = (int64_t)snap_get_u64(sr);
	int64_t guest_then = (int64_t)snap_get_u64(sr);
	if (snap_status(sr, NULL, 0) < 0)
		return -1;
	if (index >= RTC_RAM_SIZE)
		return snap_fail(sr, "CMOS index %u (at most %u)", index, RTC_RAM_SIZE - 1);
	if (offset > RTC_OFFSET_MAX || offset < -RTC_OFFSET_MAX || guest_then > RTC_OFFSET_MAX ||
	    guest_then < -RTC_OFFSET_MAX)
		return snap_fail(sr, "clock offset %lld s is out of range", (long long)offset);

	pthread_mutex_lock(&r->lock);
	memcpy(r->ram, ram, sizeof(ram));
	r->ram[RTC_REG_A] &= (uint8_t)~RTC_A_UIP;
	r->ram[RTC_REG_D] = RTC_D_VRT;
	r->index = index;
	int64_t now = rtc_now(r);
	r->offset = now + offset >= guest_then ? offset : guest_then - now;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
