/* log.c - JSON-lines logger on stderr, Elastic Common Schema field names. */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* The callers' field names that have an ECS field; scale turns the value
 * into the ECS unit (event.duration is in nanoseconds). Any other field
 * goes under filmpicker.* (ECS's advice for custom fields). */
static const struct {
    const char *key;
    const char *ecs;
    long long scale;
} fp_log_ecs[] = {
    {"request_id", "trace.id", 0},
    {"method", "http.request.method", 0},
    {"status", "http.response.status_code", 0},
    {"route", "url.path", 0},
    {"duration_us", "event.duration", 1000},
    {"ms", "event.duration", 1000000},
    {"error", "error.message", 0},
    {"client", "client.address", 0},
    {"host", "server.address", 0},
    {"port", "server.port", 0},
    {"file", "file.path", 0},
    {"path", "file.path", 0},
};

static void fp_log_put(json_t *line, const char *key, json_t *value)
{
    for (size_t i = 0; i < sizeof fp_log_ecs / sizeof fp_log_ecs[0]; i++)
        if (strcmp(key, fp_log_ecs[i].key) == 0) {
            if (fp_log_ecs[i].scale && json_is_number(value)) {
                double ns = json_number_value(value) * (double)fp_log_ecs[i].scale;
                json_object_set_new(line, fp_log_ecs[i].ecs, json_integer((json_int_t)ns));
            } else {
                json_object_set(line, fp_log_ecs[i].ecs, value);
            }
            return;
        }
    char name[96];
    snprintf(name, sizeof name, "filmpicker.%s", key);
    json_object_set(line, name, value);
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

    /* message: what a person reads in Kibana's list. For a request "GET
     * /route 200", for anything else the event's name in words. */
    const char *action = event ? event : "log";
    char message[192];
    const char *m = json_string_value(json_object_get(obj, "method"));
    const char *r = json_string_value(json_object_get(obj, "route"));
    json_t *st = json_object_get(obj, "status");
    if (strcmp(action, "http_request") == 0 && m && r && json_is_integer(st)) {
        snprintf(message, sizeof message, "%s %s %lld", m, r, (long long)json_integer_value(st));
    } else {
        snprintf(message, sizeof message, "%s", action);
        for (char *p = message; *p; p++)
            if (*p == '_')
                *p = ' ';
    }
    json_t *line = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "@timestamp", when, "log.level",
                             fp_log_names[level], "message", message, "event.action", action,
                             "event.dataset", "filmpicker.log", "service.name", "filmpicker",
                             "ecs.version", "8.11.0");
    if (line) {
        const char *key;
        json_t *value;
        json_object_foreach(obj, key, value)
        {
            fp_log_put(line, key, value);
        }
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
