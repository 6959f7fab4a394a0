/* fuzz_api — libFuzzer target over the API router (api/routes.c) with the
 * fake VMM, and over the --config-file decoder (vmm/config_file.c). The
 * input is "METHOD PATH\nBODY": the first byte's low bit picks the target
 * (config document when set: the rest is the document). A few pre-boot calls
 * and an InstanceStart are replayed first for some inputs so the post-boot
 * paths are reached too. Built by `make fuzz` ($(B)/fuzz/fuzz_api). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "fake_vmm_api.h"
#include "vmm/config_json.h"

static void one(struct vmm *m, const char *method, const char *path, const char *body, size_t len)
{
	struct api_response r;

	api_handle(m, method, path, body, len, &r);
	if (r.status != 200 && r.status != 204 && r.status != 400) {
		fprintf(stderr, "fuzz_api: %s %s -> %d %s\n", method, path, r.status, r.body ? r.body : "");
		abort();
	}
	if (r.status != 204 && !r.body)
		abort();
	api_response_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmm *m;
	char method[16], path[256];

	if (size < 1)
		return 0;
	/* The logger and metrics setters create their files: keep the fuzzer
	 * from littering the disk with invented names (\u escapes could spell
	 * the keys too). */
	if (memmem(data, size, "log_path", 8) || memmem(data, size, "metrics_path", 12) ||
	    memmem(data, size, "\\u", 2))
		return 0;
	if (!m) {
		/* InstanceStart needs a readable kernel; any non-empty file will do. */
		FILE *f = fopen("/tmp/vigil-fuzz-kernel", "w");
		if (f)
			fputs("k", f), fclose(f);
		m = vmm_new(NULL);
	}
	vmcfg_fini(&m->cfg); /* the policy a previous input left */
	vmcfg_init(&m->cfg);
	m->state = VMM_NOT_STARTED;

	if (data[0] & 1) {
		char err[512];
		vmcfg_load_json(&m->cfg, (const char *)data + 1, size - 1, err, sizeof(err));
		return 0;
	}
	if (data[0] & 2) {
		static const char boot[] = "{\"kernel_image_path\":\"/tmp/vigil-fuzz-kernel\"}";
		static const char startj[] = "{\"action_type\":\"InstanceStart\"}";
		one(m, "PUT", "/boot-source", boot, sizeof(boot) - 1);
		one(m, "PUT", "/actions", startj, sizeof(startj) - 1);
	}
	/* Split the rest into method, path and body on the first space and newline. */
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	if (!sp || (size_t)(sp - p) >= sizeof(method))
		return 0;
	memcpy(method, p, (size_t)(sp - p));
	method[sp - p] = 0;
	p = sp + 1;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t plen = nl ? (size_t)(nl - p) : (size_t)(end - p);
	if (plen >= sizeof(path) || memchr(p, 0, plen))
		return 0;
	memcpy(path, p, plen);
	path[plen] = 0;
	const char *body = nl ? nl + 1 : end;
	size_t blen = (size_t)(end - body);
	/* the HTTP layer hands a NUL-terminated copy; so do we */
	char *copy = malloc(blen + 1);
	if (!copy)
		return 0;
	memcpy(copy, body, blen);
	copy[blen] = 0;
	one(m, method, path, blen ? copy : NULL, blen);
	free(copy);
	return 0;
}
