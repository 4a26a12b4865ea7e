#!/bin/bash
# Benchmark: full scans of generated folders of 100,000 and 1,000,000
# backups, side by side in one run against one emulator on loopback that
# serves pre-encoded pages (--preencoded 1000: the server costs almost
# nothing per page, so what is measured is the clients' own cost):
#   c        bench/list_all: the client library alone, paging the folder
#   python   bench/list_all.py: a plain Python grpcio client (python3-grpcio)
#   count    SELECT count(*) through the foreign table (no column built)
#   all      SELECT count(b.*): every column of every row built
# Each is run RUNS times (default 3); the median time is reported, with its
# ratio to the C client.  Also the backend's peak RSS growth for the 1M scan.
#
#   bash bench/scan_bench.sh            (after scripts/setup.sh)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

RUNS=${BENCH_RUNS:-3}
PAGE=1000
PY=/usr/bin/python3

if ! $PY -c 'import grpc, google.protobuf' 2>/dev/null; then
    say "installing python3-grpcio and python3-protobuf (the Python client)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python3-grpcio python3-protobuf >/dev/null
fi
bash scripts/pg.sh start >/dev/null
make -s bench/list_all
pygen=$WORK/pygen
mkdir -p "$pygen"
protoc --python_out="$pygen" -Iproto \
    yandex/cloud/mdb/redis/v1/backup.proto yandex/cloud/mdb/redis/v1/backup_service.proto

start_emulator emulator-bench --generate "b1g-1m=1000000" --generate "b1g-100k=100000" \
    --preencoded "$PAGE" --token 'bench-token=*'
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

# seconds_of KIND FOLDER: one run's seconds.
seconds_of() {
    case $1 in
    c) bench/list_all "$addr" bench-token "$2" "$PAGE" | sed -E 's/.*seconds=([0-9.]+).*/\1/' ;;
    python) $PY bench/list_all.py "$addr" bench-token "$2" "$PAGE" "$pygen" |
        sed -E 's/.*seconds=([0-9.]+).*/\1/' ;;
    count | all)
        local expr='count(*)'
        [[ $1 == all ]] && expr='count(b.*)'
        pg_psql -d bench -qtA -v folder="$2" <<SQL
CREATE TEMP TABLE t AS SELECT clock_timestamp() AS t0;
SELECT $expr FROM bench_backups b WHERE folder_id = :'folder' \\g /dev/null
SELECT round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3) FROM t;
SQL
        ;;
    esac
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "pre-encoded pages of $PAGE, emulator $addr, median of $RUNS runs"
printf '%-8s %-7s %9s %10s %8s\n' folder client seconds rows/s "vs C"
for folder in b1g-100k b1g-1m; do
    rows=${folder#b1g-}
    rows=${rows/100k/100000}
    rows=${rows/1m/1000000}
    declare -A med=()
    for kind in c python count all; do
        secs=()
        for ((i = 0; i < RUNS; i++)); do secs+=("$(seconds_of "$kind" "$folder")"); done
        med[$kind]=$(median "${secs[@]}")
    done
    for kind in c python count all; do
        awk -v f="$folder" -v k="$kind" -v s="${med[$kind]}" -v c="${med[c]}" -v r="$rows" \
            'BEGIN { printf "%-8s %-7s %9.3f %10.0f %8.2f\n", f, k, s, r / s, s / c }'
    done
done

# Peak memory of a backend over a scan of 1M backups.
pg_psql -d bench -qtA <<'SQL'
CREATE TEMP TABLE h AS SELECT
  (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint AS hwm0;
SELECT count(b.*) FROM bench_backups b WHERE folder_id = 'b1g-1m' \g /dev/null
SELECT 'backend peak RSS growth over SELECT count(b.*) of 1M: ' ||
  ((regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint - hwm0) || ' kB'
  FROM h;
SQL
