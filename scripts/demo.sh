#!/bin/bash
# Set everything up and run the demo: the throwaway cluster, a database
# "demo", an emulator serving test/data/sample.tsv (left running), and
# scripts/demo.sql.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit

bash scripts/setup.sh
need_pg
bash scripts/pg.sh start

if [[ -z $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'demo'") ]]; then
    say "creating database demo"
    pg_psql -d postgres -qc 'CREATE DATABASE demo'
fi

# A service-account key for the demo (made anew, never committed): the
# emulator's IAM knows its public half.
keydir=$WORK/demo-key
rm -rf "$keydir"
sh test/emulator/make_sa_key.sh kid-demo sa-demo "$keydir" >/dev/null

# Restarted if already running; left running, pid in $WORK/emulator-demo.pid.
start_emulator emulator-demo --data "$ROOT/test/data/sample.tsv" --token 'demo-token=*' \
    --service-account 'sa-demo=*' --sa-key "kid-demo=sa-demo:$keydir/public.pem"
endpoint=127.0.0.1:$EMU_PORT
say "demo emulator listening on $endpoint (pid $EMU_PID, log $WORK/emulator-demo.log)"

say "running scripts/demo.sql"
echo
pg_psql -d demo --echo-all -v ON_ERROR_STOP=1 -v endpoint="$endpoint" \
    -v key="$(cat "$keydir/key.json")" -f scripts/demo.sql
echo
cat <<EOF
The demo is still running.
  Connect:  $PGBIN/psql -h $WORK -p $PGPORT -U postgres demo
  Emulator: $endpoint, token demo-token, service-account key $keydir/key.json
            (pid $EMU_PID, log $WORK/emulator-demo.log)
  Stop:     kill \$(cat $WORK/emulator-demo.pid); bash $ROOT/scripts/pg.sh stop
EOF
