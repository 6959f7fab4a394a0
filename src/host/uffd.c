/* The Uffd memory backend's VMM side: userfaultfd, registration, handshake.
 * See uffd.h and docs/SNAPSHOT.md ("The Uffd backend"). */
#include "host/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/gmem.h"

#define ERR_PREFIX "uffd backend: "

/* USERFAULTFD_IOC_NEW is in linux/userfaultfd.h from 6.1 on. */
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int connect_server(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path || !*path) {
		snprintf(err, errlen, ERR_PREFIX "backend_path is empty");
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, ERR_PREFIX "socket path is longer than %zu bytes: %s", sizeof(sa.sun_path) - 1,
			 path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(err, errlen, ERR_PREFIX "socket: %s", strerror(errno));
		return -1;
	}
	int rc;
	do
		rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		snprintf(err, errlen, ERR_PREFIX "connect %s: %s", path, strerror(errno));
		close(s);
		return -1;
	}
	return s;
}

/* Not UFFD_USER_MODE_ONLY: KVM (and the kernel copying to or from guest
 * RAM for vigil's own read/write calls) faults the pages from kernel mode,
 * which a user-mode-only userfaultfd refuses with SIGBUS-like EFAULTs.
 * Kernel-mode faults need CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1,
 * or access to /dev/userfaultfd (Linux 6.1+). */
static int open_uffd(char *err, size_t errlen)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	int sys_err = errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		int dev_err = errno;
		close(dev);
		if (fd >= 0)
			return fd;
		snprintf(err, errlen, ERR_PREFIX "userfaultfd: %s, /dev/userfaultfd: %s", strerror(sys_err),
			 strerror(dev_err));
		return -1;
	}
	int dev_err = errno;
	if (sys_err == ENOSYS)
		snprintf(err, errlen, ERR_PREFIX "this kernel has no userfaultfd (CONFIG_USERFAULTFD)");
	else if (sys_err == EPERM)
		snprintf(err, errlen,
			 ERR_PREFIX "userfaultfd for kernel-mode faults is not permitted: this host needs "
				    "CAP_SYS_PTRACE, sysctl vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd "
				    "(%s)",
			 strerror(dev_err));
	else
		snprintf(err, errlen, ERR_PREFIX "userfaultfd: %s", strerror(sys_err));
	return -1;
}

/* Firecracker's GuestRegionUffdMapping, one per region, in region order.
 * page_size_kib carries bytes too: Firecracker fills both fields with the
 * page size in bytes (the older name is wrong and kept for compatibility). */
static char *mappings_json(const struct gmem *m, uint64_t page_size)
{
	json_t *arr = json_array();
	uint64_t off = 0;
	for (unsigned i = 0; arr && i < m->nr; i++) {
		json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I}", "base_host_virt_addr",
				      (json_int_t)(uintptr_t)m->r[i].host, "size", (json_int_t)m->r[i].size, "offset",
				      (json_int_t)off, "page_size", (json_int_t)page_size, "page_size_kib",
				      (json_int_t)page_size);
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
		off += m->r[i].size;
	}
	char *s = arr ? json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(arr);
	return s;
}

static int send_with_fd(int s, const char *msg, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(s, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* A stream socket may take part of it; the fd went with the first byte. */
	for (size_t done = (size_t)n; done < len; done += (size_t)n) {
		n = send(s, msg + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

int uffd_attach(const struct gmem *m, const char *sock_path, char *err, size_t errlen)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0)
		ps = 4096;
	if (!m || m->nr == 0) {
		snprintf(err, errlen, ERR_PREFIX "the VM has no guest RAM");
		return -1;
	}
	for (unsigned i = 0; i < m->nr; i++) {
		if (!m->r[i].host || m->r[i].size == 0 || ((uintptr_t)m->r[i].host | m->r[i].size) % (uint64_t)ps) {
			snprintf(err, errlen, ERR_PREFIX "guest RAM region %u is not page aligned", i);
			return -1;
		}
	}
	int s = connect_server(sock_path, err, errlen);
	if (s < 0)
		return -1;
	int fd = open_uffd(err, errlen);
	if (fd < 0) {
		close(s);
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		snprintf(err, errlen, ERR_PREFIX "UFFDIO_API: %s", strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < m->nr; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)m->r[i].host, .len = m->r[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
			snprintf(err, errlen, ERR_PREFIX "UFFDIO_REGISTER of guest RAM region %u (%llu bytes): %s", i,
				 (unsigned long long)m->r[i].size, strerror(errno));
			goto fail;
		}
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
			snprintf(err, errlen, ERR_PREFIX "guest RAM region %u cannot be filled with UFFDIO_COPY", i);
			goto fail;
		}
	}
	char *msg = mappings_json(m, (uint64_t)ps);
	if (!msg) {
		snprintf(err, errlen, ERR_PREFIX "out of memory");
		goto fail;
	}
	int rc = send_with_fd(s, msg, strlen(msg), fd);
	free(msg);
	if (rc < 0) {
		snprintf(err, errlen, ERR_PREFIX "send to %s: %s", sock_path, strerror(-rc));
		goto fail;
	}
	close(s);
	return fd;
fail:
	close(fd); /* unregisters every range */
	close(s);
	return -1;
}

void uffd_detach(int fd)
{
	if (fd >= 0)
		close(fd);
}
