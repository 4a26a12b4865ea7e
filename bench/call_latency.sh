#!/bin/bash
# Benchmark: what one call costs over the latency the emulator injects,
# with one call in flight (no PostgreSQL).  bench/list_all pages through a
# folder of CALLS backups with page size 1 (CALLS calls, one after another)
# against an emulator that delays every call by LATENCY ms (default 20).
# Reported per call, as a ratio to LATENCY:
#   round trip  the client's time per call (list_all's seconds / CALLS)
#   emulator    arrival to reply in the emulator's log (end_us - start_us)
# median over RUNS runs (default 5).  With BENCH_COMPARE_REV=REV the
# emulator of git revision REV (bench/emulator_at.sh) is measured too, the
# runs of the two interleaved, so both see the same machine.
#
#   bash bench/call_latency.sh            (after make test-programs)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

RUNS=${BENCH_RUNS:-5}
LATENCY=${BENCH_LATENCY_MS:-20}
CALLS=${BENCH_CALLS:-200}

make -s bench/list_all
mkdir -p "$WORK"
variants=(today) binaries=("$EMULATOR")
if [[ -n ${BENCH_COMPARE_REV:-} ]]; then
    bash bench/emulator_at.sh "$BENCH_COMPARE_REV" "$WORK/emulator-at-rev"
    variants=("$BENCH_COMPARE_REV" today) binaries=("$WORK/emulator-at-rev" "$EMULATOR")
fi

# one_run BINARY: "ROUND_TRIP_MS EMULATOR_MS" of one run (medians per call)
one_run() {
    local log=$WORK/call-latency.log portfile=$WORK/call-latency.port pid secs
    rm -f "$log" "$portfile"
    "$1" --generate "lat=$CALLS" --fault "latency=$LATENCY" --log "$log" \
        --port-file "$portfile" >/dev/null 2>&1 &
    pid=$!
    while [[ ! -s $portfile ]]; do sleep 0.05; done
    secs=$(bench/list_all "127.0.0.1:$(<"$portfile")" t lat 1 | sed -E 's/.*seconds=([0-9.]+).*/\1/')
    stop_pid "$pid"
    python3 - "$log" "$secs" "$CALLS" <<'PY'
import json, statistics, sys
calls = [json.loads(line) for line in open(sys.argv[1])]
emu = statistics.median((c["end_us"] - c["start_us"]) / 1000 for c in calls)
print(float(sys.argv[2]) * 1000 / int(sys.argv[3]), emu)
PY
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

declare -A RT EMU
for ((i = 0; i < RUNS; i++)); do
    for v in "${!variants[@]}"; do
        read -r rt emu < <(one_run "${binaries[$v]}")
        RT[$v]+=" $rt" EMU[$v]+=" $emu"
    done
done
echo "$CALLS calls one after another, each delayed by $LATENCY ms, median of $RUNS runs"
printf '%-12s %14s %9s %14s %9s\n' emulator "round trip ms" "x latency" "emulator ms" "x latency"
for v in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    awk -v name="${variants[$v]}" -v rt="$(median ${RT[$v]})" -v emu="$(median ${EMU[$v]})" -v l="$LATENCY" \
        'BEGIN { printf "%-12s %14.3f %9.3f %14.3f %9.3f\n", name, rt, rt / l, emu, emu / l }'
done
