#!/bin/bash
# One encrypted backup of the FilmPicker database, then retention.
#   pg_dump (custom format, compressed) | age -R recipients > BACKUP_DIR/NAME
# Written to a temporary name and renamed when complete, so a backup that
# fails half-way never looks like a good one. Keeps the newest
# BACKUP_KEEP (default 14) and removes those older than BACKUP_MAX_DAYS
# (default 30) beyond them. Writes BACKUP_DIR/metrics/backup.prom for the
# node exporter's textfile collector (the "backup too old" alert), and runs
# $BACKUP_OFFSITE_COMMAND FILE when set (an off-site copy: rclone, rsync...).
# Settings: PGHOST PGPORT PGUSER PGDATABASE, PGPASSFILE (a .pgpass secret),
# BACKUP_AGE_RECIPIENTS (a file of age public keys), BACKUP_DIR.
set -euo pipefail
dir=${BACKUP_DIR:-/backups}
keep=${BACKUP_KEEP:-14}
max_days=${BACKUP_MAX_DAYS:-30}
: "${BACKUP_AGE_RECIPIENTS:?a file of age public keys}"
mkdir -p "$dir/metrics"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="filmpicker-$stamp.dump.age"
tmp="$dir/.$name.partial"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
pg_dump -Fc -Z 6 --no-owner --no-privileges | age -R "$BACKUP_AGE_RECIPIENTS" -o "$tmp"
[ -s "$tmp" ] || { echo "backup: empty archive" >&2; exit 1; }
mv "$tmp" "$dir/$name"
trap - EXIT
end=$(date +%s)
size=$(wc -c <"$dir/$name")
# Retention: the newest $keep always stay; older ones go after $max_days.
ls -1 "$dir"/filmpicker-*.dump.age 2>/dev/null | sort -r | tail -n +"$((keep + 1))" |
    while read -r old; do
        if [ -n "$(find "$old" -mtime +"$max_days" 2>/dev/null)" ]; then
            rm -f "$old"
        fi
    done
count=$(ls -1 "$dir"/filmpicker-*.dump.age | wc -l)
cat >"$dir/metrics/.backup.prom" <<PROM
# HELP filmpicker_backup_last_success_timestamp_seconds When the last good backup was written.
# TYPE filmpicker_backup_last_success_timestamp_seconds gauge
filmpicker_backup_last_success_timestamp_seconds $end
# HELP filmpicker_backup_last_duration_seconds How long the last good backup took.
# TYPE filmpicker_backup_last_duration_seconds gauge
filmpicker_backup_last_duration_seconds $((end - start))
# HELP filmpicker_backup_last_size_bytes Size of the last good backup, encrypted.
# TYPE filmpicker_backup_last_size_bytes gauge
filmpicker_backup_last_size_bytes $size
# HELP filmpicker_backup_files Backups kept.
# TYPE filmpicker_backup_files gauge
filmpicker_backup_files $count
PROM
mv "$dir/metrics/.backup.prom" "$dir/metrics/backup.prom"
if [ -n "${BACKUP_OFFSITE_COMMAND:-}" ]; then
    $BACKUP_OFFSITE_COMMAND "$dir/$name"
fi
echo "backup: $name ($size bytes, $((end - start)) s, $count kept)"
