#!/bin/sh
# Redis with its password from $REDIS_PASSWORD_FILE (written to a config
# file only the redis user reads, never to the command line).
set -eu
: "${REDIS_PASSWORD_FILE:?the password file}"
umask 077
conf=/data/redis.conf
{
    echo "bind 0.0.0.0"
    echo "port 6379"
    echo "protected-mode yes"
    echo "dir /data"
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "maxmemory ${REDIS_MAXMEMORY:-256mb}"
    echo "maxmemory-policy noeviction"
    echo "requirepass $(head -n1 "$REDIS_PASSWORD_FILE")"
} >"$conf"
exec redis-server "$conf"
