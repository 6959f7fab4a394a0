/* snap_help — snapshot round trips for the device tests: save one vdev into
 * a finished file, open it, and rewrite one section's payload (a hostile
 * value at a known offset) keeping its id, kind and version. */
#ifndef VIGIL_TESTS_SNAP_HELP_H
#define VIGIL_TESTS_SNAP_HELP_H

#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"

struct snap_file {
	uint8_t *buf;
	size_t len;
};

/* One section: `d`'s save. Fails the test if it does not finish. */
static inline struct snap_file snap_save1(struct vdev *d)
{
	struct snap_writer *w = snap_writer_new();
	const uint8_t *b;
	struct snap_file f = { 0 };

	assert_non_null(w);
	assert_int_equal(d->ops->save(d, w), 0);
	assert_int_equal(snap_writer_finish(w, &b, &f.len), 0);
	f.buf = malloc(f.len);
	assert_non_null(f.buf);
	memcpy(f.buf, b, f.len);
	snap_writer_free(w);
	return f;
}

static inline struct snap_reader *snap_open_file(const struct snap_file *f)
{
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(f->buf, f->len, err, sizeof(err));
	if (!r)
		fail_msg("snapshot does not open: %s", err);
	return r;
}

/* The file with section `id`'s payload byte at `off` replaced by n bytes of
 * v (little-endian): the section's CRC and the trailer are made anew, so
 * only the device's own checks can refuse it. */
static inline struct snap_file snap_patch(const struct snap_file *in, const char *id, size_t off, uint64_t v,
					  unsigned n)
{
	struct snap_reader *r = snap_open_file(in);
	struct snap_writer *w = snap_writer_new();
	struct snap_file out = { 0 };
	const uint8_t *b;

	for (unsigned i = 0; i < snap_count(r); i++) {
		const char *sid, *kind;
		uint32_t ver;
		uint64_t len;
		assert_int_equal(snap_section_info(r, i, &sid, &kind, &ver, &len), 0);
		assert_int_equal(snap_find(r, sid, kind, NULL), 0);
		uint8_t *p = malloc(len + 1);
		memcpy(p, snap_get_blob(r, len), len);
		if (strcmp(sid, id) == 0) {
			assert_true(off + n <= len);
			for (unsigned k = 0; k < n; k++)
				p[off + k] = (uint8_t)(v >> (8 * k));
		}
		snap_begin(w, sid, kind, ver);
		snap_put(w, p, len);
		snap_end(w);
		free(p);
	}
	assert_int_equal(snap_writer_finish(w, &b, &out.len), 0);
	out.buf = malloc(out.len);
	memcpy(out.buf, b, out.len);
	snap_writer_free(w);
	snap_reader_free(r);
	return out;
}

/* Restores `d` from f: 0, or -1 with the error in err. */
static inline int snap_restore1(struct vdev *d, const struct snap_file *f, char *err, size_t errlen)
{
	struct snap_reader *r = snap_open_file(f);
	int rc = d->ops->restore(d, r);
	if (rc == 0 && snap_error(r)[0])
		fail_msg("restore returned 0 with an error: %s", snap_error(r));
	snprintf(err, errlen, "%s", snap_error(r));
	snap_reader_free(r);
	return rc;
}

/* Expects the patched file to be refused with a message containing `want`. */
#define SNAP_REFUSED(d, f, want)                                                                          \
	do {                                                                                              \
		char e_[SNAP_ERR_MAX];                                                                    \
		assert_int_equal(snap_restore1((d), (f), e_, sizeof(e_)), -1);                            \
		if (!strstr(e_, (want)))                                                                  \
			fail_msg("refused with \"%s\", expected \"%s\"", e_, (want));                     \
	} while (0)

#endif
