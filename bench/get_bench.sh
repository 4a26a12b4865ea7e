#!/bin/bash
# Benchmark: Gets of an IN list run several at a time.
#
# Side by side in one run, against an emulator that delays every reply by
# BENCH_LATENCY_MS (default 10) to stand in for a network round trip:
#   in-list  SELECT ... WHERE id IN (64 ids): Gets started ahead of the
#            executor, up to 16 in flight
#   join     the same 64 ids joined from a local table: a parameterized
#            nested loop, one Get per rescan, one at a time
# Reports each run's time and the ratio.
#
#   bash bench/get_bench.sh            (after scripts/setup.sh)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

N=${BENCH_IDS:-64}
LATENCY=${BENCH_LATENCY_MS:-10}

bash scripts/pg.sh start >/dev/null
start_emulator emulator-bench --generate "b1g-bench=$N" --token 'bench-token=*' \
    --fault "latency=$LATENCY"
trap 'stop_pid $EMU_PID' EXIT
addr=127.0.0.1:$EMU_PORT

pg_psql -d postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 ||
    pg_psql -d postgres -qc 'CREATE DATABASE bench'
pg_psql -d bench -q -v ON_ERROR_STOP=1 -v addr="$addr" -v n="$N" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_backup_fdw;
DROP SERVER IF EXISTS bench CASCADE;
CREATE SERVER bench FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'addr', tls 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (iam_token 'bench-token');
CREATE FOREIGN TABLE bench_backups (id text, folder_id text, created_at timestamptz)
  SERVER bench;
DROP TABLE IF EXISTS wanted;
CREATE TABLE wanted AS
  SELECT format('b1g-bench-b%s', lpad(i::text, 7, '0')) AS id
    FROM generate_series(0, :n - 1) i;
ANALYZE wanted;
SQL

in_list=$(pg_psql -d bench -qtAc "SELECT string_agg(quote_literal(id), ',') FROM wanted")
run() {
    pg_psql -d bench -qtA -F' ' <<SQL
SET enable_hashjoin = off;
SET enable_mergejoin = off;
CREATE TEMP TABLE t AS SELECT clock_timestamp() AS t0;
CREATE TEMP TABLE r AS $1;
SELECT (SELECT n FROM r), round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3) FROM t;
SQL
}

echo "$N ids, emulator latency ${LATENCY} ms per call, emulator $addr"
read -r a_rows a_secs < <(run "SELECT count(*) AS n FROM bench_backups WHERE id IN ($in_list)")
read -r b_rows b_secs < <(run "SELECT count(*) AS n FROM wanted w JOIN bench_backups b ON b.id = w.id")
awk -v ar="$a_rows" -v as="$a_secs" -v br="$b_rows" -v bs="$b_secs" 'BEGIN {
    printf "%-8s %5s %8s\n", "run", "rows", "seconds"
    printf "%-8s %5d %8.3f\n", "in-list", ar, as
    printf "%-8s %5d %8.3f\n", "join", br, bs
    printf "join/in-list time: %.1f\n", bs / as
}'
