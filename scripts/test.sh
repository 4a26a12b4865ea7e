#!/bin/bash
# Set everything up and run every test: the client tests (test/client/run.sh)
# and the pg_regress tests (make installcheck) against the throwaway cluster
# and two regress emulators (plaintext and TLS).  The last line printed is
# "N passed, M failed"; the exit status is 1 if anything failed.
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh NAME...      # only these regression tests (sql/NAME.sql)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit

PASSED=0 FAILED=0 FINISHED=0 EMU_PIDS=()

cleanup() {
    local pid
    for pid in "${EMU_PIDS[@]}"; do stop_pid "$pid"; done
    EMU_PIDS=()
    if [[ ${CI:-} == true ]]; then bash scripts/pg.sh stop; fi
}

finish() {
    local rc=$?
    cleanup >/dev/null 2>&1 || true
    if ((!FINISHED)); then
        echo "test.sh: aborted (exit status $rc)" >&2
        FAILED=$((FAILED + 1))
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0)) || exit 1
    exit 0
}
trap finish EXIT

# run_suite NAME SCRIPT: run a test script that prints "N passed, M failed"
# last, and add its counts (no summary, or a failing exit status with no
# failure counted, is one failure).
run_suite() {
    local name=$1 script=$2 out=$WORK/$1-tests.out rc=0 summary p f
    say "$name tests ($script)"
    bash "$script" 2>&1 | tee "$out" || rc=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1 || true)
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
    else
        say "$name tests printed no summary line"
        p=0 f=1
    fi
    if ((rc != 0 && f == 0)); then
        say "$name tests exited with status $rc"
        f=1
    fi
    say "$name tests: $p passed, $f failed"
    PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
}

bash scripts/setup.sh
need_pg
bash scripts/pg.sh start

# --- client tests ----------------------------------------------------------
if (($#)); then
    say "SKIP client tests: only regression tests $* requested"
elif [[ -f test/client/run.sh ]]; then
    run_suite client test/client/run.sh
else
    say "SKIP client tests: test/client/run.sh does not exist yet"
fi

# --- the emulator's own check (IAM, metadata, clouds, latency, pages) -------
if ((!$#)) && [[ -f test/emulator/selfcheck.sh ]]; then
    run_suite emulator test/emulator/selfcheck.sh
fi

# --- fuzzing of reply decoding, bounded ------------------------------------
if ((!$#)) && [[ -f test/fuzz/run.sh ]]; then
    run_suite fuzz test/fuzz/run.sh # 30 s; a longer run: test/fuzz/README.md
fi

# --- regression tests ------------------------------------------------------
shopt -s nullglob
sql_files=(sql/*.sql)
regress_make_args=()
if (($#)); then
    # The other tests build on what 00_setup creates: it always runs first.
    sql_files=(sql/00_setup.sql) names=(00_setup)
    for t; do
        [[ -f sql/$t.sql ]] || die "no such regression test: sql/$t.sql"
        [[ $t == 00_setup ]] && continue
        sql_files+=("sql/$t.sql") names+=("$t")
    done
    regress_make_args=(REGRESS="${names[*]}")
fi
if [[ -f test/regress.args && ${#sql_files[@]} -gt 0 ]]; then
    start_regress_emulators

    say "regression tests (make installcheck, ${#sql_files[@]} tests)"
    out=$WORK/installcheck.out
    rm -f .regress/regression.diffs
    : >"$PGLOG" # the server appends; start each run with an empty log
    rc=0
    make installcheck PGHOST="$WORK" PGPORT="$PGPORT" PGUSER=postgres "${regress_make_args[@]}" 2>&1 | tee "$out" || rc=$?
    p=$(regress_results "$out" | grep -c ' ok$' || true)
    f=$(regress_results "$out" | grep -c ' failed$' || true)
    if ((p + f < ${#sql_files[@]})); then
        say "only $((p + f)) of ${#sql_files[@]} regression tests reported a result"
        f=$((${#sql_files[@]} - p))
    fi
    if ((rc != 0 && f == 0)); then
        say "make installcheck exited with status $rc"
        f=1
    fi
    if ((f > 0)); then
        if [[ -s .regress/regression.diffs ]]; then
            echo "===== .regress/regression.diffs ====="
            cat .regress/regression.diffs
        fi
        echo "===== last lines of $PGLOG ====="
        tail -n 40 "$PGLOG"
    fi
    say "regression tests: $p passed, $f failed"
    PASSED=$((PASSED + p)) FAILED=$((FAILED + f))

    # --- backend tests (need the regress emulator) ---------------------------
    if ((!$#)) && [[ -f test/backend/run.sh ]]; then
        run_suite backend test/backend/run.sh
    fi
else
    say "SKIP regression tests: test/regress.args or sql/*.sql does not exist yet"
fi

cleanup
FINISHED=1
