/* log.c - JSON-lines logger on stderr. */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int fp_log_min = FP_LOG_INFO;
static const char *const fp_log_names[] = {"debug", "info", "warn", "error"};

void fp_log_set_level(fp_log_level level)
{
    atomic_store(&fp_log_min, (int)level);
}

int fp_log_level_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, fp_log_names[i]) == 0)
            return i;
    return -1;
}

void fp_log(fp_log_level level, const char *event, const char *fmt, ...)
{
    if ((int)level < atomic_load(&fp_log_min))
        return;
    json_t *obj = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        obj = json_vpack_ex(NULL, 0, fmt, ap);
        va_end(ap);
    }
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000L);

    json_t *line = json_pack("{s:s,s:s,s:s}", "ts", when, "level", fp_log_names[level],
                             "event", event ? event : "log");
    if (line) {
        json_object_update(line, obj);
        char *text = json_dumps(line, JSON_COMPACT);
        if (text) {
            size_t len = strlen(text);
            text[len] = '\n'; /* replaces the NUL; write exactly len+1 bytes */
            ssize_t w = write(STDERR_FILENO, text, len + 1);
            (void)w;
            free(text);
        }
        json_decref(line);
    }
    json_decref(obj);
}
