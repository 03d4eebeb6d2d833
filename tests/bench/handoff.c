/* The floor of the zygote design, for the zygote benchmark: one process
 * accepts each connection and hands the socket (SCM_RIGHTS) to one of two
 * children forked ahead, which wait on a socket pair; the child reads the
 * request head, writes the trivial engine's response and exits; the
 * accepting process forks a replacement. Nothing else: no access checks,
 * no counts, no pid or exit reports, no environment, no second process
 * between the listener and the fork. Whatever jawasd and the engine
 * runtime add, this is what handing a connection to a process of its own
 * costs on the machine, by itself.
 *
 * Usage: handoff PORT   (listens on 127.0.0.1:PORT) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPARES 2

static int pair[2];

/* A child: takes one connection from the pair and answers it. */
static void serve_one(void)
{
	static const char resp[] =
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
		"Content-Length: 13\r\nConnection: close\r\n\r\nHello, world\n";
	char byte, buf[8192];
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.space,
			      .msg_controllen = sizeof ctl.space };
	struct cmsghdr *c;
	size_t n = 0;
	ssize_t r;
	int fd;

	if (recvmsg(pair[1], &msg, 0) <= 0 || !(c = CMSG_FIRSTHDR(&msg)))
		_exit(1);
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	while (n < sizeof buf && (r = read(fd, buf + n, sizeof buf - n)) > 0) {
		n += (size_t)r;
		if (memmem(buf, n, "\r\n\r\n", 4))
			break;
	}
	_exit(write(fd, resp, sizeof resp - 1) == (ssize_t)(sizeof resp - 1) ? 0 : 1);
}

static int spares;

static void refill(void)
{
	while (spares < SPARES) {
		pid_t pid = fork();
		if (pid == 0)
			serve_one();
		if (pid < 0)
			return;
		spares++;
	}
}

/* Hands `fd` to a waiting child. */
static void hand(int fd)
{
	char byte = 'C';
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.space,
			      .msg_controllen = sizeof ctl.space };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(pair[0], &msg, MSG_NOSIGNAL) == 1)
		spares--;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int one = 1, lfd;

	if (argc != 2)
		return 100;
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
		return 111;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	addr.sin_port = htons((unsigned short)atoi(argv[1]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1024) != 0)
		return 111;
	refill();
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		hand(fd);
		close(fd);
		refill();
	}
}
