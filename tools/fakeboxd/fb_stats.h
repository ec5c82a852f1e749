/*
 * fb_stats.h - fakeboxd's request counters and one-shot failure state,
 * shared by all connection threads (every function takes the one lock).
 *
 * Counted are the site's requests (not /_fake/...): requests_total, per
 * request path (as received, without the query string), requests in flight
 * now (in_flight) and the highest number ever in flight at once per Host
 * header value (peak_concurrency). A request is in flight from
 * fb_stats_begin to fb_stats_end, latency sleeps included.
 *
 * Each map is bounded (FB_STATS_MAX_KEYS): past that, new paths are counted
 * under "(other)", new hosts under "(other)", and first-time state is no
 * longer recorded (every later request is treated as a repeat).
 */
#ifndef FB_STATS_H
#define FB_STATS_H

#include "fb_util.h"

#define FB_STATS_MAX_KEYS 100000

typedef struct fb_stats fb_stats;

/* Caller frees with fb_stats_free. */
fb_stats *fb_stats_new(void);
void fb_stats_free(fb_stats **s);

/* host is the Host header ("" when absent); path the request path. */
void fb_stats_begin(fb_stats *s, const char *host, const char *path);
/* Must pair with fb_stats_begin, with the same host. */
void fb_stats_end(fb_stats *s, const char *host);

/*
 * 1 the first time (kind, key) is seen since start or the last reset, else 0.
 * Used for flaky* and ratelimited* pages.
 */
int fb_stats_first_time(fb_stats *s, const char *kind, const char *key);

/*
 * {"requests_total":N,"pages":{path:n,...},"peak_concurrency":{host:n,...},
 *  "in_flight":n}. Caller frees *json with free().
 */
fb_err fb_stats_json(fb_stats *s, char **json) FB_WARN_UNUSED;

/*
 * Zeroes requests_total and the per-path counts, forgets first-time state,
 * and restarts each host's peak from the requests in flight now (which keep
 * being counted, so in_flight stays exact).
 */
void fb_stats_reset(fb_stats *s);

#endif
