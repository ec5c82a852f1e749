#!/bin/bash
# Restores a backup made by backup.sh into the database PGDATABASE (which
# must exist, empty or not: objects are dropped and recreated).
#   restore.sh FILE   (default: the newest in BACKUP_DIR)
# BACKUP_AGE_IDENTITY: the age secret key file. Connection as for backup.sh.
set -euo pipefail
dir=${BACKUP_DIR:-/backups}
: "${BACKUP_AGE_IDENTITY:?the age identity (secret key) file}"
file=${1:-$(ls -1 "$dir"/filmpicker-*.dump.age 2>/dev/null | sort | tail -n 1)}
[ -n "$file" ] && [ -f "$file" ] || { echo "restore: no backup found" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
age -d -i "$BACKUP_AGE_IDENTITY" -o "$tmp" "$file"
pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
    --exit-on-error -d "$PGDATABASE" "$tmp"
echo "restore: $(basename "$file") restored into $PGDATABASE"
