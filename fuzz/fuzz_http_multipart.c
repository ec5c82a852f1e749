/*
 * Fuzz target: export uploads. Each input is the body of a multipart
 * POST /api/v1/imports (boundary "fuzzboundary", Content-Length the input's
 * size), sent to the real server running in this process
 * (http_harness.h): libmicrohttpd's post processor, our field handling
 * (http__post_iter: the file, username and source fields and their limits)
 * and the import behind it. The answer is checked as in fuzz_http.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "http_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_http_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /api/v1/imports HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\n"
                      "Content-Type: multipart/form-data; boundary=fuzzboundary\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      size);
    uint8_t *req = fp_malloc((size_t)hl + size + 1);
    memcpy(req, head, (size_t)hl);
    if (size)
        memcpy(req + hl, data, size);
    (void)fz_http_send(req, (size_t)hl + size);
    fp_free(req);
    return 0;
}
