/*
 * api_compat.c - the first version's API, kept for existing clients:
 *   POST /api/scrape/            {"usernames":[{"name","type","refresh"}]}
 *                                -> {"intersection_len": N, "intersection": [slug...]}
 *   POST /api/watchlist/remove   {"film": slug, "usernames":[{"name"}]}
 *                                -> {"results": {"alice": true}}
 * When every list is stored and fresh the answer is computed on the request
 * thread; otherwise the request is suspended until the fetch job finishes or
 * compat_wait_ms passes (then 503 still_fetching, with the job id so the
 * client can follow it on /api/v1/jobs/{id}). No common films is a 200 with
 * an empty list.
 */
#include <string.h>

#include "core/mem.h"
#include "http/http_internal.h"

typedef struct compat_people {
    svc_person *people;
    size_t n;
    char job_id[33];
} compat_people;

static void compat__people_free(void *p)
{
    compat_people *cp = p;
    fp_free(cp->people);
    fp_free(cp);
}

/* Reads "usernames" into people. On failure queues the error answer. */
static enum MHD_Result compat__people(http_req *r, json_t *body, int need_type,
                                      compat_people **out, int *failed)
{
    *failed = 1;
    *out = NULL;
    json_t *arr = json_object_get(body, "usernames");
    if (!json_is_array(arr))
        return http__error(r, FP_INVALID, "'usernames' must be an array of {\"name\": ...}",
                           NULL);
    size_t n = json_array_size(arr);
    if (n == 0)
        return http__error(r, FP_INVALID, "'usernames' is empty", NULL);
    if (n > (size_t)r->srv->cfg->max_participants) {
        char *msg = fp_printf("%zu participants; at most %ld are allowed", n,
                              r->srv->cfg->max_participants);
        enum MHD_Result res = http__error(r, FP_TOO_MANY, msg, NULL);
        fp_free(msg);
        return res;
    }
    compat_people *cp = fp_calloc(1, sizeof *cp);
    cp->people = fp_calloc(n, sizeof *cp->people);
    cp->n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *u = json_array_get(arr, i);
        json_t *name = json_object_get(u, "name"), *type = json_object_get(u, "type");
        json_t *refresh = json_object_get(u, "refresh");
        char *msg = NULL;
        fp_err rc = FP_OK;
        if (!json_is_object(u) || !json_is_string(name)) {
            rc = FP_INVALID;
            msg = fp_printf("usernames[%zu] must be an object with a string 'name'", i);
        } else if ((type && !json_is_string(type) && !json_is_null(type)) ||
                   (refresh && !json_is_boolean(refresh) && !json_is_null(refresh))) {
            rc = FP_INVALID;
            msg = fp_printf("usernames[%zu]: 'type' must be a string and 'refresh' a boolean", i);
        } else {
            const char *t = json_is_string(type) ? json_string_value(type) : "lb";
            rc = http__person(r->srv->svc, need_type ? t : "lb", json_string_value(name),
                              json_is_true(refresh), i, &cp->people[i], &msg);
        }
        if (rc != FP_OK) {
            enum MHD_Result res = http__error(r, rc, msg, json_pack("{s:i}", "participant",
                                                                      (int)i));
            fp_free(msg);
            compat__people_free(cp);
            return res;
        }
    }
    *out = cp;
    *failed = 0;
    return MHD_YES;
}

static json_t *compat__answer(size_t len, const film_list *sample)
{
    json_t *list = json_array();
    for (size_t i = 0; i < sample->len; i++) {
        const film *f = &sample->items[i];
        const char *name = f->lb_slug ? f->lb_slug : (f->lb_uri ? f->lb_uri : f->title);
        json_array_append_new(list, json_string(name ? name : ""));
    }
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "intersection_len", json_integer((json_int_t)len));
    json_object_set_new_nocheck(o, "intersection", list);
    return o;
}

/* The message for a participant's fetch error, in plain words. */
static char *compat__fetch_message(fp_err e, const char *user)
{
    switch (e) {
    case FP_USER_NOT_FOUND:
        return fp_printf("No Letterboxd user called '%s'", user);
    case FP_EMPTY_WATCHLIST:
        return fp_printf("The watchlist of '%s' is private or empty", user);
    case FP_BLOCKED:
        return fp_printf("Letterboxd refused the request for '%s'; import your Letterboxd "
                         "export instead",
                         user);
    default:
        return fp_printf("%s (participant '%s')", fp_err_message(e), user);
    }
}

static void compat__job_done(void *ud, int done)
{
    http_req *r = ud;
    compat_people *cp = r->async;
    json_t *body = NULL;
    int status = 200;
    if (!done) {
        body = http__error_body(FP_PENDING, "the watchlists are still being fetched; retry "
                                            "shortly or follow the job");
        json_object_set_new(json_object_get(body, "error"), "job", json_string(cp->job_id));
        status = fp_err_http_status(FP_PENDING);
    } else {
        size_t len = 0, failed = 0;
        film_list sample;
        fp_err rc = svc_job_sample(r->srv->svc, cp->job_id, &len, &sample, &failed);
        if (rc == FP_OK) {
            body = compat__answer(len, &sample);
        } else {
            const char *user = failed < cp->n ? cp->people[failed].user : "?";
            char *msg = compat__fetch_message(rc, user);
            body = http__error_body(rc, msg);
            json_object_set_new(json_object_get(body, "error"), "participant",
                                json_integer((json_int_t)failed));
            fp_free(msg);
            status = fp_err_http_status(rc);
        }
        film_list_free(&sample);
    }
    struct MHD_Response *resp = http__json_response(r, body);
    if (status == 503)
        MHD_add_response_header(resp, "Retry-After", "2");
    http__resume(r, status, resp);
}

enum MHD_Result api_compat_scrape(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    compat_people *cp = NULL;
    int failed = 0;
    fp_err rc;
    res = compat__people(r, body, 1, &cp, &failed);
    json_decref(body);
    if (failed)
        return res;

    size_t len = 0;
    film_list sample;
    rc = svc_quick_intersection(r->srv->svc, cp->people, cp->n, &len, &sample);
    if (rc == FP_OK) {
        res = http__json(r, 200, compat__answer(len, &sample));
        film_list_free(&sample);
        compat__people_free(cp);
        return res;
    }
    film_list_free(&sample);
    if (rc != FP_PENDING) {
        compat__people_free(cp);
        return http__error(r, rc, NULL, NULL);
    }
    rc = svc_job_start(r->srv->svc, cp->people, cp->n, cp->job_id);
    if (rc != FP_OK) {
        compat__people_free(cp);
        return http__error(r, rc, NULL, NULL);
    }
    r->async = cp;
    r->async_free = compat__people_free;
    http__suspend(r);
    rc = svc_job_wait(r->srv->svc, cp->job_id, r->srv->cfg->compat_wait_ms, compat__job_done, r);
    if (rc != FP_OK) /* the job vanished: cannot happen within the TTL */
        compat__job_done(r, 0);
    return MHD_YES;
}

enum MHD_Result api_compat_remove(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    fp_err rc = FP_OK;
    json_t *film_j = json_object_get(body, "film");
    if (!json_is_string(film_j) || json_string_length(film_j) == 0 ||
        json_string_length(film_j) > 200) {
        json_decref(body);
        return http__error(r, FP_INVALID, "'film' must be a film slug string", NULL);
    }
    compat_people *cp = NULL;
    int failed = 0;
    res = compat__people(r, body, 1, &cp, &failed);
    if (failed) {
        json_decref(body);
        return res;
    }
    json_t *results = json_object();
    json_t *names = json_object_get(body, "usernames");
    for (size_t i = 0; i < cp->n && rc == FP_OK; i++) {
        int removed = 0;
        rc = svc_remove_by_slug(r->srv->svc, &cp->people[i], json_string_value(film_j), &removed);
        const char *label = json_string_value(json_object_get(json_array_get(names, i), "name"));
        json_object_set_new(results, label ? label : cp->people[i].user, json_boolean(removed));
    }
    json_decref(body);
    compat__people_free(cp);
    if (rc != FP_OK) {
        json_decref(results);
        return http__error(r, rc, NULL, NULL);
    }
    return http__json(r, 200, json_pack("{s:o}", "results", results));
}
