/* uffd — FIRST CUT (a helper replaces it): Firecracker's Uffd memory
 * backend, the userfaultfd handed to a page server. */
#ifndef VIGIL_HOST_UFFD_H
#define VIGIL_HOST_UFFD_H

#include <stddef.h>

#include "core/gmem.h"

int uffd_attach(const struct gmem *m, const char *sock_path, char *err, size_t errlen);
void uffd_detach(int fd);

#endif
