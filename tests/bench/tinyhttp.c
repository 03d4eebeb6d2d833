/* The trivial static engine every server runs in the core benchmark:
 * reads a request head from fd 0, writes a fixed response to fd 1, exits.
 * Compiled once, statically, so exec cost is the same for every anchor. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

int main(void)
{
	static const char resp[] =
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
		"Content-Length: 13\r\nConnection: close\r\n\r\nHello, world\n";
	char buf[8192];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof buf && (r = read(0, buf + n, sizeof buf - n)) > 0) {
		n += (size_t)r;
		if (memmem(buf, n, "\r\n\r\n", 4))
			break;
	}
	return write(1, resp, sizeof resp - 1) == (ssize_t)(sizeof resp - 1) ? 0 : 1;
}
