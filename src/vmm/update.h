/* update — changes to a running VM's devices that the API's post-boot PATCH
 * calls ask for (Firecracker's PATCH /drives/{id} and PATCH
 * /network-interfaces/{id}). Declared for the API router (api/routes.c);
 * implemented by the VMM beside the builder. Control thread only. */
#ifndef VIGIL_VMM_UPDATE_H
#define VIGIL_VMM_UPDATE_H

#include <stddef.h>

struct vmm;

/* Points the running drive `id` at a new backing file (path_on_host; the
 * guest sees a capacity change), as Firecracker does after a host-side
 * resize or swap. path_on_host NULL: nothing to change but the (refused
 * unless zero) rate limiter, which the router has already checked.
 * 0, or -1 + err ("drive 'x' does not exist", the file does not open). */
int vmm_update_drive(struct vmm *m, const char *id, const char *path_on_host, char *err, size_t errlen);

/* PATCH /network-interfaces/{id}: only rate limiters can change, and vigil
 * has none, so this checks that the interface exists. 0 or -1 + err. */
int vmm_update_net(struct vmm *m, const char *id, char *err, size_t errlen);

#endif
