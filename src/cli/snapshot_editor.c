/* vigil snapshot-editor (cli/snapshot_editor.h). */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include "cli/snapshot_editor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/snap.h"

static int usage(void)
{
	fprintf(stderr, "usage: vigil snapshot-editor edit-memory rebase --memory-path BASE --diff-path DIFF\n"
			"       vigil snapshot-editor info-vmstate version|sections --vmstate-path STATE\n");
	return 1;
}

/* The value of --name among argv, or NULL. */
static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int copy_range(int from, int to, off_t off, off_t len)
{
	static char buf[1 << 16];
	while (len > 0) {
		ssize_t n = pread(from, buf, len > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)len, off);
		if (n <= 0 || pwrite(to, buf, (size_t)n, off) != n)
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

/* A Diff memory file holds data only where pages were written (the rest
 * are holes): each data extent is copied onto the base at its offset. */
static int rebase(const char *base, const char *diff)
{
	int b = open(base, O_RDWR | O_CLOEXEC), d = open(diff, O_RDONLY | O_CLOEXEC);
	struct stat bs, ds;
	int rc = 1;
	if (b < 0 || d < 0) {
		fprintf(stderr, "vigil: snapshot-editor: %s: %s\n", b < 0 ? base : diff, strerror(errno));
		goto out;
	}
	if (fstat(b, &bs) < 0 || fstat(d, &ds) < 0 || bs.st_size != ds.st_size) {
		fprintf(stderr, "vigil: snapshot-editor: the diff (%lld bytes) and the base (%lld bytes) differ in size\n",
			(long long)ds.st_size, (long long)bs.st_size);
		goto out;
	}
	off_t pos = 0;
	for (;;) {
		off_t data = lseek(d, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* no data after pos */
			fprintf(stderr, "vigil: snapshot-editor: %s: %s\n", diff, strerror(errno));
			goto out;
		}
		off_t hole = lseek(d, data, SEEK_HOLE);
		if (hole < 0)
			hole = ds.st_size;
		if (copy_range(d, b, data, hole - data) < 0) {
			fprintf(stderr, "vigil: snapshot-editor: copying into %s: %s\n", base, strerror(errno));
			goto out;
		}
		pos = hole;
	}
	rc = 0;
out:
	if (b >= 0)
		close(b);
	if (d >= 0)
		close(d);
	return rc;
}

static int info(const char *what, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "vigil: snapshot-editor: %s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t cap = 1 << 20, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = cap < (256u << 20) ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	char err[SNAP_ERR_MAX];
	struct snap_reader *r = buf ? snap_reader_open(buf, len, err, sizeof(err)) : NULL;
	if (!r) {
		fprintf(stderr, "vigil: snapshot-editor: %s\n", buf ? err : "out of memory or too large");
		free(buf);
		return 1;
	}
	int rc = 0;
	if (strcmp(what, "version") == 0) {
		char ver[64];
		if (snap_find(r, "vigil", "vigil-snapshot", NULL) == 0) {
			(void)snap_get_u32(r);
			snap_get_str(r, ver, sizeof(ver));
		}
		if (snap_status(r, err, sizeof(err)) < 0) {
			fprintf(stderr, "vigil: snapshot-editor: %s\n", err);
			rc = 1;
		} else {
			printf("v%s\n", ver);
		}
	} else {
		for (unsigned i = 0; i < snap_count(r); i++) {
			const char *id, *kind;
			uint32_t v;
			uint64_t l;
			snap_section_info(r, i, &id, &kind, &v, &l);
			printf("%-16s %-16s v%u %llu bytes\n", id, kind, v, (unsigned long long)l);
		}
	}
	snap_reader_free(r);
	free(buf);
	return rc;
}

int snapshot_editor_main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "edit-memory") == 0 && strcmp(argv[2], "rebase") == 0) {
		const char *base = opt(argc, argv, "--memory-path"), *diff = opt(argc, argv, "--diff-path");
		return base && diff ? rebase(base, diff) : usage();
	}
	if (argc >= 3 && strcmp(argv[1], "info-vmstate") == 0 &&
	    (strcmp(argv[2], "version") == 0 || strcmp(argv[2], "sections") == 0)) {
		const char *path = opt(argc, argv, "--vmstate-path");
		return path ? info(argv[2], path) : usage();
	}
	return usage();
}
