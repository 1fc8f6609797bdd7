#!/usr/bin/env bash
# A hot standby of the local PostgreSQL primary, on another port of this machine: for
# tests (CASENET_TEST_REPLICA_URL), the bench and trying CASENET_REPLICA_URLS out.
# Idempotent: makes what is missing, starts what is stopped, then waits until the
# standby streams from the primary (a row in the primary's pg_stat_replication).
#
#   ops/standby.sh [start]   make it if missing (pg_basebackup -R), start it, wait
#   ops/standby.sh stop      stop it (its data dir stays)
#   ops/standby.sh status    say whether it runs and streams (exit 1 if not)
#
# Settings (environment):
#   CASENET_STANDBY_PORT   the standby's port                   (5433)
#   CASENET_STANDBY_DIR    its data dir, owned by postgres      (/var/lib/postgresql/casenet-standby)
#   CASENET_STANDBY_LOG    its server log                       (/tmp/standby-PORT.log)
#   CASENET_PRIMARY_PORT   the primary's port on 127.0.0.1      (5432)
#
# Runs as root (commands as postgres through runuser), as postgres, or with sudo -n.
set -euo pipefail

HOST=127.0.0.1
PORT=${CASENET_STANDBY_PORT:-5433}
DIR=${CASENET_STANDBY_DIR:-/var/lib/postgresql/casenet-standby}
LOG=${CASENET_STANDBY_LOG:-/tmp/standby-$PORT.log}
PRIMARY_PORT=${CASENET_PRIMARY_PORT:-5432}
NAME="casenet_standby_$PORT" # its cluster_name: the primary sees it by that name
STREAM_SECONDS=60

say() { printf 'standby: %s\n' "$*"; }
fail() { printf 'standby: FAILED: %s\n' "$*" >&2; exit 1; }

as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        "$@"
    elif [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -n -u postgres "$@"
    fi
}

primary_sql() {
    as_postgres psql -h "$HOST" -p "$PRIMARY_PORT" -U postgres -d postgres -w -X -q -tA \
        -c "$1" </dev/null
}

bin_dir() {
    # The primary's major version's binaries (Debian layout), else the newest installed.
    local major
    major=$(primary_sql "SELECT current_setting('server_version_num')::int / 10000" 2>/dev/null || true)
    if [ -n "$major" ] && [ -x "/usr/lib/postgresql/$major/bin/pg_ctl" ]; then
        echo "/usr/lib/postgresql/$major/bin"
        return
    fi
    dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)"
}

running() { as_postgres "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; }

standby_sql() {
    as_postgres psql -h "$HOST" -p "$PORT" -U postgres -d postgres -w -X -q -tA \
        -c "$1" </dev/null
}

streaming() {
    # The standby's WAL receiver streams, and the primary sees a streaming standby of its
    # name (its cluster_name; one made elsewhere without one is 'walreceiver').
    local name
    [ "$(standby_sql 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ] || return 1
    name=$(standby_sql "SELECT coalesce(nullif(current_setting('cluster_name'), ''), 'walreceiver')")
    [ "$(primary_sql "SELECT count(*) > 0 FROM pg_stat_replication
        WHERE application_name = '$name' AND state = 'streaming'" 2>/dev/null)" = t ]
}

allow_replication() {
    # The primary lets a local standby connect for replication (as the tests connect).
    local hba
    hba=$(primary_sql 'SHOW hba_file') || fail "the primary does not answer on $HOST:$PRIMARY_PORT"
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        say "allowing local replication connections in $hba"
        printf '%s\n' "# added by casenet ops/standby.sh: a local hot standby" \
            "host replication all 127.0.0.1/32 trust" >>"$hba"
        primary_sql 'SELECT pg_reload_conf()' >/dev/null
    fi
}

make_standby() {
    say "making a hot standby in $DIR (pg_basebackup -R from $HOST:$PRIMARY_PORT)"
    as_postgres mkdir -p "$DIR"
    as_postgres chmod 700 "$DIR"
    as_postgres "$BIN/pg_basebackup" -h "$HOST" -p "$PRIMARY_PORT" -U postgres -w \
        -D "$DIR" -R -X stream -c fast </dev/null || fail "pg_basebackup failed"
    # A hot standby needs at least the primary's values of these (else it will not start).
    local limits setting value
    limits=""
    for setting in max_connections max_worker_processes max_wal_senders \
        max_prepared_transactions max_locks_per_transaction; do
        value=$(primary_sql "SHOW $setting")
        limits+="$setting = $value"$'\n'
    done
    as_postgres tee "$DIR/postgresql.conf" >/dev/null <<EOF
# made by casenet ops/standby.sh: a hot standby of $HOST:$PRIMARY_PORT
port = $PORT
listen_addresses = '$HOST'
unix_socket_directories = '/tmp'
cluster_name = '$NAME'
hot_standby = on
hot_standby_feedback = on
$limits
EOF
    as_postgres tee "$DIR/pg_hba.conf" >/dev/null <<EOF
# made by casenet ops/standby.sh: local connections only, as on the test primary
local all all trust
host all all 127.0.0.1/32 trust
EOF
}

start_and_wait() {
    # Start the standby if it is stopped; true once it streams, false if it does not
    # within $1 seconds.
    if ! running; then
        say "starting the standby on $HOST:$PORT (log: $LOG)"
        as_postgres "$BIN/pg_ctl" -D "$DIR" -l "$LOG" -w start >/dev/null || return 1
    fi
    local waited=0
    until streaming; do
        waited=$((waited + 1))
        [ "$waited" -lt "$1" ] || return 1
        sleep 1
    done
}

start() {
    allow_replication
    local made=no
    if [ ! -f "$DIR/PG_VERSION" ]; then
        make_standby
        made=yes
    fi
    if ! start_and_wait "$STREAM_SECONDS"; then
        [ "$made" = no ] || fail "not streaming after ${STREAM_SECONDS}s (see $LOG)"
        # An old standby that cannot follow (another primary, or the WAL it needs is
        # gone since it last ran): it holds nothing of its own, so make it again.
        say "the standby in $DIR does not stream from $HOST:$PRIMARY_PORT: making it again"
        stop
        as_postgres rm -rf "$DIR"
        make_standby
        start_and_wait "$STREAM_SECONDS" || fail "not streaming after ${STREAM_SECONDS}s (see $LOG)"
    fi
    say "streaming from $HOST:$PRIMARY_PORT on $HOST:$PORT ($DIR)"
}

stop() {
    if running; then
        as_postgres "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null
        say "stopped the standby on $HOST:$PORT"
    else
        say "not running ($DIR)"
    fi
}

status() {
    if ! running; then
        say "not running ($DIR)"
        return 1
    fi
    if streaming; then
        say "running on $HOST:$PORT and streaming ($DIR)"
    else
        say "running on $HOST:$PORT but not streaming ($DIR)"
        return 1
    fi
}

BIN=$(bin_dir)
[ -x "$BIN/pg_ctl" ] || fail "no PostgreSQL server binaries under /usr/lib/postgresql"
case "${1:-start}" in
start) start ;;
stop) stop ;;
status) status ;;
*) fail "unknown command ${1}: start, stop or status" ;;
esac
