/* dl — a shared library loaded on first use (dlopen) with the functions a
 * caller needs bound into its own table: for the big libraries only some
 * VMs use (libmicrohttpd for the API, libslirp for user-mode networking),
 * so a VM without them neither pays their start-up nor carries them. */
#ifndef VIGIL_HOST_DL_H
#define VIGIL_HOST_DL_H

#include <stddef.h>

struct dl_sym {
	void **slot;
	const char *name;
};

struct dl_lib {
	const char *soname;
	void *handle; /* NULL until loaded */
};

/* Loads lib once (thread-safe; later calls return at once) and fills every
 * slot. 0, or -1 with one line in err ("libslirp.so.0: no slirp_new"). */
int dl_load(struct dl_lib *lib, const struct dl_sym *syms, size_t n, char *err, size_t errlen);

#endif
