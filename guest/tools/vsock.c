/* vsock: a tiny AF_VSOCK test helper for vigil's lab guest (static, no deps).
 *   vsock listen PORT        accept connections on PORT forever; echo each
 *                            one's bytes back until it closes (one at a time)
 *   vsock connect CID PORT   connect to CID:PORT, send stdin, half-close, and
 *                            copy everything that comes back to stdout
 * Exit status: 0 ok, 1 a socket call failed (the message names it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int die(const char *what)
{
	fprintf(stderr, "vsock: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies in to out until EOF; returns bytes copied or -1. */
static long copy(int in, int out)
{
	char buf[65536];
	long total = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return total;
		if (write_all(out, buf, (size_t)r))
			return -1;
		total += r;
	}
}

static struct sockaddr_vm addr(unsigned cid, unsigned port)
{
	struct sockaddr_vm a;
	memset(&a, 0, sizeof(a));
	a.svm_family = AF_VSOCK;
	a.svm_cid = cid;
	a.svm_port = port;
	return a;
}

static int do_listen(unsigned port)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return die("socket");
	struct sockaddr_vm a = addr(VMADDR_CID_ANY, port);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)))
		return die("bind");
	if (listen(s, 4))
		return die("listen");
	fprintf(stderr, "vsock: listening on port %u\n", port);
	for (;;) {
		struct sockaddr_vm peer;
		socklen_t len = sizeof(peer);
		int c = accept(s, (struct sockaddr *)&peer, &len);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			return die("accept");
		}
		long n = copy(c, c);
		fprintf(stderr, "vsock: echoed %ld bytes to cid %u port %u\n", n,
			peer.svm_cid, peer.svm_port);
		close(c);
	}
}

static int do_connect(unsigned cid, unsigned port)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return die("socket");
	struct sockaddr_vm a = addr(cid, port);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		return die("connect");
	if (copy(0, s) < 0)
		return die("send");
	if (shutdown(s, SHUT_WR))
		return die("shutdown");
	if (copy(s, 1) < 0)
		return die("receive");
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return do_listen((unsigned)strtoul(argv[2], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return do_connect((unsigned)strtoul(argv[2], NULL, 0),
				  (unsigned)strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: vsock listen PORT | vsock connect CID PORT\n");
	return 2;
}
