/* libmicrohttpd's entry points, resolved on first use (see mhd.h). */
#include "api/mhd.h"

#include "host/dl.h"

#define MHD_SONAME "libmicrohttpd.so.12" /* Debian's libmicrohttpd12 */

struct mhd_lib mhd;

static struct dl_lib lib = { .soname = MHD_SONAME };

int mhd_load(char *err, size_t errlen)
{
	const struct dl_sym syms[] = {
		{ (void **)&mhd.start_daemon, "MHD_start_daemon" },
		{ (void **)&mhd.stop_daemon, "MHD_stop_daemon" },
		{ (void **)&mhd.create_response_from_buffer, "MHD_create_response_from_buffer" },
		{ (void **)&mhd.add_response_header, "MHD_add_response_header" },
		{ (void **)&mhd.queue_response, "MHD_queue_response" },
		{ (void **)&mhd.destroy_response, "MHD_destroy_response" },
		{ (void **)&mhd.lookup_connection_value, "MHD_lookup_connection_value" },
		{ (void **)&mhd.get_connection_values, "MHD_get_connection_values" },
	};
	return dl_load(&lib, syms, sizeof(syms) / sizeof(syms[0]), err, errlen);
}
