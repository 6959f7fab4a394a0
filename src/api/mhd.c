/* libmicrohttpd's entry points, resolved on first use (see mhd.h). */
#include "api/mhd.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "core/errmsg.h"

#define MHD_SONAME "libmicrohttpd.so.12" /* Debian's libmicrohttpd12 */

struct mhd_lib mhd;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static void *handle;

int mhd_load(char *err, size_t errlen)
{
	int r = 0;

	pthread_mutex_lock(&load_lock);
	if (handle)
		goto out;
	void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		r = errmsg(err, errlen, "%s", dlerror());
		goto out;
	}
	struct { void **slot; const char *name; } syms[] = {
		{ (void **)&mhd.start_daemon, "MHD_start_daemon" },
		{ (void **)&mhd.stop_daemon, "MHD_stop_daemon" },
		{ (void **)&mhd.create_response_from_buffer, "MHD_create_response_from_buffer" },
		{ (void **)&mhd.add_response_header, "MHD_add_response_header" },
		{ (void **)&mhd.queue_response, "MHD_queue_response" },
		{ (void **)&mhd.destroy_response, "MHD_destroy_response" },
		{ (void **)&mhd.lookup_connection_value, "MHD_lookup_connection_value" },
		{ (void **)&mhd.get_connection_values, "MHD_get_connection_values" },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			r = errmsg(err, errlen, "%s: no %s", MHD_SONAME, syms[i].name);
			dlclose(h);
			goto out;
		}
	}
	handle = h;
out:
	pthread_mutex_unlock(&load_lock);
	return r;
}
