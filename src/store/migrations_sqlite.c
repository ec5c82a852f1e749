/*
 * migrations_sqlite.c - the SQLite schema, as an ordered list of reversible
 * steps. Migration N takes the schema from version N-1 to N (up) and back
 * (down); store_sqlite.c applies them one transaction per step and records
 * each in schema_migrations. Never edit a released step: add the next one.
 *
 * Version 1: the film catalogue (public data, plain text) and the watchlists
 * (a 32-byte keyed hash of the person and an encrypted blob: vault.h).
 *   - films: every external id is UNIQUE but nullable (SQLite lets NULLs
 *     repeat in a UNIQUE column), so a film known only by title is fine.
 *     match_key is "normalised title|year" and norm_title the normalised
 *     title alone, both written by the backend from film.h and indexed for
 *     the title matching of films_resolve.
 *   - watchlists: WITHOUT ROWID because the 32-byte key is the only access
 *     path; version starts at 1 and grows on each write (compare-and-swap).
 *
 * Version 2: films.poster, the Letterboxd poster image path when a page gave
 * one (film.h: film_poster_path_ok), public data like the rest of the row.
 *
 * Version 3: watched, each person's "watched here" set (service.c): the films
 * the group marked watched, kept off that person's list on every later fetch
 * or import until they are put back. Same privacy as watchlists: the person
 * key and a sealed blob (film id and time packed into one number per film).
 *
 * Version 4: data_key, one row: the database's data key wrapped under the
 * server key (vault.h, datakey.h), which every sealed row and person key
 * derives from. Reverting it forgets that key: a database whose data key was
 * not its server key (created by version 4, re-keyed or reset) can then no
 * longer open its rows, and the next start refuses the server key.
 *
 * Version 5: films.orphaned_at, set by the catalogue sweep (service.c) when it
 * first finds a film that no stored list references, cleared when a list
 * uses the film again; a film orphaned longer than the grace period is
 * deleted. NULL for every film until a sweep runs. Reverting it drops the
 * marks only.
 */
#include "store/store_sqlite.h"

static const char migration1_up[] =
    "CREATE TABLE films ("
    "  id INTEGER PRIMARY KEY,"
    "  lb_id INTEGER UNIQUE CHECK (lb_id IS NULL OR lb_id > 0),"
    "  lb_slug TEXT UNIQUE,"
    "  lb_uri TEXT UNIQUE,"
    "  imdb_id TEXT UNIQUE,"
    "  title TEXT NOT NULL,"
    "  year INTEGER CHECK (year IS NULL OR year > 0),"
    "  match_key TEXT NOT NULL,"
    "  norm_title TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX films_match_key ON films (match_key);"
    "CREATE INDEX films_norm_title ON films (norm_title);"
    "CREATE TABLE watchlists ("
    "  key BLOB PRIMARY KEY CHECK (length(key) = 32),"
    "  sealed BLOB NOT NULL,"
    "  fetched_at INTEGER NOT NULL,"
    "  version INTEGER NOT NULL CHECK (version > 0)"
    ") WITHOUT ROWID;";

static const char migration1_down[] =
    "DROP TABLE watchlists;"
    "DROP TABLE films;";

static const char migration2_up[] = "ALTER TABLE films ADD COLUMN poster TEXT;";

static const char migration2_down[] = "ALTER TABLE films DROP COLUMN poster;";

static const char migration3_up[] =
    "CREATE TABLE watched ("
    "  key BLOB PRIMARY KEY CHECK (length(key) = 32),"
    "  sealed BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  version INTEGER NOT NULL CHECK (version > 0)"
    ") WITHOUT ROWID;";

static const char migration3_down[] = "DROP TABLE watched;";

static const char migration4_up[] =
    "CREATE TABLE data_key ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  wrapped BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");";

static const char migration4_down[] = "DROP TABLE data_key;";

static const char migration5_up[] = "ALTER TABLE films ADD COLUMN orphaned_at INTEGER;";

static const char migration5_down[] = "ALTER TABLE films DROP COLUMN orphaned_at;";

const store_sqlite_migration store_sqlite__migrations[] = {
    {1, "catalogue_and_watchlists", migration1_up, migration1_down},
    {2, "film_posters", migration2_up, migration2_down},
    {3, "watched_sets", migration3_up, migration3_down},
    {4, "wrapped_data_key", migration4_up, migration4_down},
    {5, "film_orphan_marks", migration5_up, migration5_down},
};

const size_t store_sqlite__migrations_len =
    sizeof store_sqlite__migrations / sizeof store_sqlite__migrations[0];
