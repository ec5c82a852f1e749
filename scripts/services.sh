#!/usr/bin/env bash
# services.sh - PostgreSQL, Redis and RabbitMQ for tests and for a
# developer's machine: installed from Debian when missing, started as plain
# processes with their data under DIR, on free loopback ports, as a normal
# user (never as system services), and stopped again.
#
#   scripts/services.sh start DIR [NAME...]   start (all, or the named ones)
#   scripts/services.sh stop DIR [NAME...]    stop (all, or the named ones)
#   scripts/services.sh env DIR               print the exports again
#   scripts/services.sh status DIR            say which are running
#   scripts/services.sh rabbitmqctl DIR ARG... rabbitmqctl on DIR's node
#                                             (e.g. list_queues name messages)
#
# NAME is postgres, redis or rabbitmq. The first start of DIR picks the
# ports and passwords and keeps them in DIR/ports.env, so a service stopped
# and started again (the fault tests do) answers on the same address with
# its data intact. `start` prints, one a line:
#   export FILMPICKER_DATABASE=postgresql://...
#   export FILMPICKER_CACHE=redis://...
#   export FILMPICKER_QUEUE=amqp://...
# Everything else it says goes to stderr. Run as root, the servers run as
# the unprivileged user `filmpicker-svc` (created when missing) and DIR is
# theirs; run as anyone else, they run as that user.
set -euo pipefail

ALL=(postgres redis rabbitmq)
PGBIN=/usr/lib/postgresql/15/bin
RMQBIN=/usr/lib/rabbitmq/bin
SVC_USER=filmpicker-svc

say() { echo "services: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

install_missing() {
  local want=() p
  for p in postgresql redis-server rabbitmq-server; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want+=("$p")
  done
  [ ${#want[@]} -eq 0 ] && return 0
  say "installing ${want[*]} (once; the packages' own services are not started)"
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  # Debian starts a package's service on install unless policy-rc.d says no;
  # FilmPicker's servers are its own, so keep the system's ones off.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
  [ $made_policy -eq 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  return 0
}

# as_user CMD...: runs CMD as the servers' user.
as_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$SVC_USER" -- env HOME="$DIR/home" "$@"
  else
    env HOME="$DIR/home" "$@"
  fi
}

# N distinct free loopback ports, one a line, from below the kernel's
# ephemeral range (ip_local_port_range): a port from inside it can be taken
# by any process's outgoing connection between this pick and the server's
# bind (RabbitMQ once found its distribution port so taken), and one port
# picked per call could come back twice. Every socket stays bound until all
# are chosen.
free_ports() {
  python3 -c 'import random, socket, sys
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
socks, tries = [], 0
while len(socks) < int(sys.argv[1]):
    tries += 1
    if tries > 10000:
        sys.exit("services: no free port below %d" % low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(10000, max(low, 10001))))
    except OSError:
        s.close()
        continue
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()' "$1"
}

secret() { head -c 18 /dev/urandom | base64 | tr '+/' 'AB'; }

prepare_dir() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    id "$SVC_USER" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SVC_USER"
  fi
  if [ ! -f "$DIR/ports.env" ]; then
    local ports
    mapfile -t ports < <(free_ports 5)
    {
      echo "PG_PORT=${ports[0]}"
      echo "PG_PASSWORD=$(secret)"
      echo "REDIS_PORT=${ports[1]}"
      echo "REDIS_PASSWORD=$(secret)"
      echo "RMQ_PORT=${ports[2]}"
      echo "RMQ_DIST_PORT=${ports[3]}"
      echo "RMQ_EPMD_PORT=${ports[4]}"
      echo "RMQ_PASSWORD=$(secret)"
      echo "RMQ_NODE=fp$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$DIR/ports.env"
    chmod 600 "$DIR/ports.env"
  fi
  mkdir -p "$DIR/home" "$DIR/log"
  [ "$(id -u)" -eq 0 ] && chown "$SVC_USER": "$DIR" "$DIR/home" "$DIR/log" "$DIR/ports.env"
  # shellcheck disable=SC1091
  . "$DIR/ports.env"
}

exports() {
  echo "export FILMPICKER_DATABASE=postgresql://filmpicker:$PG_PASSWORD@127.0.0.1:$PG_PORT/filmpicker"
  echo "export FILMPICKER_CACHE=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0"
  echo "export FILMPICKER_QUEUE=amqp://filmpicker:$RMQ_PASSWORD@127.0.0.1:$RMQ_PORT/"
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
  local limit=$(( $1 * 5 )) i=0; shift
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -ge $limit ] && return 1
    sleep 0.2
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

# stop_pid PIDFILE SECONDS: TERM, then KILL after SECONDS.
stop_pid() {
  local f=$1 limit=$(( $2 * 10 )) i=0 pid
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid=$(head -n1 "$f")
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge $limit ]; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; break; fi
    sleep 0.1
  done
  rm -f "$f"
}

# --- PostgreSQL -------------------------------------------------------------
pg_start() {
  local data="$DIR/postgres"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chmod 700 "$data"
    [ "$(id -u)" -eq 0 ] && chown "$SVC_USER": "$data"
    printf '%s\n' "$PG_PASSWORD" >"$DIR/home/pgpass.init"
    [ "$(id -u)" -eq 0 ] && chown "$SVC_USER": "$DIR/home/pgpass.init"
    as_user "$PGBIN/initdb" -D "$data" -U filmpicker --auth=scram-sha-256 \
      --pwfile="$DIR/home/pgpass.init" -E UTF8 --locale=C.UTF-8 >"$DIR/log/initdb.log" 2>&1 ||
      { cat "$DIR/log/initdb.log" >&2; die "initdb failed"; }
    rm -f "$DIR/home/pgpass.init"
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data'
max_connections = 200
fsync = on
log_min_messages = warning
EOF
  fi
  if pid_alive "$data/postmaster.pid"; then say "postgres already running"; return 0; fi
  as_user "$PGBIN/pg_ctl" -D "$data" -l "$DIR/log/postgres.log" -w -t 60 start >/dev/null ||
    { tail -20 "$DIR/log/postgres.log" >&2; die "postgres did not start"; }
  if ! PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U filmpicker -d postgres \
       -tAc "SELECT 1 FROM pg_database WHERE datname='filmpicker'" | grep -q 1; then
    PGPASSWORD=$PG_PASSWORD "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U filmpicker filmpicker
  fi
  say "postgres on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  local data="$DIR/postgres"
  [ -f "$data/postmaster.pid" ] || return 0
  as_user "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

pg_running() { pid_alive "$DIR/postgres/postmaster.pid"; }

# --- Redis ------------------------------------------------------------------
redis_start() {
  local data="$DIR/redis"
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown "$SVC_USER": "$data"
  if pid_alive "$data/redis.pid"; then say "redis already running"; return 0; fi
  cat >"$data/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
dir $data
pidfile $data/redis.pid
logfile $DIR/log/redis.log
daemonize yes
appendonly yes
appendfsync everysec
save ""
maxmemory 512mb
maxmemory-policy volatile-lru
EOF
  chmod 600 "$data/redis.conf"
  [ "$(id -u)" -eq 0 ] && chown "$SVC_USER": "$data/redis.conf"
  as_user /usr/bin/redis-server "$data/redis.conf"
  wait_for 30 env REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping ||
    { tail -20 "$DIR/log/redis.log" >&2; die "redis did not start"; }
  say "redis on 127.0.0.1:$REDIS_PORT"
}

redis_stop() { stop_pid "$DIR/redis/redis.pid" 20; }
redis_running() { pid_alive "$DIR/redis/redis.pid"; }

# --- RabbitMQ ---------------------------------------------------------------
rmq_env() {
  as_user env \
    RABBITMQ_NODENAME="$RMQ_NODE@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RMQ_PORT" \
    RABBITMQ_DIST_PORT="$RMQ_DIST_PORT" \
    ERL_EPMD_PORT="$RMQ_EPMD_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_MNESIA_BASE="$DIR/rabbitmq/mnesia" \
    RABBITMQ_LOG_BASE="$DIR/log/rabbitmq" \
    RABBITMQ_PID_FILE="$DIR/rabbitmq/rabbitmq.pid" \
    RABBITMQ_CONFIG_FILE="$DIR/rabbitmq/rabbitmq" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/rabbitmq/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbitmq/enabled_plugins" \
    RABBITMQ_ENABLED_PLUGINS="" \
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq/rabbitmq-env.conf" \
    "$@"
}

rmq_start() {
  local data="$DIR/rabbitmq"
  mkdir -p "$data" "$DIR/log/rabbitmq"
  if pid_alive "$data/rabbitmq.pid"; then say "rabbitmq already running"; return 0; fi
  cat >"$data/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
loopback_users = none
default_user = filmpicker
default_pass = $RMQ_PASSWORD
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
log.console = false
log.file.level = warning
disk_free_limit.absolute = 50MB
EOF
  echo "[]." >"$data/enabled_plugins"
  echo "[]." >"$data/advanced.config"
  : >"$data/rabbitmq-env.conf"
  chmod 600 "$data/rabbitmq.conf"
  [ "$(id -u)" -eq 0 ] && chown -R "$SVC_USER": "$data" "$DIR/log/rabbitmq"
  # epmd is Erlang's name server; the node needs one on its own port.
  as_user env ERL_EPMD_PORT="$RMQ_EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon
  ( rmq_env setsid "$RMQBIN/rabbitmq-server" >"$DIR/log/rabbitmq.out" 2>&1 & )
  # The node is up once it accepts AMQP connections (its pid file comes earlier).
  if ! wait_for 90 rmq_env "$RMQBIN/rabbitmq-diagnostics" -q -n "$RMQ_NODE@localhost" check_port_connectivity; then
    tail -30 "$DIR/log/rabbitmq.out" >&2
    die "rabbitmq did not start"
  fi
  say "rabbitmq on 127.0.0.1:$RMQ_PORT"
}

rmq_stop() {
  local data="$DIR/rabbitmq"
  pid_alive "$data/rabbitmq.pid" || { rm -f "$data/rabbitmq.pid"; rmq_epmd_stop; return 0; }
  rmq_env "$RMQBIN/rabbitmqctl" -q -n "$RMQ_NODE@localhost" stop "$data/rabbitmq.pid" \
    >/dev/null 2>&1 || stop_pid "$data/rabbitmq.pid" 30
  stop_pid "$data/rabbitmq.pid" 30
  rmq_epmd_stop
}

rmq_epmd_stop() {
  as_user env ERL_EPMD_PORT="$RMQ_EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
}

rmq_running() { pid_alive "$DIR/rabbitmq/rabbitmq.pid"; }

# ---------------------------------------------------------------------------
[ $# -ge 2 ] || usage
cmd=$1; DIR=$2; shift 2
if [ "$cmd" = rabbitmqctl ]; then
  [ -f "$DIR/ports.env" ] || die "$DIR was never started"
  prepare_dir
  rmq_env "$RMQBIN/rabbitmqctl" -q -n "$RMQ_NODE@localhost" "$@"
  exit $?
fi
names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
for n in "${names[@]}"; do
  case $n in postgres|redis|rabbitmq) ;; *) die "unknown service '$n' (postgres, redis, rabbitmq)";; esac
done

case $cmd in
  start)
    install_missing
    prepare_dir
    for n in "${names[@]}"; do
      case $n in postgres) pg_start;; redis) redis_start;; rabbitmq) rmq_start;; esac
    done
    exports
    ;;
  stop)
    [ -f "$DIR/ports.env" ] || exit 0
    prepare_dir
    for n in "${names[@]}"; do
      case $n in postgres) pg_stop;; redis) redis_stop;; rabbitmq) rmq_stop;; esac
    done
    ;;
  env)
    [ -f "$DIR/ports.env" ] || die "$DIR was never started"
    prepare_dir
    exports
    ;;
  status)
    [ -f "$DIR/ports.env" ] || die "$DIR was never started"
    prepare_dir
    for n in "${names[@]}"; do
      fn=${n/postgres/pg}; fn=${fn/rabbitmq/rmq}
      if "${fn}_running"; then
        echo "$n running"
      else
        echo "$n stopped"
      fi
    done
    ;;
  *) usage;;
esac
