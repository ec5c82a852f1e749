/*
 * ready.c - readiness (GET /readyz): every dependency checked at once, each
 * on a detached thread of its own, the caller waiting for them at most
 * SVC_READY_TIMEOUT_MS.
 *
 * A round (one svc_ready call) is shared by the caller and its check
 * threads and freed by whichever lets go of it last, so a caller that gave
 * up on a slow check returns at once and the check's thread still has
 * somewhere to write. The service counts the threads (ready_threads, under
 * mu) so that svc_close waits for them before it closes the backends they
 * use, and marks each check slot busy while its thread runs, so a server
 * that hangs costs one thread per check, not one per /readyz request.
 */
#include <errno.h>

#include "app/app_internal.h"

typedef fp_err (*svc_probe_fn)(void *ud);

typedef struct svc_round {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;       /* the caller and each thread not yet ended */
    size_t pending; /* checks not answered yet */
    int done[SVC_READY_MAX];
    fp_err rc[SVC_READY_MAX];
    double ms[SVC_READY_MAX];
} svc_round;

typedef struct svc_probe {
    service *s;
    svc_round *round;
    size_t slot;
    svc_probe_fn fn;
    void *ud;
} svc_probe;

static double svc__mono_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static fp_err svc__ping_store(void *ud)
{
    service *s = ud;
    return s->sb->ping(s->st);
}

static fp_err svc__ping_cache(void *ud)
{
    service *s = ud;
    return s->cb->ping(s->ca);
}

static fp_err svc__ping_state(void *ud)
{
    service *s = ud;
    return s->stb->ping(s->sts);
}

/* Drops one reference to the round; the last one frees it. mu held on
 * entry, released on return. */
static void svc__round_release(svc_round *rd)
{
    int last = --rd->refs == 0;
    pthread_mutex_unlock(&rd->mu);
    if (last) {
        pthread_cond_destroy(&rd->cv);
        pthread_mutex_destroy(&rd->mu);
        fp_free(rd);
    }
}

static void *svc__probe_main(void *arg)
{
    svc_probe *p = arg;
    service *s = p->s;
    double t0 = svc__mono_ms_f();
    fp_err rc = p->fn(p->ud);
    double ms = svc__mono_ms_f() - t0;
    svc_round *rd = p->round;
    pthread_mutex_lock(&rd->mu);
    rd->done[p->slot] = 1;
    rd->rc[p->slot] = rc;
    rd->ms[p->slot] = ms;
    rd->pending--;
    pthread_cond_broadcast(&rd->cv);
    svc__round_release(rd);
    pthread_mutex_lock(&s->mu);
    s->ready_busy[p->slot] = 0;
    s->ready_threads--;
    pthread_cond_broadcast(&s->ready_cv);
    fp_free(p);
    pthread_mutex_unlock(&s->mu); /* the last touch of s: svc_close may free it now */
    return NULL;
}

/* Starts slot's check on a thread of its own: 1, or 0 when it could not
 * (its previous check still runs, the service is stopping, no thread). */
static int svc__probe_start(service *s, svc_round *rd, size_t slot, svc_probe_fn fn, void *ud)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->ready_busy[slot]) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->ready_busy[slot] = 1;
    s->ready_threads++;
    pthread_mutex_unlock(&s->mu);
    svc_probe *p = fp_calloc(1, sizeof *p);
    *p = (svc_probe){s, rd, slot, fn, ud};
    pthread_mutex_lock(&rd->mu);
    rd->refs++;
    rd->pending++;
    pthread_mutex_unlock(&rd->mu);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int err = pthread_create(&th, &attr, svc__probe_main, p);
    pthread_attr_destroy(&attr);
    if (err == 0)
        return 1;
    pthread_mutex_lock(&rd->mu);
    rd->refs--;
    rd->pending--;
    pthread_mutex_unlock(&rd->mu);
    pthread_mutex_lock(&s->mu);
    s->ready_busy[slot] = 0;
    s->ready_threads--;
    pthread_cond_broadcast(&s->ready_cv);
    pthread_mutex_unlock(&s->mu);
    fp_free(p);
    return 0;
}

static void svc__check_init(svc_check *c, const char *name, const char *backend, int required)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->backend = backend;
    c->required = required;
    c->status = FP_UNAVAILABLE;
}

void svc_ready(service *s, const svc_ready_extra *extra, size_t nextra, svc_ready_report *out)
{
    memset(out, 0, sizeof *out);
    if (nextra > SVC_READY_MAX - 4)
        nextra = SVC_READY_MAX - 4;
    svc_round *rd = fp_calloc(1, sizeof *rd);
    pthread_mutex_init(&rd->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rd->cv, &ca);
    pthread_condattr_destroy(&ca);
    rd->refs = 1;

    /* Slots 0..2 and 4.. run on threads; the queue (3) answers from memory. */
    svc__check_init(&out->checks[0], "database", s->sb->name, 1);
    svc__check_init(&out->checks[1], "cache", s->cb->name, 0);
    svc__check_init(&out->checks[2], "state", s->stb->name, s->shared_state);
    svc__check_init(&out->checks[3], "queue", s->qb->name, 1);
    for (size_t i = 0; i < nextra; i++)
        svc__check_init(&out->checks[4 + i], extra[i].name, extra[i].backend, extra[i].required);
    out->n = 4 + nextra;
    int started[SVC_READY_MAX] = {0};
    started[0] = svc__probe_start(s, rd, 0, svc__ping_store, s);
    started[1] = svc__probe_start(s, rd, 1, svc__ping_cache, s);
    started[2] = svc__probe_start(s, rd, 2, svc__ping_state, s);
    for (size_t i = 0; i < nextra; i++)
        started[4 + i] = svc__probe_start(s, rd, 4 + i, extra[i].fn, extra[i].ud);

    svc_check *q = &out->checks[3];
    double t0 = svc__mono_ms_f();
    q->is_queue = 1;
    q->status = s->q ? s->qb->health(s->q, &q->queue) : FP_UNAVAILABLE;
    q->ms = svc__mono_ms_f() - t0;

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += SVC_READY_TIMEOUT_MS / 1000;
    deadline.tv_nsec += (SVC_READY_TIMEOUT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rd->mu);
    while (rd->pending > 0)
        if (pthread_cond_timedwait(&rd->cv, &rd->mu, &deadline) == ETIMEDOUT)
            break;
    out->ready = 1;
    for (size_t i = 0; i < out->n; i++) {
        svc_check *c = &out->checks[i];
        if (i != 3) {
            if (started[i] && rd->done[i]) {
                c->status = rd->rc[i];
                c->ms = rd->ms[i];
            } else { /* not answered in time, or the previous check still runs */
                c->status = FP_UNAVAILABLE;
                c->timed_out = 1;
                c->busy = !started[i];
                c->ms = started[i] ? (double)SVC_READY_TIMEOUT_MS : 0;
            }
        }
        if (c->required && c->status != FP_OK)
            out->ready = 0;
    }
    svc__round_release(rd);
}

void svc_ready_drain(service *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->ready_threads > 0)
        pthread_cond_wait(&s->ready_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}
