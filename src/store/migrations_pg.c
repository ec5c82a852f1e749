/*
 * migrations_pg.c - the PostgreSQL schema, as an ordered list of reversible
 * steps with the same versions, names and meaning as migrations_sqlite.c
 * (read its comment for what each version is for). store_pg.c applies them
 * one transaction per step, under an advisory lock, and records each in
 * schema_migrations. Never edit a released step: add the next one, here and
 * in migrations_sqlite.c, so both backends stay at the same version.
 *
 * Where PostgreSQL differs from the SQLite schema:
 *   - films.id is an identity column (a sequence): ids are never handed out
 *     twice even after deletes, and an insert rolled back still uses one up
 *     (ids have gaps; nothing relies on them being dense).
 *   - Keys and sealed blobs are bytea; the sealed column is stored EXTERNAL
 *     (out of line, uncompressed): ciphertext does not compress, so trying
 *     would only cost CPU.
 *   - Times are bigint unix seconds, as in SQLite.
 *   - The UNIQUE external ids allow any number of NULLs, as in SQLite.
 */
#include "store/store_pg.h"

static const char migration1_up[] =
    "CREATE TABLE films ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  lb_id bigint UNIQUE CHECK (lb_id IS NULL OR lb_id > 0),"
    "  lb_slug text UNIQUE,"
    "  lb_uri text UNIQUE,"
    "  imdb_id text UNIQUE,"
    "  title text NOT NULL,"
    "  year integer CHECK (year IS NULL OR year > 0),"
    "  match_key text NOT NULL,"
    "  norm_title text NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL"
    ");"
    "CREATE INDEX films_match_key ON films (match_key);"
    "CREATE INDEX films_norm_title ON films (norm_title);"
    "CREATE TABLE watchlists ("
    "  key bytea PRIMARY KEY CHECK (length(key) = 32),"
    "  sealed bytea NOT NULL,"
    "  fetched_at bigint NOT NULL,"
    "  version bigint NOT NULL CHECK (version > 0)"
    ");"
    "ALTER TABLE watchlists ALTER COLUMN sealed SET STORAGE EXTERNAL;";

static const char migration1_down[] =
    "DROP TABLE watchlists;"
    "DROP TABLE films;";

static const char migration2_up[] = "ALTER TABLE films ADD COLUMN poster text;";

static const char migration2_down[] = "ALTER TABLE films DROP COLUMN poster;";

static const char migration3_up[] =
    "CREATE TABLE watched ("
    "  key bytea PRIMARY KEY CHECK (length(key) = 32),"
    "  sealed bytea NOT NULL,"
    "  updated_at bigint NOT NULL,"
    "  version bigint NOT NULL CHECK (version > 0)"
    ");"
    "ALTER TABLE watched ALTER COLUMN sealed SET STORAGE EXTERNAL;";

static const char migration3_down[] = "DROP TABLE watched;";

static const char migration4_up[] =
    "CREATE TABLE data_key ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  wrapped bytea NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL"
    ");";

static const char migration4_down[] = "DROP TABLE data_key;";

static const char migration5_up[] = "ALTER TABLE films ADD COLUMN orphaned_at bigint;";

static const char migration5_down[] = "ALTER TABLE films DROP COLUMN orphaned_at;";

const store_migration store_pg__migrations[] = {
    {1, "catalogue_and_watchlists", migration1_up, migration1_down},
    {2, "film_posters", migration2_up, migration2_down},
    {3, "watched_sets", migration3_up, migration3_down},
    {4, "wrapped_data_key", migration4_up, migration4_down},
    {5, "film_orphan_marks", migration5_up, migration5_down},
};

const size_t store_pg__migrations_len = sizeof store_pg__migrations / sizeof store_pg__migrations[0];
