/*
 * bindsrc.c - a test tool: LD_PRELOAD=libbindsrc.so FP_BIND_SRC=127.0.0.2 CMD
 * makes every IPv4 TCP connection CMD opens come from that source address.
 *
 * The abuse tests play the attacker from 127.0.0.2 and the honest client
 * from 127.0.0.1. Python binds its own sockets; a tool such as slowhttptest
 * has no option for it, and the kernel gives loopback connections the
 * source 127.0.0.1. This shim binds the socket to FP_BIND_SRC (port 0)
 * just before the program's connect(2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static connect_fn real;
    if (!real)
        real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    const char *src = getenv("FP_BIND_SRC");
    if (src && addr && addr->sa_family == AF_INET) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &sa.sin_addr) == 1)
            (void)bind(fd, (struct sockaddr *)&sa, sizeof sa); /* failure: connect as usual */
    }
    return real(fd, addr, len);
}
