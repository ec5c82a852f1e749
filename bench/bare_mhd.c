/*
 * bare_mhd.c - the ceiling for the warm benchmark: a libmicrohttpd server
 * with the same threading mode as filmpicker serve (internal thread pool,
 * epoll, turbo) that answers every request with a fixed small JSON body.
 * usage: bare_mhd PORT [THREADS]; runs until SIGTERM/SIGINT.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char bare_body[] = "{\"intersection_len\":3,\"intersection\":[\"a\",\"b\",\"c\"]}";

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *up,
                                    size_t *upsize, void **ctx)
{
    (void)cls, (void)url, (void)method, (void)version, (void)up;
    if (!*ctx) {
        *ctx = (void *)1;
        return MHD_YES;
    }
    if (*upsize) { /* consume the request body like the real server */
        *upsize = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof bare_body - 1, (void *)bare_body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bare_mhd PORT [THREADS]\n");
        return 2;
    }
    char *end = NULL;
    long port = strtol(argv[1], &end, 10);
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (*end || port <= 0 || port > 65535 || threads < 1)
        return 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO, (uint16_t)port, NULL,
        NULL, bare_handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, 900u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d)
        return 1;
    printf("listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
