/* KVM's binary statistics (kvm_stats.h). */
#include "kvm/kvm_stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Bounds on what a header may claim: far above any kernel's, low enough
 * that a confused one cannot make vigil allocate without limit. */
#define STATS_MAX_DESC 4096u
#define STATS_MAX_NAME 256u
#define STATS_MAX_DATA (1u << 20)

const char *kvm_stats_unavailable(int kvm_fd)
{
	const char *force = getenv("VIGIL_TEST_NO_KVM_STATS");
	if ((force && strcmp(force, "1") == 0) || ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		return "host kernel lacks KVM_CAP_BINARY_STATS_FD";
	return NULL;
}

static int read_all(int fd, void *buf, size_t len, off_t at)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, at + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

static int load_descs(struct kvm_stats *s, const struct kvm_stats_header *h)
{
	size_t one = sizeof(struct kvm_stats_desc) + h->name_size;
	uint8_t *raw = malloc(one * h->num_desc);
	s->d = calloc(h->num_desc, sizeof(*s->d));
	s->names = malloc((size_t)h->num_desc * (h->name_size + 1));
	int r = raw && s->d && s->names ? read_all(s->fd, raw, one * h->num_desc, h->desc_offset) : -ENOMEM;
	for (uint32_t i = 0; r == 0 && i < h->num_desc; i++) {
		struct kvm_stats_desc dd;
		memcpy(&dd, raw + i * one, sizeof(dd));
		uint32_t type = dd.flags & KVM_STATS_TYPE_MASK;
		/* Histograms have no one value to show; the rest are one u64. */
		if (type != KVM_STATS_TYPE_CUMULATIVE && type != KVM_STATS_TYPE_INSTANT && type != KVM_STATS_TYPE_PEAK)
			continue;
		if (dd.size != 1 || dd.offset > STATS_MAX_DATA - 8 || dd.offset % 8)
			continue;
		char *name = s->names + (size_t)s->n * (h->name_size + 1);
		memcpy(name, raw + i * one + sizeof(dd), h->name_size);
		name[h->name_size] = '\0';
		if (!name[0])
			continue;
		s->d[s->n++] = (struct kvm_stat_desc){ .name = name, .offset = dd.offset,
						       .cumulative = type == KVM_STATS_TYPE_CUMULATIVE };
		if ((size_t)dd.offset + 8 > s->data_size)
			s->data_size = (size_t)dd.offset + 8;
	}
	free(raw);
	return r;
}

int kvm_stats_open(struct kvm_stats *s, int owner_fd)
{
	struct kvm_stats_header h;
	memset(s, 0, sizeof(*s));
	s->fd = ioctl(owner_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0) {
		s->fd = -1;
		return -errno;
	}
	int r = read_all(s->fd, &h, sizeof(h), 0);
	if (r == 0 && (h.num_desc > STATS_MAX_DESC || h.name_size == 0 || h.name_size > STATS_MAX_NAME))
		r = -EINVAL;
	if (r == 0)
		r = load_descs(s, &h);
	if (r < 0) {
		kvm_stats_close(s);
		return r;
	}
	s->data_offset = h.data_offset;
	return 0;
}

void kvm_stats_close(struct kvm_stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->d);
	free(s->names);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

int kvm_stats_read(const struct kvm_stats *s, hv_stat_fn fn, void *ctx)
{
	if (s->fd < 0)
		return -ENOENT;
	if (!s->data_size)
		return 0;
	uint8_t *data = malloc(s->data_size);
	if (!data)
		return -ENOMEM;
	int r = read_all(s->fd, data, s->data_size, s->data_offset);
	for (unsigned i = 0; r == 0 && i < s->n; i++) {
		uint64_t v;
		memcpy(&v, data + s->d[i].offset, 8);
		fn(ctx, s->d[i].name, v, s->d[i].cumulative);
	}
	free(data);
	return r;
}
