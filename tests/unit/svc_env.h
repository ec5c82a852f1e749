/*
 * svc_env.h - for the tests of the scaled set-up: reads one exported
 * variable (e.g. FILMPICKER_CACHE) from the file the CTest fixture
 * "services" writes (its name in FP_SERVICES_ENV), or from any output of
 * `scripts/services.sh start`. Header-only: each test is one file.
 */
#ifndef FP_TEST_SVC_ENV_H
#define FP_TEST_SVC_ENV_H

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

/* The value of `export NAME=value` in the file at path, or NULL. Caller
 * frees. */
static inline char *svc_env_read(const char *path, const char *name)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return NULL;
    char line[1024], *val = NULL;
    size_t nlen = strlen(name);
    while (!val && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "export ", 7) == 0 && strncmp(line + 7, name, nlen) == 0 &&
            line[7 + nlen] == '=')
            val = fp_strdup(line + 8 + nlen);
    }
    fclose(f);
    return val;
}

#endif
