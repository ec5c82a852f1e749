#!/usr/bin/env bash
# The whole FilmPicker stack in Podman, with its test profile (the fake
# Letterboxd and a fake Telegram Bot API), behind nginx with HTTPS:
#
#   scripts/stack.sh up              build what is missing, start the stack;
#                                    nginx answers https://127.0.0.1:8443,
#                                    its CA certificate is build/stack/ca.crt
#   scripts/stack.sh down [--volumes] stop it and remove its containers
#                                    (and its volumes with --volumes)
#   scripts/stack.sh status          the containers and their health
#   scripts/stack.sh compose ARGS... podman-compose on the stack's files
#
# State (secrets, CA, nginx site files) lives in build/stack (FP_STACK_DIR);
# it is made once and kept, so the secrets match the data in the volumes.
# Podman runs with the project's settings (deploy/podman/containers.conf).
# Ports (loopback only): 8443 HTTPS, 8480 HTTP (redirects), 9490 Prometheus,
# 9493 Alertmanager, 8491 the fake Letterboxd, 8492 the fake Telegram.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/podman-env.sh

# On a server, systemd's unit gives FP_STACK_ENV (written by the Ansible
# role): FP_STACK_PROFILE=production, FP_STACK_DIR=/etc/filmpicker, the
# public ports and name. There the secrets, certificate and images are the
# role's (never made here) and the test profile is not started.
if [ -n "${FP_STACK_ENV:-}" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$FP_STACK_ENV"
    set +a
fi
profile=${FP_STACK_PROFILE:-test}
export FP_STACK_DIR=${FP_STACK_DIR:-$root/build/stack}
export FP_ACME_WEBROOT=${FP_ACME_WEBROOT:-$FP_STACK_DIR/acme}
export FP_NGINX_LOG_DIR=${FP_NGINX_LOG_DIR:-$FP_STACK_DIR/log}
project=filmpicker
secrets=$FP_STACK_DIR/secrets
compose_files=(-f deploy/compose.yaml)
[ "$profile" = test ] && compose_files+=(-f deploy/compose.test.yaml)

say() { echo "stack: $*" >&2; }
die() { say "$*"; exit 1; }

compose() {
    podman-compose -p "$project" "${compose_files[@]}" "$@"
}

# podman-compose is chatty (and, for containers that exist already, prints
# errors before starting them): its output goes to a log.
compose_quiet() {
    mkdir -p "$FP_STACK_DIR"
    if ! compose "$@" >>"$FP_STACK_DIR/compose.log" 2>&1; then
        tail -20 "$FP_STACK_DIR/compose.log" >&2
        die "podman-compose $* failed (log: $FP_STACK_DIR/compose.log)"
    fi
}

container() { echo "${project}_$1_1"; }

rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# A secret file: world-readable inside a directory only root can enter (the
# containers' users differ), or with an owner and mode of its own.
put_secret() { # NAME VALUE [OWNER MODE]
    local f=$secrets/$1
    printf '%s\n' "$2" >"$f.tmp"
    chown "${3:-0}:${3:-0}" "$f.tmp"
    chmod "${4:-0444}" "$f.tmp"
    mv "$f.tmp" "$f"
}

make_secrets() {
    mkdir -p "$secrets"
    chmod 700 "$secrets"
    [ -f "$secrets/db_password" ] && return 0
    say "making secrets in $secrets"
    local pg db ex rd mq
    pg=$(rand) db=$(rand) ex=$(rand) rd=$(rand) mq=$(rand)
    put_secret postgres_password "$pg"
    put_secret exporter_db_password "$ex"
    put_secret redis_password "$rd"
    put_secret rabbitmq_password "$mq"
    put_secret database_url "postgresql://filmpicker:$db@postgres:5432/filmpicker"
    put_secret cache_url "redis://:$rd@redis:6379/0"
    put_secret queue_url "amqp://filmpicker:$mq@rabbitmq:5672/"
    # libpq reads a password file only when it is private to its reader:
    # the postgres user of the backup container (uid 100 in that image).
    put_secret pgpass "postgres:5432:filmpicker:filmpicker:$db" 100 0600
    # The server key: the vault wants it private to its reader (uid 10001).
    put_secret secret_key "$(rand)" 10001 0600
    # Backups are encrypted to this age key. On a server only the public
    # half is kept; the identity goes to the operators' safe (operations.md).
    podman run --rm --entrypoint age-keygen localhost/filmpicker-postgres:latest \
        >"$secrets/backup_identity.tmp" 2>/dev/null
    chown 100:100 "$secrets/backup_identity.tmp"
    chmod 0400 "$secrets/backup_identity.tmp"
    mv "$secrets/backup_identity.tmp" "$secrets/backup_identity"
    put_secret backup_recipients "$(sed -n 's/^# public key: //p' "$secrets/backup_identity")"
    # db_password last: its presence says the set is complete.
    put_secret db_password "$db"
}

make_tls() {
    local d=$FP_STACK_DIR
    mkdir -p "$d/nginx"
    if [ ! -f "$d/ca.crt" ]; then
        say "making a local CA and a certificate for 127.0.0.1 and localhost"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=FilmPicker stack test CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        chmod 600 "$d/ca.key"
        rm -f "$d/nginx/tls.crt"
    fi
    if [ ! -f "$d/nginx/tls.crt" ] || [ ! -f "$secrets/tls_key" ]; then
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=localhost" -keyout "$secrets/tls_key.tmp" -out "$d/server.csr" 2>/dev/null
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -CAcreateserial -days 825 -out "$d/server.crt" \
            -extfile <(printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
                "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature") 2>/dev/null
        cat "$d/server.crt" "$d/ca.crt" >"$d/nginx/tls.crt"
        chmod 600 "$secrets/tls_key.tmp"
        mv "$secrets/tls_key.tmp" "$secrets/tls_key"
        rm -f "$d/server.csr"
    fi
    # The public HTTPS port for redirects, and the admin allow-list: the
    # host itself (the front network's gateway, which is how connections to
    # the published ports arrive) and loopback.
    printf 'map "" $fp_https_suffix { default ":8443"; }\n' >"$d/nginx/params.conf"
    printf 'allow 10.89.10.254;\nallow 127.0.0.1;\n' >"$d/nginx/admin-allow.conf"
}

make_alertmanager() {
    local f=$secrets/alertmanager.yml
    [ -f "$f" ] && return 0
    sed -e "s|@TELEGRAM_API_URL@|http://faketelegram:8000|" \
        -e "s|@TELEGRAM_BOT_TOKEN@|$(rand | cut -c1-10):test-token|" \
        -e "s|@TELEGRAM_CHAT_ID@|-1001000000001|" \
        deploy/alertmanager/alertmanager.yml.in >"$f.tmp"
    chmod 0444 "$f.tmp"
    mv "$f.tmp" "$f"
}

make_networks() {
    podman network exists "${project}_front" ||
        podman network create --subnet 10.89.10.0/24 --gateway 10.89.10.254 \
            --ip-range 10.89.10.0/25 --label io.podman.compose.project=$project \
            "${project}_front" >/dev/null
    podman network exists "${project}_back" ||
        podman network create --subnet 10.89.11.0/24 --gateway 10.89.11.254 \
            --label io.podman.compose.project=$project "${project}_back" >/dev/null
}

# Waits until a container's health check passes (podman runs health checks
# from systemd timers, which this sandbox has not: they are run here).
wait_healthy() { # SERVICE SECONDS
    local c deadline
    c=$(container "$1")
    deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if [ "$(podman inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = true ] &&
            podman healthcheck run "$c" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    podman logs --tail 30 "$c" >&2 || true
    die "$1 did not become healthy in $2 s"
}

check_production() {
    local f
    for f in secret_key database_url cache_url queue_url postgres_password db_password \
        exporter_db_password redis_password rabbitmq_password pgpass backup_recipients tls_key \
        alertmanager.yml; do
        [ -f "$secrets/$f" ] || die "missing secret $secrets/$f (the Ansible role writes it)"
    done
    for f in tls.crt params.conf admin-allow.conf; do
        [ -f "$FP_STACK_DIR/nginx/$f" ] || die "missing $FP_STACK_DIR/nginx/$f"
    done
    for f in app postgres redis rabbitmq nginx monitor; do
        podman image exists "localhost/filmpicker-$f:latest" || die "image filmpicker-$f missing"
    done
}

up() {
    if [ "$profile" = production ]; then
        check_production
        mkdir -p "$FP_ACME_WEBROOT" "$FP_NGINX_LOG_DIR"
        make_networks
        start_services
        return
    fi
    if [ ! -f web/dist/index.html ] || [ ! -f web/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]; then
        ./scripts/install-deps.sh
        ./scripts/build.sh build
    fi
    command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
    ./scripts/images.sh
    make_secrets
    make_tls
    make_alertmanager
    mkdir -p "$FP_ACME_WEBROOT" "$FP_NGINX_LOG_DIR"
    make_networks
    export FP_LETTERBOXD_URL=http://fakeboxd:8000
    # The test stack logs client addresses, so its test can see whose
    # address FilmPicker believes (on a server: off, personal data).
    export FP_LOG_CLIENT_ADDRESS=1
    start_services
}

start_services() {
    say "starting the data services"
    if [ "$profile" = test ]; then
        compose_quiet up -d postgres redis rabbitmq fakeboxd faketelegram
    else
        compose_quiet up -d postgres redis rabbitmq
    fi
    wait_healthy postgres 90
    wait_healthy redis 60
    wait_healthy rabbitmq 120
    say "migrating the database"
    podman rm -f "$(container migrate)" >/dev/null 2>&1 || true
    compose_quiet up -d migrate
    local rc
    rc=$(podman wait "$(container migrate)")
    [ "$rc" = 0 ] || { podman logs "$(container migrate)" >&2; die "migrate exited with $rc"; }
    say "starting the API instances, workers, nginx and monitoring"
    compose_quiet up -d
    for s in api1 api2 worker1 worker2; do wait_healthy "$s" 60; done
    wait_healthy nginx 30
    # Ready: nginx answers and an API instance behind it sees every
    # dependency (the first seconds after a start, under load, it may not).
    local deadline=$((SECONDS + 60)) url=https://127.0.0.1:8443 tls=(--cacert "$FP_STACK_DIR/ca.crt")
    if [ "$profile" = production ]; then
        # The certificate names the domain; ask the published port for it.
        url="https://${FP_SERVER_NAME:?}" tls=(--resolve "$FP_SERVER_NAME:443:127.0.0.1" -k)
    fi
    until curl -fsS "${tls[@]}" -o /dev/null "$url/readyz"; do
        ((SECONDS < deadline)) || die "$url/readyz is not ready after 60 s"
        sleep 1
    done
    say "up: $url"
    [ "$profile" = test ] && say "CA certificate: $FP_STACK_DIR/ca.crt"
    return 0
}

down() {
    local vol=()
    [ "${1:-}" = --volumes ] && vol=(-v)
    compose down "${vol[@]}" >>"$FP_STACK_DIR/compose.log" 2>&1 || true
    # podman-compose 1.0.3 leaves what it did not start in this run.
    podman ps -a --filter label=io.podman.compose.project=$project -q | xargs -r podman rm -f >/dev/null
    if [ ${#vol[@]} -gt 0 ]; then
        podman volume ls --filter label=io.podman.compose.project=$project -q |
            xargs -r podman volume rm -f >/dev/null
    fi
    podman network rm -f "${project}_front" "${project}_back" >/dev/null 2>&1 || true
    say "down${vol[*]:+ (volumes removed)}"
}

case "${1:-}" in
up) up ;;
down) shift; down "$@" ;;
status) podman ps -a --filter label=io.podman.compose.project=$project \
    --format '{{.Names}}\t{{.Status}}' ;;
compose) shift; compose "$@" ;;
*) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
