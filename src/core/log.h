/*
 * log.h - structured logs: one JSON object per line on stderr, with Elastic
 * Common Schema names, ready for Filebeat/Logstash/Elasticsearch. Fields:
 * @timestamp (RFC 3339 UTC), log.level, message (the event in words, or
 * "METHOD /route STATUS"), event.action (the event's name), event.dataset,
 * service.name, ecs.version, then the caller's fields given as a jansson
 * json_pack() format and arguments, each under its ECS name where there is
 * one (request_id: trace.id, method: http.request.method, status:
 * http.response.status_code, route: url.path, duration_us and ms:
 * event.duration in ns, error: error.message, client: client.address,
 * host/port: server.address/server.port, file and path: file.path) and
 * under filmpicker.NAME otherwise:
 *
 *     fp_log(FP_LOG_INFO, "http_request", "{s:s,s:i}", "path", p, "status", 200);
 *
 * Pass NULL as the format for no extra fields. Thread-safe: each line is
 * written with a single write(2).
 */
#ifndef FP_LOG_H
#define FP_LOG_H

typedef enum { FP_LOG_DEBUG, FP_LOG_INFO, FP_LOG_WARN, FP_LOG_ERROR } fp_log_level;

/* Lines below this level are dropped. Default FP_LOG_INFO. */
void fp_log_set_level(fp_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int fp_log_level_parse(const char *name);
void fp_log(fp_log_level level, const char *event, const char *fmt, ...);

#endif
