#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the storage tests (data under /tmp, trust auth).
#   eval "$(.ci/postgres.sh start)"   installs PostgreSQL if missing (Debian, as root), initialises and
#                                     starts the server, prints `export TEST_DATABASE_URL=...`
#   .ci/postgres.sh stop              stops it and removes its data
# Idempotent: `start` reuses a server this script already started. Settings: PG_TEST_DIR, PG_TEST_PORT.
set -euo pipefail
DIR="${PG_TEST_DIR:-/tmp/moviebot-pg-$(id -u)}"
PORT="${PG_TEST_PORT:-55432}"
URL="postgresql://postgres@127.0.0.1:${PORT}/postgres"

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/pg_ctl" ]; then
        pg_config --bindir
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/pg_ctl" ]; then echo "$d"; fi
    done | sort -V | tail -n 1
}

# The server refuses to run as root: as root, run its commands as the `postgres` user.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_if_missing() {
    if [ -n "$(bindir)" ]; then return; fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "PostgreSQL is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y postgresql)"
        say "or point TEST_DATABASE_URL at a server where this user may CREATE DATABASE."
        exit 1
    fi
    say "installing PostgreSQL (apt-get)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

start() {
    if [ -n "${TEST_DATABASE_URL:-}" ]; then  # already given (CI ran this, or a developer's own server)
        echo "export TEST_DATABASE_URL='${TEST_DATABASE_URL}'"
        return
    fi
    install_if_missing
    local bin
    bin="$(bindir)"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        mkdir -p "$DIR"
        chmod 700 "$DIR"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
        as_owner "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        # loopback only; the socket lives beside the data, not in /var/run
        as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p ${PORT} -k ${DIR} -c max_connections=200" >/dev/null \
            || { say "the server did not start; its log:"; tail -n 20 "$DIR/server.log" >&2; exit 1; }
    fi
    echo "export TEST_DATABASE_URL='${URL}'"
}

stop() {
    local bin
    bin="$(bindir)"
    if [ -n "$bin" ] && [ -f "$DIR/data/PG_VERSION" ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) say "usage: $0 [start|stop]"; exit 2 ;;
esac
