/*
 * Fuzz target: the server's JSON request body parser (http__parse_body:
 * jansson with duplicate keys refused, the nesting limit, objects only) and
 * the error answer built from its message.
 *
 * Checked: an accepted body is an object nested at most HTTP_MAX_JSON_DEPTH
 * deep; a refused one has a message, and that message fits in the JSON error
 * answer the client gets; a body refused for its depth is really nested
 * deeper than the limit. The depth is measured here from the raw text,
 * independently of the server's walk over the parsed value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "http/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Deepest nesting of [ and { outside strings (exact for valid JSON). */
static int text_depth(const uint8_t *p, size_t n)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = 0;
        } else if (p[i] == '"') {
            in_str = 1;
        } else if (p[i] == '[' || p[i] == '{') {
            if (++depth > max)
                max = depth;
        } else if (p[i] == ']' || p[i] == '}') {
            depth--;
        }
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_req r;
    memset(&r, 0, sizeof r);
    fp_buf_init(&r.body, (size_t)16 * 1024 * 1024);
    if (size && fp_buf_append(&r.body, data, size) != FP_OK)
        abort();
    json_t *j = NULL;
    char *msg = NULL;
    fp_err rc = http__parse_body(&r, &j, &msg);
    if (rc == FP_OK) {
        if (!json_is_object(j) || msg || text_depth(data, size) > HTTP_MAX_JSON_DEPTH)
            __builtin_trap();
    } else {
        if (j || !msg || (rc != FP_BAD_JSON && rc != FP_INVALID))
            __builtin_trap();
        int too_deep = rc == FP_INVALID && strncmp(msg, "JSON nested deeper", 18) == 0;
        if (too_deep && text_depth(data, size) <= HTTP_MAX_JSON_DEPTH)
            __builtin_trap();
        /* The message goes to the client inside {"error": {...}}: jansson
         * must be able to encode it, or the client gets "encoding failed". */
        json_t *err = http__error_body(rc, msg);
        char *text = err ? json_dumps(err, JSON_COMPACT) : NULL;
        if (!text)
            __builtin_trap();
        free(text);
        json_decref(err);
    }
    json_decref(j);
    fp_free(msg);
    fp_buf_free(&r.body);
    return 0;
}
