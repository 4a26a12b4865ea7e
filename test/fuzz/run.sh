#!/bin/sh
#
# run.sh [SECONDS]
#	Fuzz the decoding of API replies (test/fuzz/fuzz_reply.c) for SECONDS
#	seconds (default 30).
#
# Builds test/fuzz/fuzz_reply and test/fuzz/make_seeds with make, writes the
# seed corpus (plus any inputs kept in test/fuzz/corpus/) into a scratch
# directory, so the repository is not modified, and runs libFuzzer on it
# bounded by -max_total_time and -max_len=4096.  Prints one TAP-like result
# line and a summary; exits non-zero when the target crashed or could not be
# built.  A crashing input is kept (its path is in the result line) and can
# be replayed with: test/fuzz/fuzz_reply CRASH-FILE
#
# Environment:
#	RB_FUZZ_ARGS	extra libFuzzer options, e.g. "-jobs=4 -workers=4"
#	RB_FUZZ_PROTOBUF_C	path of protobuf-c/protobuf-c.c of the installed
#			version: fuzz test/fuzz/fuzz_reply_pbc, which has protobuf-c
#			compiled in with the sanitizers and coverage (see Makefile)
#	RB_FUZZ_KEEP	if set, keep the scratch directory (corpus and log)
#
# test/fuzz/run.sh
#
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-30}

case $seconds in
	''|*[!0-9]*|0)
		echo "usage: $0 [SECONDS]" >&2
		exit 2
		;;
esac

result()
{
	if [ "$1" = ok ]; then
		echo "ok 1 - $2"
		echo "1 passed, 0 failed"
	else
		echo "not ok 1 - $2"
		echo "0 passed, 1 failed"
	fi
}

if [ -n "${RB_FUZZ_PROTOBUF_C:-}" ]; then
	case $RB_FUZZ_PROTOBUF_C in
		/*) ;;
		*) RB_FUZZ_PROTOBUF_C=$PWD/$RB_FUZZ_PROTOBUF_C ;;
	esac
	target=test/fuzz/fuzz_reply_pbc
	what="fuzz reply decoding (instrumented protobuf-c)"
	set -- "FUZZ_PROTOBUF_C=$RB_FUZZ_PROTOBUF_C"
else
	target=test/fuzz/fuzz_reply
	what="fuzz reply decoding"
	set --
fi

if ! make -s -C "$root" "$@" "$target" test/fuzz/make_seeds >&2; then
	result "not ok" "$what: build failed (needs clang and libclang-rt-14-dev)"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rb_fuzz.XXXXXX")
keep=${RB_FUZZ_KEEP:-}
cleanup()
{
	if [ -z "$keep" ]; then
		rm -rf "$tmp"
	else
		echo "run.sh: kept $tmp" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/corpus" "$tmp/artifacts"
"$root/test/fuzz/make_seeds" "$tmp/corpus"
if [ -d "$here/corpus" ]; then
	find "$here/corpus" -maxdepth 1 -type f ! -name '*.md' \
		-exec cp {} "$tmp/corpus/" \;
fi

# Stop at the first problem; report leaks too.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
# shellcheck disable=SC2086  # RB_FUZZ_ARGS is a list of options
"$root/$target" -max_total_time="$seconds" -max_len=4096 \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$tmp/artifacts/" ${RB_FUZZ_ARGS:-} \
	"$tmp/corpus" >"$tmp/fuzz.log" 2>&1 || status=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/fuzz.log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/fuzz.log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$tmp/fuzz.log" | tail -n 1 | sed 's/cov: //')
corpus=$(find "$tmp/corpus" -type f | wc -l)
{
	echo "run.sh: ${runs:-?} runs, ${speed:-?} exec/s, coverage ${cov:-?} edges, corpus $corpus inputs"
} >&2

crash=$(find "$tmp/artifacts" -type f | head -n 1)
if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
	keep=1
	# show what went wrong: the report of the sanitizer or of fuzz_reply
	grep -E 'ERROR|SUMMARY|fuzz_reply:|runtime error|^ +#[0-9]' "$tmp/fuzz.log" \
		| head -n 40 >&2 || true
	if [ -n "$crash" ]; then
		result "not ok" "$what crashed after ${runs:-?} runs: input $crash (log $tmp/fuzz.log)"
	else
		result "not ok" "$what: fuzzer exited with status $status (log $tmp/fuzz.log)"
	fi
	exit 1
fi

result ok "$what for $seconds s (${runs:-?} runs)"
