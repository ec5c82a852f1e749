/*
 * Fuzz target: the server's JSON request body parser (http__parse_body:
 * jansson with duplicate keys refused, the nesting limit, objects only), the
 * error answer built from its message, and the one check of body text that
 * needs no service: an upload's display name (sess_name_check, the "name"
 * of POST /api/v1/sessions/{id}/participants), tried on every top-level
 * string of an accepted body. The other routes' checks need the service and
 * are fuzzed through the real server (fuzz_http).
 *
 * Checked: an accepted body is an object nested at most HTTP_MAX_JSON_DEPTH
 * deep; a refused one has a message, and that message fits in the JSON error
 * answer the client gets; a body refused for its depth is really nested
 * deeper than the limit. The depth is measured here from the raw text,
 * independently of the server's walk over the parsed value. A display name
 * that is accepted is valid UTF-8 of 1 to 40 characters, none of them a
 * control character (C0, DEL, C1), without spaces or tabs at either end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "http/http_internal.h"
#include "session.h"

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

/* The rules of a display name, checked on what sess_name_check kept. */
static int name_ok(const char *name)
{
    json_t *valid = json_string(name); /* NULL unless valid UTF-8 */
    if (!valid)
        return 0;
    json_decref(valid);
    const unsigned char *p = (const unsigned char *)name;
    size_t n = strlen(name), chars = 0;
    if (n == 0 || p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t')
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned cp = p[i];
        size_t k = cp < 0x80 ? 1 : cp < 0xe0 ? 2 : cp < 0xf0 ? 3 : 4;
        if (k > 1) {
            cp &= 0x3fu >> (k - 1);
            for (size_t j = 1; j < k; j++)
                cp = cp << 6 | (p[i + j] & 0x3fu);
        }
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return 0;
        chars++;
        i += k;
    }
    return chars >= 1 && chars <= 40;
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
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            char *name = NULL;
            if (json_is_string(v) && sess_name_check(json_string_value(v), &name) == FP_OK &&
                !name_ok(name))
                __builtin_trap();
            fp_free(name);
        }
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
