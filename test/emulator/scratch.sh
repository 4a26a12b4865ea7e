# shellcheck shell=sh disable=SC2034,SC2154
# (SC2034, SC2154: $addr is set for the caller, $emulator set by it.)
#
# scratch.sh
#	Functions for the scripts that run emulators in a scratch directory of
#	their own (test/client/run.sh, test/emulator/selfcheck.sh).  Sourced,
#	not run; $emulator must name the emulator program.
#
#	scratch_dir PREFIX
#		Make the scratch directory $tmp and arrange that, when the script
#		exits, every emulator it started is stopped and $tmp removed (kept
#		when RB_TEST_KEEP is set).
#	start_emulator NAME ARGS...
#		Start an emulator listening on a free port of 127.0.0.1 with
#		--port-file $tmp/NAME.port, --log $tmp/NAME.log and ARGS, its
#		output in $tmp/NAME.out; wait until it listens and set $addr to its
#		HOST:PORT.  Exits 2 when it has not started within 10 s.
#
# test/emulator/scratch.sh
#

scratch_pids=""

scratch_cleanup()
{
	for pid in $scratch_pids; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $scratch_pids; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -z "${RB_TEST_KEEP:-}" ]; then
		rm -rf "$tmp"
	else
		echo "${0##*/}: kept $tmp" >&2
	fi
}

scratch_dir()
{
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap scratch_cleanup EXIT
	trap 'exit 130' INT TERM
}

start_emulator()
{
	name=$1
	shift
	"$emulator" --listen 127.0.0.1:0 --port-file "$tmp/$name.port" \
		--log "$tmp/$name.log" "$@" >"$tmp/$name.out" 2>&1 &
	scratch_pids="$scratch_pids $!"
	# The emulator renames a complete port file into place, so one that is
	# not empty holds the whole port number.
	i=0
	while [ ! -s "$tmp/$name.port" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "${0##*/}: the emulator $name did not start:" >&2
			cat "$tmp/$name.out" >&2
			exit 2
		fi
		sleep 0.1
	done
	addr=127.0.0.1:$(tr -d ' \n' <"$tmp/$name.port")
}
