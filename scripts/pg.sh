#!/bin/bash
# Throwaway PostgreSQL cluster (the version lib.sh chooses) for tests and the demo.
#   scripts/pg.sh start|stop|status
# Data in $RBFDW_WORK/pgdata (default /tmp/rbfdw), run as the postgres OS user,
# port $RBFDW_PGPORT (default 54329), Unix socket only, in $RBFDW_WORK;
# server log $RBFDW_WORK/postgresql.log.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pg_ctl() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" "$@"; }

is_ready() { "$PGBIN/pg_isready" -q -h "$WORK" -p "$PGPORT" -U postgres -d postgres -t 3; }

# PID of the live postmaster of $PGDATA, if any.  A postmaster.pid whose
# process is not a postgres server (left by a crash or another machine) is
# removed, with the socket lock files.
postmaster_pid() {
    local pid
    [[ -f $PGDATA/postmaster.pid ]] || return 1
    pid=$(head -n1 "$PGDATA/postmaster.pid")
    if [[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/exe" 2>/dev/null) == "$PGBIN/postgres"* ]]; then
        echo "$pid"
        return 0
    fi
    say "removing stale $PGDATA/postmaster.pid" >&2
    rm -f "$PGDATA/postmaster.pid" "$WORK/.s.PGSQL.$PGPORT" "$WORK/.s.PGSQL.$PGPORT.lock"
    return 1
}

init_cluster() {
    if [[ -f $PGDATA/PG_VERSION && $(<"$PGDATA/PG_VERSION") == "$PG_VERSION" &&
        -f $PGDATA/postgresql.conf && $(stat -c %U "$PGDATA") == postgres ]]; then
        return 0
    fi
    if [[ -e $PGDATA ]]; then
        say "removing unusable $PGDATA"
        rm -rf "$PGDATA"
    fi
    say "initdb $PGDATA"
    install -d -m 0700 -o postgres -g postgres "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >/dev/null
    echo "include 'rbfdw.conf'" >>"$PGDATA/postgresql.conf"
}

start() {
    # The socket lives in $WORK: the server must be able to write there.
    case $WORK in / | /tmp | /var/tmp | /root | /home) die "RBFDW_WORK=$WORK: use a dedicated directory" ;; esac
    mkdir -p "$WORK"
    chown postgres: "$WORK"
    chmod 0755 "$WORK"
    as_pg test -x "$WORK" || die "$WORK is not accessible to the postgres user"
    if postmaster_pid >/dev/null; then
        if is_ready; then
            say "already running (port $PGPORT, socket dir $WORK)"
            return 0
        fi
        stop # running, but not ready on this port: restart it
    fi
    init_cluster
    # Rewritten on every start so a changed port or work dir takes effect.
    base_pg_conf >"$PGDATA/rbfdw.conf"
    chown postgres: "$PGDATA/rbfdw.conf"
    touch "$PGLOG"
    chown postgres: "$PGLOG"
    chmod 0644 "$PGLOG"
    say "starting PostgreSQL $PG_VERSION (port $PGPORT, socket dir $WORK, log $PGLOG)"
    if ! pg_ctl -l "$PGLOG" -w -t 60 start >/dev/null; then
        tail -n 20 "$PGLOG" >&2
        die "PostgreSQL failed to start"
    fi
}

stop() {
    if postmaster_pid >/dev/null; then
        say "stopping PostgreSQL"
        pg_ctl -m fast -w -t 60 stop >/dev/null
    fi
}

status() {
    if is_ready; then
        echo "running: psql -h $WORK -p $PGPORT -U postgres"
    else
        echo "not running"
        return 3
    fi
}

case ${1:-} in
start | stop | status)
    need_pg
    "$1"
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
