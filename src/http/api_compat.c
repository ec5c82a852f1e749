/*
 * api_compat.c - the first version's API, kept for existing clients:
 *   POST /api/scrape/            {"usernames":[{"name","type","refresh"}]}
 *                                -> {"intersection_len": N, "intersection": [slug...]}
 *   POST /api/watchlist/remove   {"film": slug, "usernames":[{"name","type"}]}
 *                                -> {"results": {"alice": true}}
 * "type" is "lb" or "letterboxd" in any case (the first version's client
 * sends "LB"); absent means "lb".
 *
 * The first version answered only once the lists were read (it blocked), and
 * its client treats anything else as a failure, so both routes wait for the
 * fetch: when every list is stored the answer is computed at once (stale
 * lists are used and refreshed behind); otherwise the request is suspended
 * until the fetch job finishes or compat_wait_ms passes (then 503
 * still_fetching, with the job id so the client can follow it on
 * /api/v1/jobs/{id}; the fetch goes on and is stored). A server that is
 * stopping lets running fetches finish, so waiting requests get their answer
 * (http_server_stop allows compat_wait_ms). The v1 API and the web app never
 * wait: they get a job. No common films is a 200 with an empty list.
 */
#include <string.h>

#include "core/mem.h"
#include "http/http_internal.h"

typedef struct compat_people {
    svc_person *people;
    size_t n;
    char job_id[33];
    char *film;    /* remove: the film's slug */
    char **labels; /* remove: each name as sent (the keys of "results") */
} compat_people;

static void compat__people_free(void *p)
{
    compat_people *cp = p;
    for (size_t i = 0; cp->labels && i < cp->n; i++)
        fp_free(cp->labels[i]);
    fp_free(cp->labels);
    fp_free(cp->film);
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

/* The answer of a wait that ended before the job: 503 still_fetching with
 * the job to follow. */
static struct MHD_Response *compat__not_done(http_req *r, const compat_people *cp)
{
    json_t *body = http__error_body(FP_PENDING, "the watchlists are still being fetched; "
                                                "retry shortly or follow the job");
    json_object_set_new(json_object_get(body, "error"), "job", json_string(cp->job_id));
    struct MHD_Response *resp = http__json_response(r, body);
    MHD_add_response_header(resp, "Retry-After", "2");
    return resp;
}

/* The error answer for participant `failed`, whose list could not be read. */
static struct MHD_Response *compat__failed(http_req *r, const compat_people *cp, fp_err rc,
                                           size_t failed)
{
    const char *user = failed < cp->n ? cp->people[failed].user : "?";
    char *msg = compat__fetch_message(rc, user);
    json_t *body = http__error_body(rc, msg);
    fp_free(msg);
    json_object_set_new(json_object_get(body, "error"), "participant",
                        json_integer((json_int_t)failed));
    struct MHD_Response *resp = http__json_response(r, body);
    if (fp_err_http_status(rc) == 503)
        MHD_add_response_header(resp, "Retry-After", "2");
    return resp;
}

static void compat__scrape_done(void *ud, int done)
{
    http_req *r = ud;
    compat_people *cp = r->async;
    if (!done) {
        http__resume(r, 503, compat__not_done(r, cp));
        return;
    }
    size_t len = 0, failed = 0;
    film_list sample;
    fp_err rc = svc_job_sample(r->srv->svc, cp->job_id, &len, &sample, &failed);
    if (rc == FP_OK)
        http__resume(r, 200, http__json_response(r, compat__answer(len, &sample)));
    else
        http__resume(r, fp_err_http_status(rc), compat__failed(r, cp, rc, failed));
    film_list_free(&sample);
}

/* Starts the job for cp's people and suspends r until done(r, finished) is
 * called (at once when every list is stored). On failure queues the error
 * answer. Takes cp. */
static enum MHD_Result compat__wait(http_req *r, compat_people *cp, svc_wait_fn done)
{
    size_t cost = svc_fetch_cost(r->srv->svc, cp->people, cp->n);
    long long retry_ms = 0;
    http_rl_class out_of = HTTP_RL_JOB;
    if (http__rate_take_job(r, NULL, (double)cost, &retry_ms, &out_of) != FP_OK) {
        compat__people_free(cp);
        return http__rate_limited(r, out_of, retry_ms);
    }
    fp_err rc = svc_job_start(r->srv->svc, cp->people, cp->n, cp->job_id);
    if (rc != FP_OK) {
        compat__people_free(cp);
        return http__error(r, rc, NULL, NULL);
    }
    r->async = cp;
    r->async_free = compat__people_free;
    http__suspend(r);
    rc = svc_job_wait(r->srv->svc, cp->job_id, r->srv->cfg->compat_wait_ms, done, r);
    if (rc != FP_OK) /* the job vanished: cannot happen within the TTL */
        done(r, 0);
    return MHD_YES;
}

enum MHD_Result api_compat_scrape(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    compat_people *cp = NULL;
    int failed = 0;
    res = compat__people(r, body, 1, &cp, &failed);
    json_decref(body);
    if (failed)
        return res;

    size_t len = 0;
    film_list sample;
    fp_err rc = svc_quick_intersection(r->srv->svc, cp->people, cp->n, &len, &sample);
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
    return compat__wait(r, cp, compat__scrape_done);
}

/* Removes the film from each person's stored list: the answer, and its status. */
static struct MHD_Response *compat__remove_all(http_req *r, const compat_people *cp,
                                               int *status)
{
    fp_err rc = FP_OK;
    json_t *results = json_object();
    for (size_t i = 0; i < cp->n && rc == FP_OK; i++) {
        int removed = 0;
        rc = svc_remove_by_slug(r->srv->svc, &cp->people[i], cp->film, &removed);
        json_object_set_new(results, cp->labels[i], json_boolean(removed));
    }
    if (rc != FP_OK) {
        json_decref(results);
        *status = fp_err_http_status(rc);
        return http__json_response(r, http__error_body(rc, NULL));
    }
    *status = 200;
    return http__json_response(r, json_pack("{s:o}", "results", results));
}

/* The lists that were missing are read (or failed): removes the film. */
static void compat__remove_done(void *ud, int done)
{
    http_req *r = ud;
    compat_people *cp = r->async;
    if (!done) {
        http__resume(r, 503, compat__not_done(r, cp));
        return;
    }
    svc_job_view v;
    fp_err rc = svc_job_view_get(r->srv->svc, cp->job_id, &v);
    for (size_t i = 0; rc == FP_OK && i < v.nparts; i++)
        if (v.parts[i].state == SVC_PART_FAILED) {
            fp_err why = v.parts[i].error;
            svc_job_view_free(&v);
            http__resume(r, fp_err_http_status(why), compat__failed(r, cp, why, i));
            return;
        }
    svc_job_view_free(&v);
    int status = 0;
    struct MHD_Response *resp = compat__remove_all(r, cp, &status);
    http__resume(r, status, resp);
}

enum MHD_Result api_compat_remove(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
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
    for (size_t i = 0; i < cp->n; i++)
        cp->people[i].refresh = 0; /* ignored here: a stored list is changed as it is */
    cp->film = fp_strdup(json_string_value(film_j));
    cp->labels = fp_calloc(cp->n, sizeof *cp->labels);
    json_t *names = json_object_get(body, "usernames");
    for (size_t i = 0; i < cp->n; i++)
        cp->labels[i] =
            fp_strdup(json_string_value(json_object_get(json_array_get(names, i), "name")));
    json_decref(body);
    /* Lists not stored yet are fetched first (the answer says whether the
     * film was on each person's list); stored ones are used as they are. */
    int all_stored = 1;
    for (size_t i = 0; i < cp->n && all_stored; i++) {
        fp_err rc = svc_person_stored(r->srv->svc, &cp->people[i], &all_stored);
        if (rc != FP_OK) {
            compat__people_free(cp);
            return http__error(r, rc, NULL, NULL);
        }
    }
    if (!all_stored)
        return compat__wait(r, cp, compat__remove_done);
    int status = 0;
    struct MHD_Response *resp = compat__remove_all(r, cp, &status);
    compat__people_free(cp);
    return http__queue(r, status, resp);
}
