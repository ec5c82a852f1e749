/*
 * log.h - structured logs: one JSON object per line on stderr, ready for
 * Logstash/Elasticsearch. Fields: ts (RFC 3339 UTC), level, event, then the
 * caller's fields given as a jansson json_pack() format and arguments:
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
