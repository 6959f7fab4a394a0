/* config_json — Firecracker's JSON objects → struct vm_config, through the
 * config.h setters so the API, the config file and the command line share
 * one set of checks. See config_json.h. Everything here reads hostile input:
 * each object is first checked against a field table (names, types,
 * required), then copied with explicit length limits. */
#include "vmm/config_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "devices/virtio_net.h"

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

enum jtype { JT_STR, JT_BOOL, JT_UINT, JT_OBJ, JT_ARR };

struct jfield {
	const char *name;
	enum jtype type;
	bool required;
};

static const char *jtype_name(enum jtype t)
{
	switch (t) {
	case JT_STR:
		return "a string";
	case JT_BOOL:
		return "a boolean";
	case JT_UINT:
		return "a non-negative integer";
	case JT_OBJ:
		return "an object";
	case JT_ARR:
		return "an array";
	}
	return "?";
}

static bool jtype_ok(json_t *v, enum jtype t)
{
	switch (t) {
	case JT_STR:
		return json_is_string(v);
	case JT_BOOL:
		return json_is_boolean(v);
	case JT_UINT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case JT_OBJ:
		return json_is_object(v);
	case JT_ARR:
		return json_is_array(v);
	}
	return false;
}

/* A null value counts as absent, as serde's Option does: Firecracker's own
 * config files carry "initrd_path": null and the like. */
static int check_fields(json_t *o, const char *what, const struct jfield *f, size_t n, char *err,
			size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return errmsg(err, errlen, "%s: expected a JSON object", what);
	json_object_foreach(o, key, v)
	{
		size_t i;
		for (i = 0; i < n && strcmp(f[i].name, key); i++)
			;
		if (i == n)
			return errmsg(err, errlen, "%s: unknown field `%.64s`", what, key);
		if (!json_is_null(v) && !jtype_ok(v, f[i].type))
			return errmsg(err, errlen, "%s: field `%s` must be %s", what, key,
				      jtype_name(f[i].type));
	}
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(o, f[i].name);
		if (f[i].required && (!v || json_is_null(v)))
			return errmsg(err, errlen, "%s: missing field `%s`", what, f[i].name);
	}
	return 0;
}

static json_t *get(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_null(v) ? NULL : v;
}

static const char *get_str(json_t *o, const char *name)
{
	json_t *v = get(o, name);
	return v ? json_string_value(v) : NULL;
}

static bool get_bool(json_t *o, const char *name, bool dflt)
{
	json_t *v = get(o, name);
	return v ? json_is_true(v) : dflt;
}

/* Copies a present string field into dst; refuses one that does not fit. */
static int copy_str(char *dst, size_t size, json_t *o, const char *what, const char *name, char *err,
		    size_t errlen)
{
	json_t *v = get(o, name);
	if (!v)
		return 0;
	if (json_string_length(v) >= size)
		return errmsg(err, errlen, "%s: field `%s` is too long (at most %zu bytes)", what, name,
			      size - 1);
	/* jansson refuses \u0000 unless asked, so the length is the C length. */
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int one_of(const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

json_t *vmcfg_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

	if (!o) {
		errmsg(err, errlen, "Invalid JSON: %s at line %d column %d", je.text, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		errmsg(err, errlen, "Invalid JSON: the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* ---- rate limiters ------------------------------------------------------ */

/* Firecracker's TokenBucket {size*, one_time_burst, refill_time*}. vigil has
 * no rate limiting, so only an all-zero bucket (which Firecracker treats as
 * "no limit") is accepted. */
static const struct jfield bucket_fields[] = {
    {"size", JT_UINT, true},
    {"one_time_burst", JT_UINT, false},
    {"refill_time", JT_UINT, true},
};

static int check_bucket(json_t *b, const char *what, char *err, size_t errlen)
{
	if (check_fields(b, what, bucket_fields, NFIELDS(bucket_fields), err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < NFIELDS(bucket_fields); i++) {
		json_t *v = get(b, bucket_fields[i].name);
		if (v && json_integer_value(v) != 0)
			return errmsg(err, errlen,
				      "%s: vigil does not support rate limiting (only zero buckets)", what);
	}
	return 0;
}

static const struct jfield rate_limiter_fields[] = {
    {"bandwidth", JT_OBJ, false},
    {"ops", JT_OBJ, false},
};

static int check_rate_limiter(json_t *o, const char *owner, const char *name, char *err, size_t errlen)
{
	char what[96];
	json_t *rl = get(o, name);

	if (!rl)
		return 0;
	snprintf(what, sizeof(what), "%s.%s", owner, name);
	if (check_fields(rl, what, rate_limiter_fields, NFIELDS(rate_limiter_fields), err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < NFIELDS(rate_limiter_fields); i++) {
		json_t *b = get(rl, rate_limiter_fields[i].name);
		char bw[128];
		snprintf(bw, sizeof(bw), "%s.%s", what, rate_limiter_fields[i].name);
		if (b && check_bucket(b, bw, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* ---- machine-config ----------------------------------------------------- */

static const struct jfield machine_fields[] = {
    {"vcpu_count", JT_UINT, true},	   {"mem_size_mib", JT_UINT, true}, {"smt", JT_BOOL, false},
    {"track_dirty_pages", JT_BOOL, false}, {"huge_pages", JT_STR, false},   {"cpu_template", JT_STR, false},
};
#define NR_MACHINE_FIELDS NFIELDS(machine_fields)

static int decode_machine(struct vmcfg_machine *m, json_t *o, char *err, size_t errlen)
{
	static const char *const huge[] = {"None", "2M", "Transparent", NULL};
	static const char *const tmpl[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A", "V1N1", NULL};
	json_t *v;
	const char *s;

	if ((v = get(o, "vcpu_count"))) {
		if (json_integer_value(v) > 255)
			return errmsg(err, errlen, "machine-config: vcpu_count must be between 1 and %d",
				      VMCFG_MAX_CPUS);
		m->vcpu_count = (unsigned)json_integer_value(v);
	}
	if ((v = get(o, "mem_size_mib")))
		m->mem_size_mib = (uint64_t)json_integer_value(v);
	m->smt = get_bool(o, "smt", m->smt);
	m->track_dirty_pages = get_bool(o, "track_dirty_pages", m->track_dirty_pages);
	if ((s = get_str(o, "huge_pages"))) {
		int i = one_of(s, huge);
		if (i < 0)
			return errmsg(err, errlen,
				      "machine-config: huge_pages must be one of None, 2M, Transparent");
		if (i > 0)
			return errmsg(err, errlen, "machine-config: vigil does not support huge_pages \"%s\"",
				      s);
		snprintf(m->huge_pages, sizeof(m->huge_pages), "None");
	}
	if ((s = get_str(o, "cpu_template"))) {
		int i = one_of(s, tmpl);
		if (i < 0)
			return errmsg(
			    err, errlen,
			    "machine-config: cpu_template must be one of None, C3, T2, T2S, T2CL, T2A, V1N1");
		if (i > 0)
			return errmsg(err, errlen,
				      "machine-config: vigil does not support the static cpu_template "
				      "\"%s\"",
				      s);
		snprintf(m->cpu_template, sizeof(m->cpu_template), "None");
	}
	return 0;
}

int vmcfg_json_machine(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_machine m = {0};

	if (check_fields(o, "machine-config", machine_fields, NR_MACHINE_FIELDS, err, errlen) < 0)
		return -1;
	/* Optional fields left out go back to their defaults, as in Firecracker. */
	snprintf(m.huge_pages, sizeof(m.huge_pages), "None");
	if (decode_machine(&m, o, err, errlen) < 0)
		return -1;
	return vmcfg_set_machine(c, &m, err, errlen);
}

int vmcfg_json_machine_patch(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_machine m = c->machine;
	struct jfield f[NR_MACHINE_FIELDS];

	memcpy(f, machine_fields, sizeof(f));
	for (size_t i = 0; i < NR_MACHINE_FIELDS; i++)
		f[i].required = false;
	if (check_fields(o, "machine-config", f, NR_MACHINE_FIELDS, err, errlen) < 0)
		return -1;
	if (decode_machine(&m, o, err, errlen) < 0)
		return -1;
	return vmcfg_set_machine(c, &m, err, errlen);
}

/* ---- boot-source -------------------------------------------------------- */

static const struct jfield boot_fields[] = {
    {"kernel_image_path", JT_STR, true},
    {"boot_args", JT_STR, false},
    {"initrd_path", JT_STR, false},
};

int vmcfg_json_boot(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_boot *b = calloc(1, sizeof(*b));
	int rc = -1;

	if (!b)
		return errmsg(err, errlen, "out of memory");
	if (check_fields(o, "boot-source", boot_fields, NFIELDS(boot_fields), err, errlen) < 0 ||
	    copy_str(b->kernel_image_path, sizeof(b->kernel_image_path), o, "boot-source",
		     "kernel_image_path", err, errlen) < 0 ||
	    copy_str(b->boot_args, sizeof(b->boot_args), o, "boot-source", "boot_args", err, errlen) < 0 ||
	    copy_str(b->initrd_path, sizeof(b->initrd_path), o, "boot-source", "initrd_path", err, errlen) <
		0)
		goto out;
	b->has_boot_args = get(o, "boot_args") != NULL;
	rc = vmcfg_set_boot(c, b, err, errlen);
out:
	free(b);
	return rc;
}

/* ---- drives ------------------------------------------------------------- */

static int check_id_field(json_t *o, const char *what, const char *name, char *err, size_t errlen)
{
	const char *id = get_str(o, name);
	if (id && !vmcfg_id_ok(id))
		return errmsg(err, errlen, "%s: invalid %s \"%.64s\" (1-%d characters, only A-Z a-z 0-9 _)",
			      what, name, id, VMCFG_ID_MAX);
	return 0;
}

static const struct jfield drive_fields[] = {
    {"drive_id", JT_STR, true},	      {"is_root_device", JT_BOOL, true}, {"path_on_host", JT_STR, false},
    {"is_read_only", JT_BOOL, false}, {"partuuid", JT_STR, false},	 {"cache_type", JT_STR, false},
    {"io_engine", JT_STR, false},     {"rate_limiter", JT_OBJ, false},	 {"socket", JT_STR, false},
};

int vmcfg_json_drive(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	static const char *const caches[] = {"Unsafe", "Writeback", NULL};
	static const char *const engines[] = {"Sync", "Async", NULL};
	const char *w = "drive";
	struct vmcfg_drive *d = calloc(1, sizeof(*d));
	const char *s;
	int rc = -1;

	if (!d)
		return errmsg(err, errlen, "out of memory");
	if (check_fields(o, w, drive_fields, NFIELDS(drive_fields), err, errlen) < 0 ||
	    check_id_field(o, w, "drive_id", err, errlen) < 0)
		goto out;
	if (get(o, "socket")) {
		errmsg(err, errlen, "drive: vigil does not support vhost-user block devices (`socket`)");
		goto out;
	}
	if (!get(o, "path_on_host")) {
		errmsg(err, errlen, "drive: missing field `path_on_host`");
		goto out;
	}
	if (check_rate_limiter(o, w, "rate_limiter", err, errlen) < 0 ||
	    copy_str(d->drive_id, sizeof(d->drive_id), o, w, "drive_id", err, errlen) < 0 ||
	    copy_str(d->path_on_host, sizeof(d->path_on_host), o, w, "path_on_host", err, errlen) < 0 ||
	    copy_str(d->partuuid, sizeof(d->partuuid), o, w, "partuuid", err, errlen) < 0)
		goto out;
	d->is_root_device = get_bool(o, "is_root_device", false);
	d->is_read_only = get_bool(o, "is_read_only", false);
	snprintf(d->cache_type, sizeof(d->cache_type), "Writeback"); /* vigil's default (config.c) */
	snprintf(d->io_engine, sizeof(d->io_engine), "Sync");
	if ((s = get_str(o, "cache_type"))) {
		if (one_of(s, caches) < 0) {
			errmsg(err, errlen, "drive: cache_type must be Unsafe or Writeback");
			goto out;
		}
		snprintf(d->cache_type, sizeof(d->cache_type), "%s", s);
	}
	if ((s = get_str(o, "io_engine"))) {
		if (one_of(s, engines) < 0) {
			errmsg(err, errlen, "drive: io_engine must be Sync or Async");
			goto out;
		}
		snprintf(d->io_engine, sizeof(d->io_engine), "%s", s);
	}
	rc = vmcfg_put_drive(c, d, err, errlen);
out:
	free(d);
	return rc;
}

static const struct jfield drive_patch_fields[] = {
    {"drive_id", JT_STR, true},
    {"path_on_host", JT_STR, false},
    {"rate_limiter", JT_OBJ, false},
};

int vmcfg_json_drive_patch(json_t *o, struct vmcfg_drive_patch *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (check_fields(o, "drive", drive_patch_fields, NFIELDS(drive_patch_fields), err, errlen) < 0 ||
	    check_id_field(o, "drive", "drive_id", err, errlen) < 0 ||
	    check_rate_limiter(o, "drive", "rate_limiter", err, errlen) < 0 ||
	    copy_str(p->drive_id, sizeof(p->drive_id), o, "drive", "drive_id", err, errlen) < 0 ||
	    copy_str(p->path_on_host, sizeof(p->path_on_host), o, "drive", "path_on_host", err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- network-interfaces ------------------------------------------------- */

/* The MAC, TAP-name and hostfwd syntaxes are the command line's: each piece
 * is handed to virtio_net_parse() so there is one parser for both. */
static int net_parse_piece(const char *spec, struct virtio_net_config *vc)
{
	char e[160];
	return virtio_net_parse(spec, vc, e, sizeof(e));
}

static const struct jfield vigil_user_fields[] = {{"hostfwd", JT_ARR, false}};

static int decode_vigil_user(struct vmcfg_net *n, json_t *u, char *err, size_t errlen)
{
	json_t *arr, *r;
	size_t i;

	if (check_fields(u, "network-interface.vigil_user", vigil_user_fields, NFIELDS(vigil_user_fields),
			 err, errlen) < 0)
		return -1;
	n->vigil_user = true;
	if (!(arr = get(u, "hostfwd")))
		return 0;
	if (json_array_size(arr) > VIRTIO_NET_FWD_MAX)
		return errmsg(err, errlen, "network-interface.vigil_user.hostfwd: at most %u rules",
			      VIRTIO_NET_FWD_MAX);
	json_array_foreach(arr, i, r)
	{
		struct virtio_net_config vc;
		char spec[160];
		const char *s = json_string_value(r);

		if (!s)
			return errmsg(err, errlen,
				      "network-interface.vigil_user.hostfwd[%zu] must be a string", i);
		if (strlen(s) > 100 || strchr(s, ',') ||
		    (snprintf(spec, sizeof(spec), "user,hostfwd=%s", s), net_parse_piece(spec, &vc) < 0) ||
		    vc.nr_fwd != 1)
			return errmsg(err, errlen,
				      "network-interface.vigil_user.hostfwd[%zu]: bad rule \"%.100s\" (want "
				      "tcp:[ADDR]:PORT-:GUESTPORT or udp:...)",
				      i, s);
		n->fwd[n->nr_fwd++] = vc.fwd[0];
	}
	return 0;
}

static const struct jfield net_fields[] = {
    {"iface_id", JT_STR, true},		{"host_dev_name", JT_STR, false},   {"guest_mac", JT_STR, false},
    {"rx_rate_limiter", JT_OBJ, false}, {"tx_rate_limiter", JT_OBJ, false}, {"mtu", JT_UINT, false},
    {"vigil_user", JT_OBJ, false},
};

int vmcfg_json_net(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	const char *w = "network-interface";
	struct vmcfg_net n = {0};
	struct virtio_net_config vc;
	const char *s;
	json_t *v;

	if (check_fields(o, w, net_fields, NFIELDS(net_fields), err, errlen) < 0 ||
	    check_id_field(o, w, "iface_id", err, errlen) < 0 ||
	    check_rate_limiter(o, w, "rx_rate_limiter", err, errlen) < 0 ||
	    check_rate_limiter(o, w, "tx_rate_limiter", err, errlen) < 0)
		return -1;
	if ((v = get(o, "mtu"))) {
		if (json_integer_value(v) < 68 || json_integer_value(v) > 65535)
			return errmsg(err, errlen, "network-interface: mtu must be between 68 and 65535");
		return errmsg(err, errlen, "network-interface: vigil does not support setting the mtu");
	}
	if (get(o, "host_dev_name") && get(o, "vigil_user"))
		return errmsg(err, errlen, "network-interface: give host_dev_name or vigil_user, not both");
	if (!get(o, "host_dev_name") && !get(o, "vigil_user"))
		return errmsg(err, errlen, "network-interface: missing field `host_dev_name`");
	if (copy_str(n.iface_id, sizeof(n.iface_id), o, w, "iface_id", err, errlen) < 0)
		return -1;
	if ((s = get_str(o, "host_dev_name"))) {
		char spec[40];
		if (strlen(s) > 15 || strchr(s, ',') ||
		    (snprintf(spec, sizeof(spec), "tap=%s", s), net_parse_piece(spec, &vc) < 0))
			return errmsg(err, errlen,
				      "network-interface: bad host_dev_name \"%.32s\" (1-15 characters)", s);
		snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", s);
	}
	if ((v = get(o, "vigil_user")) && decode_vigil_user(&n, v, err, errlen) < 0)
		return -1;
	if ((s = get_str(o, "guest_mac"))) {
		char spec[48];
		if (strlen(s) > 17 || strchr(s, ',') ||
		    (snprintf(spec, sizeof(spec), "user,mac=%s", s), net_parse_piece(spec, &vc) < 0))
			return errmsg(err, errlen,
				      "network-interface: bad guest_mac \"%.32s\" (want a unicast "
				      "xx:xx:xx:xx:xx:xx)",
				      s);
		memcpy(n.guest_mac, vc.mac, 6);
		n.has_mac = true;
	}
	return vmcfg_put_net(c, &n, err, errlen);
}

static const struct jfield net_patch_fields[] = {
    {"iface_id", JT_STR, true},
    {"rx_rate_limiter", JT_OBJ, false},
    {"tx_rate_limiter", JT_OBJ, false},
};

int vmcfg_json_net_patch(json_t *o, char iface_id[VMCFG_ID_MAX + 1], char *err, size_t errlen)
{
	const char *w = "network-interface";

	iface_id[0] = 0;
	if (check_fields(o, w, net_patch_fields, NFIELDS(net_patch_fields), err, errlen) < 0 ||
	    check_id_field(o, w, "iface_id", err, errlen) < 0 ||
	    check_rate_limiter(o, w, "rx_rate_limiter", err, errlen) < 0 ||
	    check_rate_limiter(o, w, "tx_rate_limiter", err, errlen) < 0)
		return -1;
	return copy_str(iface_id, VMCFG_ID_MAX + 1, o, w, "iface_id", err, errlen);
}

const char *vmcfg_json_id(json_t *o, const char *field)
{
	return json_is_object(o) ? get_str(o, field) : NULL;
}

/* ---- vsock, entropy, logger, metrics, console --------------------------- */

static const struct jfield vsock_fields[] = {
    {"guest_cid", JT_UINT, true},
    {"uds_path", JT_STR, true},
    {"vsock_id", JT_STR, false},
};

int vmcfg_json_vsock(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_vsock v = {0};

	if (check_fields(o, "vsock", vsock_fields, NFIELDS(vsock_fields), err, errlen) < 0 ||
	    check_id_field(o, "vsock", "vsock_id", err, errlen) < 0 ||
	    copy_str(v.uds_path, sizeof(v.uds_path), o, "vsock", "uds_path", err, errlen) < 0 ||
	    copy_str(v.vsock_id, sizeof(v.vsock_id), o, "vsock", "vsock_id", err, errlen) < 0)
		return -1;
	v.guest_cid = (uint64_t)json_integer_value(get(o, "guest_cid"));
	if (v.guest_cid < 3)
		return errmsg(err, errlen, "vsock: guest_cid must be at least 3");
	return vmcfg_set_vsock(c, &v, err, errlen);
}

static const struct jfield entropy_fields[] = {{"rate_limiter", JT_OBJ, false}};

int vmcfg_json_entropy(struct vm_config *c, json_t *o, char *err, size_t errlen)
{

	if (check_fields(o, "entropy", entropy_fields, NFIELDS(entropy_fields), err, errlen) < 0 ||
	    check_rate_limiter(o, "entropy", "rate_limiter", err, errlen) < 0)
		return -1;
	return vmcfg_set_entropy(c, err, errlen);
}

static const struct jfield logger_fields[] = {
    {"log_path", JT_STR, false},	 {"level", JT_STR, false},  {"show_level", JT_BOOL, false},
    {"show_log_origin", JT_BOOL, false}, {"module", JT_STR, false},
};

int vmcfg_json_logger(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_logger *l = calloc(1, sizeof(*l));
	const char *s;
	int rc = -1;

	if (!l)
		return errmsg(err, errlen, "out of memory");
	l->level = LOG_INFO;
	if (check_fields(o, "logger", logger_fields, NFIELDS(logger_fields), err, errlen) < 0 ||
	    copy_str(l->log_path, sizeof(l->log_path), o, "logger", "log_path", err, errlen) < 0 ||
	    copy_str(l->module, sizeof(l->module), o, "logger", "module", err, errlen) < 0)
		goto out;
	if ((s = get_str(o, "level"))) {
		int lv = vmcfg_log_level_parse(s);
		if (lv < 0) {
			errmsg(err, errlen,
			       "logger: level must be one of Off, Error, Warning, Info, Debug, Trace");
			goto out;
		}
		l->level = (enum vmcfg_log_level)lv;
	}
	l->show_level = get_bool(o, "show_level", false);
	l->show_log_origin = get_bool(o, "show_log_origin", false);
	rc = vmcfg_set_logger(c, l, err, errlen);
out:
	free(l);
	return rc;
}

static const struct jfield metrics_fields[] = {{"metrics_path", JT_STR, true}};

int vmcfg_json_metrics(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_metrics *m = calloc(1, sizeof(*m));
	int rc = -1;

	if (!m)
		return errmsg(err, errlen, "out of memory");
	if (check_fields(o, "metrics", metrics_fields, NFIELDS(metrics_fields), err, errlen) == 0 &&
	    copy_str(m->metrics_path, sizeof(m->metrics_path), o, "metrics", "metrics_path", err, errlen) ==
		0)
		rc = vmcfg_set_metrics(c, m, err, errlen);
	free(m);
	return rc;
}

static const struct jfield console_fields[] = {{"output", JT_STR, false}, {"device", JT_STR, false}};

int vmcfg_json_console(struct vm_config *c, json_t *o, char *err, size_t errlen)
{
	struct vmcfg_console *con = calloc(1, sizeof(*con));
	const char *s;
	int rc = -1;

	if (!con)
		return errmsg(err, errlen, "out of memory");
	*con = c->console;
	if (check_fields(o, "console", console_fields, NFIELDS(console_fields), err, errlen) < 0)
		goto out;
	if ((s = get_str(o, "output"))) {
		if (!strcmp(s, "stdio")) {
			con->out = CONSOLE_STDIO;
		} else if (!strcmp(s, "none")) {
			con->out = CONSOLE_NONE;
		} else if (!strncmp(s, "file:", 5) && s[5]) {
			if (strlen(s + 5) >= sizeof(con->path)) {
				errmsg(err, errlen, "console: output path is too long");
				goto out;
			}
			con->out = CONSOLE_FILE;
			strcpy(con->path, s + 5);
		} else {
			errmsg(err, errlen, "console: output must be \"stdio\", \"none\" or \"file:PATH\"");
			goto out;
		}
	}
	if ((s = get_str(o, "device"))) {
		if (strcmp(s, "serial") && strcmp(s, "virtio")) {
			errmsg(err, errlen, "console: device must be \"serial\" or \"virtio\"");
			goto out;
		}
		con->virtio = !strcmp(s, "virtio");
	}
	rc = vmcfg_set_console(c, con, err, errlen);
out:
	free(con);
	return rc;
}

/* ---- shape only ---------------------------------------------------------- */

int vmcfg_json_check(const char *object, json_t *o, char *err, size_t errlen)
{
	static const struct {
		const char *name, *what;
		const struct jfield *f;
		size_t n;
	} objects[] = {
	    {"machine-config", "machine-config", machine_fields, NR_MACHINE_FIELDS},
	    {"boot-source", "boot-source", boot_fields, NFIELDS(boot_fields)},
	    {"drive", "drive", drive_fields, NFIELDS(drive_fields)},
	    {"drive-patch", "drive", drive_patch_fields, NFIELDS(drive_patch_fields)},
	    {"network-interface", "network-interface", net_fields, NFIELDS(net_fields)},
	    {"network-interface-patch", "network-interface", net_patch_fields, NFIELDS(net_patch_fields)},
	    {"vsock", "vsock", vsock_fields, NFIELDS(vsock_fields)},
	    {"entropy", "entropy", entropy_fields, NFIELDS(entropy_fields)},
	    {"logger", "logger", logger_fields, NFIELDS(logger_fields)},
	    {"metrics", "metrics", metrics_fields, NFIELDS(metrics_fields)},
	};
	struct jfield patch[NR_MACHINE_FIELDS];

	if (!strcmp(object, "machine-config-patch")) {
		memcpy(patch, machine_fields, sizeof(patch));
		for (size_t i = 0; i < NR_MACHINE_FIELDS; i++)
			patch[i].required = false;
		return check_fields(o, "machine-config", patch, NR_MACHINE_FIELDS, err, errlen);
	}
	for (size_t i = 0; i < NFIELDS(objects); i++)
		if (!strcmp(object, objects[i].name))
			return check_fields(o, objects[i].what, objects[i].f, objects[i].n, err, errlen);
	return errmsg(err, errlen, "%s: no such object", object);
}
