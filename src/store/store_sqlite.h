/*
 * store_sqlite.h - internals of the SQLite backend that tests and the
 * migration tooling need; application code goes through store.h only.
 * Names carry a double underscore (store_sqlite__) to say so.
 */
#ifndef FP_STORE_SQLITE_H
#define FP_STORE_SQLITE_H

#include <stddef.h>

#include "store/store.h"
#include "store/store_migration.h"

/* One reversible schema step (store_migration.h); the SQLite name is kept
 * for the callers that already use it. */
typedef store_migration store_sqlite_migration;

/* The built-in migrations, in order. */
extern const store_sqlite_migration store_sqlite__migrations[];
extern const size_t store_sqlite__migrations_len;

/* Makes s use another migration list (tests try a second version with it).
 * list must outlive s. NULL restores the built-in list. */
void store_sqlite__use_migrations(store *s, const store_sqlite_migration *list, size_t n);

/* How long a connection waits for another process's lock before the call
 * fails with FP_UNAVAILABLE (default 5000 ms); tests shorten it. */
void store_sqlite__set_busy_timeout(store *s, int ms);

/* Crash simulation for the atomic-replace test: when on, watchlist_put calls
 * _exit(1) after writing the row and before COMMIT. Only for a forked child. */
void store_sqlite__crash_before_commit(store *s, int on);

#endif
