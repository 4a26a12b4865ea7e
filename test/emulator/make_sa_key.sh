#!/bin/sh
#
# make_sa_key.sh KEY_ID SA_ID OUTDIR [BITS]
#	Make a service-account authorized key for tests (never commit one), an
#	RSA key of BITS bits (default 2048; smaller ones test refusals).
#
# Writes, in OUTDIR (created if needed):
#	key.json     like `yc iam key create --output key.json`: id,
#	             service_account_id, created_at, key_algorithm "RSA_<BITS>",
#	             public_key, private_key (the line "PLEASE DO NOT REMOVE THIS
#	             LINE! Yandex.Cloud SA Key ID <KEY_ID>" then the PKCS#8 PEM)
#	public.pem   the public key, for the emulator's --sa-key
#	private.pem  the PKCS#8 private key alone (to sign JWTs with openssl)
# and prints the --sa-key value, KEY_ID=SA_ID:OUTDIR/public.pem.
#
# Needs the openssl command and python3 (for the JSON text only).
#
set -eu

if [ $# -ne 3 ] && [ $# -ne 4 ]; then
	echo "usage: $0 KEY_ID SA_ID OUTDIR [BITS]" >&2
	exit 2
fi
key_id=$1
sa_id=$2
outdir=$3
bits=${4:-2048}

mkdir -p "$outdir"
umask 077
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:"$bits" \
	-out "$outdir/private.pem" 2>/dev/null
openssl pkey -in "$outdir/private.pem" -pubout -out "$outdir/public.pem"
chmod 644 "$outdir/public.pem"

python3 - "$key_id" "$sa_id" "$outdir" "$bits" <<'PY'
import datetime, json, os, sys
key_id, sa_id, outdir, bits = sys.argv[1:5]
with open(os.path.join(outdir, "private.pem")) as f:
    private = f.read()
with open(os.path.join(outdir, "public.pem")) as f:
    public = f.read()
now = datetime.datetime.now(datetime.timezone.utc)
key = {
    "id": key_id,
    "service_account_id": sa_id,
    "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%06dZ" % now.microsecond,
    "key_algorithm": "RSA_" + bits,
    "public_key": public,
    "private_key": "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID %s\n" % key_id + private,
}
path = os.path.join(outdir, "key.json")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(key, f, indent=3)
    f.write("\n")
PY
echo "$key_id=$sa_id:$outdir/public.pem"
