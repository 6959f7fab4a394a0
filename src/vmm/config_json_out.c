/* config_json_out — struct vm_config → Firecracker's JSON: GET
 * /machine-config (MachineConfiguration) and GET /vm/config
 * (FullVmConfiguration, the config file's keys, so its output can be fed
 * back as --config-file). Used by the API router. */
#include <stdio.h>
#include <string.h>

#include "vmm/config_json.h"
#include "vmm/policy_json.h"

json_t *vmcfg_machine_to_json(const struct vmcfg_machine *m)
{
	json_t *o = json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)m->vcpu_count,
			      "mem_size_mib", (json_int_t)m->mem_size_mib, "smt", m->smt, "track_dirty_pages",
			      m->track_dirty_pages, "huge_pages", m->huge_pages[0] ? m->huge_pages : "None");
	/* Firecracker leaves cpu_template out when there is none. */
	if (o && m->cpu_template[0] && strcmp(m->cpu_template, "None"))
		json_object_set_new(o, "cpu_template", json_string(m->cpu_template));
	return o;
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static json_t *drive_json(const struct vmcfg_drive *d)
{
	return json_pack("{s:s,s:o,s:b,s:s,s:b,s:s,s:s,s:n,s:n}", "drive_id", d->drive_id, "partuuid",
			 str_or_null(d->partuuid), "is_root_device", d->is_root_device, "cache_type",
			 d->cache_type[0] ? d->cache_type : "Writeback", "is_read_only", d->is_read_only,
			 "path_on_host", d->path_on_host, "io_engine",
			 d->io_engine[0] ? d->io_engine : "Sync", "rate_limiter", "socket");
}

static json_t *net_json(const struct vmcfg_net *n)
{
	json_t *o = json_pack("{s:s,s:n,s:n}", "iface_id", n->iface_id, "rx_rate_limiter", "tx_rate_limiter");
	if (!o)
		return NULL;
	if (n->has_mac) {
		char mac[18];
		const uint8_t *b = n->guest_mac;
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
			 b[5]);
		json_object_set_new(o, "guest_mac", json_string(mac));
	}
	if (n->vigil_user) {
		json_t *rules = json_array();
		for (unsigned i = 0; i < n->nr_fwd; i++) {
			const struct net_fwd *f = &n->fwd[i];
			char r[64];
			snprintf(r, sizeof(r), "%s:%u.%u.%u.%u:%u-:%u", f->udp ? "udp" : "tcp",
				 f->host_addr >> 24, (f->host_addr >> 16) & 255, (f->host_addr >> 8) & 255,
				 f->host_addr & 255, f->host_port, f->guest_port);
			json_array_append_new(rules, json_string(r));
		}
		json_object_set_new(o, "vigil_user", json_pack("{s:o}", "hostfwd", rules));
	} else {
		json_object_set_new(o, "host_dev_name", json_string(n->host_dev_name));
	}
	return o;
}

static const char *console_out(const struct vmcfg_console *con, char *buf, size_t len)
{
	if (con->out == CONSOLE_NONE)
		return "none";
	if (con->out == CONSOLE_FILE) {
		snprintf(buf, len, "file:%s", con->path);
		return buf;
	}
	return "stdio";
}

json_t *vmcfg_to_json(const struct vm_config *c)
{
	json_t *o = json_object(), *drives = json_array(), *nets = json_array();
	char path[PATH_MAX + 8];

	if (!o || !drives || !nets) {
		json_decref(o), json_decref(drives), json_decref(nets);
		return NULL;
	}
	unsigned order[VMCFG_MAX_DRIVES];
	unsigned nd = vmcfg_drive_order(c, order);
	for (unsigned i = 0; i < nd; i++)
		json_array_append_new(drives, drive_json(&c->drives[order[i]]));
	for (unsigned i = 0; i < c->nr_nets; i++)
		json_array_append_new(nets, net_json(&c->nets[i]));

	json_object_set_new(o, "balloon", json_null());
	json_object_set_new(o, "drives", drives);
	json_object_set_new(
	    o, "boot-source",
	    c->has_boot ? json_pack("{s:s,s:o,s:o}", "kernel_image_path", c->boot.kernel_image_path,
				    "initrd_path", str_or_null(c->boot.initrd_path), "boot_args",
				    c->boot.has_boot_args ? json_string(c->boot.boot_args) : json_null())
			: json_null());
	json_object_set_new(o, "cpu-config", json_null());
	json_object_set_new(o, "logger",
			    c->has_logger ? json_pack("{s:s,s:s,s:b,s:b,s:s}", "log_path", c->logger.log_path,
						      "level", vmcfg_log_level_name(c->logger.level),
						      "show_level", c->logger.show_level, "show_log_origin",
						      c->logger.show_log_origin, "module", c->logger.module)
					  : json_null());
	json_object_set_new(o, "machine-config", vmcfg_machine_to_json(&c->machine));
	json_object_set_new(o, "metrics",
			    c->has_metrics ? json_pack("{s:s}", "metrics_path", c->metrics.metrics_path)
					   : json_null());
	json_object_set_new(o, "mmds-config", json_null());
	json_object_set_new(o, "network-interfaces", nets);
	json_object_set_new(o, "vsock",
			    c->has_vsock ? json_pack("{s:I,s:s}", "guest_cid", (json_int_t)c->vsock.guest_cid,
						     "uds_path", c->vsock.uds_path)
					 : json_null());
	json_object_set_new(o, "entropy", c->entropy ? json_pack("{s:n}", "rate_limiter") : json_null());
	/* vigil's own keys, as the config file takes them. */
	json_object_set_new(o, "console",
			    json_pack("{s:s,s:s}", "output", console_out(&c->console, path, sizeof(path)),
				      "device", c->console.virtio ? "virtio" : "serial"));
	json_object_set_new(o, "stats", json_boolean(c->stats));
	json_object_set_new(o, "trace", str_or_null(c->trace));
	/* The cpu-config rules are in it: a file written from this output
	 * gets them back through "policy" (its "cpu-config" stays null). */
	if (c->has_policy)
		json_object_set_new(o, "policy", policy_json_dump(&c->policy));
	json_object_set_new(o, "trace_filter", str_or_null(c->trace_filter));
	json_object_set_new(o, "audit", str_or_null(c->audit));
	return o;
}
