/*
 * cli.c - the filmpicker subcommands:
 *   serve     run the HTTP API until SIGTERM/SIGINT (graceful stop)
 *   migrate   up | down [VERSION] | status
 *   pick      the common films of a group, ranked (table or --json)
 *   scrape    one person's watchlist
 *   import    read a Letterboxd export (watchlist.csv or the .zip)
 * Every subcommand takes the settings flags of config.h and --help.
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xmlstring.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/http.h"
#include "app/service.h"
#include "store/store.h"

typedef struct cli_args {
    fp_config cfg;
    char **rest; /* non-setting arguments, in order */
    int nrest;
    int json;
    int refresh;
    int has_seed;
    uint64_t seed;
    long limit;    /* pick: films listed; 0 means all */
    int has_limit; /* --limit was given */
    const char *user; /* import --user */
    const char *new_key_file; /* key rotate --new-key-file */
    int yes;                  /* key reset --yes */
    char *db_shown;           /* cfg.database without its password, for messages */
} cli_args;

static void cli_usage(FILE *out)
{
    fputs("usage: filmpicker COMMAND [ARGS] [SETTINGS]\n\n"
          "commands:\n"
          "  serve                      run the HTTP API (FILMPICKER_LISTEN)\n"
          "  migrate up|down [N]|status apply, revert or show schema migrations\n"
          "  worker                     run fetch jobs from the broker queue (the scaled set-up)\n"
          "  pick PROFILE...            the films everyone wants to see, ranked\n"
          "  scrape PROFILE             one person's watchlist\n"
          "  import FILE                import a Letterboxd export (.csv or .zip)\n"
          "  watched PROFILE            the films marked watched here (kept off the list)\n"
          "  unwatch PROFILE FILM       put a watched film back on the list\n"
          "  key status|rotate|reset    the server key and the database's data key\n"
          "  sweep                      remove catalogue films no stored list uses\n\n"
          "A PROFILE is a Letterboxd username or profile URL (alice, @alice,\n"
          "https://letterboxd.com/alice/). `filmpicker COMMAND --help` for details.\n",
          out);
}

static const char *const cli_help[][2] = {
    {"serve", "usage: filmpicker serve [SETTINGS]\n"
              "Serves the HTTP API on --listen until SIGTERM or SIGINT, then stops\n"
              "gracefully: running requests are answered and running fetches stored.\n"},
    {"migrate", "usage: filmpicker migrate up | down [VERSION] | status [SETTINGS]\n"
                "up: apply every pending migration. down: revert to VERSION (default:\n"
                "one step back; 0 reverts everything). status: current and latest version.\n"},
    {"pick", "usage: filmpicker pick PROFILE... [--json] [--refresh] [--seed N] [--limit N]\n"
             "Fetches (or reuses stored) watchlists and prints the films on every list,\n"
             "then, when few are common, those on most lists (\"on 3 of 4 lists\"),\n"
             "plus one film rolled at random (reproducible with --seed).\n"
             "--limit N: list at most N films of each kind (0: all). Default: 50 in\n"
             "the table, all with --json.\n"},
    {"scrape", "usage: filmpicker scrape PROFILE [--json] [--refresh]\n"
               "Prints one person's watchlist (fetching it when not stored or stale).\n"},
    {"import", "usage: filmpicker import FILE [--user PROFILE] [--json]\n"
               "Imports a Letterboxd export (watchlist.csv or the export .zip). With\n"
               "--user it becomes that Letterboxd user's stored watchlist; otherwise an\n"
               "import id is printed that the API accepts as {\"import\": ID}.\n"},
    {"watched", "usage: filmpicker watched PROFILE [--json]\n"
                "Lists the films marked watched here (\"We will watch it!\") for this person,\n"
                "newest first: they stay off every fetch or import of the list until put back.\n"},
    {"unwatch", "usage: filmpicker unwatch PROFILE FILM\n"
                "Puts a watched film back: out of the person's watched set, back on the\n"
                "stored list. FILM is the film id, its Letterboxd slug or its film page URL.\n"},
    {"key", "usage: filmpicker key status [--json] | rotate --new-key-file PATH | reset --yes\n"
            "The stored lists are sealed under the database's data key, which is kept in\n"
            "the database wrapped under the server key (FILMPICKER_SECRET_KEY or the key\n"
            "file); a server key that does not open it stops every command.\n"
            "status: whether the configured server key opens the database's data, and\n"
            "  how many lists are stored (exit 1 when it does not open).\n"
            "rotate: re-keys the database to the key in PATH (written there, mode 0600,\n"
            "  with a fresh random key when the file is missing), run with the current\n"
            "  key in the usual settings. Only the wrapped key changes: every stored\n"
            "  list stays readable. Then start with the new key. A running server keeps\n"
            "  working; restart it with the new key.\n"
            "reset --yes: starts afresh under the configured key (the key file is created\n"
            "  when missing): deletes every stored\n"
            "  watchlist and watched set (lists sealed under a lost key cannot be read\n"
            "  anyway; they are fetched or imported again), keeps the film catalogue.\n"
            "  Stop the server first.\n"},
    {"sweep", "usage: filmpicker sweep [--json]\n"
              "Runs one catalogue sweep now, as `serve` does every --catalogue-sweep-interval\n"
              "seconds: opens every stored watchlist and watched set, marks the catalogue\n"
              "films none of them uses, and deletes those marked more than\n"
              "--catalogue-grace seconds ago (0: at once).\n"},
    {"worker", "usage: filmpicker worker [SETTINGS]\n"
               "Runs fetch jobs from the broker queue (FILMPICKER_QUEUE=amqp://...) on\n"
               "--workers consumers until SIGTERM or SIGINT, then stops gracefully: running\n"
               "fetches are stored and acknowledged, queued ones stay for other workers.\n"
               "Needs the shared state (FILMPICKER_CACHE=redis://...) and the database the\n"
               "API instances use. `serve` with a broker queue fetches nothing itself.\n"
               "--metrics-listen HOST:PORT also answers GET /metrics, /readyz and /healthz\n"
               "there (Prometheus scrapes workers too).\n"},
};

static int cli_print_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof cli_help / sizeof cli_help[0]; i++)
        if (strcmp(cli_help[i][0], cmd) == 0) {
            fputs(cli_help[i][1], stdout);
            fputc('\n', stdout);
            config_print_help(stdout);
            return 0;
        }
    cli_usage(stdout);
    return 0;
}

/* Parses settings and the command's own flags. 0 on success, else exit code. */
static int cli_parse(int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->limit = 50;
    if (config_from_env(&a->cfg) != FP_OK)
        return 2;
    if (!getenv("FILMPICKER_LOG_LEVEL") && strcmp(argv[1], "serve") != 0 &&
        strcmp(argv[1], "worker") != 0)
        fp_log_set_level(FP_LOG_WARN); /* keep command output readable */
    char **rest = fp_calloc((size_t)argc, sizeof *rest);
    int nrest = 0;
    if (config_apply_flags(&a->cfg, argc, argv, 2, rest, &nrest) != FP_OK) {
        fp_free(rest);
        return 2;
    }
    int lvl = fp_log_level_parse(a->cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "filmpicker: log level '%s' is not debug, info, warn or error\n",
                a->cfg.log_level ? a->cfg.log_level : "");
        fp_free(rest);
        return 2;
    }
    int level_given = getenv("FILMPICKER_LOG_LEVEL") != NULL;
    for (int i = 2; i < argc; i++)
        level_given |= strncmp(argv[i], "--log-level", 11) == 0;
    if (level_given || strcmp(argv[1], "serve") == 0 || strcmp(argv[1], "worker") == 0)
        fp_log_set_level((fp_log_level)lvl);
    a->rest = fp_calloc((size_t)argc, sizeof *a->rest);
    for (int i = 0; i < nrest; i++) {
        const char *s = rest[i];
        if (strcmp(s, "--json") == 0)
            a->json = 1;
        else if (strcmp(s, "--refresh") == 0)
            a->refresh = 1;
        else if (strcmp(s, "--yes") == 0)
            a->yes = 1;
        else if (strcmp(s, "--new-key-file") == 0 && i + 1 < nrest)
            a->new_key_file = rest[++i];
        else if (strncmp(s, "--new-key-file=", 15) == 0)
            a->new_key_file = s + 15;
        else if ((strcmp(s, "--seed") == 0 || strcmp(s, "--limit") == 0 ||
                  strcmp(s, "--user") == 0) &&
                 i + 1 < nrest) {
            const char *v = rest[++i];
            if (strcmp(s, "--user") == 0) {
                a->user = v;
                continue;
            }
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-') {
                fprintf(stderr, "filmpicker: %s needs a non-negative whole number\n", s);
                fp_free(rest);
                return 2;
            }
            if (s[2] == 's') {
                a->seed = n;
                a->has_seed = 1;
            } else {
                a->limit = n > 100000 ? 100000 : (long)n;
                a->has_limit = 1;
            }
        } else if (strncmp(s, "--", 2) == 0 && s[2]) {
            fprintf(stderr, "filmpicker: unknown option %s (see --help)\n", s);
            fp_free(rest);
            return 2;
        } else {
            a->rest[a->nrest++] = rest[i];
        }
    }
    fp_free(rest);
    a->db_shown = store_url_redacted(a->cfg.database);
    return 0;
}

static void cli_args_free(cli_args *a)
{
    config_free(&a->cfg);
    fp_free(a->rest);
    fp_free(a->db_shown);
}

static int cli_fail(fp_err rc, const char *what)
{
    fprintf(stderr, "filmpicker: %s: %s (%s)\n", what, fp_err_message(rc), fp_err_code(rc));
    return 1;
}

/* A command could not open the service or the database (what: "cannot
 * start", "migrate"): says what the operator should do about the errors that
 * have a remedy. Returns the exit status (1). */
static int cli_open_fail(const fp_config *cfg, fp_err rc, const char *what)
{
    char *db = store_url_redacted(cfg->database); /* a URL may hold a password */
    int status = 1;
    switch (rc) {
    case FP_EMPTY_DATABASE:
        fprintf(stderr,
                "filmpicker: %s: the database %s is an empty file (0 bytes), probably "
                "truncated: restore it from a backup, or delete it to start afresh (%s)\n",
                what, db, fp_err_code(rc));
        break;
    case FP_KEY_MISMATCH:
        fprintf(stderr,
                "filmpicker: %s: the server key does not open the data stored in the "
                "database %s (its watchlists and watched sets were sealed under another key). "
                "Start with the key this database was made with (FILMPICKER_SECRET_KEY or the "
                "key file), or, when that key is lost, run `filmpicker key reset --yes` to "
                "forget the stored lists and keep the film catalogue; with the old key, `filmpicker "
                "key rotate --new-key-file PATH` re-keys the database (%s)\n",
                what, db, fp_err_code(rc));
        break;
    default:
        status = cli_fail(rc, what);
        break;
    }
    fp_free(db);
    return status;
}

static int cli_start_fail(const fp_config *cfg, fp_err rc)
{
    return cli_open_fail(cfg, rc, "cannot start");
}

/* ---- serve -------------------------------------------------------------- */

/* Blocks the stop signals (SIGTERM, SIGINT: in *set) in every thread the
 * process starts from now on, so that main alone waits for them. */
static void cli_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int cli_serve(cli_args *a)
{
    if (a->nrest) {
        fprintf(stderr, "filmpicker serve: unexpected argument '%s'\n", a->rest[0]);
        return 2;
    }
    sigset_t set;
    cli_block_stop_signals(&set);

    service *svc = NULL;
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_SERVE, &svc);
    if (rc != FP_OK)
        return cli_start_fail(&a->cfg, rc);
    rc = svc_start_sweeper(svc);
    if (rc != FP_OK) {
        svc_close(&svc);
        return cli_fail(rc, "cannot start");
    }
    sessions *sess = NULL;
    rc = sessions_open(&a->cfg, svc, &sess);
    if (rc != FP_OK) {
        svc_close(&svc);
        return cli_fail(rc, "cannot start sessions");
    }
    http_server *http = NULL;
    http_raise_fd_limit();
    rc = http_server_start(&a->cfg, svc, sess, &http);
    if (rc != FP_OK) {
        svc_close(&svc);
        sessions_free(&sess);
        return cli_fail(rc, "cannot listen");
    }
    fp_log(FP_LOG_INFO, "listening", "{s:s,s:i,s:s,s:i}", "listen", a->cfg.listen, "port",
           http_server_port(http), "database", a->db_shown, "workers", (int)a->cfg.workers);
    int sig = 0;
    sigwait(&set, &sig);
    fp_log(FP_LOG_INFO, "stopping", "{s:i}", "signal", sig);
    http_server_stop(&http, a->cfg.compat_wait_ms + 3000);
    svc_close(&svc); /* drains fetches, which still report to the sessions */
    sessions_free(&sess);
    fp_log(FP_LOG_INFO, "stopped", NULL);
    return 0;
}

/* ---- worker ------------------------------------------------------------- */

static int cli_worker(cli_args *a)
{
    if (a->nrest) {
        fprintf(stderr, "filmpicker worker: unexpected argument '%s'\n", a->rest[0]);
        return 2;
    }
    sigset_t set;
    cli_block_stop_signals(&set);

    service *svc = NULL;
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_WORKER, &svc);
    if (rc != FP_OK)
        return cli_start_fail(&a->cfg, rc);
    http_ops *ops = NULL;
    if (a->cfg.metrics_listen && *a->cfg.metrics_listen) {
        rc = http_ops_start(a->cfg.metrics_listen, svc, &ops);
        if (rc != FP_OK) {
            svc_close(&svc);
            return cli_fail(rc, "cannot listen for metrics");
        }
        fp_log(FP_LOG_INFO, "metrics_listening", "{s:s,s:i}", "metrics_listen",
               a->cfg.metrics_listen, "port", http_ops_port(ops));
    }
    fp_log(FP_LOG_INFO, "worker_started", "{s:i}", "consumers", (int)a->cfg.workers);
    int sig = 0;
    sigwait(&set, &sig);
    fp_log(FP_LOG_INFO, "stopping", "{s:i}", "signal", sig);
    http_ops_stop(&ops);
    svc_close(&svc); /* running fetches finish, are stored and acknowledged */
    fp_log(FP_LOG_INFO, "stopped", NULL);
    return 0;
}

/* ---- migrate ------------------------------------------------------------ */

static int cli_migrate(cli_args *a)
{
    const char *what = a->nrest ? a->rest[0] : "status";
    int target;
    if (strcmp(what, "up") == 0 && a->nrest == 1) {
        target = -1;
    } else if (strcmp(what, "status") == 0 && a->nrest == 1) {
        target = -2;
    } else if (strcmp(what, "down") == 0 && a->nrest <= 2) {
        int cur = 0, latest = 0;
        fp_err rc = svc_migrate(&a->cfg, -2, &cur, &latest);
        if (rc != FP_OK)
            return cli_open_fail(&a->cfg, rc, "migrate");
        target = cur > 0 ? cur - 1 : 0;
        if (a->nrest == 2) {
            char *end = NULL;
            long v = strtol(a->rest[1], &end, 10);
            if (!*a->rest[1] || *end || v < 0 || v > 100000) {
                fprintf(stderr, "filmpicker migrate: VERSION must be a whole number\n");
                return 2;
            }
            target = (int)v;
        }
    } else {
        fputs(cli_help[1][1], stderr);
        return 2;
    }
    int cur = 0, latest = 0;
    fp_err rc = svc_migrate(&a->cfg, target, &cur, &latest);
    if (rc != FP_OK)
        return cli_open_fail(&a->cfg, rc, "migrate");
    printf("schema version %d of %d%s\n", cur, latest, cur == latest ? " (up to date)" : "");
    return 0;
}

/* ---- pick, scrape ------------------------------------------------------- */

static const char *cli_part_message(const svc_part_view *p, char *buf, size_t len)
{
    switch (p->error) {
    case FP_USER_NOT_FOUND:
        snprintf(buf, len, "no Letterboxd user called '%s'", p->user);
        break;
    case FP_EMPTY_WATCHLIST:
        snprintf(buf, len, "the watchlist of '%s' is private or empty", p->user);
        break;
    default:
        snprintf(buf, len, "%s: %s", p->user, fp_err_message(p->error));
    }
    return buf;
}

/* Prints s in exactly width characters (not bytes): cut at a character
 * boundary, padded with spaces. */
static void cli_print_cell(const char *s, int width)
{
    const xmlChar *u = (const xmlChar *)(s ? s : "");
    int chars = xmlUTF8Strlen(u);
    if (chars < 0) { /* not UTF-8: print nothing rather than garbage */
        printf("%*s", width, "");
        return;
    }
    int shown = chars < width ? chars : width;
    int bytes = xmlUTF8Strsize(u, shown);
    printf("%.*s%*s", bytes, (const char *)u, width - shown, "");
}

static void cli_print_film_row(const film *f, const char *lists)
{
    char year[8] = "";
    if (f->year)
        snprintf(year, sizeof year, "%d", f->year);
    cli_print_cell(f->title, 50);
    printf("  %-4s  %-16s  %s\n", year, lists, f->lb_slug ? f->lb_slug : "");
}

static json_t *cli_film_json(const film *f)
{
    json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)f->id, "title", f->title ? f->title : "");
    json_object_set_new(o, "year", f->year ? json_integer(f->year) : json_null());
    json_object_set_new(o, "slug", f->lb_slug ? json_string(f->lb_slug) : json_null());
    json_object_set_new(o, "letterboxd_id", f->lb_id ? json_integer(f->lb_id) : json_null());
    return o;
}

static int cli_pick(cli_args *a)
{
    if (a->nrest < 1) {
        fputs(cli_help[2][1], stderr);
        return 2;
    }
    service *svc = NULL;
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_SERVE, &svc);
    if (rc != FP_OK)
        return cli_start_fail(&a->cfg, rc);
    int status = 1;
    svc_person *people = fp_calloc((size_t)a->nrest, sizeof *people);
    svc_results res = {0};
    svc_job_view v = {0};
    for (int i = 0; i < a->nrest; i++) {
        rc = svc_person_parse(svc, "lb", a->rest[i], a->refresh, &people[i]);
        if (rc != FP_OK) {
            fprintf(stderr, "filmpicker pick: '%s' is not a Letterboxd username or profile URL\n",
                    a->rest[i]);
            status = 2;
            goto out;
        }
    }
    char id[33];
    rc = svc_job_start(svc, people, (size_t)a->nrest, id);
    if (rc != FP_OK) {
        status = cli_fail(rc, "pick");
        goto out;
    }
    /* Poll progress until the job is done (bounded by fetch timeouts). */
    for (;;) {
        rc = svc_job_view_get(svc, id, &v);
        if (rc != FP_OK || v.done)
            break;
        svc_job_view_free(&v);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc != FP_OK) {
        status = cli_fail(rc, "pick");
        goto out;
    }
    for (size_t i = 0; i < v.nparts; i++) {
        char buf[256];
        if (v.parts[i].state == SVC_PART_FAILED)
            fprintf(stderr, "filmpicker pick: %s\n", cli_part_message(&v.parts[i], buf,
                                                                       sizeof buf));
        else if (v.parts[i].warning != FP_OK)
            fprintf(stderr, "filmpicker pick: %s: refresh failed (%s); using the stored copy\n",
                    v.parts[i].user, fp_err_message(v.parts[i].warning));
    }
    /* 0, or --json without --limit: every film */
    size_t limit = (a->limit == 0 || (a->json && !a->has_limit)) ? SIZE_MAX : (size_t)a->limit;
    rc = svc_job_results(svc, id, 10, limit, &res);
    if (rc != FP_OK) {
        status = cli_fail(rc, "pick");
        goto out;
    }
    film rolled = {0};
    fp_err roll_rc = svc_job_roll(svc, id, NULL, 0, a->has_seed ? &a->seed : NULL, &rolled);
    size_t shown = res.ncommon < limit ? res.ncommon : limit;
    if (a->json) {
        json_t *common = json_array(), *most = json_array();
        for (size_t i = 0; i < shown; i++)
            json_array_append_new(common, cli_film_json(&res.common[i].film));
        for (size_t i = 0; i < res.nmost; i++) {
            json_t *o = cli_film_json(&res.most[i].film);
            json_object_set_new(o, "lists", json_integer(res.most[i].count));
            json_array_append_new(most, o);
        }
        json_t *out = json_pack("{s:I,s:I,s:I,s:o,s:o}", "participants",
                                (json_int_t)res.participants, "failed", (json_int_t)res.failed,
                                "common_count", (json_int_t)res.ncommon, "common", common, "most",
                                most);
        json_object_set_new(out, "rolled",
                            roll_rc == FP_OK ? cli_film_json(&rolled) : json_null());
        char *text = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        printf("%zu film%s on all %zu lists", res.ncommon, res.ncommon == 1 ? "" : "s",
               res.participants);
        if (res.failed)
            printf(" (%zu participant%s left out)", res.failed, res.failed == 1 ? "" : "s");
        printf("\n\n%-50s  %-4s  %-16s  %s\n", "TITLE", "YEAR", "LISTS", "SLUG");
        char lists[32];
        snprintf(lists, sizeof lists, "all %zu", res.participants);
        for (size_t i = 0; i < shown; i++)
            cli_print_film_row(&res.common[i].film, lists);
        if (shown < res.ncommon)
            printf("... and %zu more (--limit)\n", res.ncommon - shown);
        if (res.nmost) {
            printf("\nOn most lists:\n");
            for (size_t i = 0; i < res.nmost; i++) {
                snprintf(lists, sizeof lists, "on %u of %zu", res.most[i].count,
                         res.participants);
                cli_print_film_row(&res.most[i].film, lists);
            }
        }
        if (roll_rc == FP_OK)
            printf("\nRolled: %s%s%.0d%s\n", rolled.title, rolled.year ? " (" : "",
                   rolled.year, rolled.year ? ")" : "");
    }
    film_clear(&rolled);
    status = res.participants > 0 ? 0 : 1;
out:
    svc_results_free(&res);
    svc_job_view_free(&v);
    fp_free(people);
    svc_close(&svc);
    return status;
}

static void cli_print_films(const film_list *films, int json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < films->len; i++)
            json_array_append_new(arr, cli_film_json(&films->items[i]));
        char *text = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
        return;
    }
    printf("%-50s  %-4s  %-16s  %s\n", "TITLE", "YEAR", "", "SLUG");
    for (size_t i = 0; i < films->len; i++)
        cli_print_film_row(&films->items[i], "");
    printf("%zu film%s\n", films->len, films->len == 1 ? "" : "s");
}

static int cli_scrape(cli_args *a)
{
    if (a->nrest != 1) {
        fputs(cli_help[3][1], stderr);
        return 2;
    }
    service *svc = NULL;
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_SERVE, &svc);
    if (rc != FP_OK)
        return cli_start_fail(&a->cfg, rc);
    svc_person p;
    int status = 1;
    rc = svc_person_parse(svc, "lb", a->rest[0], a->refresh, &p);
    if (rc != FP_OK) {
        fprintf(stderr, "filmpicker scrape: '%s' is not a Letterboxd username or profile URL\n",
                a->rest[0]);
        status = 2;
    } else {
        film_list films;
        rc = svc_person_films(svc, &p, &films);
        if (rc == FP_OK) {
            cli_print_films(&films, a->json);
            status = 0;
        } else {
            status = cli_fail(rc, p.user);
        }
        film_list_free(&films);
    }
    svc_close(&svc);
    return status;
}

/* ---- import ------------------------------------------------------------- */

static fp_err cli_read_file(const char *path, size_t limit, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FP_NOT_FOUND;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return FP_IO;
    }
    if ((unsigned long long)st.st_size > limit) {
        close(fd);
        return FP_TOO_LARGE;
    }
    unsigned char *buf = fp_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return FP_OK;
}

static int cli_import(cli_args *a)
{
    if (a->nrest != 1) {
        fputs(cli_help[4][1], stderr);
        return 2;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    fp_err rc = cli_read_file(a->rest[0], (size_t)a->cfg.max_upload_bytes, &data, &len);
    if (rc != FP_OK) {
        fprintf(stderr, "filmpicker import: cannot read %s: %s\n", a->rest[0],
                rc == FP_NOT_FOUND ? "no such file" : fp_err_message(rc));
        return 1;
    }
    service *svc = NULL;
    rc = svc_open(&a->cfg, SVC_ROLE_SERVE, &svc);
    if (rc != FP_OK) {
        fp_free(data);
        return cli_start_fail(&a->cfg, rc);
    }
    int status = 1;
    svc_person p, *who = NULL;
    if (a->user) {
        rc = svc_person_parse(svc, "lb", a->user, 0, &p);
        if (rc != FP_OK) {
            fprintf(stderr, "filmpicker import: '%s' is not a Letterboxd username\n", a->user);
            status = 2;
            goto out;
        }
        who = &p;
    }
    const char *base = strrchr(a->rest[0], '/');
    svc_import_report rep;
    rc = svc_import(svc, who, data, len, base ? base + 1 : a->rest[0], &rep);
    if (rc == FP_OK || rc == FP_BAD_FILE || rc == FP_EMPTY_WATCHLIST) {
        for (size_t i = 0; i < rep.detail.nerrors; i++) {
            const import_row_error *e = &rep.detail.errors[i];
            char which[IMPORT_ROW_TITLE_MAX * 3 + 32] = "";
            if (e->title && e->year)
                snprintf(which, sizeof which, "%s (%d): ", e->title, e->year);
            else if (e->title)
                snprintf(which, sizeof which, "%s: ", e->title);
            fprintf(stderr, "%s:%zu: %s%s\n", a->rest[0], e->line, which, e->reason);
        }
        if (rep.detail.nerrors_total > rep.detail.nerrors)
            fprintf(stderr, "... and %zu more unreadable rows\n",
                    rep.detail.nerrors_total - rep.detail.nerrors);
    }
    if (rc == FP_OK) {
        if (a->json) {
            json_t *o = json_pack("{s:s,s:I,s:I}", "format", rep.format ? rep.format : "",
                                  "films", (json_int_t)rep.films, "row_errors",
                                  (json_int_t)rep.detail.nerrors_total);
            json_object_set_new(o, "import", who ? json_null() : json_string(rep.token));
            json_object_set_new(o, "user", who ? json_string(p.user) : json_null());
            char *text = json_dumps(o, JSON_INDENT(2));
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(o);
        } else {
            printf("imported %zu films (%s), %zu unreadable rows\n", rep.films,
                   rep.format ? rep.format : "?", rep.detail.nerrors_total);
            if (who)
                printf("stored as the watchlist of %s\n", p.user);
            else
                printf("import id: %s\n", rep.token);
        }
        status = 0;
    } else if (rc == FP_BAD_FILE || rc == FP_TOO_MANY_FILMS ||
               (rc == FP_TOO_LARGE && rep.detail.message)) {
        fprintf(stderr, "filmpicker import: %s: %s\n", a->rest[0],
                rep.detail.message ? rep.detail.message : fp_err_message(rc));
    } else {
        cli_fail(rc, "import");
    }
    svc_import_report_free(&rep);
out:
    fp_free(data);
    svc_close(&svc);
    return status;
}

/* ---- watched here -------------------------------------------------------- */

/* The person of a command's first argument; prints why not. 0 or exit code. */
static int cli_person(service *svc, const char *cmd, const char *input, svc_person *p)
{
    if (svc_person_parse(svc, "lb", input, 0, p) == FP_OK)
        return 0;
    fprintf(stderr, "filmpicker %s: '%s' is not a Letterboxd username or profile URL\n", cmd,
            input);
    return 2;
}

/* What `watched` and `unwatch` share: the arguments, the service, the person
 * of the first argument and their whole watched set, newest first. 0 or the
 * exit code; *svc is open whenever it is set. */
static int cli_watched_set(cli_args *a, const char *cmd, int nargs, size_t help, service **svc,
                           svc_person *p, svc_watched_film **films, size_t *n)
{
    *svc = NULL;
    *films = NULL;
    *n = 0;
    if (a->nrest != nargs) {
        fputs(cli_help[help][1], stderr);
        return 2;
    }
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_TOOL, svc);
    if (rc != FP_OK) {
        *svc = NULL;
        return cli_start_fail(&a->cfg, rc);
    }
    int status = cli_person(*svc, cmd, a->rest[0], p);
    if (status == 0 && (rc = svc_watched_recent(*svc, p, 0, SIZE_MAX, films, n)) != FP_OK)
        status = cli_fail(rc, p->user);
    return status;
}

static int cli_watched(cli_args *a)
{
    service *svc = NULL;
    svc_person p;
    svc_watched_film *films = NULL;
    size_t n = 0;
    int status = cli_watched_set(a, "watched", 1, 5, &svc, &p, &films, &n);
    if (status == 0 && a->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *o = cli_film_json(&films[i].film);
            json_object_set_new(o, "watched_at", json_integer(films[i].watched_at));
            json_array_append_new(arr, o);
        }
        char *text = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
    } else if (status == 0) {
        printf("%-50s  %-4s  %-16s  %s\n", "TITLE", "YEAR", "WATCHED", "SLUG");
        for (size_t i = 0; i < n; i++) {
            char when[24] = "";
            time_t t = (time_t)films[i].watched_at;
            struct tm tm;
            if (gmtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%d", &tm);
            cli_print_film_row(&films[i].film, when);
        }
        printf("%zu film%s marked watched\n", n, n == 1 ? "" : "s");
    }
    svc_watched_films_free(films, n);
    svc_close(&svc);
    return status;
}

/* 1 when what the person typed names the film: its id, slug or page URL. */
static int cli_names_film(const char *what, const film *f)
{
    char *end = NULL;
    long long id = strtoll(what, &end, 10);
    if (*what >= '1' && *what <= '9' && !*end)
        return id == f->id;
    if (!f->lb_slug)
        return 0;
    const char *slash = strstr(what, "/film/");
    if (!slash)
        return strcmp(what, f->lb_slug) == 0;
    const char *slug = slash + 6;
    size_t len = strcspn(slug, "/");
    return len == strlen(f->lb_slug) && strncmp(slug, f->lb_slug, len) == 0;
}

static int cli_unwatch(cli_args *a)
{
    service *svc = NULL;
    svc_person p;
    svc_watched_film *films = NULL;
    size_t n = 0;
    fp_err rc = FP_OK;
    int status = cli_watched_set(a, "unwatch", 2, 6, &svc, &p, &films, &n);
    const film *hit = NULL;
    for (size_t i = 0; status == 0 && i < n && !hit; i++)
        if (cli_names_film(a->rest[1], &films[i].film))
            hit = &films[i].film;
    if (status == 0 && !hit) {
        fprintf(stderr, "filmpicker unwatch: %s has no film '%s' marked watched here "
                        "(see: filmpicker watched %s)\n", p.user, a->rest[1], p.user);
        status = 1;
    }
    int restored = 0;
    if (status == 0 && (rc = svc_unwatch_people(svc, &p, 1, hit->id, &restored)) != FP_OK)
        status = cli_fail(rc, p.user);
    if (status == 0 && hit->year)
        printf("%s (%d) is back on %s's list\n", hit->title ? hit->title : "?", hit->year,
               p.user);
    else if (status == 0)
        printf("%s is back on %s's list\n", hit->title ? hit->title : "?", p.user);
    svc_watched_films_free(films, n);
    svc_close(&svc);
    return status;
}

/* ---- key ------------------------------------------------------------------ */

static void cli_time(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, len, "?");
}

/* Why a key command could not open what it needs. */
static int cli_key_fail(const fp_config *cfg, fp_err rc, const char *what)
{
    if (rc == FP_NOT_FOUND && !cfg->secret_key) {
        fprintf(stderr, "filmpicker %s: the server key file %s does not exist (set "
                        "FILMPICKER_SECRET_KEY or FILMPICKER_SECRET_KEY_FILE to the current "
                        "key)\n", what, cfg->secret_key_file ? cfg->secret_key_file : "");
        return 1;
    }
    return cli_open_fail(cfg, rc, what);
}

static int cli_key_status(cli_args *a)
{
    svc_key_info ki;
    fp_err rc = svc_key_status(&a->cfg, &ki);
    if (rc != FP_OK)
        return cli_key_fail(&a->cfg, rc, "key status");
    if (a->json) {
        json_t *o = json_pack("{s:s,s:b,s:b,s:I,s:I}", "database", a->db_shown, "stored",
                              ki.stored, "opens", ki.opens, "watchlists",
                              (json_int_t)ki.watchlists, "watched", (json_int_t)ki.watched);
        json_object_set_new(o, "created_at", ki.stored ? json_integer(ki.created_at) : json_null());
        json_object_set_new(o, "updated_at", ki.stored ? json_integer(ki.updated_at) : json_null());
        char *text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    } else {
        char created[32], updated[32];
        cli_time(ki.created_at, created, sizeof created);
        cli_time(ki.updated_at, updated, sizeof updated);
        printf("database: %s\n", a->db_shown);
        if (ki.stored)
            printf("data key: stored (made %s%s%s), %s the server key\n", created,
                   ki.updated_at != ki.created_at ? ", re-keyed " : "",
                   ki.updated_at != ki.created_at ? updated : "",
                   ki.opens ? "opens with" : "does NOT open with");
        else if (ki.watchlists || ki.watched)
            printf("data key: not stored yet (lists sealed before wrapped keys): they %s the "
                   "server key%s\n",
                   ki.opens ? "open with" : "do NOT open with",
                   ki.opens ? ", which becomes the data key at the next start" : "");
        else
            printf("data key: not stored yet (nothing sealed): a new one is made at the next "
                   "start\n");
        printf("stored: %zu watchlist%s, %zu watched set%s\n", ki.watchlists,
               ki.watchlists == 1 ? "" : "s", ki.watched, ki.watched == 1 ? "" : "s");
    }
    if (!ki.opens) {
        fprintf(stderr, "filmpicker key status: the server key does not open the data stored in "
                        "the database %s (see `filmpicker key --help`)\n", a->db_shown);
        return 1;
    }
    return 0;
}

static int cli_key_rotate(cli_args *a)
{
    if (!a->new_key_file || !*a->new_key_file) {
        fputs(cli_help[7][1], stderr);
        return 2;
    }
    int created = 0;
    fp_err rc = svc_key_rotate(&a->cfg, a->new_key_file, &created);
    if (rc != FP_OK)
        return cli_key_fail(&a->cfg, rc, "key rotate");
    if (created)
        printf("a new server key was written to %s (mode 0600): back it up\n", a->new_key_file);
    printf("re-keyed %s: its data key is now wrapped under the key in %s; every stored list "
           "stays readable.\nStart FilmPicker with that key from now on "
           "(FILMPICKER_SECRET_KEY_FILE=%s, or its 64 hex digits in FILMPICKER_SECRET_KEY); "
           "the old key no longer opens this database.\n",
           a->db_shown, a->new_key_file, a->new_key_file);
    return 0;
}

static int cli_key_reset(cli_args *a)
{
    if (!a->yes) {
        svc_key_info ki;
        fp_err rc = svc_key_status(&a->cfg, &ki);
        if (rc == FP_NOT_FOUND && !a->cfg.secret_key) {
            fprintf(stderr,
                    "filmpicker key reset: this deletes every stored watchlist and watched set "
                    "of %s, keeps the film catalogue and writes a new server key to %s (there "
                    "is none). Stop the server first, then run again with --yes.\n",
                    a->db_shown, a->cfg.secret_key_file);
            return 2;
        }
        if (rc != FP_OK)
            return cli_key_fail(&a->cfg, rc, "key reset");
        fprintf(stderr,
                "filmpicker key reset: this deletes every stored watchlist and watched set of "
                "%s (%zu watchlists, %zu watched sets; the server key %s them) and keeps the "
                "film catalogue. Stop the server first, then run again with --yes.\n",
                a->db_shown, ki.watchlists, ki.watched,
                ki.opens ? "OPENS" : "does not open");
        return 2;
    }
    size_t nl = 0, nw = 0;
    fp_err rc = svc_key_reset(&a->cfg, &nl, &nw);
    if (rc != FP_OK)
        return cli_key_fail(&a->cfg, rc, "key reset");
    printf("started afresh: deleted %zu watchlist%s and %zu watched set%s from %s; the film "
           "catalogue stays; the configured server key now opens the database.\n",
           nl, nl == 1 ? "" : "s", nw, nw == 1 ? "" : "s", a->db_shown);
    return 0;
}

/* ---- sweep ---------------------------------------------------------------- */

static int cli_sweep(cli_args *a)
{
    if (a->nrest) {
        fputs(cli_help[8][1], stderr);
        return 2;
    }
    service *svc = NULL;
    fp_err rc = svc_open(&a->cfg, SVC_ROLE_TOOL, &svc);
    if (rc != FP_OK)
        return cli_start_fail(&a->cfg, rc);
    svc_sweep_report r;
    rc = svc_sweep(svc, &r);
    svc_close(&svc);
    if (rc != FP_OK)
        return cli_fail(rc, "sweep");
    if (a->json) {
        json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "watchlists",
                              (json_int_t)r.lists, "watched_sets", (json_int_t)r.watched_sets,
                              "unreadable", (json_int_t)r.unreadable, "films",
                              (json_int_t)r.films, "used", (json_int_t)r.used, "marked",
                              (json_int_t)r.marked, "unmarked", (json_int_t)r.unmarked, "deleted",
                              (json_int_t)r.deleted, "ms", (json_int_t)r.ms);
        char *text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    } else {
        printf("read %zu watchlists and %zu watched sets (%zu unreadable): they use %zu of the "
               "%zu catalogue films\n"
               "%zu films newly unused (marked), %zu used again, %zu deleted (unused for more "
               "than %ld s)\n",
               r.lists, r.watched_sets, r.unreadable, r.used, r.films, r.marked, r.unmarked,
               r.deleted, a->cfg.catalogue_grace_s);
    }
    return 0;
}

static int cli_key(cli_args *a)
{
    const char *what = a->nrest == 1 ? a->rest[0] : "";
    if (strcmp(what, "status") == 0)
        return cli_key_status(a);
    if (strcmp(what, "rotate") == 0)
        return cli_key_rotate(a);
    if (strcmp(what, "reset") == 0)
        return cli_key_reset(a);
    fputs(cli_help[7][1], stderr);
    return 2;
}

int cli_main(int argc, char **argv)
{
    xmlInitParser(); /* once, before any thread parses HTML */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("filmpicker %s\n", FP_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(cli_args *);
    } cmds[] = {{"serve", cli_serve},   {"worker", cli_worker},   {"migrate", cli_migrate},
                {"pick", cli_pick},
                {"scrape", cli_scrape}, {"import", cli_import},   {"watched", cli_watched},
                {"unwatch", cli_unwatch}, {"key", cli_key},       {"sweep", cli_sweep}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        for (int k = 2; k < argc; k++)
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
                return cli_print_help(argv[1]);
        cli_args a;
        int rc = cli_parse(argc, argv, &a);
        if (rc == 0)
            rc = cmds[i].fn(&a);
        cli_args_free(&a);
        return rc;
    }
    fprintf(stderr, "filmpicker: unknown command '%s'\n\n", argv[1]);
    cli_usage(stderr);
    return 2;
}
