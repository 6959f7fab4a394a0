/* virtio_vsock_parse — the --vsock option value ("cid=N,uds=PATH"), string
 * work only; see virtio_vsock.h. Used by the CLI. */
#include "devices/virtio_vsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"

int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *cfg, char *err, size_t errlen)
{
	bool have_cid = false, have_uds = false;
	const char *p = spec;

	memset(cfg, 0, sizeof(*cfg));
	if (!spec || !*spec) {
		errmsg(err, errlen, "vsock: empty spec (want cid=N,uds=PATH)");
		return -1;
	}
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > 4 && !strncmp(p, "cid=", 4)) {
			char num[24];
			char *stop;
			if (have_cid || n - 4 >= sizeof(num)) {
				errmsg(err, errlen, "vsock: bad or repeated cid");
				return -1;
			}
			memcpy(num, p + 4, n - 4);
			num[n - 4] = 0;
			errno = 0;
			unsigned long long cid = strtoull(num, &stop, 10);
			if (errno || *stop || num[0] < '0' || num[0] > '9' || cid < 3 ||
			    cid >= 0xffffffffULL) {
				errmsg(err, errlen, "vsock: cid must be a number from 3 to 4294967294");
				return -1;
			}
			cfg->guest_cid = cid;
			have_cid = true;
		} else if (n > 4 && !strncmp(p, "uds=", 4)) {
			if (have_uds || n - 4 >= sizeof(cfg->uds_path)) {
				errmsg(err, errlen, "vsock: uds path repeated or longer than %zu bytes",
				       sizeof(cfg->uds_path) - 1);
				return -1;
			}
			memcpy(cfg->uds_path, p + 4, n - 4);
			cfg->uds_path[n - 4] = 0;
			have_uds = true;
		} else {
			errmsg(err, errlen, "vsock: unknown or empty option '%.*s' (want cid=N,uds=PATH)",
			       (int)(n < 40 ? n : 40), p);
			return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!have_cid || !have_uds) {
		errmsg(err, errlen, "vsock: need both cid=N and uds=PATH");
		return -1;
	}
	return 0;
}
