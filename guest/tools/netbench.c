/* netbench — TCP throughput for the lab's network benchmark (bench/net.py).
 *   netbench serve PORT            (the host side) accept forever; a client's
 *                                  first byte says the direction: 'S' the
 *                                  client sends and we drain, 'R' we send
 *                                  until the client closes
 *   netbench send IP PORT SECS     (the guest) send for SECS seconds
 *   netbench recv IP PORT SECS     (the guest) receive for SECS seconds
 * The client prints "netbench MODE: BYTES bytes in S s, M Mbit/s", counted
 * on its own side (sent bytes, or received bytes). 128 KiB writes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF (128 * 1024)
static char buf[BUF];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void serve_one(int c)
{
	char dir;
	if (read(c, &dir, 1) != 1)
		return;
	if (dir == 'S') {
		while (read(c, buf, BUF) > 0)
			;
	} else {
		while (write(c, buf, BUF) > 0)
			;
	}
}

static int serve(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 8) < 0) {
		perror("netbench: serve");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);
	printf("netbench: serving on %d\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			close(s);
			serve_one(c);
			_exit(0);
		}
		close(c);
	}
}

static int client(const char *mode, const char *ip, int port, double secs)
{
	int sending = strcmp(mode, "send") == 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "netbench: bad address %s\n", ip);
		return 1;
	}
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("netbench: connect");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	char dir = sending ? 'S' : 'R';
	if (write(s, &dir, 1) != 1) {
		perror("netbench: write");
		return 1;
	}
	unsigned long long bytes = 0;
	double t0 = now(), t;
	do {
		ssize_t n = sending ? write(s, buf, BUF) : read(s, buf, BUF);
		if (n <= 0) {
			perror("netbench: transfer");
			return 1;
		}
		bytes += n;
		t = now();
	} while (t - t0 < secs);
	close(s);
	printf("netbench %s: %llu bytes in %.2f s, %.1f Mbit/s\n", mode, bytes, t - t0, bytes * 8 / (t - t0) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc == 5 && (strcmp(argv[1], "send") == 0 || strcmp(argv[1], "recv") == 0))
		return client(argv[1], argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: netbench serve PORT | netbench send|recv IP PORT SECS\n");
	return 2;
}
