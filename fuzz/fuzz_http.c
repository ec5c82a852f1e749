/*
 * Fuzz target: the HTTP API as a client sees it. Each input is the raw bytes
 * of one connection (request line, headers, body; pipelined requests too),
 * sent to the real server running in this process (http_harness.h), whose
 * first answer is checked: never a 500, and on /api/ always JSON without
 * internal_error. Markers {sid}, {job}, {imp} and {csrf} are replaced by a
 * live session id, job id, import id and the CSRF token of the cookie
 * fp_client=0123456789abcdef0123456789abcdef.
 */
#include <stddef.h>
#include <stdint.h>

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
    (void)fz_http_request(data, size);
    return 0;
}
