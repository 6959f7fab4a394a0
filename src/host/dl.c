/* Libraries loaded on first use (host/dl.h). */
#include "host/dl.h"

#include <dlfcn.h>
#include <pthread.h>

#include "core/errmsg.h"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int dl_load(struct dl_lib *lib, const struct dl_sym *syms, size_t n, char *err, size_t errlen)
{
	int r = 0;
	pthread_mutex_lock(&load_lock);
	if (lib->handle)
		goto out;
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		r = errmsg(err, errlen, "%s", dlerror());
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			r = errmsg(err, errlen, "%s: no %s", lib->soname, syms[i].name);
			dlclose(h);
			goto out;
		}
	}
	lib->handle = h;
out:
	pthread_mutex_unlock(&load_lock);
	return r;
}
