#!/bin/bash
# Benchmark: calls in flight at once, against an emulator that delays every
# call by LATENCY ms (default 20), as a real endpoint costs tens of ms.
#   folders  40 folders of 3 pages each (120 List calls):
#            folder_id = ANY(ARRAY(SELECT ...)) from a local table
#   ids      200 ids (200 Get calls): id = ANY(ARRAY(SELECT ...))
#   cloud    a cloud of 100 folders (1 FolderService.List + 100 List calls)
# each with max_concurrent_calls 1, 8 and 16; and
#   cloud1000  a cloud of 1,000 folders (1 + 1,000 calls), N = 8 and 16
#   quota    the cloud of 100 folders with N = 16 against a second emulator
#            that admits 4 calls in flight per token (--quota-inflight 4)
#            and refuses the others RESOURCE_EXHAUSTED; its "ideal" is that
#            of N = 4, the most the service serves at once
# median of RUNS (default 3).  For the cloud scans the backend's peak
# resident memory (VmHWM, fresh session) is shown too: flat from 100 to
# 1,000 folders when memory is bounded by the calls in flight.
# Pages are pre-encoded, so the single-threaded emulator adds little per call.
# "ideal" is (calls / N) x LATENCY: N calls always in flight, no other cost.
# With BENCH_COMPARE_REV=REV a second emulator, built from git revision REV
# (bench/emulator_at.sh), serves the same data; the runs alternate between
# the two (the server's endpoint switched between queries) and a column
# "x REV" shows its ratio beside today's.
#
#   bash bench/fanout_bench.sh          (after scripts/setup.sh)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

RUNS=${BENCH_RUNS:-3}
LATENCY=${BENCH_LATENCY_MS:-20}

bash scripts/pg.sh start >/dev/null
gen=()
for ((i = 1; i <= 40; i++)); do gen+=(--generate "fan-$i=3000"); done
emu_args=("${gen[@]}" --generate-cloud "cloud-100=100:10"
    --generate-cloud "cloud-1000=1000:10" --preencoded 1000
    --fault "latency=$LATENCY" --token 'bench-token=*')
start_emulator emulator-fanout "${emu_args[@]}"
pids=$EMU_PID
addr=127.0.0.1:$EMU_PORT
start_emulator emulator-fanout-quota "${emu_args[@]}" --quota-inflight 4
pids+=" $EMU_PID"
quota_addr=127.0.0.1:$EMU_PORT
trap 'for p in $pids; do stop_pid "$p"; done' EXIT
addrs=("$addr") labels=("x ideal")
if [[ -n ${BENCH_COMPARE_REV:-} ]]; then
    bash bench/emulator_at.sh "$BENCH_COMPARE_REV" "$WORK/emulator-at-rev"
    EMULATOR=$WORK/emulator-at-rev start_emulator emulator-fanout-rev "${emu_args[@]}"
    pids+=" $EMU_PID"
    addrs+=("127.0.0.1:$EMU_PORT") labels+=("x $BENCH_COMPARE_REV")
fi

pg_psql -d postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 ||
    pg_psql -d postgres -qc 'CREATE DATABASE bench'
pg_psql -d bench -q -v ON_ERROR_STOP=1 -v addr="$addr" -v quota_addr="$quota_addr" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_backup_fdw;
DROP SERVER IF EXISTS fanout CASCADE;
CREATE SERVER fanout FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'addr', resource_manager_endpoint :'addr', tls 'false',
           max_concurrent_calls '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER fanout OPTIONS (iam_token 'bench-token');
CREATE FOREIGN TABLE fan_backups (id text, folder_id text) SERVER fanout;
CREATE FOREIGN TABLE fan_cloud (id text, folder_id text) SERVER fanout
  OPTIONS (cloud_id 'cloud-100');
CREATE FOREIGN TABLE fan_cloud1000 (id text, folder_id text) SERVER fanout
  OPTIONS (cloud_id 'cloud-1000');
DROP SERVER IF EXISTS quota CASCADE;
CREATE SERVER quota FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'quota_addr', resource_manager_endpoint :'quota_addr',
           tls 'false', max_concurrent_calls '16');
CREATE USER MAPPING FOR CURRENT_USER SERVER quota OPTIONS (iam_token 'bench-token');
CREATE FOREIGN TABLE fan_cloud_quota (id text, folder_id text) SERVER quota
  OPTIONS (cloud_id 'cloud-100');
DROP TABLE IF EXISTS fan_folders, fan_ids;
CREATE TABLE fan_folders AS SELECT 'fan-' || i AS folder_id FROM generate_series(1, 40) i;
CREATE TABLE fan_ids AS
  SELECT 'fan-' || (i % 40 + 1) || '-b' || lpad((i * 7)::text, 7, '0') AS id
    FROM generate_series(0, 199) i;
SQL

declare -A QUERY=(
    [folders]="SELECT count(*) FROM fan_backups WHERE folder_id = ANY (ARRAY(SELECT folder_id FROM fan_folders))"
    [ids]="SELECT count(*) FROM fan_backups WHERE id = ANY (ARRAY(SELECT id FROM fan_ids))"
    [cloud]="SELECT count(*) FROM fan_cloud"
    [cloud1000]="SELECT count(*) FROM fan_cloud1000"
    [quota]="SELECT count(*) FROM fan_cloud_quota"
)
declare -A CALLS=([folders]=120 [ids]=200 [cloud]=101 [cloud1000]=1001 [quota]=101)
declare -A ROWS=([folders]=120000 [ids]=200 [cloud]=1000 [cloud1000]=10000 [quota]=1000)
declare -A NS=([folders]="1 8 16" [ids]="1 8 16" [cloud]="1 8 16" [cloud1000]="8 16" [quota]="16")
# the calls in flight the ideal assumes: N, but the quota's 4 for "quota"
ideal_n() { [[ $1 == quota ]] && echo 4 || echo "$2"; }

# peak_rss_mb QUERY: the peak resident memory of a fresh backend that ran
# QUERY, in MB
peak_rss_mb() {
    pg_psql -d bench -qtA <<SQL
CREATE TEMP TABLE r AS $1;
SELECT round((regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'),
                           'VmHWM:\s+(\d+)'))[1]::numeric / 1024, 1);
SQL
}

# seconds_of QUERY: its row count and seconds, in a session whose channels
# are already open (a Get of a missing backup, checked against the cloud's
# folder list, first), as in a reporting tool's session: the first query of
# a backend also pays for loading gRPC and connecting.
seconds_of() {
    pg_psql -d bench -qtA <<SQL
SELECT count(*) FROM fan_cloud WHERE id = 'warm-up' \g /dev/null
CREATE TEMP TABLE t AS SELECT clock_timestamp() AS t0;
CREATE TEMP TABLE r AS $1;
SELECT (SELECT count FROM r) || ' ' ||
       round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3) FROM t;
SQL
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# use_emulator ADDR: point the server (both endpoints) at ADDR
use_emulator() {
    pg_psql -d bench -qc "ALTER SERVER fanout OPTIONS (SET endpoint '$1', SET resource_manager_endpoint '$1')"
}

echo "every call delayed by $LATENCY ms, emulator ${addrs[*]}, median of $RUNS runs"
printf '%-9s %5s %4s %9s %9s' scan calls N seconds ideal
printf ' %9s' "${labels[@]}"
printf ' %8s\n' 'peak MB'
for scan in folders ids cloud cloud1000 quota; do
    for n in ${NS[$scan]}; do
        pg_psql -d bench -qc "ALTER SERVER fanout OPTIONS (SET max_concurrent_calls '$n')"
        declare -A secs=()
        for ((i = 0; i < RUNS; i++)); do
            for e in "${!addrs[@]}"; do
                ((${#addrs[@]} == 1)) || use_emulator "${addrs[$e]}"
                read -r rows s < <(seconds_of "${QUERY[$scan]}")
                [[ $rows == "${ROWS[$scan]}" ]] || die "$scan: $rows rows, expected ${ROWS[$scan]}"
                secs[$e]+=" $s"
            done
        done
        ideal=$(awk -v c="${CALLS[$scan]}" -v n="$(ideal_n "$scan" "$n")" -v l="$LATENCY" \
            'BEGIN { print c / n * l / 1000 }')
        # shellcheck disable=SC2086
        printf '%-9s %5d %4d %9.3f %9.3f' "$scan" "${CALLS[$scan]}" "$n" "$(median ${secs[0]})" "$ideal"
        for e in "${!addrs[@]}"; do
            # shellcheck disable=SC2086
            awk -v s="$(median ${secs[$e]})" -v i="$ideal" 'BEGIN { printf " %9.2f", s / i }'
        done
        if [[ $scan == cloud* ]]; then
            printf ' %8s\n' "$(peak_rss_mb "${QUERY[$scan]}")"
        else
            echo
        fi
        unset secs
    done
done
((${#addrs[@]} == 1)) || use_emulator "$addr"
