/* config_json — Firecracker's JSON objects (the API bodies and the
 * --config-file document) decoded into a `struct vm_config` through the
 * config.h setters, and the configuration encoded back (GET /vm/config,
 * GET /machine-config). Used by the API router (api/routes.c), the CLI's
 * --config-file and the fuzz target. Every decoder takes an untrusted
 * jansson value: unknown fields, wrong types and missing required fields are
 * refused with a message naming the field; *c is unchanged on error. */
#ifndef VIGIL_VMM_CONFIG_JSON_H
#define VIGIL_VMM_CONFIG_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "vmm/config.h"

/* Parses text as JSON that must be an object; NULL + err (jansson's reason
 * with line and column) otherwise. The caller json_decref()s it. */
json_t *vmcfg_json_parse(const char *text, size_t len, char *err, size_t errlen);

/* One function per Firecracker object; each 0 or -1 + err. */
int vmcfg_json_machine(struct vm_config *c, json_t *o, char *err, size_t errlen);	/* PUT: replaces */
int vmcfg_json_machine_patch(struct vm_config *c, json_t *o, char *err, size_t errlen); /* PATCH: merges */
int vmcfg_json_boot(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_drive(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_net(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_vsock(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_entropy(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_logger(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_metrics(struct vm_config *c, json_t *o, char *err, size_t errlen);
int vmcfg_json_console(struct vm_config *c, json_t *o, char *err, size_t errlen); /* vigil's */

/* PATCH /drives/{id} (PartialDrive) and PATCH /network-interfaces/{id}
 * (PartialNetworkInterface): checks the body; *path_on_host is "" when the
 * body has none. Nothing in the configuration changes. */
struct vmcfg_drive_patch {
	char drive_id[VMCFG_ID_MAX + 1];
	char path_on_host[PATH_MAX];
};
int vmcfg_json_drive_patch(json_t *o, struct vmcfg_drive_patch *p, char *err, size_t errlen);
int vmcfg_json_net_patch(json_t *o, char iface_id[VMCFG_ID_MAX + 1], char *err, size_t errlen);

/* Only the shape of a body — unknown fields, types, required fields — as
 * Firecracker's parser checks it before the VMM looks at the phase. object:
 * "machine-config", "machine-config-patch", "boot-source", "drive",
 * "drive-patch", "network-interface", "network-interface-patch", "vsock",
 * "entropy", "logger", "metrics". 0 or -1 + err. */
int vmcfg_json_check(const char *object, json_t *o, char *err, size_t errlen);

/* The id field of a body (drive_id, iface_id) if it is a string, else NULL:
 * for the router's "path id must equal body id" check. */
const char *vmcfg_json_id(json_t *o, const char *field);

/* The whole --config-file document (Firecracker's keys and vigil's console,
 * stats, trace), applied all or nothing. */
int vmcfg_load_json(struct vm_config *c, const char *text, size_t len, char *err, size_t errlen);
int vmcfg_load_file(struct vm_config *c, const char *path, char *err, size_t errlen);

/* Encoders: new references, NULL when out of memory. */
json_t *vmcfg_machine_to_json(const struct vmcfg_machine *m);
json_t *vmcfg_to_json(const struct vm_config *c); /* FullVmConfiguration + vigil's keys */

#endif
