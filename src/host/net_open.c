/* host_net_new: picks the backend for a --net value (see net_open.h). */
#include "host/net_open.h"

#include "devices/net_filter.h"
#include "host/clock.h"
#include "host/entropy.h"
#include "host/net_slirp.h"
#include "host/net_tap.h"

struct virtio_dev *host_net_new(const struct virtio_net_config *cfg, const struct gmem *mem,
				struct dev_gate gate, struct evloop *loop, char *err, size_t errlen)
{
	struct net_backend *be;
	struct entropy ent = host_entropy();

	if (cfg->kind == NET_TAP) {
		be = net_tap_open(cfg->ifname, loop, err, errlen);
		if (be && gate.id)
			net_tap_set_device(be, gate.id);
	} else
		be = net_slirp_new(cfg->fwd, cfg->nr_fwd, loop, err, errlen);
	if (!be)
		return NULL;
	/* Every frame passes the network policy (devices/net_filter.h). */
	struct net_filter_cfg fc = {
		.user_mode = cfg->kind == NET_USER,
		.net = NET_SLIRP_NET,
		.mask = NET_SLIRP_MASK,
		.host = NET_SLIRP_HOST,
		.dns = NET_SLIRP_DNS,
		.guest = NET_SLIRP_GUEST,
		.clock = host_clock(),
	};
	be = net_filter_new(be, &gate, &fc, err, errlen);
	if (!be)
		return NULL;
	return virtio_net_new_backend(be, cfg->mac_set ? cfg->mac : NULL, &ent, mem, gate, err, errlen);
}
