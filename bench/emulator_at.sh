#!/bin/bash
# Build the API emulator as it was at git revision REV, for benchmarks that
# compare it with today's side by side (BENCH_COMPARE_REV of
# bench/call_latency.sh and bench/fanout_bench.sh).  Compiles REV's
# test/emulator/*.c with today's generated protobuf code (gen/, made by
# make test-programs), so REV must use the same protos.  REV may also be a
# directory holding REV's test/emulator/ (where there is no git, as in
# scripts/debian-root.sh: git archive REV test/emulator | tar -x -C DIR
# inside the tree first).
#
#   bash bench/emulator_at.sh REV OUT       (OUT: the binary to write)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"

[[ $# == 2 ]] || die "usage: emulator_at.sh REV OUT"
rev=$1 out=$2
[[ -f gen/.stamp ]] || die "gen/ not made: run make test-programs first"
if [[ -d $rev/test/emulator ]]; then
    src=$rev
else
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    git archive "$rev" test/emulator | tar -x -C "$src"
fi
mapfile -t protos < <(find gen -name '*.pb-c.c' | sort)
cc -O2 -g -Igen -o "$out" "$src"/test/emulator/*.c "${protos[@]}" \
    -lgrpc -lgpr -lprotobuf-c -lpthread -lcrypto -lm
