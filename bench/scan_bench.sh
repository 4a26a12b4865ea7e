#!/bin/bash
# Benchmark: a full scan of a generated folder of 1,000,000 backups.
#
# Side by side in one run, against one emulator on loopback:
#   client   bench/list_all pages through the folder with the client library
#            alone (the floor: emulator + gRPC + decoding)
#   fdw      SELECT count(*) through the foreign table, same page size
#   fdw-100k the same on a folder of 100,000, to show memory does not grow
#            with the number of rows
# Reports rows/s, the FDW/client throughput ratio, and each backend's peak
# resident memory (VmHWM) before and after its scan.
#
#   bash bench/scan_bench.sh            (after scripts/setup.sh)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

ROWS=${BENCH_ROWS:-1000000}
PAGE=${BENCH_PAGE_SIZE:-1000}

bash scripts/pg.sh start >/dev/null
make -s bench/list_all

start_emulator emulator-bench --generate "b1g-bench=$ROWS" \
    --generate "b1g-bench-small=$((ROWS / 10))" --token 'bench-token=*'
trap 'stop_pid $EMU_PID' EXIT
addr=127.0.0.1:$EMU_PORT

pg_psql -d postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 ||
    pg_psql -d postgres -qc 'CREATE DATABASE bench'
pg_psql -d bench -q -v ON_ERROR_STOP=1 -v addr="$addr" -v page="$PAGE" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS redis_backup_fdw;
DROP SERVER IF EXISTS bench CASCADE;
CREATE SERVER bench FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'addr', tls 'false', page_size :'page');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (iam_token 'bench-token');
CREATE FOREIGN TABLE bench_backups (
  id text, folder_id text, created_at timestamptz, source_cluster_id text,
  started_at timestamptz, source_shard_names text[], type text) SERVER bench;
SQL

# fdw_scan FOLDER: prints "rows seconds hwm_before_kB hwm_after_kB"
fdw_scan() {
    pg_psql -d bench -qtA -F' ' -v folder="$1" <<'SQL'
CREATE TEMP TABLE t AS SELECT clock_timestamp() AS t0,
  (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint AS hwm0;
CREATE TEMP TABLE r AS
  SELECT count(*) AS n, count(source_shard_names) AS s, max(created_at) AS m
    FROM bench_backups WHERE folder_id = :'folder';
SELECT r.n, round(extract(epoch FROM clock_timestamp() - t.t0)::numeric, 3), t.hwm0,
  (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]
  FROM r, t;
SQL
}

echo "folder of $ROWS backups, page_size $PAGE, emulator $addr"
read -r c_rows c_secs < <(bench/list_all "$addr" bench-token b1g-bench "$PAGE" |
    sed -E 's/.*rows=([0-9]+).*seconds=([0-9.]+)/\1 \2/')
read -r f_rows f_secs f_hwm0 f_hwm1 < <(fdw_scan b1g-bench)
read -r s_rows s_secs s_hwm0 s_hwm1 < <(fdw_scan b1g-bench-small)

awk -v cr="$c_rows" -v cs="$c_secs" -v fr="$f_rows" -v fs="$f_secs" \
    -v f0="$f_hwm0" -v f1="$f_hwm1" -v sr="$s_rows" -v ss="$s_secs" \
    -v s0="$s_hwm0" -v s1="$s_hwm1" 'BEGIN {
    printf "%-9s %9s %8s %12s %14s %14s\n", "run", "rows", "seconds", "rows/s", "peak RSS before", "after (kB)"
    printf "%-9s %9d %8.3f %12.0f %14s %14s\n", "client", cr, cs, cr / cs, "-", "-"
    printf "%-9s %9d %8.3f %12.0f %14d %14d\n", "fdw", fr, fs, fr / fs, f0, f1
    printf "%-9s %9d %8.3f %12.0f %14d %14d\n", "fdw-small", sr, ss, sr / ss, s0, s1
    printf "fdw/client throughput: %.2f\n", (fr / fs) / (cr / cs)
    printf "peak RSS growth: %d kB for %d rows, %d kB for %d rows\n", f1 - f0, fr, s1 - s0, sr
}'
