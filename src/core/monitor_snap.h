/* monitor_snap — the monitor's counters and the policy's rule hits in a
 * snapshot (sections "monitor" and "policy-hits"), so a restored VM's
 * figures go on from the snapshot's. */
#ifndef VIGIL_CORE_MONITOR_SNAP_H
#define VIGIL_CORE_MONITOR_SNAP_H

#include "core/vm.h"

struct snap_writer;
struct snap_reader;

/* With the VM paused. */
void mon_snap_save(struct snap_writer *w, const struct vm *vm);
void mon_snap_save_policy(struct snap_writer *w, const struct policy *p);
/* Before the vCPUs run; devices are matched by id. 0 or -1 (the reader's
 * sticky error says why). */
int mon_snap_restore(struct snap_reader *r, struct vm *vm);
int mon_snap_restore_policy(struct snap_reader *r, const struct policy *p);

#endif
