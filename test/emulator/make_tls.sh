#!/bin/sh
#
# make_tls.sh DIR
#	Make TLS material for tests against the emulator (never commit it).
#
# Writes, in DIR (created if needed; files of these names are replaced):
#	ca.pem, ca.key                      a test CA
#	server.pem, server.key              a server certificate for
#	                                    DNS:localhost only (no IP address),
#	                                    signed by the test CA
#	untrusted-ca.pem, untrusted-ca.key  an unrelated CA that signed nothing
# all readable by everyone (the keys protect nothing but tests), and checks
# that the test CA verifies the server certificate.  RSA 2048 keys,
# certificates valid for 10 years.
#
# scripts/lib.sh (make_tls, which keeps the material while it is valid) and
# test/client/run.sh (a fresh set per run) both make theirs with this.
# Needs the openssl command.
#
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"

# make_ca NAME SUBJECT_CN: a self-signed CA certificate NAME.pem, key NAME.key
make_ca()
{
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-subj "/CN=$2" \
		-addext 'basicConstraints=critical,CA:TRUE' \
		-addext 'keyUsage=critical,keyCertSign,cRLSign' \
		-keyout "$dir/$1.key" -out "$dir/$1.pem" 2>/dev/null
}

make_ca ca 'rbfdw test CA'
make_ca untrusted-ca 'rbfdw untrusted CA'

openssl req -newkey rsa:2048 -nodes -sha256 -subj '/CN=rbfdw test server' \
	-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
cat >"$dir/server.ext" <<'EOF'
subjectAltName=DNS:localhost
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
EOF
serial=$(openssl rand -hex 8)
openssl x509 -req -sha256 -days 3650 -in "$dir/server.csr" -CA "$dir/ca.pem" \
	-CAkey "$dir/ca.key" -set_serial "0x$serial" \
	-extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext"
chmod 0644 "$dir/ca.pem" "$dir/ca.key" "$dir/untrusted-ca.pem" \
	"$dir/untrusted-ca.key" "$dir/server.pem" "$dir/server.key"
openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null
