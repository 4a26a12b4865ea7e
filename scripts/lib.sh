# Shared helpers for the scripts in scripts/.  Sourced, not run.
# shellcheck shell=bash disable=SC2034
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${RBFDW_WORK:-/tmp/rbfdw}
[[ $WORK == /* ]] || WORK=$PWD/$WORK
PGPORT=${RBFDW_PGPORT:-54329}
PGDATA=$WORK/pgdata
PGLOG=$WORK/postgresql.log
EMULATOR=$ROOT/test/emulator/redis_backup_emulator

# The versions of PostgreSQL the extension builds against.
SUPPORTED_PG_VERSIONS=(15 16 17 18)

say() { echo "${0##*/}: $*"; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# installed_pg_version: the newest supported PostgreSQL major version whose
# server is installed (/usr/lib/postgresql/N/bin/postgres), or nothing.
installed_pg_version() {
    local d v newest=
    for d in /usr/lib/postgresql/*/bin/postgres; do
        v=${d#/usr/lib/postgresql/}
        v=${v%%/*}
        [[ " ${SUPPORTED_PG_VERSIONS[*]} " == *" $v "* ]] || continue
        if [[ -z $newest ]] || ((v > newest)); then newest=$v; fi
    done
    echo "$newest"
}

# release_pg_version: the PostgreSQL major version this Debian release
# ships, the one its "postgresql" package depends on (apt's lists must be
# there: setup.sh updates them first when they are not).
release_pg_version() {
    apt-cache depends postgresql 2>/dev/null |
        sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1
}

# The PostgreSQL the scripts use: $RBFDW_PG_VERSION if set, else the newest
# installed, else (setup.sh, on a machine without one) the release's.
PG_VERSION=${RBFDW_PG_VERSION:-$(installed_pg_version)}
if [[ -n $PG_VERSION && " ${SUPPORTED_PG_VERSIONS[*]} " != *" $PG_VERSION "* ]]; then
    die "PostgreSQL $PG_VERSION is not supported (RBFDW_PG_VERSION=${RBFDW_PG_VERSION:-unset}); supported: ${SUPPORTED_PG_VERSIONS[*]}"
fi

# set_pg_version N: use PostgreSQL N (sets PG_VERSION, PGBIN, PG_CONFIG).
set_pg_version() {
    PG_VERSION=$1
    PGBIN=/usr/lib/postgresql/$PG_VERSION/bin
    export PG_CONFIG=$PGBIN/pg_config
}
if [[ -n $PG_VERSION ]]; then set_pg_version "$PG_VERSION"; else PGBIN= PG_CONFIG=; fi

# need_pg: make sure the chosen PostgreSQL's server is installed, else stop.
# A script that sourced this file before setup.sh installed PostgreSQL
# calls it after setup.sh to pick up the version just installed.
need_pg() {
    if [[ -z $PG_VERSION ]]; then
        PG_VERSION=$(installed_pg_version)
        [[ -z $PG_VERSION ]] || set_pg_version "$PG_VERSION"
    fi
    [[ -n $PG_VERSION && -x $PGBIN/postgres ]] ||
        die "PostgreSQL${PG_VERSION:+ $PG_VERSION} is not installed: run bash scripts/setup.sh first"
}

# gRPC honours http(s)_proxy/grpc_proxy; never send loopback traffic there.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY=$no_proxy

# Run a command as the postgres OS user (from / so its cwd is readable).
as_pg() { (cd / && runuser -u postgres -- "$@"); }

# psql as the postgres superuser against the throwaway cluster.
pg_psql() { "$PGBIN/psql" -X -h "$WORK" -p "$PGPORT" -U postgres "$@"; }

# Does PID belong to a running emulator (its program or script is $EMULATOR)?
is_emulator_pid() {
    local pid=$1 argv
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    mapfile -d "" -t argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
    [[ ${argv[0]:-} == "$EMULATOR" || ${argv[1]:-} == "$EMULATOR" ]]
}

# start_emulator NAME [ARGS...]: start the emulator in the background from the
# repo root with --log $WORK/NAME.log and --port-file $WORK/NAME.port (stdout
# and stderr in $WORK/NAME.out, pid in $WORK/NAME.pid, a previous one still
# running is stopped first); wait until it is listening.
# Sets EMU_PID and EMU_PORT.
start_emulator() {
    local name=$1 i
    shift
    local log=$WORK/$name.log portfile=$WORK/$name.port out=$WORK/$name.out
    local pidfile=$WORK/$name.pid
    [[ -x $EMULATOR ]] || die "emulator not built: $EMULATOR (make test-programs)"
    if [[ -f $pidfile ]] && is_emulator_pid "$(<"$pidfile")"; then
        say "stopping the previous $name (pid $(<"$pidfile"))"
        stop_pid "$(<"$pidfile")"
    fi
    : >"$log"
    chmod 0644 "$log"
    rm -f "$portfile"
    (cd "$ROOT" && exec nohup "$EMULATOR" "$@" --log "$log" --port-file "$portfile" \
        </dev/null >"$out" 2>&1) &
    EMU_PID=$!
    echo "$EMU_PID" >"$pidfile"
    local prev=
    for ((i = 0; i < 200; i++)); do
        EMU_PORT=$(cat "$portfile" 2>/dev/null || true)
        EMU_PORT=${EMU_PORT//[[:space:]]/}
        # the same port twice in a row: the file is completely written
        if [[ $EMU_PORT =~ ^[0-9]+$ && $EMU_PORT == "$prev" ]]; then
            chmod 0644 "$log"
            return 0
        fi
        if ! kill -0 "$EMU_PID" 2>/dev/null; then
            cat "$out" >&2
            die "emulator $name exited during start-up"
        fi
        prev=$EMU_PORT
        sleep 0.1
    done
    kill "$EMU_PID" 2>/dev/null || true
    cat "$out" >&2
    die "emulator $name did not start within 20 s"
}

# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL.  Quiet.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# make_tls: test TLS material in $WORK/tls, made by test/emulator/make_tls.sh
# and kept while still valid:
#   ca.pem/ca.key          test CA
#   server.pem/server.key  server cert for DNS:localhost only, signed by ca
#   untrusted-ca.pem       an unrelated CA
make_tls() {
    local d=$WORK/tls
    mkdir -p "$d"
    chmod 0755 "$d"
    if [[ -s $d/server.key && -s $d/untrusted-ca.pem ]] &&
        openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$d/server.pem" >/dev/null 2>&1; then
        return 0
    fi
    say "generating test TLS material in $d"
    sh "$ROOT/test/emulator/make_tls.sh" "$d"
}

# make_sa_keys: test service-account keys in $WORK/keys (made anew each
# time, never committed), readable by postgres: good/ (key id kid-regress of
# sa-regress, registered with the emulators), unknown/ (an unregistered key
# id), forged/ (id kid-regress but another private key) and hang/ (key id
# kid-hang, whose exchange the short-lived emulator never answers),
# rotated/ (key id kid-rotated, registered too), slot.json (a copy of
# good/key.json that a test overwrites with rotated/key.json), rsa512/ and
# rsa1024/ (keys too small for IAM, ids kid-rsa512 and kid-rsa1024),
# swap.json (a copy of good/key.json that a test replaces with a FIFO) and
# fifo (a FIFO, where a key file must not be).
make_sa_keys() {
    local k=$WORK/keys d
    rm -rf "$k"
    mkdir -p "$k"
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-regress sa-regress "$k/good" >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-unknown sa-regress "$k/unknown" >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-regress sa-regress "$k/forged" >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-hang sa-regress "$k/hang" >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-rotated sa-regress "$k/rotated" >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-rsa512 sa-regress "$k/rsa512" 512 >/dev/null
    sh "$ROOT/test/emulator/make_sa_key.sh" kid-rsa1024 sa-regress "$k/rsa1024" 1024 >/dev/null
    cp "$k/good/key.json" "$k/slot.json"
    cp "$k/good/key.json" "$k/swap.json"
    mkfifo -m 0600 "$k/fifo"
    chown postgres "$k/slot.json" "$k/swap.json" "$k/fifo" 2>/dev/null || true
    for d in "$k" "$k"/*; do chown postgres "$d" 2>/dev/null || true; done
    chown postgres "$k"/*/key.json 2>/dev/null || true
    chmod 0700 "$k"
    export RBFDW_SA_KEY_FILE=$k/good/key.json
    export RBFDW_SA_KEY_UNKNOWN_FILE=$k/unknown/key.json
    export RBFDW_SA_KEY_FORGED_FILE=$k/forged/key.json
    export RBFDW_SA_KEY_HANG_FILE=$k/hang/key.json
    export RBFDW_SA_KEY_ROTATED_FILE=$k/rotated/key.json
    export RBFDW_SA_KEY_SLOT_FILE=$k/slot.json
    export RBFDW_SA_KEY_RSA512_FILE=$k/rsa512/key.json
    export RBFDW_SA_KEY_RSA1024_FILE=$k/rsa1024/key.json
    export RBFDW_SA_KEY_SWAP_FILE=$k/swap.json
    export RBFDW_SA_KEY_FIFO=$k/fifo
}

# start_regress_emulators: the emulators the regression tests run against,
# plaintext and TLS, with the arguments in test/regress.args (one a line,
# blank and #-comment lines ignored); their pids are added to EMU_PIDS and
# the RBFDW_* variables the tests read are exported (with PGHOST, PGPORT,
# PGUSER for make installcheck).
start_regress_emulators() {
    local line args=() plain_port
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [[ -z $line || $line == \#* ]] || args+=("$line")
    done <"$ROOT/test/regress.args"
    make_tls
    make_sa_keys
    local iam=(--service-account 'sa-regress=*' --service-account 'sa-vm=*'
        --sa-key "kid-regress=sa-regress:$WORK/keys/good/public.pem"
        --sa-key "kid-rotated=sa-regress:$WORK/keys/rotated/public.pem")
    start_emulator emulator "${args[@]}" "${iam[@]}" \
        --metadata-listen 127.0.0.1:0 --metadata-port-file "$WORK/emulator-metadata.port" \
        --metadata-sa sa-vm
    EMU_PIDS+=("$EMU_PID")
    plain_port=$EMU_PORT
    export RBFDW_METADATA_ADDR=127.0.0.1:$(<"$WORK/emulator-metadata.port")
    # Tokens that live 6 s, and a metadata service with no service account.
    start_emulator emulator-short "${iam[@]}" --token-lifetime 6 --generate b1g-short=40 \
        --fault hang@kid-hang \
        --metadata-listen 127.0.0.1:0 --metadata-port-file "$WORK/emulator-short-metadata.port" \
        --metadata-sa sa-vm --metadata-mode 404
    EMU_PIDS+=("$EMU_PID")
    export RBFDW_SHORT_ADDR=127.0.0.1:$EMU_PORT
    export RBFDW_SHORT_METADATA_ADDR=127.0.0.1:$(<"$WORK/emulator-short-metadata.port")
    # IAM whose clock runs 10 minutes behind (a fresh JWT is issued in its
    # future) and 2 hours ahead (a fresh JWT has expired); the first also
    # has a metadata service that takes 30 s to answer.
    start_emulator emulator-iam-behind "${iam[@]}" --jwt-clock-offset -600 \
        --metadata-listen 127.0.0.1:0 --metadata-port-file "$WORK/emulator-slow-metadata.port" \
        --metadata-sa sa-vm --metadata-mode slow
    EMU_PIDS+=("$EMU_PID")
    export RBFDW_IAM_BEHIND_ADDR=127.0.0.1:$EMU_PORT
    export RBFDW_SLOW_METADATA_ADDR=127.0.0.1:$(<"$WORK/emulator-slow-metadata.port")
    start_emulator emulator-iam-ahead "${iam[@]}" --jwt-clock-offset 7200
    EMU_PIDS+=("$EMU_PID")
    export RBFDW_IAM_AHEAD_ADDR=127.0.0.1:$EMU_PORT
    # A service that admits one call in flight per token (sql/56_throttle):
    # twelve folders of two pages, each call 20 ms.
    local quota=(--token 'regress-token=*' --quota-inflight 1 --fault latency=20) i
    for ((i = 1; i <= 12; i++)); do quota+=(--generate "b1g-q$i=1500"); done
    start_emulator emulator-quota "${quota[@]}"
    EMU_PIDS+=("$EMU_PID")
    export RBFDW_QUOTA_ADDR=127.0.0.1:$EMU_PORT
    export RBFDW_QUOTA_LOG=$WORK/emulator-quota.log
    start_emulator emulator-tls "${args[@]}" \
        --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key"
    EMU_PIDS+=("$EMU_PID")
    say "regress emulators: plaintext 127.0.0.1:$plain_port, TLS localhost:$EMU_PORT"

    export RBFDW_EMULATOR_ADDR=127.0.0.1:$plain_port
    export RBFDW_EMULATOR_LOG=$WORK/emulator.log
    export RBFDW_EMULATOR_TLS_ADDR=localhost:$EMU_PORT
    export RBFDW_EMULATOR_TLS_IP_ADDR=127.0.0.1:$EMU_PORT
    export RBFDW_CA_FILE=$WORK/tls/ca.pem
    export RBFDW_UNTRUSTED_CA_FILE=$WORK/tls/untrusted-ca.pem
    export RBFDW_PG_LOG=$PGLOG
    export PGHOST=$WORK PGPORT PGUSER=postgres
}

# regress_results FILE: the names of the tests pg_regress's output FILE
# reports, one a line, each followed by a space and "ok" or "failed".  Both
# formats are read: 15's "test NAME ... ok|FAILED|failed (ignored)  N ms"
# and the TAP lines of 16 and later, "ok N - NAME  N ms" and
# "not ok N - NAME  N ms" (+ instead of - in a parallel group).
regress_results() {
    sed -nE \
        -e 's/^(test +| +)?([^ ]+) +\.\.\. +(ok|failed \(ignored\)).*/\2 ok/p' \
        -e 's/^(test +| +)?([^ ]+) +\.\.\. +FAILED.*/\2 failed/p' \
        -e 's/^ok +[0-9]+ +[-+] +([^ ]+) .*/\1 ok/p' \
        -e 's/^not ok +[0-9]+ +[-+] +([^ ]+) .*/\1 failed/p' "$1"
}

# base_pg_conf: the settings of a throwaway cluster (scripts/pg.sh,
# scripts/valgrind.sh), written to stdout.
base_pg_conf() {
    cat <<EOF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$WORK'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
lc_messages = 'C'
EOF
}
