#!/bin/bash
# Load test: SESSIONS concurrent sessions (default 16) run mixed List, Get
# and ListBackups queries against the emulator, with faults switched on,
# for SECONDS (default 180).  Every answer is checked; every error must be
# one of the expected clean ones; each backend's file descriptors and memory
# are read after its warm-up and at its end.  Loopback only, bounded in time.
#
#   bash bench/load.sh [SECONDS] [SESSIONS]      (after scripts/setup.sh)
#
# Exit status 1 on any wrong answer, unexpected error, or growth.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
set +e

SECONDS_TOTAL=${1:-180}
SESSIONS=${2:-16}
ROUNDS=$((SECONDS_TOTAL * 50)) # more than a session can run in the time
DB=rbfdw_load
OUT=$WORK/load
rm -rf "$OUT"
mkdir -p "$OUT"

bash scripts/pg.sh start >/dev/null
# Faults: every 5th List of b1g-load fails UNAVAILABLE, every 7th Get of
# alpha-2 RESOURCE_EXHAUSTED, b1g-hang never answers, b1g-garbage does not
# decode; every call waits 2 ms.
start_emulator emulator-load --data test/data/regress.tsv \
    --generate b1g-load=5000 --token 'load-token=*' \
    --fault 'unavailable=5@b1g-load' --fault 'exhausted=7@alpha-2' \
    --fault 'hang@b1g-hang' --fault 'garbage@b1g-garbage' --fault 'latency=2'
trap 'stop_pid $EMU_PID' EXIT

pg_psql -d postgres -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null
pg_psql -d postgres -qc "CREATE DATABASE $DB"
pg_psql -d "$DB" -q -v ON_ERROR_STOP=1 -v addr="127.0.0.1:$EMU_PORT" <<'SQL'
CREATE EXTENSION redis_backup_fdw;
CREATE SERVER emu FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'addr', tls 'false', timeout_ms '2000', page_size '700');
CREATE USER MAPPING FOR PUBLIC SERVER emu OPTIONS (iam_token 'load-token');
CREATE FOREIGN TABLE b (id text, folder_id text, source_cluster_id text,
  created_at timestamptz, source_shard_names text[], type text) SERVER emu;
CREATE TABLE folders (folder_id text);
INSERT INTO folders VALUES ('b1g-alpha'), ('b1g-beta'), ('b1g-empty');
ANALYZE folders;
SQL

# The query of kind K (0..6), with its check.  Each check prints
# "check|NAME|ok" or "check|NAME|WRONG ...".
query() {
    case $1 in
    0) echo "SELECT 'check|list|' || CASE WHEN count(*) = 5000 AND count(DISTINCT id) = 5000 AND min(id) = 'b1g-load-b0000000' AND max(id) = 'b1g-load-b0004999' THEN 'ok' ELSE 'WRONG ' || count(*) END FROM b WHERE folder_id = 'b1g-load';" ;;
    1) echo "SELECT 'check|get|' || CASE WHEN array_agg(id ORDER BY id) = '{alpha-1,alpha-2,b1g-load-b0000042}' AND bool_and(folder_id IS NOT NULL) THEN 'ok' ELSE 'WRONG ' || array_agg(id ORDER BY id)::text END FROM b WHERE id IN ('alpha-2', 'alpha-1', 'missing-$2', 'b1g-load-b0000042');" ;;
    2) echo "SELECT 'check|cluster|' || CASE WHEN count(*) = 500 AND count(DISTINCT id) = 500 THEN 'ok' ELSE 'WRONG ' || count(*) END FROM b WHERE source_cluster_id = 'b1g-load-c3';" ;;
    3) echo "SELECT 'check|join|' || CASE WHEN string_agg(f.folder_id || ':' || n, ',' ORDER BY f.folder_id) = 'b1g-alpha:4,b1g-beta:2,b1g-empty:0' THEN 'ok' ELSE 'WRONG ' || string_agg(f.folder_id || ':' || n, ',') END FROM folders f, LATERAL (SELECT count(*) AS n FROM b WHERE b.folder_id = f.folder_id) x;" ;;
    4) echo "SET statement_timeout = '300ms';"
       echo "SELECT 'check|hang|WRONG answered' FROM b WHERE folder_id = 'b1g-hang';"
       echo "RESET statement_timeout;" ;;
    5) echo "SELECT 'check|garbage|WRONG answered' FROM b WHERE folder_id = 'b1g-garbage';" ;;
    6) echo "SELECT 'check|limit|' || CASE WHEN count(*) = 5 THEN 'ok' ELSE 'WRONG ' || count(*) END FROM (SELECT id FROM b WHERE folder_id = 'b1g-load' LIMIT 5) s;" ;;
    esac
}

# Figures of the session's backend: "TAG|fds|rss_kB|threads".
figures() {
    cat <<SQL
SELECT '$1|' || (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')) || '|' ||
  (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1] || '|' ||
  (regexp_match(pg_read_file('/proc/self/status'), 'Threads:\s+(\d+)'))[1];
SQL
}

# One session's script: a warm-up round of every kind (unchecked), the
# start figures, then checked queries until the deadline, the end figures.
# The kinds rotate, starting at S % 7; the missing id varies by round.
session_sql() {
    local s=$1 i k block=''
    echo '\set VERBOSITY sqlstate'
    for ((k = 0; k < 7; k++)); do query "$k" w | sed 's/check|/warmup|/'; done
    figures start
    echo "SELECT now() + interval '$SECONDS_TOTAL seconds' AS deadline \\gset"
    for ((k = 0; k < 7; k++)); do
        block+="SELECT now() > :'deadline' AS stop \\gset
\\if :stop
$(figures end)
\\q
\\endif
$(query $(((k + s) % 7)) "ROUND")
"
    done
    for ((i = 0; i < ROUNDS / 7; i++)); do
        printf '%s' "${block//ROUND/$i}"
    done
}

echo "load: $SESSIONS sessions for $SECONDS_TOTAL s against 127.0.0.1:$EMU_PORT"
for ((s = 0; s < SESSIONS; s++)); do
    session_sql "$s" >"$OUT/session$s.sql"
done
pids=()
for ((s = 0; s < SESSIONS; s++)); do
    pg_psql -d "$DB" -qtAX -f "$OUT/session$s.sql" >"$OUT/session$s.out" 2>"$OUT/session$s.err" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

cat "$OUT"/session*.out >"$OUT/all.out"
cat "$OUT"/session*.err >"$OUT/all.err"
checks=$(grep -c '^check|' "$OUT/all.out")
wrong_warmup=$(grep -c '^warmup|.*|WRONG' "$OUT/all.out")
wrong=$(($(grep -c '^check|.*|WRONG' "$OUT/all.out") + wrong_warmup))
# Expected errors: 57014 (timeout/cancel), HV00M (garbage), 08006 (retries
# exhausted, rare).  Anything else is a failure.
errors=$(grep -c '^psql:.*ERROR:' "$OUT/all.err")
unexpected=$(grep '^psql:.*ERROR:' "$OUT/all.err" | grep -vcE 'ERROR:  (57014|HV00M|08006)$')
other=$(grep -v '^psql:.*ERROR:' "$OUT/all.err" | grep -c .)
echo "checked answers: $checks, wrong: $wrong"
grep '^check|' "$OUT/all.out" | cut -d'|' -f2 | sort | uniq -c | awk '{printf "  %-8s %6d\n", $2, $1}'
echo "errors: $errors, unexpected: $unexpected, other stderr lines: $other"
grep '^psql:.*ERROR:' "$OUT/all.err" | sed 's/.*ERROR:  //' | sort | uniq -c | awk '{printf "  %-8s %6d\n", $2, $1}'

growth_bad=0
max_fd=0 max_rss=0 max_thr=0
for ((s = 0; s < SESSIONS; s++)); do
    st=$(grep '^start|' "$OUT/session$s.out")
    en=$(grep '^end|' "$OUT/session$s.out")
    IFS='|' read -r _ fd0 rss0 thr0 <<<"$st"
    IFS='|' read -r _ fd1 rss1 thr1 <<<"$en"
    if [[ -z $fd0 || -z $fd1 ]]; then
        echo "session $s: no start or end figures"
        growth_bad=1
        continue
    fi
    ((fd1 - fd0 > max_fd)) && max_fd=$((fd1 - fd0))
    ((rss1 - rss0 > max_rss)) && max_rss=$((rss1 - rss0))
    ((thr1 - thr0 > max_thr)) && max_thr=$((thr1 - thr0))
done
echo "per backend, end minus start after warm-up (max over sessions):" \
    "fds +$max_fd, threads +$max_thr, RSS +$max_rss kB"
((max_fd > 0 || max_thr > 0 || max_rss > 8192)) && growth_bad=1

pg_psql -d postgres -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null
if ((wrong == 0 && unexpected == 0 && other == 0 && growth_bad == 0 && checks > 0)); then
    echo "load: ok"
else
    echo "load: FAILED (see $OUT)"
    exit 1
fi
