/*
 * error.h - the one error type of FilmPicker.
 *
 * Every fallible function returns an fp_err; results travel through pointer
 * arguments. The table below is the single source of an error's machine name
 * (the "code" of a JSON error body), its default human message and the HTTP
 * status the API answers with. Nothing reports through errno or globals.
 */
#ifndef FP_ERROR_H
#define FP_ERROR_H

#define FP_WARN_UNUSED __attribute__((warn_unused_result))

/*      enum name          code string           HTTP  default message */
#define FP_ERR_TABLE(X)                                                                       \
    X(OK,               "ok",                  200, "success")                                \
    X(NOMEM,            "out_of_memory",       503, "the server is out of memory")            \
    X(INVALID,          "invalid_request",     400, "the request is not valid")               \
    X(BAD_JSON,         "malformed_json",      400, "the body is not valid JSON")             \
    X(BAD_USERNAME,     "invalid_username",    422, "not a Letterboxd username or profile URL") \
    X(BAD_SOURCE,       "unknown_source",      422, "unknown watchlist source type")          \
    X(TOO_MANY,         "too_many_participants", 422, "too many participants")                \
    X(TOO_LARGE,        "payload_too_large",   413, "the request body is too large")          \
    X(UNSUPPORTED_MEDIA,"unsupported_media_type", 415, "unsupported content type")            \
    X(NOT_FOUND,        "not_found",           404, "no such resource")                       \
    X(METHOD,           "method_not_allowed",  405, "method not allowed on this resource")    \
    X(CSRF,             "csrf_failed",         403,                                           \
      "missing or wrong CSRF token, or a request from another origin")                        \
    X(CONFLICT,         "conflict",            409, "the resource is in a conflicting state") \
    X(DUPLICATE,        "already_added",       409, "this person is already in the group")  \
    X(BAD_NAME,         "invalid_name",        422, "a name is 1 to 40 characters")           \
    X(RATE_LIMITED,     "rate_limited",        429, "too many requests, slow down")           \
    X(USER_NOT_FOUND,   "user_not_found",      404, "no Letterboxd user by that name")        \
    X(EMPTY_WATCHLIST,  "empty_watchlist",     422, "this watchlist is private or empty")     \
    X(BLOCKED,          "source_blocked",      502,                                           \
      "Letterboxd refused the request; import your Letterboxd export instead")               \
    X(UPSTREAM,         "source_unavailable",  502, "the watchlist site is not answering")    \
    X(UPSTREAM_LIMITED, "source_rate_limited", 503, "the watchlist site is rate-limiting us") \
    X(TIMEOUT,          "source_timeout",      504, "the watchlist site timed out")           \
    X(FORMAT,           "page_format_not_recognized", 502,                                    \
      "page format not recognized: the site's markup may have changed")                      \
    X(BAD_FILE,         "invalid_import_file", 422, "the file is not a readable export")      \
    X(TOO_MANY_FILMS,   "too_many_new_films",  422,                                           \
      "the file would add more new films to the catalogue than an import may")               \
    X(PENDING,          "still_fetching",      503, "watchlists are still being fetched; retry shortly") \
    X(UNAVAILABLE,      "service_unavailable", 503, "the service is shutting down or overloaded") \
    X(BAD_HOST,         "invalid_host",        400, "the Host header does not name this server") \
    X(NOT_IMPLEMENTED,  "not_implemented",     501, "this request uses HTTP the server does not support") \
    X(STORAGE,          "storage_error",       500, "the database failed")                    \
    X(CORRUPT,          "storage_corrupt",     500, "stored data failed its integrity check") \
    X(EMPTY_DATABASE,   "database_empty",      500,                                           \
      "the database file is empty (0 bytes): probably truncated")                             \
    X(KEY_MISMATCH,     "key_mismatch",        500,                                           \
      "the server key does not open the data stored in this database")                        \
    X(CRYPTO,           "crypto_error",        500, "a cryptographic operation failed")       \
    X(IO,               "io_error",            500, "an input/output operation failed")       \
    X(INTERNAL,         "internal_error",      500, "internal error")

typedef enum {
#define FP_X_ENUM(name, code, status, msg) FP_##name,
    FP_ERR_TABLE(FP_X_ENUM)
#undef FP_X_ENUM
    FP_ERR__COUNT
} fp_err;

/* Machine name, e.g. "user_not_found". Never NULL. */
const char *fp_err_code(fp_err e);
/* Default human message. Never NULL. */
const char *fp_err_message(fp_err e);
/* HTTP status the API uses for this error. */
int fp_err_http_status(fp_err e);
/* Reverse lookup by machine name; FP_INTERNAL when unknown. */
fp_err fp_err_from_code(const char *code);

#endif
