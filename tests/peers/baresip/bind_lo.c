/* bind_lo.c: LD_PRELOAD shim for baresip 1.0, which binds its RTP/RTCP sockets
 * (and a few helper sockets) to the wildcard address even with
 * net_interface 127.0.0.1. Every bind() to 0.0.0.0 becomes 127.0.0.1 and every
 * bind() to :: becomes ::1, so the test peer never listens beyond loopback.
 * Built by run.sh: cc -shared -fPIC -o bind_lo.so bind_lo.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	static int (*real_bind)(int, const struct sockaddr *, socklen_t);
	if (!real_bind)
		real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");

	if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in a;
		memcpy(&a, addr, sizeof a);
		if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
		}
	} else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 a;
		memcpy(&a, addr, sizeof a);
		if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
			a.sin6_addr = in6addr_loopback;
			return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
		}
	}
	return real_bind(fd, addr, len);
}
