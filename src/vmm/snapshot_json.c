/* Firecracker's snapshot bodies, SnapshotCreateParams and
 * SnapshotLoadParams, checked field by field as Firecracker's parser does
 * (unknown fields, types, required fields), for PUT /snapshot/create and
 * /snapshot/load and the config file's "snapshot-load". vigil's own
 * addition, "vigil_clone", sits beside Firecracker's fields. */
#include "vmm/snapshot_json.h"

#include <stdio.h>
#include <string.h>

#include "devices/virtio_net.h"
#include "vmm/vmm.h"

struct jctx {
	json_t *body;
	char *err;
	size_t errlen;
};

#define FAIL(...) (snprintf(x->err, x->errlen, __VA_ARGS__), -1)

/* Every key of o is in allowed. */
static int only_keys(struct jctx *x, json_t *o, const char *what, const char *const *allowed)
{
	const char *key;
	json_t *v;
	if (!json_is_object(o))
		return FAIL("%s: must be a JSON object", what);
	json_object_foreach(o, key, v)
	{
		bool ok = false;
		for (unsigned i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			return FAIL("%s: unknown field `%.64s`", what, key);
	}
	return 0;
}

static int get_str(struct jctx *x, json_t *o, const char *what, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v) {
		if (required)
			return FAIL("%s: missing field `%s`", what, key);
		return 0;
	}
	if (!json_is_string(v))
		return FAIL("%s: field `%s` must be a string", what, key);
	*out = json_string_value(v);
	return 0;
}

static int get_bool(struct jctx *x, json_t *o, const char *what, const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return FAIL("%s: field `%s` must be a boolean", what, key);
	*out = json_is_true(v);
	return 0;
}

static int create_json(struct vmm *m, struct jctx *x)
{
	static const char *const fields[] = { "snapshot_path", "mem_file_path", "snapshot_type", NULL };
	struct vmm_snapshot_create r = { 0 };
	const char *type;
	if (only_keys(x, x->body, "snapshot/create", fields) < 0 ||
	    get_str(x, x->body, "snapshot/create", "snapshot_path", true, &r.snapshot_path) < 0 ||
	    get_str(x, x->body, "snapshot/create", "mem_file_path", true, &r.mem_file_path) < 0 ||
	    get_str(x, x->body, "snapshot/create", "snapshot_type", false, &type) < 0)
		return -1;
	if (type && strcmp(type, "Full") && strcmp(type, "Diff"))
		return FAIL("snapshot/create: snapshot_type must be \"Full\" or \"Diff\", not \"%.32s\"", type);
	r.diff = type && !strcmp(type, "Diff");
	return vmm_snapshot_create(m, &r, x->err, x->errlen);
}

static int load_overrides(struct jctx *x, struct vmm_snapshot_load *r)
{
	static const char *const net_fields[] = { "iface_id", "host_dev_name", NULL };
	static const char *const vsock_fields[] = { "uds_path", NULL };
	json_t *v = json_object_get(x->body, "network_overrides"), *e;
	size_t i;
	if (v && !json_is_array(v))
		return FAIL("snapshot/load: field `network_overrides` must be an array");
	json_array_foreach(v, i, e)
	{
		if (r->nr_net == VMCFG_MAX_NETS)
			return FAIL("snapshot/load: network_overrides: at most %d entries", VMCFG_MAX_NETS);
		if (only_keys(x, e, "network_overrides", net_fields) < 0 ||
		    get_str(x, e, "network_overrides", "iface_id", true, &r->net[r->nr_net].iface_id) < 0 ||
		    get_str(x, e, "network_overrides", "host_dev_name", true, &r->net[r->nr_net].host_dev_name) < 0)
			return -1;
		r->nr_net++;
	}
	if ((v = json_object_get(x->body, "vsock_override")) &&
	    (only_keys(x, v, "vsock_override", vsock_fields) < 0 ||
	     get_str(x, v, "vsock_override", "uds_path", true, &r->vsock_uds) < 0))
		return -1;
	return 0;
}

/* vigil_clone {instance_id, guest_cid, guest_macs: [{iface_id, guest_mac}]} */
static int load_clone(struct jctx *x, struct vmm_snapshot_load *r)
{
	static const char *const fields[] = { "instance_id", "guest_cid", "guest_macs", NULL };
	static const char *const mac_fields[] = { "iface_id", "guest_mac", NULL };
	json_t *o = json_object_get(x->body, "vigil_clone"), *v, *e;
	size_t i;
	if (!o)
		return 0;
	if (only_keys(x, o, "vigil_clone", fields) < 0 ||
	    get_str(x, o, "vigil_clone", "instance_id", false, &r->instance_id) < 0)
		return -1;
	if ((v = json_object_get(o, "guest_cid"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 3 || json_integer_value(v) > 0xffffffffLL)
			return FAIL("vigil_clone: guest_cid must be an integer from 3 to 4294967295");
		r->has_cid = true;
		r->cid = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(o, "guest_macs")) && !json_is_array(v))
		return FAIL("vigil_clone: field `guest_macs` must be an array");
	json_array_foreach(v, i, e)
	{
		const char *mac;
		if (r->nr_mac == VMCFG_MAX_NETS)
			return FAIL("vigil_clone: guest_macs: at most %d entries", VMCFG_MAX_NETS);
		if (only_keys(x, e, "guest_macs", mac_fields) < 0 ||
		    get_str(x, e, "guest_macs", "iface_id", true, &r->mac[r->nr_mac].iface_id) < 0 ||
		    get_str(x, e, "guest_macs", "guest_mac", true, &mac) < 0)
			return -1;
		if (virtio_net_parse_mac(mac, r->mac[r->nr_mac].mac) < 0)
			return FAIL("vigil_clone: guest_mac \"%.32s\" is not a unicast MAC address (aa:bb:cc:dd:ee:ff)", mac);
		r->nr_mac++;
	}
	return 0;
}

/* m NULL: only checks the body (the config file's "snapshot-load"). */
static int load_json(struct vmm *m, struct jctx *x)
{
	static const char *const fields[] = { "snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
					      "track_dirty_pages", "resume_vm", "network_overrides", "vsock_override",
					      "clock_realtime", "vigil_clone", NULL };
	static const char *const be_fields[] = { "backend_type", "backend_path", NULL };
	struct vmm_snapshot_load r = { 0 };
	const char *mem_file, *type = NULL, *path = NULL;
	bool diff_old = false, realtime = false;
	json_t *be = json_object_get(x->body, "mem_backend");

	if (only_keys(x, x->body, "snapshot/load", fields) < 0 ||
	    get_str(x, x->body, "snapshot/load", "snapshot_path", true, &r.snapshot_path) < 0 ||
	    get_str(x, x->body, "snapshot/load", "mem_file_path", false, &mem_file) < 0 ||
	    get_bool(x, x->body, "snapshot/load", "enable_diff_snapshots", &diff_old) < 0 ||
	    get_bool(x, x->body, "snapshot/load", "track_dirty_pages", &r.track_dirty_pages) < 0 ||
	    get_bool(x, x->body, "snapshot/load", "resume_vm", &r.resume_vm) < 0 ||
	    get_bool(x, x->body, "snapshot/load", "clock_realtime", &realtime) < 0)
		return -1;
	if (be && (only_keys(x, be, "mem_backend", be_fields) < 0 ||
		   get_str(x, be, "mem_backend", "backend_type", true, &type) < 0 ||
		   get_str(x, be, "mem_backend", "backend_path", true, &path) < 0))
		return -1;
	/* Firecracker's own words for these two. */
	if (!be && !mem_file)
		return FAIL("missing field: either `mem_backend` or `mem_file_path` is required");
	if (be && mem_file)
		return FAIL("too many fields: either `mem_backend` or `mem_file_path` exclusively is required.");
	if (type && strcmp(type, "File") && strcmp(type, "Uffd"))
		return FAIL("mem_backend: backend_type must be \"File\" or \"Uffd\", not \"%.32s\"", type);
	if (type && !strcmp(type, "Uffd"))
		r.uffd_path = path;
	else
		r.mem_path = be ? path : mem_file;
	r.track_dirty_pages = r.track_dirty_pages || diff_old; /* the deprecated name */
	if (load_overrides(x, &r) < 0 || load_clone(x, &r) < 0)
		return -1;
	return m ? vmm_snapshot_load(m, &r, x->err, x->errlen) : 0;
}

int vmm_snapshot_create_json(struct vmm *m, json_t *body, char *err, size_t errlen)
{
	struct jctx x = { .body = body, .err = err, .errlen = errlen };
	return create_json(m, &x);
}

int vmm_snapshot_load_json(struct vmm *m, json_t *body, char *err, size_t errlen)
{
	struct jctx x = { .body = body, .err = err, .errlen = errlen };
	return load_json(m, &x);
}
