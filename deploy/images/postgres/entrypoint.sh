#!/bin/sh
# Starts PostgreSQL on $PGDATA; on an empty volume first creates the cluster
# (superuser password from $POSTGRES_PASSWORD_FILE) and the application role
# and database (FILMPICKER_DB_USER / FILMPICKER_DB_NAME, password from
# $FILMPICKER_DB_PASSWORD_FILE). Passwords never appear in the environment.
set -eu
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
: "${POSTGRES_PASSWORD_FILE:?the superuser password file}"
: "${FILMPICKER_DB_PASSWORD_FILE:?the application password file}"
user=${FILMPICKER_DB_USER:-filmpicker}
db=${FILMPICKER_DB_NAME:-filmpicker}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U postgres --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
max_connections = 100
shared_buffers = 128MB
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
CONF
    # Inside the stack's network only; nginx never forwards to it.
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pw=$(sed "s/'/''/g" "$FILMPICKER_DB_PASSWORD_FILE" | head -n1)
    postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE ROLE "$user" LOGIN PASSWORD '$pw';
SQL
    postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE DATABASE "$db" OWNER "$user";
SQL
    # The monitoring role for the exporter: reads statistics, nothing else.
    if [ -n "${EXPORTER_DB_PASSWORD_FILE:-}" ]; then
        epw=$(sed "s/'/''/g" "$EXPORTER_DB_PASSWORD_FILE" | head -n1)
        postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE ROLE exporter LOGIN PASSWORD '$epw' IN ROLE pg_monitor;
SQL
    fi
fi
exec postgres -D "$PGDATA"
