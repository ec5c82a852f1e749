/*
 * tasks.c - fetch tasks: at most one fetch per person at a time, queued to
 * the job queue and run by a worker (svc__handle_job), with progress passed
 * to every job waiting on it.
 */
#include "app/app_internal.h"

static svc_task *svc__task_find(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    for (svc_task *t = s->tasks; t; t = t->next)
        if (memcmp(t->person.key, key, VAULT_KEY_BYTES) == 0)
            return t;
    return NULL;
}

static char *svc__task_payload(const svc_person *p)
{
    json_t *o = json_pack("{s:s,s:s}", "src", p->src->type, "user", p->user);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *copy = fp_strdup(text ? text : "{}");
    free(text);
    return copy;
}

/* Attaches (job, part) to the person's in-flight task, creating and queueing
 * the task when there is none. Called without s->mu. */
void svc__need_fetch(service *s, const svc_person *p, svc_job *j, size_t part)
{
    int created = 0;
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, p->key);
    if (!t) {
        t = fp_calloc(1, sizeof *t);
        t->person = *p;
        t->next = s->tasks;
        s->tasks = t;
        created = 1;
    }
    if (j) {
        svc_listener *l = fp_calloc(1, sizeof *l);
        l->job = j;
        l->part = part;
        l->next = t->listeners;
        t->listeners = l;
        int started = t->pages_total || t->retrying != FP_OK;
        j->parts[part].state = started ? SVC_PART_FETCHING : SVC_PART_QUEUED;
        j->parts[part].pages_done = t->pages_done;
        j->parts[part].pages_total = t->pages_total;
        j->parts[part].warning = t->retrying;
    }
    pthread_mutex_unlock(&s->mu);
    if (!created)
        return;
    char *payload = svc__task_payload(p);
    fp_err rc = s->qb->submit(s->q, payload, strlen(payload));
    fp_free(payload);
    if (rc == FP_OK)
        return;
    /* The queue refused (shutting down): fail the task's listeners now. */
    svc_waiter *fired = NULL;
    pthread_mutex_lock(&s->mu);
    for (svc_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    while (t->listeners) {
        svc_listener *l = t->listeners;
        t->listeners = l->next;
        l->job->parts[l->part].state = SVC_PART_FAILED;
        l->job->parts[l->part].error = rc;
        svc__part_settled(s, l->job, &fired);
        fp_free(l);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(t);
    svc__fire(fired);
}

static void svc__changed_add(svc_changed *c, const svc_job *j)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ids[i], j->id) == 0)
            return;
    if (c->n < sizeof c->ids / sizeof c->ids[0])
        snprintf(c->ids[c->n++], sizeof c->ids[0], "%s", j->id);
}

static void svc__announce(service *s, const svc_changed *c)
{
    for (size_t i = 0; s->job_listener && i < c->n; i++)
        s->job_listener(s->job_listener_ud, c->ids[i]);
}

void svc_set_job_listener(service *s, svc_job_fn fn, void *ud)
{
    s->job_listener = fn;
    s->job_listener_ud = ud;
}

/* A page was read (retrying FP_OK), or one failed and is tried again: then
 * the participants see the reason as a warning until the next page is read. */
static void svc__progress(void *ud, int done, int total, fp_err retrying)
{
    svc_progress_ctx *ctx = ud;
    service *s = ctx->s;
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, ctx->key);
    if (t && (retrying == FP_OK || t->retrying != retrying)) {
        if (retrying == FP_OK) {
            t->pages_done = done;
            t->pages_total = total;
        }
        t->retrying = retrying;
        for (svc_listener *l = t->listeners; l; l = l->next) {
            svc_part *p = &l->job->parts[l->part];
            p->state = SVC_PART_FETCHING;
            p->pages_done = t->pages_done;
            p->pages_total = t->pages_total;
            p->warning = retrying;
            svc__changed_add(&changed, l->job);
        }
    }
    pthread_mutex_unlock(&s->mu);
    svc__announce(s, &changed);
}

/* Fetches one person's list and stores it. Runs on a worker (or the CLI). */
fp_err svc__fetch_and_store(service *s, const svc_person *p, source_progress_fn progress,
                            void *ud)
{
    film_list films;
    int64_t *ids = NULL;
    size_t n = 0;
    long long t0 = svc__mono_ms();
    fp_err rc = p->src->fetch(&s->env, p->user, progress, ud, &films);
    if (rc == FP_OK) {
        rc = svc__resolve(s, &films, SIZE_MAX, &ids, &n, NULL);
        if (rc == FP_OK)
            rc = svc__store_fresh(s, p->key, ids, n, svc__now(), &n, NULL);
        film_list_free(&films);
    }
    fp_free(ids);
    if (rc != FP_OK)
        metrics_fetch_error(rc);
    fp_log(rc == FP_OK ? FP_LOG_INFO : FP_LOG_WARN, "watchlist_fetch", "{s:s,s:s,s:i,s:I}",
           "source", p->src->name, "result", fp_err_code(rc), "films", (int)n, "ms",
           (json_int_t)(svc__mono_ms() - t0));
    return rc;
}

void svc__handle_job(void *ctx, const char *payload, size_t len)
{
    service *s = ctx;
    svc_person p;
    memset(&p, 0, sizeof p);
    json_error_t jerr;
    json_t *o = json_loadb(payload, len, 0, &jerr);
    const char *src = NULL, *user = NULL;
    if (!o || json_unpack(o, "{s:s,s:s}", "src", &src, "user", &user) != 0 ||
        svc_person_parse(s, src, user, 1, &p) != FP_OK) {
        fp_log(FP_LOG_ERROR, "job_payload_invalid", NULL);
        json_decref(o);
        return;
    }
    json_decref(o);

    /* A job still queued at shutdown is not started: its listeners get the
     * stored copy, or FP_UNAVAILABLE, at once. */
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    svc_progress_ctx pc = {s, p.key};
    fp_err rc = stopping ? FP_UNAVAILABLE : svc__fetch_and_store(s, &p, svc__progress, &pc);

    /* Results for the listeners: the new list, or the stored copy as a fallback. */
    svc_stored st = {0};
    fp_err load_rc = svc__load(s, p.key, &st);

    svc_waiter *fired = NULL;
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = NULL;
    for (svc_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->person.key, p.key, VAULT_KEY_BYTES) == 0) {
            t = *pp;
            *pp = t->next;
            break;
        }
    while (t && t->listeners) {
        svc_listener *l = t->listeners;
        t->listeners = l->next;
        svc_part *part = &l->job->parts[l->part];
        if (load_rc == FP_OK) {
            part->state = SVC_PART_READY;
            part->warning = rc;
            part->error = FP_OK;
            part->ids = fp_malloc((st.n ? st.n : 1) * sizeof *st.ids);
            if (st.n)
                memcpy(part->ids, st.ids, st.n * sizeof *st.ids);
            part->nids = st.n;
            part->fetched_at = st.fetched_at;
            part->from_store = rc != FP_OK;
            if (part->pages_total == 0)
                part->pages_done = part->pages_total = t->pages_total;
        } else {
            part->state = SVC_PART_FAILED;
            part->error = rc != FP_OK ? rc : load_rc;
            part->warning = FP_OK;
        }
        svc__changed_add(&changed, l->job);
        svc__part_settled(s, l->job, &fired);
        fp_free(l);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(t);
    svc__stored_free(&st);
    svc__fire(fired);
    svc__announce(s, &changed);
}

size_t svc_fetch_cost(service *s, const svc_person *people, size_t n)
{
    size_t cost = 0;
    for (size_t i = 0; i < n; i++) {
        const svc_person *p = &people[i];
        if (!p->src)
            continue; /* an upload: nothing to fetch */
        pthread_mutex_lock(&s->mu);
        int in_flight = svc__task_find(s, p->key) != NULL;
        pthread_mutex_unlock(&s->mu);
        if (in_flight)
            continue; /* joins the fetch already running */
        if (p->refresh) {
            cost++;
            continue;
        }
        svc_stored st = {0};
        fp_err rc = svc__load(s, p->key, &st);
        if (rc == FP_NOT_FOUND || (rc == FP_OK && !svc__is_fresh(s, st.fetched_at)))
            cost++;
        svc__stored_free(&st);
    }
    return cost;
}
