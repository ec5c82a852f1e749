/*
 * store_pg.h - internals of the PostgreSQL backend that tests need;
 * application code goes through store.h only. Names carry a double
 * underscore (store_pg__) to say so.
 */
#ifndef FP_STORE_PG_H
#define FP_STORE_PG_H

#include <stddef.h>

#include "store/store.h"
#include "store/store_migration.h"

/* The built-in migrations, in order (the same versions as SQLite's). */
extern const store_migration store_pg__migrations[];
extern const size_t store_pg__migrations_len;

/* Makes s use another migration list (tests try a later version with it).
 * list must outlive s. NULL restores the built-in list. */
void store_pg__use_migrations(store *s, const store_migration *list, size_t n);

/* Crash simulation for the atomic-replace test: when on, the next write
 * transaction calls _exit(1) after its statements and before COMMIT (the
 * server then rolls it back). Only for a forked child. */
void store_pg__crash_before_commit(store *s, int on);

/*
 * Splits a postgresql:// or postgres:// URL into what libpq takes (*conninfo,
 * the URL without FilmPicker's own parameters) and those parameters:
 * pool_size=N (1..256, default 8) and schema=NAME ([A-Za-z0-9_], at most 63
 * characters; NULL when absent: the server's search_path). FP_INVALID for
 * anything else wrong with them. *conninfo and *schema are the caller's.
 */
fp_err store_pg__parse_url(const char *url, char **conninfo, char **schema, int *pool_size);

#endif
