#!/bin/bash
# Run the pg_regress suite (sql/*.sql, make installcheck) against a separate
# throwaway PostgreSQL cluster (the version scripts/lib.sh chooses) whose
# postmaster, and so every backend, runs under valgrind memcheck; report
# memcheck errors.
#   bash scripts/valgrind.sh              # the whole suite
#   bash scripts/valgrind.sh NAME...      # only these tests (sql/NAME.sql)
#
# The normal cluster and emulators (scripts/test.sh) are left alone: this uses
# its own work dir, $RBFDW_VALGRIND_WORK (default ${RBFDW_WORK:-/tmp/rbfdw}-valgrind),
# its own port, $RBFDW_VALGRIND_PGPORT (default 54330), its own regress
# emulators and its own pg_regress output dir ($RBFDW_VALGRIND_WORK/regress).
# Everything it started is stopped on exit; the work dir is kept:
#   vg/vg.PID.log       one valgrind log per server process
#   postgresql.log      server log (log_line_prefix has the PID)
#   regress/            pg_regress output, regression.diffs
#   installcheck.out    make installcheck output
#
# Valgrind: memcheck, --trace-children=yes, --track-origins=no,
# --leak-check=no, suppressions test/valgrind/postgres.supp (+ any
# test/valgrind/*.supp); extra options in $RBFDW_VALGRIND_OPTS (e.g.
# --track-origins=yes).  Debian's postgres is not built with USE_VALGRIND, so
# there are no memory-context-level checks (a pfree'd chunk is still
# addressable); memcheck still sees invalid reads/writes of malloc'd memory,
# jumps on uninitialised values, bad frees, overlapping copies.
#
# Errors are found in the per-process logs, not with --error-exitcode: a
# backend exiting with a status other than 0 or 1 makes the postmaster reset
# every other session.
#
# Regression diffs are informational only (the suite has timing-sensitive
# parts and everything runs much slower): the tests that differed are listed.
# Exit status: 0 no memcheck errors, 1 memcheck errors (stack traces printed)
# or a server process died on a signal, 2 the run itself failed.
set -euo pipefail
_work=${RBFDW_VALGRIND_WORK:-${RBFDW_WORK:-/tmp/rbfdw}-valgrind}
_normal_work=${RBFDW_WORK:-/tmp/rbfdw}
_normal_port=${RBFDW_PGPORT:-54329}
export RBFDW_WORK=$_work
export RBFDW_PGPORT=${RBFDW_VALGRIND_PGPORT:-54330}
# lib.sh fixes WORK, PGPORT, PGDATA and PGLOG from RBFDW_WORK/RBFDW_PGPORT.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit 2
die() { echo "${0##*/}: error: $*" >&2; exit 2; } # 1 means memcheck errors

[[ $WORK != "$_normal_work" && $WORK != "$PWD/$_normal_work" ]] ||
    die "the valgrind work dir must differ from the normal one ($WORK)"
[[ $PGPORT != "$_normal_port" ]] || die "the valgrind port must differ from the normal one ($PGPORT)"
case $WORK in / | /tmp | /var/tmp | /root | /home) die "work dir $WORK: use a dedicated directory" ;; esac
need_pg
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"

VGDIR=$WORK/vg
OUTDIR=$WORK/regress
WRAPPER=$WORK/postgres-valgrind
EMU_PIDS=() PG_STARTED=0 FINISHED=0 START=$SECONDS

pg_ctl() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" "$@"; }

stop_server() {
    [[ -f $PGDATA/postmaster.pid ]] || return 0
    local pid
    pid=$(head -n1 "$PGDATA/postmaster.pid")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$PGDATA/postmaster.pid"
        return 0
    fi
    say "stopping the valgrind cluster (pid $pid)"
    pg_ctl -m fast -w -t 300 stop >/dev/null 2>&1 ||
        pg_ctl -m immediate -w -t 60 stop >/dev/null 2>&1 || true
}

# shellcheck disable=SC2317 # run by the trap
cleanup() {
    local rc=$? pid
    trap - EXIT
    if ((PG_STARTED)); then stop_server || true; fi
    for pid in "${EMU_PIDS[@]}"; do stop_pid "$pid"; done
    if ((!FINISHED)); then
        echo "valgrind.sh: aborted (exit status $rc)" >&2
        rc=2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

shopt -s nullglob
sql_files=(sql/*.sql)
regress_make_args=()
if (($#)); then
    sql_files=()
    for t; do
        [[ -f sql/$t.sql ]] || die "no such regression test: sql/$t.sql"
        sql_files+=("sql/$t.sql")
    done
    regress_make_args=(REGRESS="$*")
fi
((${#sql_files[@]})) || die "no regression tests (sql/*.sql)"
[[ -f test/regress.args ]] || die "test/regress.args does not exist"

bash scripts/setup.sh

# --- the cluster -----------------------------------------------------------
mkdir -p "$WORK"
chown postgres: "$WORK"
chmod 0755 "$WORK"
as_pg test -x "$WORK" || die "$WORK is not accessible to the postgres user"
stop_server # a previous run's, if it was left behind
if ! [[ -f $PGDATA/PG_VERSION && $(<"$PGDATA/PG_VERSION") == "$PG_VERSION" &&
    $(stat -c %U "$PGDATA") == postgres ]]; then
    rm -rf "$PGDATA"
    say "initdb $PGDATA"
    install -d -m 0700 -o postgres -g postgres "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >/dev/null
    echo "include 'rbfdw.conf'" >>"$PGDATA/postgresql.conf"
fi
# As scripts/pg.sh, plus: no JIT (LLVM under valgrind is slow and noisy), no
# autovacuum (fewer processes), small shared memory, PID in every log line.
{
    base_pg_conf
    cat <<EOF
jit = off
autovacuum = off
huge_pages = off
shared_buffers = 16MB
max_connections = 20
log_line_prefix = '%m [%p] '
EOF
} >"$PGDATA/rbfdw.conf"
chown postgres: "$PGDATA/rbfdw.conf"

rm -rf "$VGDIR"
install -d -m 0755 -o postgres -g postgres "$VGDIR"
supp_args=()
for f in test/valgrind/*.supp; do
    install -m 0644 "$f" "$WORK/${f##*/}" # readable by postgres wherever the repo is
    supp_args+=("--suppressions=$WORK/${f##*/}")
done
# shellcheck disable=SC2054 # the commas are valgrind's
vg_opts=(--tool=memcheck --trace-children=yes --track-origins=no --leak-check=no
    -s --num-callers=40 --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
    --gen-suppressions=all "--log-file=$VGDIR/vg.%p.log" "${supp_args[@]}")
# shellcheck disable=SC2206
vg_opts+=(${RBFDW_VALGRIND_OPTS:-})
# pg_ctl -p runs this instead of postgres; exec keeps the PID pg_ctl expects.
{
    echo '#!/bin/sh'
    printf 'exec valgrind'
    printf ' %q' "${vg_opts[@]}" "$PGBIN/postgres"
    printf ' "$@"\n'
} >"$WRAPPER"
chmod 0755 "$WRAPPER"

touch "$PGLOG"
chown postgres: "$PGLOG"
chmod 0644 "$PGLOG"
: >"$PGLOG"
say "starting PostgreSQL $PG_VERSION under valgrind (port $PGPORT, socket dir $WORK, logs $VGDIR)"
PG_STARTED=1
if ! pg_ctl -p "$WRAPPER" -l "$PGLOG" -w -t 300 start >/dev/null; then
    tail -n 20 "$PGLOG" >&2
    die "PostgreSQL failed to start under valgrind"
fi

# --- the regress emulators (not under valgrind) ------------------------------
start_regress_emulators

# --- the suite -------------------------------------------------------------
say "regression tests under valgrind (make installcheck, ${#sql_files[@]} tests; this is slow)"
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
out=$WORK/installcheck.out
rc=0
make installcheck PGHOST="$WORK" PGPORT="$PGPORT" PGUSER=postgres \
    REGRESS_OPTS="--inputdir=. --outputdir=$OUTDIR --dbname=contrib_regression" \
    "${regress_make_args[@]}" 2>&1 | tee "$out" || rc=$?
p=$(regress_results "$out" | grep -c ' ok$' || true)
differed=$(regress_results "$out" | sed -n 's/ failed$//p' | xargs || true)

stop_server
PG_STARTED=0
for pid in "${EMU_PIDS[@]}"; do stop_pid "$pid"; done
EMU_PIDS=()

# --- the verdict -----------------------------------------------------------
echo
say "regression tests: $p of ${#sql_files[@]} as expected${differed:+; differed under valgrind (informational): $differed}"
[[ -z $differed ]] || say "diffs: $OUTDIR/regression.diffs"
if ((rc != 0)) && [[ -z $differed ]]; then say "make installcheck exited with status $rc"; fi

# Errors as they happened (each context once per process, between the
# markers, then the suppression valgrind generated for it); the list -s prints
# again at exit is skipped.  A process killed by SIGKILL has no summary, but
# its errors were logged as they happened.
# shellcheck disable=SC2016 # an awk program
extract='
    /errors in context [0-9]+ of/ {exit}
    /^==[0-9]+== VALGRINDERROR-BEGIN$/ {on = 1; next}
    /^==[0-9]+== VALGRINDERROR-END$/ {on = 0; sup = 1; next}
    on {print; next}
    sup && /^\{$/ {print "   suppression:"}
    sup {print "   " $0}
    sup && /^\}$/ {sup = 0; print ""}'
# Our code: the .so, or a frame in one of our source files (it has line info).
ours_re='redis_backup_fdw\.so'
for f in redis_backup_fdw.c src/*.c src/client/*.c; do
    f=${f##*/}
    ours_re+="|[( ]${f//./\\.}:[0-9]"
done

logs=("$VGDIR"/vg.*.log)
((${#logs[@]})) || die "no valgrind logs in $VGDIR"
nerr=0 nours=0 nprocs=0
for f in "${logs[@]}"; do
    errs=$(awk "$extract" "$f")
    [[ -n $errs ]] || ! grep -qE 'ERROR SUMMARY: [1-9]' "$f" || errs="(errors counted, none shown: see $f)"
    [[ -n $errs ]] || continue
    nprocs=$((nprocs + 1))
    n=$(awk '/errors in context [0-9]+ of/ {exit} /^==[0-9]+== VALGRINDERROR-BEGIN$/ {n++}
        END {print n + 0}' "$f")
    o=$(OURS_RE=$ours_re awk '/errors in context [0-9]+ of/ {exit}
        /VALGRINDERROR-BEGIN$/ {e = 0} $0 ~ ENVIRON["OURS_RE"] {e = 1}
        /VALGRINDERROR-END$/ && e {n++} END {print n + 0}' "$f")
    nerr=$((nerr + n)) nours=$((nours + o))
    echo "===== memcheck: $f ($(grep -m1 -oE 'Command: .*' "$f" | cut -c10- || true)) ====="
    grep -m1 -E 'ERROR SUMMARY' "$f" || echo "(no ERROR SUMMARY: the process was killed)"
    echo "$errs"
done
sigdeaths=$(grep -E 'terminated by signal|was terminated by exception' "$PGLOG" || true)
if [[ -n $sigdeaths ]]; then
    echo "===== server processes that died on a signal ($PGLOG) ====="
    echo "$sigdeaths"
fi
# valgrind -s lists the suppressions it used: sum the counts per name
used=$(cat "${logs[@]}" | awk '/used_suppression:/ {n[$4] += $3}
    END {for (s in n) {printf "%s %s(%d)", sep, s, n[s]; sep = ","}}')
say "memcheck: ${#logs[@]} process logs; $nerr error contexts in $nprocs processes, $nours of them with redis_backup_fdw code on the stack"
[[ -z $used ]] || say "suppressed:$used"
say "took $((SECONDS - START)) s"
FINISHED=1
if ((nerr || nprocs)) || [[ -n $sigdeaths ]]; then
    exit 1
fi
exit 0
