#!/bin/bash
# Backend tests that pg_regress cannot express: cancelling from another
# session, Ctrl-C in psql, terminating a backend mid-call, resources
# (file descriptors, threads, memory) staying flat over many failed calls
# and over user mapping cycles, recovery after the service was down, and
# cancel, terminate and failures with many calls in flight.
#
# Needs the throwaway cluster and the regress emulator: run by
# scripts/test.sh, which exports RBFDW_EMULATOR_ADDR (and PGHOST, PGPORT).
# Prints "ok N - ..." / "not ok N - ..." and finally "N passed, M failed".
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set +e
: "${RBFDW_EMULATOR_ADDR:?run from scripts/test.sh}"

DB=rbfdw_backend
PGLOG_START=$(wc -l <"$PGLOG")
TMP=$(mktemp -d)
chmod 0755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
N=0 PASS=0 FAIL=0

ok() { N=$((N + 1)) PASS=$((PASS + 1)); echo "ok $N - $1"; }
not_ok() { N=$((N + 1)) FAIL=$((FAIL + 1)); echo "not ok $N - $1"; }
q() { pg_psql -d "$DB" -qtAX "$@"; }

pg_psql -d postgres -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null
pg_psql -d postgres -qc "CREATE DATABASE $DB"
q -v addr="$RBFDW_EMULATOR_ADDR" <<'SQL'
CREATE EXTENSION redis_backup_fdw;
CREATE SERVER emu FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint :'addr', tls 'false', timeout_ms '60000');
CREATE USER MAPPING FOR CURRENT_USER SERVER emu OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE redis_backups (id text, folder_id text) SERVER emu;
CREATE TABLE cancel_sent (at timestamptz);
SQL

# wait_for_hang: until a backend runs the hanging query; prints its pid.
wait_for_hang() {
    local i pid
    for ((i = 0; i < 100; i++)); do
        pid=$(q -c "SELECT pid FROM pg_stat_activity
                    WHERE query LIKE '%b1g-hang%' AND state = 'active'
                      AND pid <> pg_backend_pid() LIMIT 1")
        if [[ -n $pid ]]; then echo "$pid"; return 0; fi
        sleep 0.05
    done
    return 1
}

# --- 1. pg_cancel_backend from another session -----------------------------
# The session under test prints how long after the cancel its query ended,
# then shows it is still usable.
cat >"$TMP/cancel.sql" <<'SQL'
\set ON_ERROR_STOP 0
SELECT * FROM redis_backups WHERE folder_id = 'b1g-hang';
SELECT 'elapsed_ms=' || round(extract(epoch FROM clock_timestamp() - at) * 1000) FROM cancel_sent;
SELECT 'usable=' || count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha';
SQL
q -c "TRUNCATE cancel_sent"
q -f "$TMP/cancel.sql" >"$TMP/cancel.out" 2>&1 &
psql_pid=$!
sleep 0.3
if pid=$(wait_for_hang); then
    sleep 0.3
    q -c "INSERT INTO cancel_sent VALUES (clock_timestamp()); SELECT pg_cancel_backend($pid)" >/dev/null
fi
wait "$psql_pid"
elapsed=$(sed -n 's/^elapsed_ms=//p' "$TMP/cancel.out")
if grep -q 'canceling statement due to user request' "$TMP/cancel.out" &&
    [[ -n $elapsed ]] && ((elapsed < 500)) && grep -q '^usable=4$' "$TMP/cancel.out"; then
    ok "pg_cancel_backend ends a hanging call in ${elapsed} ms; the session stays usable"
else
    not_ok "pg_cancel_backend: $(tr '\n' ' ' <"$TMP/cancel.out")"
fi

# --- 2. Ctrl-C in psql ------------------------------------------------------
cat >"$TMP/ctrlc.sql" <<'SQL'
\set ON_ERROR_STOP 0
SELECT * FROM redis_backups WHERE folder_id = 'b1g-hang';
SQL
# psql itself (not a shell function) must get the signal.
"$PGBIN/psql" -X -qtA -h "$WORK" -p "$PGPORT" -U postgres -d "$DB" \
    -f "$TMP/ctrlc.sql" >"$TMP/ctrlc.out" 2>&1 &
psql_pid=$!
if pid=$(wait_for_hang); then
    sleep 0.2
    start=$(date +%s%N)
    kill -INT "$psql_pid"
fi
for ((i = 0; i < 100; i++)); do
    grep -q 'canceling statement' "$TMP/ctrlc.out" && break
    sleep 0.01
done
end=$(date +%s%N)
wait "$psql_pid"
ms=$(((end - start) / 1000000))
if grep -q 'canceling statement due to user request' "$TMP/ctrlc.out" && ((ms < 500)); then
    ok "Ctrl-C (SIGINT to psql) ends a hanging call in ${ms} ms"
else
    not_ok "Ctrl-C: ${ms} ms: $(tr '\n' ' ' <"$TMP/ctrlc.out")"
fi

# --- 3. pg_terminate_backend mid-call ---------------------------------------
log_lines_before=$(wc -l <"$PGLOG")
q -c "SELECT * FROM redis_backups WHERE folder_id = 'b1g-hang'" >"$TMP/term.out" 2>&1 &
psql_pid=$!
if pid=$(wait_for_hang); then
    sleep 0.2
    start=$(date +%s%N)
    q -c "SELECT pg_terminate_backend($pid)" >/dev/null
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.005
    done
    end=$(date +%s%N)
fi
wait "$psql_pid"
ms=$(((end - start) / 1000000))
crashed=$(tail -n +"$((log_lines_before + 1))" "$PGLOG" | grep -cE 'terminated by signal|was terminated|server process .* exited with exit code [^01]' || true)
if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && ((ms < 1000)) && ((crashed == 0)) &&
    [[ $(q -c "SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha'") == 4 ]]; then
    ok "pg_terminate_backend ends a backend mid-call in ${ms} ms, no crash, server usable"
else
    not_ok "pg_terminate_backend: pid=$pid ${ms} ms crashed=$crashed: $(tr '\n' ' ' <"$TMP/term.out")"
fi

# --- 4. resources stay flat over many failed calls --------------------------
# failures N: N rounds of calls that time out, are cancelled, fail to decode,
# loop, or are cut short by LIMIT with Gets in flight.
failures() {
    local i
    for ((i = 0; i < $1; i++)); do
        echo "SET statement_timeout = '150ms';"
        echo "SELECT * FROM redis_backups WHERE folder_id = 'b1g-hang';"
        echo "RESET statement_timeout;"
        echo "SELECT * FROM redis_backups WHERE folder_id = 'b1g-hang';"
        echo "SELECT * FROM redis_backups WHERE folder_id = 'b1g-garbage';"
        echo "SELECT * FROM redis_backups WHERE id IN ('alpha-1', 'alpha-2', 'beta-1', 'beta-2') LIMIT 1;"
        echo "SELECT * FROM redis_backups WHERE folder_id = 'b1g-loop';"
    done
}
{
    echo '\set ON_ERROR_STOP 0'
    echo "ALTER SERVER emu OPTIONS (SET timeout_ms '100');"
    failures 5 # warm up: gRPC starts its threads and pools lazily
    cat <<'SQL'
SELECT (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')) AS fds,
  (regexp_match(pg_read_file('/proc/self/status'), 'Threads:\s+(\d+)'))[1] AS threads,
  (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1] AS rss_kb
\gset
SQL
    failures 30
    cat <<'SQL'
SELECT format('fds=%s,%s threads=%s,%s rss_kb=%s,%s',
  :fds, (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')),
  :threads, (regexp_match(pg_read_file('/proc/self/status'), 'Threads:\s+(\d+)'))[1],
  :rss_kb, (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]);
SQL
} >"$TMP/flat.sql"
q -f "$TMP/flat.sql" >"$TMP/flat.out" 2>&1
line=$(grep '^fds=' "$TMP/flat.out")
if [[ $line =~ fds=([0-9]+),([0-9]+)\ threads=([0-9]+),([0-9]+)\ rss_kb=([0-9]+),([0-9]+) ]] &&
    ((BASH_REMATCH[2] <= BASH_REMATCH[1])) && ((BASH_REMATCH[4] <= BASH_REMATCH[3])) &&
    ((BASH_REMATCH[6] - BASH_REMATCH[5] < 4096)); then
    ok "150 failed or cut-short calls: file descriptors, threads and memory flat ($line)"
else
    not_ok "resources after 150 failed calls: ${line:-no result}: $(grep -c ERROR "$TMP/flat.out") errors"
fi

# --- 5. channels do not leak over DROP/CREATE USER MAPPING -----------------
# Each cycle makes a user mapping, calls through it (a channel with a TCP
# connection) and drops it: the channel must go with the mapping.  A leak
# keeps a connection (one descriptor, ~16 kB) per cycle; gRPC itself varies
# by a few descriptors.
cycles() {
    local i
    for ((i = 0; i < $1; i++)); do
        echo "CREATE USER MAPPING FOR CURRENT_USER SERVER cycling OPTIONS (iam_token 'regress-token');"
        echo "SELECT count(*) FROM cycling_backups WHERE id = 'alpha-1';"
        echo "DROP USER MAPPING FOR CURRENT_USER SERVER cycling;"
    done
}
{
    echo '\set ON_ERROR_STOP 1'
    echo "CREATE SERVER cycling FOREIGN DATA WRAPPER redis_backup_fdw OPTIONS (endpoint '$RBFDW_EMULATOR_ADDR', tls 'false');"
    echo "CREATE FOREIGN TABLE cycling_backups (id text) SERVER cycling;"
    cycles 20
    cat <<'SQL'
SELECT (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')) AS fds,
  (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1] AS rss_kb
\gset
SQL
    cycles 500
    cat <<'SQL'
SELECT format('fds=%s,%s rss_kb=%s,%s',
  :fds, (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')),
  :rss_kb, (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]);
DROP SERVER cycling CASCADE;
SQL
} >"$TMP/cycles.sql"
q -f "$TMP/cycles.sql" >"$TMP/cycles.out" 2>&1
line=$(grep '^fds=' "$TMP/cycles.out")
if [[ $line =~ fds=([0-9]+),([0-9]+)\ rss_kb=([0-9]+),([0-9]+) ]] &&
    ((BASH_REMATCH[2] <= BASH_REMATCH[1] + 8)) && ((BASH_REMATCH[4] - BASH_REMATCH[3] < 4096)); then
    ok "500 CREATE/DROP USER MAPPING cycles with a call each: channels released ($line)"
else
    not_ok "channels over user mapping cycles: ${line:-no result}: $(grep -m3 ERROR "$TMP/cycles.out")"
fi

# --- 6. recovery after an outage -------------------------------------------
# One session: the service answers, goes away for a few seconds (queries
# fail with 08006), comes back on the same address: the first query after
# that must succeed in the same session.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    echo "source '$ROOT/scripts/lib.sh'"
    echo 'case $1 in'
    echo "start) start_emulator outage --listen 127.0.0.1:$port --data '$ROOT/test/data/regress.tsv' --token 'regress-token=*' ;;"
    echo "stop) stop_pid \"\$(cat '$WORK/outage.pid')\" ;;"
    echo 'esac'
} >"$TMP/outage_emu.sh"
bash "$TMP/outage_emu.sh" start >/dev/null
down_query="SELECT 'down=' || count(*) FROM outage_backups WHERE folder_id = 'b1g-alpha';"
cat >"$TMP/outage.sql" <<SQL
\\set ON_ERROR_STOP 0
\\set VERBOSITY terse
CREATE SERVER outage FOREIGN DATA WRAPPER redis_backup_fdw
  OPTIONS (endpoint '127.0.0.1:$port', tls 'false', max_attempts '2', timeout_ms '2000');
CREATE USER MAPPING FOR CURRENT_USER SERVER outage OPTIONS (iam_token 'regress-token');
CREATE FOREIGN TABLE outage_backups (id text, folder_id text) SERVER outage;
SELECT 'before=' || count(*) FROM outage_backups WHERE folder_id = 'b1g-alpha';
\\! bash $TMP/outage_emu.sh stop
$down_query
\\! sleep 2
$down_query
\\! sleep 2
$down_query
\\! sleep 1
$down_query
\\! bash $TMP/outage_emu.sh start >/dev/null
SELECT 'after=' || count(*) FROM outage_backups WHERE folder_id = 'b1g-alpha';
DROP SERVER outage CASCADE;
SQL
q -f "$TMP/outage.sql" >"$TMP/outage.out" 2>&1
bash "$TMP/outage_emu.sh" stop
down=$(grep -c 'could not reach' "$TMP/outage.out")
if grep -q '^before=4$' "$TMP/outage.out" && ((down == 4)) && grep -q '^after=4$' "$TMP/outage.out"; then
    ok "after an outage the first query of an old session succeeds ($down queries failed while down)"
else
    not_ok "recovery after an outage: $(tr '\n' ' ' <"$TMP/outage.out")"
fi

# --- 7, 8. cancel and terminate with 8 calls in flight ----------------------
# Eight folders of two pages (30 ms a call) open the window; then eight
# folders that never answer are all in flight at once (the emulator logs
# each as HANG when it arrives).
fan_query="SELECT count(*) FROM redis_backups WHERE folder_id = ANY (ARRAY(
  SELECT 'b1g-fan' || i FROM generate_series(1, 8) i UNION ALL
  SELECT 'b1g-hang' || i FROM generate_series(1, 8) i))"
# wait_for_hangs LINE: until 8 hung calls are logged after line LINE.
wait_for_hangs() {
    local i n
    for ((i = 0; i < 200; i++)); do
        n=$(tail -n +"$(($1 + 1))" "$RBFDW_EMULATOR_LOG" | grep -c '"folder_id":"b1g-hang[1-8]".*"status":"HANG"')
        ((n >= 8)) && return 0
        sleep 0.05
    done
    return 1
}
q -c "ALTER SERVER emu OPTIONS (SET timeout_ms '60000')"
for how in cancel terminate; do
    lines=$(wc -l <"$RBFDW_EMULATOR_LOG")
    q -c "$fan_query" >"$TMP/fan-$how.out" 2>&1 &
    psql_pid=$!
    hung=no
    if wait_for_hangs "$lines"; then
        hung=yes
        pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%b1g-hang%' AND state = 'active' AND pid <> pg_backend_pid() LIMIT 1")
        start=$(date +%s%N)
        if [[ $how == cancel ]]; then
            q -c "SELECT pg_cancel_backend($pid)" >/dev/null
        else
            q -c "SELECT pg_terminate_backend($pid)" >/dev/null
        fi
        wait "$psql_pid"
        end=$(date +%s%N)
    else
        kill "$psql_pid" 2>/dev/null
        wait "$psql_pid"
    fi
    ms=$(((end - start) / 1000000))
    if [[ $how == cancel ]]; then
        expect='canceling statement due to user request'
    else
        expect='terminating connection due to administrator command'
    fi
    if [[ $hung == yes ]] && ((ms < 500)) && grep -q "$expect" "$TMP/fan-$how.out" &&
        [[ $(q -c "SELECT count(*) FROM redis_backups WHERE folder_id = 'b1g-alpha'") == 4 ]]; then
        ok "pg_${how}_backend with 8 calls in flight ends the query in ${ms} ms; the server stays usable"
    else
        not_ok "$how with 8 calls in flight: hung=$hung ${ms} ms: $(tr '\n' ' ' <"$TMP/fan-$how.out")"
    fi
done

# --- 9. resources stay flat over failures amid calls in flight -------------
# (gRPC's own pools may add a descriptor or a thread; a leak per failure
# would add a hundred.)
{
    echo '\set ON_ERROR_STOP 0'
    fail="SELECT count(*) FROM redis_backups WHERE folder_id IN ('b1g-fan1', 'b1g-fan2', 'b1g-fan3', 'b1g-garbage');"
    for ((i = 0; i < 5; i++)); do echo "$fail"; done
    cat <<'SQL'
SELECT (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')) AS fds,
  (regexp_match(pg_read_file('/proc/self/status'), 'Threads:\s+(\d+)'))[1] AS threads,
  (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1] AS rss_kb
\gset
SQL
    for ((i = 0; i < 100; i++)); do echo "$fail"; done
    cat <<'SQL'
SELECT format('fds=%s,%s threads=%s,%s rss_kb=%s,%s',
  :fds, (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')),
  :threads, (regexp_match(pg_read_file('/proc/self/status'), 'Threads:\s+(\d+)'))[1],
  :rss_kb, (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]);
SQL
} >"$TMP/fanfail.sql"
q -f "$TMP/fanfail.sql" >"$TMP/fanfail.out" 2>&1
line=$(grep '^fds=' "$TMP/fanfail.out")
errors=$(grep -c 'could not decode' "$TMP/fanfail.out")
if [[ $line =~ fds=([0-9]+),([0-9]+)\ threads=([0-9]+),([0-9]+)\ rss_kb=([0-9]+),([0-9]+) ]] &&
    ((errors == 105)) && ((BASH_REMATCH[2] <= BASH_REMATCH[1] + 2)) &&
    ((BASH_REMATCH[4] <= BASH_REMATCH[3] + 2)) && ((BASH_REMATCH[6] - BASH_REMATCH[5] < 4096)); then
    ok "100 failures of one listing among others in flight: descriptors, threads and memory flat ($line)"
else
    not_ok "failures amid calls in flight: ${line:-no result}, $errors errors"
fi

# --- 10. no backend died on a signal during all of the above ----------------
crashes=$(tail -n +"$((PGLOG_START + 1))" "$PGLOG" | grep -c 'terminated by signal' || true)
if ((crashes == 0)); then
    ok "no backend died on a signal during the backend tests"
else
    not_ok "$crashes backends died on a signal: $(tail -n +"$((PGLOG_START + 1))" "$PGLOG" | grep -m3 'terminated by signal')"
fi

pg_psql -d postgres -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
