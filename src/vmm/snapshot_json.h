/* snapshot_json — the snapshot calls' JSON bodies (Firecracker's
 * SnapshotCreateParams, SnapshotLoadParams) checked and carried out on the
 * control thread. */
#ifndef VIGIL_VMM_SNAPSHOT_JSON_H
#define VIGIL_VMM_SNAPSHOT_JSON_H

#include <jansson.h>
#include <stddef.h>

struct vmm;

/* 0 or -1 + err (a bad body, or the call's own failure). With m NULL,
 * vmm_snapshot_load_json only checks the body. */
int vmm_snapshot_create_json(struct vmm *m, json_t *body, char *err, size_t errlen);
int vmm_snapshot_load_json(struct vmm *m, json_t *body, char *err, size_t errlen);

#endif
