/*
 * imports.c - export uploads: parse, resolve (with the cap on new catalogue
 * films), store as the person's list.
 */
#include "app/app_internal.h"


fp_err svc_import(service *s, const svc_person *p, const unsigned char *data, size_t len,
                  const char *filename, svc_import_report *out)
{
    memset(out, 0, sizeof *out);
    import_result_init(&out->detail);
    fp_err rc = import_parse(data, len, filename, &out->detail);
    out->format = out->detail.format;
    if (rc != FP_OK)
        return rc;
    if (out->detail.films.len == 0)
        return FP_EMPTY_WATCHLIST;
    svc_person tmp;
    const svc_person *who = p;
    if (!who) {
        char token[33];
        vault_random_token(token, 16);
        rc = svc_person_import(s, token, &tmp);
        if (rc != FP_OK)
            return rc;
        snprintf(out->token, sizeof out->token, "%s", token);
        who = &tmp;
    }
    int64_t *ids = NULL;
    size_t n = 0, new_films = 0, max_new = (size_t)s->cfg->import_max_new_films;
    rc = svc__resolve(s, &out->detail.films, max_new, &ids, &n, &new_films);
    if (rc == FP_OK)
        rc = svc__store_fresh(s, who->key, ids, n, svc__now(), &n, &out->watched);
    fp_free(ids);
    if (rc == FP_TOO_MANY_FILMS) {
        n = 0;
        out->token[0] = '\0'; /* nothing was stored under it */
        out->new_films = new_films;
        fp_free(out->detail.message);
        out->detail.message = fp_printf(
            "the file has %zu films that are not in the film catalogue yet; one import may add "
            "at most %zu new films, so nothing was stored",
            new_films, max_new);
    }
    out->films = n;
    fp_log(rc == FP_TOO_MANY_FILMS ? FP_LOG_WARN : FP_LOG_INFO, "watchlist_import",
           "{s:s,s:s,s:i,s:i,s:I}", "format", out->format ? out->format : "?", "result",
           fp_err_code(rc), "films", (int)n, "row_errors", (int)out->detail.nerrors_total,
           "new_films", (json_int_t)new_films);
    return rc;
}

void svc_import_report_free(svc_import_report *r)
{
    import_result_free(&r->detail);
}
