#!/bin/sh
#
# selfcheck.sh
#	Check the emulator's IAM, metadata, Resource Manager, ClusterService
#	List and Get, latency, call-log and pre-encoding behaviour on its own, with no other part of
#	the project: a tiny gRPC client (test/emulator/selfcheck/client), the
#	openssl command to make keys and sign JWTs, curl for the metadata
#	service, python3 (standard library) to read the JSON log.
#
# Build first: make test/emulator/redis_backup_emulator
#              make test/emulator/selfcheck/client
# Run:         sh test/emulator/selfcheck.sh
# Prints one line per check ("ok N - ..." / "not ok N - ...") and finally
# "N passed, M failed"; exits 0 when nothing failed.
#
# Environment: RB_EMULATOR, RB_SELFCHECK_CLIENT (program paths),
# RB_TEST_KEEP (keep the scratch directory).
#
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
emulator=${RB_EMULATOR:-$root/test/emulator/redis_backup_emulator}
client=${RB_SELFCHECK_CLIENT:-$root/test/emulator/selfcheck/client}

for f in "$emulator" "$client"; do
	if [ ! -x "$f" ]; then
		echo "selfcheck.sh: $f is missing; build it first (see the top of this file)" >&2
		exit 2
	fi
done
for cmd in openssl curl python3; do
	if ! command -v $cmd >/dev/null 2>&1; then
		echo "selfcheck.sh: $cmd is needed" >&2
		exit 2
	fi
done

# shellcheck source=test/emulator/scratch.sh
. "$here/scratch.sh"
scratch_dir rb_emu_selfcheck
passed=0
failed=0
n=0

# check DESCRIPTION COMMAND...: run COMMAND, pass if it succeeds
check()
{
	desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$tmp/check.out" 2>&1; then
		passed=$((passed + 1))
		echo "ok $n - $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n - $desc"
		sed 's/^/#   /' "$tmp/check.out"
	fi
}

# expect_prefix WANT GOT: GOT starts with WANT
expect_prefix()
{
	case "$2" in
	"$1"*) return 0 ;;
	esac
	echo "expected \"$1...\", got \"$2\""
	return 1
}

b64url()
{
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# jwt KEYDIR HEADER_JSON PAYLOAD_JSON [SALTLEN]: a signed JWT
jwt()
{
	h=$(printf '%s' "$2" | b64url)
	p=$(printf '%s' "$3" | b64url)
	s=$(printf '%s.%s' "$h" "$p" |
		openssl dgst -sha256 -sign "$1/private.pem" \
			-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:"${4:-32}" \
			-sigopt rsa_mgf1_md:sha256 -binary | b64url)
	printf '%s.%s.%s' "$h" "$p" "$s"
}

aud=https://iam.api.cloud.yandex.net/iam/v1/tokens
hdr() { printf '{"typ":"JWT","alg":"%s","kid":"%s"}' "${2:-PS256}" "$1"; }
claims() { printf '{"iss":"%s","aud":"%s","iat":%s,"exp":%s}' "$1" "$2" "$3" "$4"; }

# --- keys (made here, never committed) -------------------------------------
sh "$here/make_sa_key.sh" key-a sa-a "$tmp/key-a" >/dev/null
sh "$here/make_sa_key.sh" key-b sa-b "$tmp/key-b" >/dev/null
sh "$here/make_sa_key.sh" key-x sa-a "$tmp/key-x" >/dev/null	# not registered

check "make_sa_key.sh writes key.json like yc" python3 - "$tmp/key-a/key.json" <<'EOF'
import json, sys
k = json.load(open(sys.argv[1]))
assert list(k) == ["id", "service_account_id", "created_at", "key_algorithm",
                   "public_key", "private_key"], list(k)
assert k["id"] == "key-a" and k["service_account_id"] == "sa-a"
assert k["key_algorithm"] == "RSA_2048"
assert k["public_key"].startswith("-----BEGIN PUBLIC KEY-----\n")
first, rest = k["private_key"].split("\n", 1)
assert first == "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID key-a", first
assert rest.startswith("-----BEGIN PRIVATE KEY-----\n")
EOF

# --- data: a cloud from a data file ----------------------------------------
printf 'folder\tfa\tcloud-d\tfirst\nfolder\tfb\tcloud-d\nfolder\tfc\ncloud\tcloud-empty\n' \
	>"$tmp/clouds.tsv"
printf 'backup\tb1\tfa\tc1\t2026-11-27T03:00:05Z\t-\t-\tAUTOMATED\n' >>"$tmp/clouds.tsv"

# --- emulator 1: IAM, metadata, clouds -------------------------------------
start_emulator e1 --data "$tmp/clouds.tsv" --generate-cloud big=250:3 --generate gen=500 \
	--service-account sa-a=gen,big,big-f001,cloud-d,fa \
	--service-account sa-b=other \
	--sa-key "key-a=sa-a:$tmp/key-a/public.pem" \
	--sa-key "key-b=sa-b:$tmp/key-b/public.pem" \
	--token 'tok-all=*' \
	--metadata-listen 127.0.0.1:0 --metadata-port-file "$tmp/e1.mport" \
	--metadata-sa sa-a
e1=$addr
m1=127.0.0.1:$(cat "$tmp/e1.mport")
now=$(date +%s)

good=$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $now $((now + 3600)))")
out=$("$client" iam "$e1" "$good")
token=$(printf '%s' "$out" | cut -f2)
check "valid JWT is exchanged for a token" expect_prefix "OK	t1.emu." "$out"
check "expires_at is now + 43200 s" sh -c "exp=\$(printf '%s' '$out' | cut -f3); d=\$((exp - $now - 43200)); [ \$d -ge -2 ] && [ \$d -le 5 ]"
check "issued token reads a granted folder" \
	expect_prefix "OK	100	" "$("$client" list "$e1" "$token" gen 100)"
check "issued token is denied another folder" \
	expect_prefix "PERMISSION_DENIED" "$("$client" list "$e1" "$token" fc 100)"
out2=$("$client" iam "$e1" "$good")
check "a second exchange gives a different token" \
	test "$(printf '%s' "$out2" | cut -f2)" != "$token"
check "an unknown token is refused" \
	expect_prefix "UNAUTHENTICATED	Token is invalid or has expired." \
	"$("$client" list "$e1" t1.emu.nosuchtoken gen 100)"

refuse()
{
	desc=$1
	want=$2
	got=$("$client" iam "$e1" "$3")
	check "$desc: $want" expect_prefix "$want" "$got"
	case "$got" in
	*"$3"*) check "$desc: the JWT is not echoed" false ;;
	esac
}
refuse "wrong key" "UNAUTHENTICATED	JWT signature is invalid" \
	"$(jwt "$tmp/key-x" "$(hdr key-a)" "$(claims sa-a $aud $now $((now + 3600)))")"
refuse "unregistered kid" "UNAUTHENTICATED	unknown key id" \
	"$(jwt "$tmp/key-x" "$(hdr key-x)" "$(claims sa-a $aud $now $((now + 3600)))")"
refuse "kid of another service account" "UNAUTHENTICATED	JWT iss is not the service account of the key" \
	"$(jwt "$tmp/key-b" "$(hdr key-b)" "$(claims sa-a $aud $now $((now + 3600)))")"
refuse "expired" "UNAUTHENTICATED	JWT is expired" \
	"$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $((now - 7200)) $((now - 3600)))")"
refuse "iat in the future" "UNAUTHENTICATED	iat is in the future" \
	"$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $((now + 600)) $((now + 1200)))")"
check "iat 30 s ahead (clock skew) is accepted" expect_prefix "OK	" \
	"$("$client" iam "$e1" "$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $((now + 30)) $((now + 600)))")")"
refuse "exp - iat > 3600" "UNAUTHENTICATED	JWT lifetime (exp - iat) exceeds 3600 seconds" \
	"$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $now $((now + 3601)))")"
refuse "wrong aud" "UNAUTHENTICATED	JWT aud must be" \
	"$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a https://example.com/ $now $((now + 3600)))")"
refuse "alg RS256" "UNAUTHENTICATED	JWT header alg must be" \
	"$(jwt "$tmp/key-a" "$(hdr key-a RS256)" "$(claims sa-a $aud $now $((now + 3600)))")"
refuse "PSS salt of maximum length, not 32" "UNAUTHENTICATED	JWT signature is invalid" \
	"$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $now $((now + 3600)))" max)"
refuse "tampered payload" "UNAUTHENTICATED	JWT signature is invalid" \
	"$(printf '%s' "$good" | awk -F. -v p="$(claims sa-b $aud $now $((now + 3600)) | b64url)" '{print $1 "." p "." $3}')"
refuse "not a JWT" "UNAUTHENTICATED	JWT is malformed" "abc.def"
long=$(python3 -c 'print("a" * 8001)')
check "JWT over 8000 characters: INVALID_ARGUMENT" expect_prefix "INVALID_ARGUMENT" \
	"$("$client" iam "$e1" "$long")"
check "OAuth token: INVALID_ARGUMENT" expect_prefix "INVALID_ARGUMENT" \
	"$("$client" oauth "$e1" y0_AgAAAA)"

# metadata service
body=$(curl -s -H 'Metadata-Flavor: Google' "http://$m1/computeMetadata/v1/instance/service-accounts/default/token")
mtoken=$(printf '%s' "$body" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["token_type"]=="Bearer" and d["expires_in"]==43200, d; print(d["access_token"])')
check "metadata: token JSON" test -n "$mtoken"
check "metadata token reads a granted folder" \
	expect_prefix "OK	" "$("$client" list "$e1" "$mtoken" gen 10)"
check "metadata: no Metadata-Flavor header: 403" test "$(curl -s -o /dev/null -w '%{http_code}' \
	"http://$m1/computeMetadata/v1/instance/service-accounts/default/token")" = 403
check "metadata: other path: 404" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata-Flavor: Google' \
	"http://$m1/computeMetadata/v1/instance/id")" = 404

# Resource Manager
check "FolderService.List: 250 folders in pages of 100" \
	expect_prefix "OK	3	250	250	100,100,50" "$("$client" folders "$e1" "$token" big 100)"
check "FolderService.List: page_size 0 means 100" \
	expect_prefix "OK	3	250	250	100,100,50" "$("$client" folders "$e1" "$token" big 0)"
check "FolderService.List: folders of a data-file cloud" \
	expect_prefix "OK	1	2	2	2" "$("$client" folders "$e1" "$token" cloud-d 100)"
check "FolderService.List: an empty cloud" \
	expect_prefix "OK	1	0	0	0" "$("$client" folders "$e1" tok-all cloud-empty 100)"
check "FolderService.List: cloud not granted: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED	Permission denied to cloud" "$("$client" folders "$e1" "$token" cloud-empty 100)"
check "FolderService.List: unknown cloud: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED	Permission denied to cloud" "$("$client" folders "$e1" tok-all nosuch 100)"
check "FolderService.List: page_size 1001: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT" "$("$client" folders "$e1" "$token" big 1001)"
check "FolderService.List: cloud_id of 51 characters: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT" "$("$client" folders "$e1" "$token" "$(python3 -c 'print("c" * 51)')" 100)"
check "FolderService.List: no token: UNAUTHENTICATED" \
	expect_prefix "UNAUTHENTICATED" "$("$client" folders "$e1" - big 100)"
check "cloud granted, folder granted: List OK" \
	expect_prefix "OK	3	" "$("$client" list "$e1" "$token" big-f001 100)"
check "cloud granted, folder not granted: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED" "$("$client" list "$e1" "$token" big-f002 100)"

check "log: IAM lines name key and service account, never the JWT or token" \
	python3 - "$tmp/e1.log" "$good" "$token" "$mtoken" <<'EOF'
import json, sys
path, jwt, token, mtoken = sys.argv[1:5]
text = open(path).read()
for secret in (jwt, jwt.split(".")[1], jwt.split(".")[2], token, mtoken):
    assert secret not in text, "secret in log"
lines = [json.loads(l) for l in text.splitlines()]
iam = [l for l in lines if l["method"] == "IamTokenService.Create"]
ok = [l for l in iam if l["status"] == "OK"]
assert ok and all(l["key_id"] == "key-a" and l["service_account"] == "sa-a" for l in ok), ok
bad = [l for l in iam if l["status"] == "UNAUTHENTICATED"]
assert any(l.get("message") == "unknown key id" and l["key_id"] == "key-x" for l in bad)
md = [l for l in lines if l["method"] == "metadata"]
assert [l["http_status"] for l in md] == [200, 403, 404], md
assert md[0]["outcome"] == "issued" and md[0]["service_account"] == "sa-a"
assert md[1]["outcome"] == "no_flavor" and md[2]["outcome"] == "unknown_path"
assert all(l["start_us"] <= l["end_us"] for l in lines)
seqs = [l["seq"] for l in lines]
assert seqs == list(range(1, len(seqs) + 1)), seqs
EOF

# --- emulator 2: token lifetime 2 s, metadata mode 404 ---------------------
start_emulator e2 --generate gen=10 --service-account sa-a=gen \
	--sa-key "key-a=sa-a:$tmp/key-a/public.pem" --token-lifetime 2 \
	--metadata-listen 127.0.0.1:0 --metadata-port-file "$tmp/e2.mport" \
	--metadata-sa sa-a --metadata-mode 404
e2=$addr
m2=127.0.0.1:$(cat "$tmp/e2.mport")
now=$(date +%s)
out=$("$client" iam "$e2" "$(jwt "$tmp/key-a" "$(hdr key-a)" "$(claims sa-a $aud $now $((now + 3600)))")")
short=$(printf '%s' "$out" | cut -f2)
check "--token-lifetime 2: expires_at = now + 2" sh -c "exp=\$(printf '%s' '$out' | cut -f3); [ \$((exp - $now)) -ge 1 ] && [ \$((exp - $now)) -le 4 ]"
check "short-lived token works at first" expect_prefix "OK	" "$("$client" list "$e2" "$short" gen 10)"
sleep 3
check "after 3 s it is refused like an unknown token" \
	expect_prefix "UNAUTHENTICATED	Token is invalid or has expired." "$("$client" list "$e2" "$short" gen 10)"
check "metadata mode 404: 404" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata-Flavor: Google' \
	"http://$m2/computeMetadata/v1/instance/service-accounts/default/token")" = 404

# --- emulator 3: 20 ms latency on BackupService.List, overlapping calls ----
start_emulator e3 --generate gen=10 --token 'tok=*' \
	--fault latency=20@method:BackupService.List \
	--fault status=INTERNAL@method:FolderService.List
e3=$addr
out=$("$client" concurrent "$e3" tok gen 50)
check "50 concurrent calls with 20 ms latency each take far less than 50 x 20 ms ($out)" \
	sh -c "printf '%s' '$out' | awk -F'\t' '\$1 == \"OK\" && \$3 < 400 { ok = 1 } END { exit !ok }'"
check "log: the 50 calls overlapped, each took >= 20 ms" python3 - "$tmp/e3.log" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 50, len(lines)
assert all(l["fault"] == "latency" and l["status"] == "OK" for l in lines)
assert all(l["end_us"] - l["start_us"] >= 20000 for l in lines)
assert max(l["start_us"] for l in lines) < min(l["end_us"] for l in lines), "no common overlap"
EOF
check "method-scoped fault hits only that method" \
	expect_prefix "INTERNAL	injected INTERNAL" "$("$client" folders "$e3" tok x 10)"

# --- emulators 4 and 5: normal and pre-encoded pages are identical ---------
start_emulator e4 --data "$root/test/data/sample.tsv" --generate gen=25000 --token 'tok=*'
e4=$addr
start_emulator e5 --data "$root/test/data/sample.tsv" --generate gen=25000 --token 'tok=*' --preencoded 1000
e5=$addr
"$client" dump "$e4" tok gen 1000 "$tmp/normal.bin" >"$tmp/d1"
"$client" dump "$e5" tok gen 1000 "$tmp/pre.bin" >"$tmp/d2"
check "pre-encoded pages (made at start-up) are byte-identical" cmp "$tmp/normal.bin" "$tmp/pre.bin"
check "pages: 25 of 1000" expect_prefix "OK	25	25000" "$(cat "$tmp/d2")"
"$client" dump "$e4" tok gen 777 "$tmp/normal777.bin" >/dev/null
"$client" dump "$e5" tok gen 777 "$tmp/pre777a.bin" >/dev/null
"$client" dump "$e5" tok gen 777 "$tmp/pre777b.bin" >/dev/null
check "pages cached on first use are byte-identical when served again" \
	sh -c "cmp '$tmp/normal777.bin' '$tmp/pre777a.bin' && cmp '$tmp/normal777.bin' '$tmp/pre777b.bin'"
"$client" dump "$e4" tok b1gq0fh8ga5u6gkp3tmn 10 "$tmp/normal_data.bin" >/dev/null
"$client" dump "$e5" tok b1gq0fh8ga5u6gkp3tmn 10 "$tmp/pre_data.bin" >/dev/null
"$client" dump "$e5" tok b1gq0fh8ga5u6gkp3tmn 10 "$tmp/pre_data2.bin" >/dev/null
check "data-file pages too" \
	sh -c "cmp '$tmp/normal_data.bin' '$tmp/pre_data.bin' && cmp '$tmp/normal_data.bin' '$tmp/pre_data2.bin'"

# --- emulator 6: ClusterService.List and Get ---------------------------------
start_emulator e6 --data "$root/test/data/regress.tsv" --generate gen=20 \
	--token 'tok=*' --token lim=b1g-alpha \
	--fault 'status=INTERNAL@method:ClusterService.List@b1g-beta' \
	--fault 'token_loop@b1g-loop'
e6=$addr
clusters()
{
	"$client" clusters "$e6" "$@"
}
check "ClusterService.List: a folder's clusters in data order" \
	expect_prefix "OK	1	3	3	alpha-cache,alpha-queue,alpha-nobackup	" "$(clusters tok b1g-alpha 0 '')"
check "ClusterService.List: pages of 2" \
	expect_prefix "OK	2	3	2,1	alpha-cache,alpha-queue,alpha-nobackup	" "$(clusters tok b1g-alpha 2 '')"
check "ClusterService.List: a generated folder's ten clusters, in pages of 3" \
	expect_prefix "OK	4	10	3,3,3,1	cluster-0,cluster-1,cluster-2,cluster-3,cluster-4,cluster-5,cluster-6,cluster-7,cluster-8,cluster-9	" \
	"$(clusters tok gen 3 '')"
check "ClusterService.List: filter name=\"...\"" \
	expect_prefix "OK	1	1	1	alpha-queue	" "$(clusters tok b1g-alpha 0 'name="alpha-queue"')"
check "ClusterService.List: filter with spaces around =" \
	expect_prefix "OK	1	1	1	cluster-7	" "$(clusters tok gen 0 ' name = "cluster-7" ')"
check "ClusterService.List: filter matching nothing: an empty page" \
	expect_prefix "OK	1	0	0		" "$(clusters tok b1g-alpha 0 'name="no-such-cluster"')"
check "ClusterService.List: unknown folder: an empty page" \
	expect_prefix "OK	1	0	0		" "$(clusters tok b1g-nosuch 0 '')"
check "ClusterService.List: a deleted cluster (only named by backups) is not listed" \
	expect_prefix "OK	1	0	0		" "$(clusters tok b1g-flaky 0 '')"
for f in 'name="ab"' 'name="Alpha"' 'name="a-"' 'name="1abc"' \
	"name=\"$(python3 -c 'print("a" * 64)')\""; do
	check "ClusterService.List: filter $f (not a cluster name): INVALID_ARGUMENT" \
		expect_prefix "INVALID_ARGUMENT	Request validation error: filter: invalid cluster name" \
		"$(clusters tok b1g-alpha 0 "$f")"
done
for f in 'status="RUNNING"' 'name="abc" AND status="RUNNING"' 'name=abc' 'name="abc' "name='abc'"; do
	check "ClusterService.List: filter $f: INVALID_ARGUMENT" \
		expect_prefix "INVALID_ARGUMENT	Request validation error: filter: only name=" \
		"$(clusters tok b1g-alpha 0 "$f")"
done
check "ClusterService.List: a name of 63 characters is a valid filter" \
	expect_prefix "OK	1	0" "$(clusters tok b1g-alpha 0 "name=\"$(python3 -c 'print("a" * 63)')\"")"
check "ClusterService.List: filter of 1000 characters is fine" \
	expect_prefix "OK	1	0" "$(clusters tok b1g-alpha 0 "name=\"abc\"$(python3 -c 'print(" " * 990)')")"
check "ClusterService.List: filter of 1001 characters: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: filter: only name=" \
	"$(clusters tok b1g-alpha 0 "name=\"abc\"$(python3 -c 'print(" " * 991)')")"
check "ClusterService.List: page_size 1001: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: page_size" "$(clusters tok b1g-alpha 1001 '')"
check "ClusterService.List: page_size -1: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: page_size" "$(clusters tok b1g-alpha -1 '')"
check "ClusterService.List: page_token of 101 characters: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: page_token" \
	"$(clusters tok b1g-alpha 1 '' "$(python3 -c 'print("t" * 101)')")"
tok2=$(clusters tok b1g-alpha 1 '' '' | cut -f6)
check "ClusterService.List: the page token leads to page 2" \
	expect_prefix "OK	1	1	1	alpha-queue	" "$(clusters tok b1g-alpha 1 '' "$tok2")"
check "ClusterService.List: a token of another filter: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Invalid page token" \
	"$(clusters tok b1g-alpha 1 'name="alpha-queue"' "$tok2")"
check "ClusterService.List: a BackupService.List token: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Invalid page token" \
	"$(clusters tok b1g-alpha 1 '' "$("$client" list "$e6" tok b1g-alpha 1 | cut -f3)")"
check "ClusterService.List: folder_id missing: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: folder_id is required" "$(clusters tok '' 0 '')"
check "ClusterService.List: folder_id of 51 characters: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: folder_id" \
	"$(clusters tok "$(python3 -c 'print("f" * 51)')" 0 '')"
check "ClusterService.List: folder not granted: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED	Permission denied to folder b1g-conv" "$(clusters lim b1g-conv 0 '')"
check "ClusterService.List: granted folder" \
	expect_prefix "OK	1	3	" "$(clusters lim b1g-alpha 0 '')"
check "ClusterService.List: no token: UNAUTHENTICATED" \
	expect_prefix "UNAUTHENTICATED" "$(clusters - b1g-alpha 0 '')"
check "ClusterService.List: method-scoped fault" \
	expect_prefix "INTERNAL	injected INTERNAL" "$(clusters tok b1g-beta 0 '')"
check "... which spares BackupService.List of the same folder" \
	expect_prefix "OK	2	" "$("$client" list "$e6" tok b1g-beta 10)"
check "ClusterService.List: token_loop repeats the page-2 token" \
	expect_prefix "OK	1	1	1	loop-cluster	" "$(clusters tok b1g-loop 1 '' '')"

check "ClusterService.Get: every field" \
	expect_prefix "$(printf 'OK\tc9q-alpha1\tb1g-alpha\talpha-cache\tPRODUCTION\tALIVE\tRUNNING\tON\t011\tteam=alpha;quote"key=say "hi";back\\slash=C:\\data\\;команда=альфа ✓;empty=;=empty key\tsg-alpha-1\t7.2\t03:00:00.000000000\t7')" \
	"$("$client" cluster "$e6" tok c9q-alpha1)"
check "ClusterService.Get: several security groups, no window, no retain period" \
	expect_prefix "$(printf 'OK\tc9q-alpha2\tb1g-alpha\talpha-queue\tPRESTABLE\tDEGRADED\tUPDATING\tON_REPLICAS\t100\tteam=alpha;tier=queue\tsg-alpha-1,sg-alpha-2,sg-shared\t7.2\t-\t-')" \
	"$("$client" cluster "$e6" tok c9q-alpha2)"
check "ClusterService.Get: a bare cluster line: zero values, no config" \
	expect_prefix "$(printf 'OK\tc9q-empty\tb1g-empty\tc9q-empty\tENVIRONMENT_UNSPECIFIED\tHEALTH_UNKNOWN\tSTATUS_UNKNOWN\tON\t000\t\t\t-\t-\t-')" \
	"$("$client" cluster "$e6" tok c9q-empty)"
check "ClusterService.Get: unknown enum values, last nanosecond, retain 0" \
	expect_prefix "$(printf 'OK\tc9q-conv\tb1g-conv\tconv-odd\t9\t17\t42\t5\t000\t\t\t7.2\t23:59:59.999999999\t0')" \
	"$("$client" cluster "$e6" tok c9q-conv)"
check "ClusterService.Get: a generated cluster" \
	expect_prefix "$(printf 'OK\tgen-c3\tgen\tcluster-3\tPRESTABLE\tALIVE\tRUNNING\tON\t010\tteam=team-0\t\t7.2\t03:00:00.000000000\t7')" \
	"$("$client" cluster "$e6" tok gen-c3)"
check "ClusterService.Get: a deleted cluster: NOT_FOUND" \
	expect_prefix "NOT_FOUND	Cluster c9q-flaky not found" "$("$client" cluster "$e6" tok c9q-flaky)"
check "... whose backups ClusterService.ListBackups still lists" \
	expect_prefix "OK	" "$("$client" list "$e6" tok b1g-flaky 10)"
check "ClusterService.Get: unknown cluster: NOT_FOUND" \
	expect_prefix "NOT_FOUND" "$("$client" cluster "$e6" tok c9q-nosuch)"
check "ClusterService.Get: cluster_id missing: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: cluster_id is required" "$("$client" cluster "$e6" tok '')"
check "ClusterService.Get: cluster_id of 51 characters: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: cluster_id" \
	"$("$client" cluster "$e6" tok "$(python3 -c 'print("c" * 51)')")"
check "ClusterService.Get: folder not granted: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED	Permission denied to folder b1g-beta" "$("$client" cluster "$e6" lim c9q-beta1)"
check "log: List and Get lines with their arguments and the filter" python3 - "$tmp/e6.log" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
lists = [l for l in lines if l["method"] == "ClusterService.List"]
gets = [l for l in lines if l["method"] == "ClusterService.Get"]
assert lists and gets
f = [l for l in lists if l.get("filter") == 'name="alpha-queue"' and l["page_size"] == 0]
assert f and f[0]["folder_id"] == "b1g-alpha" and f[0]["returned"] == 1, f
assert all("filter" in l and "page_token" in l for l in lists)
p = [l for l in lists if l["page_size"] == 2 and l["folder_id"] == "b1g-alpha"]
assert len(p) == 2 and p[1]["page_token"] == p[0]["next_page_token"] != "", p
assert any(l["cluster_id"] == "c9q-alpha1" and l["status"] == "OK" for l in gets)
assert all("filter" not in l and "page_size" not in l for l in gets)
assert any(l["status"] == "PERMISSION_DENIED" and l["auth"] == "denied" for l in gets)
assert any(l.get("fault") == "status" for l in lists)
EOF

# --- emulators 7 and 8: quotas per token -----------------------------------
# quota_count LOG: "SERVED REFUSED" counts of the log's lines, after
# asserting that every refusal has the quota's status, message and marker
quota_count() {
	python3 - "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ok = [l for l in lines if l["status"] == "OK"]
no = [l for l in lines if l["status"] != "OK"]
assert all(l["status"] == "RESOURCE_EXHAUSTED" and l["message"] == "The request limit exceeded."
           and "quota" in l["fault"].split(",") for l in no), no
print(len(ok), len(no))
EOF
}
start_emulator e7 --generate gen=10 --token 'tok=*' --token 'other=*' \
	--fault latency=300@method:BackupService.List --quota-inflight 4
e7=$addr
check "quota-inflight 4: 10 calls at once, the first refusal is RESOURCE_EXHAUSTED" \
	expect_prefix "RESOURCE_EXHAUSTED	The request limit exceeded." "$("$client" concurrent "$e7" tok gen 10)"
check "quota-inflight 4: 4 calls served, 6 refused (log: status, message, fault quota)" \
	test "$(quota_count "$tmp/e7.log")" = "4 6"
: >"$tmp/e7.log"
"$client" concurrent "$e7" tok gen 4 >"$tmp/q1" &
"$client" concurrent "$e7" other gen 4 >"$tmp/q2"
wait $!
check "quota-inflight 4: another token's 4 calls are served beside the first one's 4" \
	test "$(cat "$tmp/q1" "$tmp/q2" | grep -c '^OK	4	')" = 2
check "quota-inflight 4: a finished call frees its place: 4 more at once, all served" \
	expect_prefix "OK	4	" "$("$client" concurrent "$e7" tok gen 4)"
check "quota-inflight 4: log: 12 served, none refused" test "$(quota_count "$tmp/e7.log")" = "12 0"
start_emulator e8 --generate gen=10 --token 'tok=*' --quota-rate 5
e8=$addr
check "quota-rate 5: 12 calls at once, the first refusal is RESOURCE_EXHAUSTED" \
	expect_prefix "RESOURCE_EXHAUSTED	The request limit exceeded." "$("$client" concurrent "$e8" tok gen 12)"
check "quota-rate 5: 5 calls served, 7 refused (log)" test "$(quota_count "$tmp/e8.log")" = "5 7"
sleep 1.1
check "quota-rate 5: a second later, 5 calls at once are all served" \
	expect_prefix "OK	5	" "$("$client" concurrent "$e8" tok gen 5)"
check "quota-rate 5: and a sixth in that second is refused" \
	expect_prefix "RESOURCE_EXHAUSTED	The request limit exceeded." "$("$client" list "$e8" tok gen 1)"
sleep 1.1
: >"$tmp/e8.log"
for i in 1 2 3 4 5 6 7 8; do
	"$client" list "$e8" tok gen 1 >/dev/null
	sleep 0.25
done
check "quota-rate 5: 8 calls 0.25 s apart (4 a second) are all served" \
	test "$(quota_count "$tmp/e8.log")" = "8 0"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
