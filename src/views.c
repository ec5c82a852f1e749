/* views.c - JSON views of films, participants and errors. */
#include "views.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"

/* The Letterboxd base URL film links are built on: set once at start, before
 * any thread reads it. */
static char view__lb_base[512] = "https://letterboxd.com";

void views_set_letterboxd_url(const char *url)
{
    size_t n = url ? strlen(url) : 0;
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n > 0 && n < sizeof view__lb_base)
        snprintf(view__lb_base, sizeof view__lb_base, "%.*s", (int)n, url);
}

const char *views_letterboxd_url(void)
{
    return view__lb_base;
}

json_t *view_film(const film *f)
{
    json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)f->id, "title",
                          f->title ? f->title : "");
    json_object_set_new(o, "year", f->year ? json_integer(f->year) : json_null());
    json_object_set_new(o, "slug", f->lb_slug ? json_string(f->lb_slug) : json_null());
    json_object_set_new(o, "letterboxd_id", f->lb_id ? json_integer(f->lb_id) : json_null());
    if (f->lb_slug) {
        char *url = fp_printf("%s/film/%s/", view__lb_base, f->lb_slug);
        json_object_set_new(o, "url", json_string(url));
        fp_free(url);
    } else {
        json_object_set_new(o, "url", f->lb_uri ? json_string(f->lb_uri) : json_null());
    }
    if (f->poster && f->id > 0) {
        char *poster = fp_printf("/api/v1/films/%lld/poster", (long long)f->id);
        json_object_set_new(o, "poster", json_string(poster));
        fp_free(poster);
    } else {
        json_object_set_new(o, "poster", json_null());
    }
    return o;
}

const char *view_part_state(svc_part_state s)
{
    switch (s) {
    case SVC_PART_QUEUED:
        return "queued";
    case SVC_PART_FETCHING:
        return "fetching";
    case SVC_PART_READY:
        return "ready";
    default:
        return "failed";
    }
}

static char *view__message(fp_err e, const char *user)
{
    switch (e) {
    case FP_USER_NOT_FOUND:
        return fp_printf("No Letterboxd user called \u201c%s\u201d", user);
    case FP_EMPTY_WATCHLIST:
        return fp_strdup("This watchlist is private or empty");
    case FP_BLOCKED:
        return fp_strdup("Letterboxd refused the request: upload your export instead");
    case FP_UPSTREAM:
    case FP_TIMEOUT:
    case FP_UPSTREAM_LIMITED:
        return fp_strdup("Letterboxd is not answering, try again in a while");
    case FP_NOT_FOUND:
        return fp_strdup("No stored list for this import; upload it again");
    default:
        return fp_strdup(fp_err_message(e));
    }
}

json_t *view_error(fp_err e, const char *user)
{
    if (e == FP_OK)
        return json_null();
    char *msg = view__message(e, user ? user : "");
    json_t *o = json_pack("{s:s,s:s}", "code", fp_err_code(e), "message", msg);
    fp_free(msg);
    return o;
}

json_t *view_time(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *view_part(const svc_part_view *p)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:I,s:b}", "name", p->user, "source", p->source,
                          "status", view_part_state(p->state), "pages_fetched", p->pages_done,
                          "pages_total", p->pages_total, "films", (json_int_t)p->films,
                          "from_store", p->from_store);
    json_object_set_new(o, "fetched_at", view_time(p->fetched_at));
    json_object_set_new(o, "error", view_error(p->error, p->user));
    json_object_set_new(o, "warning", view_error(p->warning, p->user));
    return o;
}
