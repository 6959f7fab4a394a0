/* update_fallback — weak definitions of vmm/update.h for builds where the
 * VMM does not implement post-boot device updates yet: they refuse, so
 * PATCH /drives/{id} and PATCH /network-interfaces/{id} after the start
 * answer 400 with a clear reason instead of the binary failing to link.
 * The VMM's own (strong) definitions replace these; delete this file then. */
#include <stdio.h>

#include "vmm/update.h"

__attribute__((weak)) int vmm_update_drive(struct vmm *m, const char *id, const char *path_on_host, char *err,
					    size_t errlen)
{
	(void)m, (void)id, (void)path_on_host;
	snprintf(err, errlen, "vigil does not support updating drive '%s' after the start yet", id);
	return -1;
}

__attribute__((weak)) int vmm_update_net(struct vmm *m, const char *id, char *err, size_t errlen)
{
	(void)m;
	snprintf(err, errlen, "vigil does not support updating network interface '%s' after the start yet", id);
	return -1;
}
