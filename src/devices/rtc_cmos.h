/* rtc_cmos — the PC's MC146818 real-time clock and its 128 bytes of CMOS RAM.
 * Portable device model. The VM registers rtc_cmos_io() on the port bus at
 * PORT_RTC (2 ports: index, data). The clock reads the host's UTC wall
 * clock (a core/clock.h source) at each read; a guest that sets the time (hwclock -w) moves an
 * offset from the host clock, never the host clock itself. No periodic,
 * alarm or update interrupts are generated; `irq` (IRQ_RTC) is kept so
 * they can be added without changing the API. */
#ifndef VIGIL_DEVICES_RTC_CMOS_H
#define VIGIL_DEVICES_RTC_CMOS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/clock.h"
#include "core/irq.h"

struct rtc_cmos;
struct vdev;
struct snap_writer;
struct snap_reader;

/* NULL on ENOMEM. The wall clock is `clk`'s (copied). */
struct rtc_cmos *rtc_cmos_new(struct irq_line irq, const struct vclock *clk);

/* For tests: `now` is the host clock. */
struct rtc_cmos *rtc_cmos_new_with_clock(struct irq_line irq, time_t (*now)(void));

void rtc_cmos_free(struct rtc_cmos *r);

/* The RESET line: interrupt enables and flags cleared, the interrupt
 * lowered; the time and the CMOS RAM (battery-backed) stay. */
void rtc_cmos_reset(struct rtc_cmos *r);

/* bus_io_fn. Offset 0 is the index port (bit 7, the NMI mask, ignored;
 * reads 0xff), offset 1 the data port. A wide access is a byte access to
 * its first byte; the other bytes of a wide read are 0xff. */
void rtc_cmos_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Snapshots (vdev_ops.save/restore; d->impl is the RTC): the CMOS bytes,
 * the index and the guest's clock offset. After a restore the guest clock
 * runs on from the host's wall clock with the saved offset (as a
 * battery-backed clock does while the machine is off), but never behind
 * the time it showed at the save. 0 or -1 (snap error set). */
int rtc_cmos_save(struct vdev *d, struct snap_writer *w);
int rtc_cmos_restore(struct vdev *d, struct snap_reader *r);

#endif
