/* vigil-uffd-pageserver SOCKET MEMFILE — an example page server for the Uffd
 * memory backend of PUT /snapshot/load (vigil's and Firecracker's; protocol
 * in docs/SNAPSHOT.md "The Uffd backend").
 *
 * Listens on the Unix socket SOCKET, accepts one VMM, receives the JSON
 * array of guest RAM regions with the userfaultfd attached, and fills every
 * missing page the VMM touches from MEMFILE (mapped read-only, private) with
 * UFFDIO_COPY, or with zeros where the file is short or the VMM discarded
 * the page (UFFD_EVENT_REMOVE). Exits when the VMM process is gone (a pidfd
 * of the socket's peer: a userfaultfd never reports its owner's exit, and
 * the socket is closed by the VMM right after the handshake), or on
 * SIGTERM/SIGINT, with a one-line summary on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG "vigil-uffd-pageserver"
#define MAX_REGIONS 64
#define MAX_MSG (64 * 1024)

struct region {
	uint64_t base, size, offset, page_size;
	uint64_t *removed; /* one bit per page, allocated on the first REMOVE */
};

struct server {
	int uffd;
	const uint8_t *file;
	uint64_t file_size;
	struct region r[MAX_REGIONS];
	unsigned nr;
	unsigned long copied, zeroed, raced, errors;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* ---- the handshake ---- */

static int recv_handshake(int s, char *buf, size_t cap, size_t *len, int *uffd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	ssize_t n;
	do
		n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR && !stop_signal);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*uffd < 0)
				*uffd = fd;
			else
				close(fd); /* newer Firecracker versions may pass more; not used here */
		}
	}
	return 0;
}

static bool get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

/* Loose on purpose: Firecracker's 3-key form (before 1.7), the one with
 * page_size_kib (which Firecracker fills with bytes despite its name) and
 * the one with page_size; unknown keys are ignored. */
static int parse_regions(struct server *sv, json_t *arr, uint64_t sys_ps)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_REGIONS) {
		fprintf(stderr, PROG ": handshake: expected a JSON array of 1 to %d regions\n", MAX_REGIONS);
		return -1;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);
		struct region *r = &sv->r[i];
		uint64_t kib;
		if (!json_is_object(o) || !get_u64(o, "base_host_virt_addr", &r->base) || !get_u64(o, "size", &r->size) ||
		    !get_u64(o, "offset", &r->offset)) {
			fprintf(stderr, PROG ": handshake: region %zu lacks base_host_virt_addr, size or offset\n", i);
			return -1;
		}
		if (get_u64(o, "page_size", &r->page_size))
			;
		else if (get_u64(o, "page_size_kib", &kib))
			r->page_size = kib < 4096 ? kib * 1024 : kib;
		else
			r->page_size = sys_ps;
		uint64_t ps = r->page_size;
		if (ps < sys_ps || (ps & (ps - 1)) || r->size == 0 || (r->base | r->size) % ps ||
		    r->base + r->size < r->base || r->offset + r->size < r->offset) {
			fprintf(stderr, PROG ": handshake: region %zu (base 0x%llx size %llu page %llu) is malformed\n", i,
				(unsigned long long)r->base, (unsigned long long)r->size, (unsigned long long)ps);
			return -1;
		}
		if (r->offset + r->size > sv->file_size)
			fprintf(stderr, PROG ": warning: region %zu ends at %llu, past the memory file's %llu bytes: zeros\n",
				i, (unsigned long long)(r->offset + r->size), (unsigned long long)sv->file_size);
	}
	sv->nr = (unsigned)json_array_size(arr);
	return 0;
}

/* Reads until the bytes parse as one JSON value (a stream socket may split
 * the message), the peer closes, or 2 s pass without data. */
static json_t *read_mappings(int s, int *uffd)
{
	char *buf = malloc(MAX_MSG + 1);
	size_t len = 0;
	json_t *j = NULL;
	json_error_t je;
	if (!buf)
		return NULL;
	while (len < MAX_MSG) {
		size_t n = 0;
		int rc = recv_handshake(s, buf + len, MAX_MSG - len, &n, uffd);
		if (rc < 0) {
			fprintf(stderr, PROG ": handshake: %s\n", strerror(-rc));
			break;
		}
		len += n;
		j = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &je);
		if (j || n == 0)
			break;
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, 2000) <= 0)
			break;
	}
	if (!j && len == 0)
		fprintf(stderr, PROG ": handshake: the VMM closed the connection without sending it\n");
	else if (!j)
		fprintf(stderr, PROG ": handshake: not JSON (%s) in %zu bytes\n", je.text, len);
	free(buf);
	return j;
}

/* ---- serving ---- */

static struct region *find_region(struct server *sv, uint64_t addr)
{
	for (unsigned i = 0; i < sv->nr; i++)
		if (addr >= sv->r[i].base && addr - sv->r[i].base < sv->r[i].size)
			return &sv->r[i];
	return NULL;
}

static bool page_removed(const struct region *r, uint64_t page)
{
	uint64_t i = (page - r->base) / r->page_size;
	return r->removed && (r->removed[i / 64] >> (i % 64)) & 1;
}

static void mark_removed(struct server *sv, uint64_t start, uint64_t end)
{
	for (unsigned k = 0; k < sv->nr; k++) {
		struct region *r = &sv->r[k];
		uint64_t lo = start > r->base ? start : r->base, hi = end < r->base + r->size ? end : r->base + r->size;
		if (lo >= hi)
			continue;
		uint64_t pages = r->size / r->page_size;
		if (!r->removed && !(r->removed = calloc((pages + 63) / 64, sizeof(uint64_t)))) {
			sv->errors++;
			continue;
		}
		for (uint64_t i = (lo - r->base) / r->page_size; i < (hi - r->base + r->page_size - 1) / r->page_size; i++)
			r->removed[i / 64] |= 1ULL << (i % 64);
	}
}

/* Returns false when the VMM's memory is gone (ESRCH). */
static bool serve_fault(struct server *sv, uint64_t addr)
{
	struct region *r = find_region(sv, addr);
	if (!r) {
		fprintf(stderr, PROG ": fault at 0x%llx outside every region\n", (unsigned long long)addr);
		sv->errors++;
		return true;
	}
	uint64_t page = addr & ~(r->page_size - 1), off = r->offset + (page - r->base);
	bool zero = page_removed(r, page) || off + r->page_size > sv->file_size;
	for (int tries = 0; tries < 1000; tries++) {
		int rc;
		if (zero) {
			struct uffdio_zeropage z = { .range = { .start = page, .len = r->page_size } };
			rc = ioctl(sv->uffd, UFFDIO_ZEROPAGE, &z);
		} else {
			struct uffdio_copy c = { .dst = page, .src = (uintptr_t)(sv->file + off), .len = r->page_size };
			rc = ioctl(sv->uffd, UFFDIO_COPY, &c);
		}
		if (rc == 0) {
			zero ? sv->zeroed++ : sv->copied++;
			return true;
		}
		if (errno == EEXIST) { /* another fault on the same page was served first */
			sv->raced++;
			return true;
		}
		if (errno == ESRCH)
			return false;
		if (errno != EAGAIN && errno != EINTR)
			break;
	}
	fprintf(stderr, PROG ": %s at 0x%llx: %s\n", zero ? "UFFDIO_ZEROPAGE" : "UFFDIO_COPY", (unsigned long long)page,
		strerror(errno));
	sv->errors++;
	return true;
}

/* Returns a reason to stop, or NULL to go on. */
static const char *serve_events(struct server *sv)
{
	struct uffd_msg msg[16];
	ssize_t n = read(sv->uffd, msg, sizeof(msg));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? NULL : "reading the userfaultfd failed";
	if (n == 0)
		return "the userfaultfd was closed";
	for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
		switch (msg[i].event) {
		case UFFD_EVENT_PAGEFAULT:
			if (!serve_fault(sv, msg[i].arg.pagefault.address))
				return "the VMM's memory is gone";
			break;
		case UFFD_EVENT_REMOVE:
			mark_removed(sv, msg[i].arg.remove.start, msg[i].arg.remove.end);
			break;
		case UFFD_EVENT_UNMAP:
			mark_removed(sv, msg[i].arg.remove.start, msg[i].arg.remove.end);
			break;
		case UFFD_EVENT_FORK:
			close((int)msg[i].arg.fork.ufd);
			break;
		default: /* REMAP: not asked for by vigil or Firecracker */
			break;
		}
	}
	return NULL;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, PROG ": socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket from an earlier run */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
		fprintf(stderr, PROG ": listen on %s: %s\n", path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static bool is_userfaultfd(int fd)
{
	char link[64], target[64];
	if (fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return true; /* no /proc: let the first read tell */
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

static int vmm_pidfd(int conn)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return -1;
	return (int)syscall(SYS_pidfd_open, cred.pid, 0);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: " PROG " SOCKET MEMFILE\n");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Blocked except inside ppoll, so a signal cannot slip in between the
	 * check and the wait; also undoes a mask inherited from the parent. */
	sigset_t block, waitmask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	static struct server sv = { .uffd = -1 };
	uint64_t sys_ps = (uint64_t)sysconf(_SC_PAGESIZE);
	int mf = open(argv[2], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (mf < 0 || fstat(mf, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, PROG ": %s: %s\n", argv[2], mf < 0 ? strerror(errno) : "not a regular file");
		return 1;
	}
	sv.file_size = (uint64_t)st.st_size;
	if (sv.file_size) {
		void *p = mmap(NULL, sv.file_size, PROT_READ, MAP_PRIVATE, mf, 0);
		if (p == MAP_FAILED) {
			fprintf(stderr, PROG ": mmap %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		sv.file = p;
	}
	close(mf);

	int ls = listen_on(argv[1]);
	if (ls < 0)
		return 1;
	int conn;
	struct pollfd lp = { .fd = ls, .events = POLLIN };
	while (!stop_signal && ppoll(&lp, 1, NULL, &waitmask) < 0 && errno == EINTR)
		;
	conn = stop_signal ? -1 : accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	close(ls);
	unlink(argv[1]);
	if (conn < 0) {
		fprintf(stderr, PROG ": accept: %s\n", stop_signal ? "stopped by a signal" : strerror(errno));
		return 1;
	}
	json_t *arr = read_mappings(conn, &sv.uffd);
	if (!arr)
		return 1;
	if (!is_userfaultfd(sv.uffd)) {
		fprintf(stderr, PROG ": handshake: %s\n", sv.uffd < 0 ? "no fd attached" : "the fd attached is not a userfaultfd");
		json_decref(arr);
		return 1;
	}
	int bad = parse_regions(&sv, arr, sys_ps);
	json_decref(arr);
	if (bad)
		return 1;
	int pidfd = vmm_pidfd(conn);

	const char *why = NULL;
	while (!why) {
		struct pollfd p[3] = {
			{ .fd = sv.uffd, .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
			{ .fd = conn, .events = POLLIN },
		};
		int n = ppoll(p, 3, NULL, &waitmask);
		if (stop_signal) {
			why = "stopped by a signal";
			break;
		}
		if (n < 0) {
			if (errno != EINTR)
				why = "poll failed";
			continue;
		}
		if (p[0].revents & POLLIN)
			why = serve_events(&sv);
		else if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			why = "the userfaultfd reported an error";
		if (!why && p[1].revents)
			why = "the VMM exited";
		if (p[2].revents) {
			/* Data after the handshake is not part of this protocol; an
			 * end of stream is normal (the VMM closes it after sending). */
			char junk[256];
			if (recv(conn, junk, sizeof(junk), MSG_DONTWAIT) <= 0) {
				close(conn);
				conn = -1;
			}
		}
	}
	fprintf(stderr, PROG ": served %lu pages (%lu from %s, %lu zero), %lu raced, %lu errors; %s\n",
		sv.copied + sv.zeroed, sv.copied, argv[2], sv.zeroed, sv.raced, sv.errors, why);
	return 0;
}
