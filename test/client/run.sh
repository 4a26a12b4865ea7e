#!/bin/sh
#
# run.sh
#	Run the client library tests against the API emulator.
#
# Builds nothing: expects test/emulator/redis_backup_emulator and
# test/client/client_test to exist (make test-programs).  The emulator's
# path and the test data go to client_test too (RB_TEST_EMULATOR,
# RB_TEST_DATA): the outage test starts, stops and restarts an emulator of
# its own.  Creates a scratch directory with the TLS material of
# test/emulator/make_tls.sh (a private CA, a server certificate for
# "localhost" with a DNS SAN only, no IP SAN, and a second, unrelated CA);
# starts a plaintext emulator (test data, a generated folder, tokens, faults
# scoped with @KEY, a call log) and a TLS emulator; runs client_test with
# their addresses in the environment and exits with its status.
#
# Environment:
#	RB_TEST_WRAPPER   command to run client_test under, e.g.
#	                  "valgrind --leak-check=full" (time limits are relaxed)
#	RB_TEST_KEEP      if set, keep the scratch directory
#
# test/client/run.sh
#
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
emulator=${RB_EMULATOR:-$root/test/emulator/redis_backup_emulator}
client_test=${RB_CLIENT_TEST:-$root/test/client/client_test}

for f in "$emulator" "$client_test"; do
	if [ ! -x "$f" ]; then
		echo "run.sh: $f is missing; run make test-programs first" >&2
		exit 2
	fi
done

# shellcheck source=test/emulator/scratch.sh
. "$root/test/emulator/scratch.sh"
scratch_dir rb_client_test

# --- certificates ----------------------------------------------------------
sh "$root/test/emulator/make_tls.sh" "$tmp"

# --- emulators -------------------------------------------------------------
data=$here/client_test.tsv

start_emulator plain \
	--data "$data" --generate gen=2500 \
	--token 'tok-all=*' --token tok-a=folder-a \
	--fault latency=300@f-latency \
	--fault latency=700@f-slow \
	--fault unavailable=1@f-unavail \
	--fault unavailable=2@f-unavail2 \
	--fault exhausted=1@f-exhausted \
	--fault status=DATA_LOSS@f-status \
	--fault status=FAILED_PRECONDITION:3@f-status3 \
	--fault hang@f-hang \
	--fault garbage@f-garbage \
	--fault garbage@b-garbage \
	--fault token_loop@f-loop \
	--fault unknown_fields@f-unknown \
	--fault unknown_fields@b-unknown \
	--fault oversize=300000@f-oversize
plain_addr=$addr

start_emulator tls \
	--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" \
	--data "$data" --token 'tok-all=*'
tls_port=${addr##*:}

RB_TEST_PLAIN_TARGET=$plain_addr
RB_TEST_TLS_PORT=$tls_port
RB_TEST_CA_FILE=$tmp/ca.pem
RB_TEST_OTHER_CA_FILE=$tmp/untrusted-ca.pem
RB_TEST_LOG_FILE=$tmp/plain.log
RB_TEST_SLOW=
if [ -n "${RB_TEST_WRAPPER:-}" ]; then
	RB_TEST_SLOW=1
fi
# for tests that start (and stop) an emulator of their own
RB_TEST_EMULATOR=$emulator
RB_TEST_DATA=$data
export RB_TEST_PLAIN_TARGET RB_TEST_TLS_PORT RB_TEST_CA_FILE \
	RB_TEST_OTHER_CA_FILE RB_TEST_LOG_FILE RB_TEST_SLOW \
	RB_TEST_EMULATOR RB_TEST_DATA

rc=0
${RB_TEST_WRAPPER:-} "$client_test" || rc=$?
exit $rc
