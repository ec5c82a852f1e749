/*
 * store_migration.h - the shape of one versioned, reversible schema step,
 * shared by the SQL backends (migrations_sqlite.c, migrations_pg.c). Internal
 * to storage: application code goes through store.h only.
 */
#ifndef FP_STORE_MIGRATION_H
#define FP_STORE_MIGRATION_H

/*
 * One reversible schema step. Migration i (0-based) of a list must have
 * version i+1; up moves the schema from version-1 to version, down back.
 * Both are SQL scripts (several statements) run inside one transaction
 * together with the schema_migrations bookkeeping.
 */
typedef struct store_migration {
    int version;
    const char *name;
    const char *up;
    const char *down;
} store_migration;

#endif
