#!/bin/sh
#
# selfcheck.sh
#	Check the emulator's IAM, metadata, Resource Manager, ClusterService
#	List and Get, latency, call-log and pre-encoding behaviour, and the
#	calls that change things (Delete, Backup, operations), on its own, with no other part of
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

# --- emulators 9 to 12: calls that change things -----------------------------
# field N LINE: the Nth TAB-separated field of LINE
field() { printf '%s' "$2" | cut -f"$1"; }
# An operation line: OK ID DONE DESCRIPTION CREATED_BY ORDERED META_TYPE
# META_ID RESULT (selfcheck/client.c).
start_emulator e9 --data "$root/test/data/regress.tsv" --generate gen=30 \
	--token 'tok=*' --token 'other=*' --token lim=b1g-alpha \
	--token ro=b1g-mutate --read-only ro \
	--fault lose_reply=1@mut-faulty-1 \
	--fault op_error=FAILED_PRECONDITION@mut-faulty-2 \
	--fault op_error=FAILED_PRECONDITION@c9q-mut-faulty \
	--fault status=INTERNAL@method:OperationService.Get@mdb-broken
e9=$addr
key1=0b6c1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4
out=$("$client" delete "$e9" tok mut-prod-1 "$key1")
op1=$(field 2 "$out")
check "Delete: an operation, not done, of the backup ($out)" expect_prefix \
	"$(printf 'OK\t%s\t0\tDelete the Redis backup\taje' "$op1")" "$out"
check "... its id: mdb and 17 of [a-z0-9]" sh -c "printf '%s' '$op1' | grep -qx 'mdb[a-z0-9]\{17\}'"
check "... metadata DeleteBackupMetadata naming the backup, created_at <= modified_at" \
	test "$(printf '%s' "$out" | cut -f6-9)" = "$(printf '1\ttype.googleapis.com/yandex.cloud.mdb.redis.v1.DeleteBackupMetadata\tmut-prod-1\t-')"
check "... the backup is still there meanwhile" expect_prefix "OK	mut-prod-1" "$("$client" get "$e9" tok mut-prod-1)"
check "a second Delete meanwhile: FAILED_PRECONDITION (conflicting operation)" \
	expect_prefix "FAILED_PRECONDITION	Conflicting operation $op1" "$("$client" delete "$e9" tok mut-prod-1)"
check "the same key meanwhile: the same operation" \
	expect_prefix "OK	$op1	0	" "$("$client" delete "$e9" tok mut-prod-1 "$key1")"
out=$("$client" wait "$e9" tok "$op1")
check "OperationService.Get: done, response google.protobuf.Empty" \
	test "$(field 3 "$out"):$(field 9 "$out")" = "1:response:type.googleapis.com/google.protobuf.Empty"
check "the backup vanished: Get NOT_FOUND" \
	expect_prefix "NOT_FOUND	Backup mut-prod-1 not found" "$("$client" get "$e9" tok mut-prod-1)"
check "... and from List and ListBackups" sh -c "
	test \"\$('$client' ids '$e9' tok folder b1g-mutate | cut -f2-3)\" = \"\$(printf '10\tmut-prod-2,mut-prod-3,mut-prod-4,mut-prod-5,mut-stage-1,mut-stage-2,mut-stage-3,mut-stage-4,mut-faulty-1,mut-faulty-2')\" &&
	test \"\$('$client' ids '$e9' tok cluster c9q-mut-prod | cut -f2)\" = 4"
check "the same key after it finished: the same operation, done" \
	expect_prefix "OK	$op1	1	" "$("$client" delete "$e9" tok mut-prod-1 "$key1")"
check "the key with another backup: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Idempotency key was already used for another request" \
	"$("$client" delete "$e9" tok mut-prod-2 "$key1")"
check "the key with another method: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Idempotency key was already used" \
	"$("$client" backup "$e9" tok c9q-mut-prod "$key1")"
check "the key of another account is another key: a new operation (NOT_FOUND: gone)" \
	expect_prefix "NOT_FOUND	Backup mut-prod-1 not found" "$("$client" delete "$e9" other mut-prod-1 "$key1")"
check "OperationService.Get of another account's operation: PERMISSION_DENIED" \
	expect_prefix "PERMISSION_DENIED	Permission denied to operation $op1" "$("$client" operation "$e9" other "$op1")"
check "OperationService.Get: unknown: NOT_FOUND; empty: INVALID_ARGUMENT; no token: UNAUTHENTICATED" sh -c "
	'$client' operation '$e9' tok mdbnosuchoperation00 | grep -q '^NOT_FOUND	Operation mdbnosuchoperation00 not found' &&
	'$client' operation '$e9' tok '' | grep -q '^INVALID_ARGUMENT	Request validation error: operation_id is required' &&
	'$client' operation '$e9' - '$op1' | grep -q '^UNAUTHENTICATED'"
check "a method-scoped fault on OperationService.Get" \
	expect_prefix "INTERNAL	injected INTERNAL" "$("$client" operation "$e9" tok mdb-broken)"

key2=1c7d2f3e-4e5b-4c6d-9e7f-8091a2b3c4d5
out=$("$client" backup "$e9" tok c9q-mut-stage "$key2")
op2=$(field 2 "$out")
check "Backup: an operation, not done, BackupClusterMetadata naming the cluster" \
	test "$(printf '%s' "$out" | cut -f1,3,4,7-9)" = "$(printf 'OK\t0\tCreate a backup for the Redis cluster\ttype.googleapis.com/yandex.cloud.mdb.redis.v1.BackupClusterMetadata\tc9q-mut-stage\t-')"
check "a second Backup meanwhile: FAILED_PRECONDITION" \
	expect_prefix "FAILED_PRECONDITION	Conflicting operation $op2" "$("$client" backup "$e9" tok c9q-mut-stage)"
out=$("$client" wait "$e9" tok "$op2")
check "done, response the Cluster" \
	test "$(field 9 "$out")" = "response:type.googleapis.com/yandex.cloud.mdb.redis.v1.Cluster:c9q-mut-stage"
check "a MANUAL backup appeared: Get" sh -c "
	'$client' get '$e9' tok b1g-mutate-b0000000 | awk -F'\t' '
		\$1 == \"OK\" && \$3 == \"b1g-mutate\" && \$4 == \"c9q-mut-stage\" && \$5 == \"MANUAL\" &&
		\$6 == \"shard1\" && \$7 <= \$8 && \$7 > 1700000000 { ok = 1 } END { exit !ok }'"
check "... listed by List and ListBackups" sh -c "
	'$client' ids '$e9' tok folder b1g-mutate | grep -q ',b1g-mutate-b0000000\$' &&
	test \"\$('$client' ids '$e9' tok cluster c9q-mut-stage | cut -f2-3)\" = \"\$(printf '5\tmut-stage-1,mut-stage-2,mut-stage-3,mut-stage-4,b1g-mutate-b0000000')\""
check "the same key again: the same operation, no second backup" sh -c "
	'$client' backup '$e9' tok c9q-mut-stage '$key2' | grep -q '^OK	$op2	1	' &&
	test \"\$('$client' ids '$e9' tok cluster c9q-mut-stage | cut -f2)\" = 5"
"$client" backup "$e9" tok c9q-mut-stage >/dev/null
sleep 0.4
"$client" backup "$e9" tok c9q-mut-stage >/dev/null
sleep 0.4
check "without a key each Backup is a new operation: two more backups" \
	test "$("$client" ids "$e9" tok cluster c9q-mut-stage | cut -f2)" = 7
check "Backup: unknown or deleted cluster: NOT_FOUND" sh -c "
	'$client' backup '$e9' tok c9q-nosuch | grep -q '^NOT_FOUND	Cluster c9q-nosuch not found' &&
	'$client' backup '$e9' tok c9q-flaky | grep -q '^NOT_FOUND'"
check "Delete: unknown backup: NOT_FOUND; empty id: INVALID_ARGUMENT" sh -c "
	'$client' delete '$e9' tok nosuch | grep -q '^NOT_FOUND	Backup nosuch not found' &&
	'$client' delete '$e9' tok '' | grep -q '^INVALID_ARGUMENT	Request validation error: backup_id is required'"
check "an idempotency key over 128 bytes: INVALID_ARGUMENT" \
	expect_prefix "INVALID_ARGUMENT	Request validation error: idempotency-key" \
	"$("$client" delete "$e9" tok mut-prod-2 "$(python3 -c 'print("k" * 129)')")"
check "read-only token: Delete and Backup PERMISSION_DENIED, reading works" sh -c "
	'$client' delete '$e9' ro mut-prod-2 | grep -q '^PERMISSION_DENIED	Permission denied to backup mut-prod-2' &&
	'$client' backup '$e9' ro c9q-mut-prod | grep -q '^PERMISSION_DENIED	Permission denied to cluster c9q-mut-prod' &&
	'$client' get '$e9' ro mut-prod-2 | grep -q '^OK'"
check "folder not granted: PERMISSION_DENIED" sh -c "
	'$client' delete '$e9' lim beta-1 | grep -q '^PERMISSION_DENIED	Permission denied to backup beta-1' &&
	'$client' backup '$e9' lim c9q-beta1 | grep -q '^PERMISSION_DENIED	Permission denied to cluster c9q-beta1'"
key3=2d8e3f4a-5f6c-4d7e-af80-91a2b3c4d5e6
check "lose_reply: the first Delete answers UNAVAILABLE" \
	expect_prefix "UNAVAILABLE	Service is temporarily unavailable" "$("$client" delete "$e9" tok mut-faulty-1 "$key3")"
out=$("$client" delete "$e9" tok mut-faulty-1 "$key3")
op3=$(field 2 "$out")
check "... but started the operation: the retry with its key gets it" expect_prefix "OK	mdb" "$out"
"$client" wait "$e9" tok "$op3" >/dev/null
check "... and the backup is deleted" expect_prefix "NOT_FOUND" "$("$client" get "$e9" tok mut-faulty-1)"
out=$("$client" delete "$e9" tok mut-faulty-2)
out=$("$client" wait "$e9" tok "$(field 2 "$out")")
check "op_error: the operation ends with the error" \
	test "$(field 9 "$out")" = "error:FAILED_PRECONDITION:injected FAILED_PRECONDITION"
check "... and changes nothing" expect_prefix "OK	mut-faulty-2" "$("$client" get "$e9" tok mut-faulty-2)"
out=$("$client" backup "$e9" tok c9q-mut-faulty)
out=$("$client" wait "$e9" tok "$(field 2 "$out")")
check "op_error on a cluster: Backup ends with the error, no backup made" sh -c "
	test '$(field 9 "$out")' = 'error:FAILED_PRECONDITION:injected FAILED_PRECONDITION' &&
	test \"\$('$client' ids '$e9' tok cluster c9q-mut-faulty | cut -f2)\" = 1"
out=$("$client" delete "$e9" tok gen-b0000013)
"$client" backup "$e9" tok gen-c3 >/dev/null
"$client" wait "$e9" tok "$(field 2 "$out")" >/dev/null
sleep 0.4
check "a generated folder: a deleted backup leaves, a new one comes" sh -c "
	test \"\$('$client' ids '$e9' tok cluster gen-c3 | cut -f2-3)\" = \"\$(printf '3\tgen-b0000030,gen-b0000003,gen-b0000023')\" &&
	test \"\$('$client' ids '$e9' tok folder gen | cut -f2)\" = 30 &&
	'$client' get '$e9' tok gen-b0000013 | grep -q '^NOT_FOUND' &&
	'$client' get '$e9' tok gen-b0000030 | grep -q '^OK	gen-b0000030	gen	gen-c3	MANUAL	shard1,shard2'"
check "log: arguments, idempotency keys, operation ids, done lines" python3 - "$tmp/e9.log" "$op1" "$op2" "$op3" "$key1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
op1, op2, op3, key1 = sys.argv[2:]
calls = [l for l in lines if "method" in l]
events = [l for l in lines if l.get("event") == "operation_done"]
d = [l for l in calls if l["method"] == "BackupService.Delete" and l.get("backup_id") == "mut-prod-1"]
assert d[0]["idempotency_key"] == key1 and d[0]["operation_id"] == op1 and d[0]["done"] is False, d[0]
assert any(l["status"] == "FAILED_PRECONDITION" and "operation_id" not in l for l in d)
assert all("idempotency_key" not in l for l in calls if l["method"] == "BackupService.List")
g = [l for l in calls if l["method"] == "OperationService.Get" and l.get("operation_id") == op1 and l["status"] == "OK"]
assert g and g[-1]["done"] is True, g
e1 = [e for e in events if e["operation_id"] == op1]
assert len(e1) == 1 and e1[0]["ok"] is True and e1[0]["backup_id"] == "mut-prod-1", e1
assert e1[0]["operation"] == "BackupService.Delete" and e1[0]["created_by"].startswith("aje")
e2 = [e for e in events if e["operation_id"] == op2]
assert e2[0]["made_backup_id"] == "b1g-mutate-b0000000" and e2[0]["cluster_id"] == "c9q-mut-stage"
lost = [l for l in calls if l.get("fault") == "lose_reply"]
assert len(lost) == 1 and lost[0]["status"] == "UNAVAILABLE" and lost[0]["operation_id"] == op3
bad = [e for e in events if not e["ok"]]
assert len(bad) == 2 and all(e["status"] == "FAILED_PRECONDITION" for e in bad), bad
assert any(l.get("fault") == "op_error" for l in calls)
seqs = [l["seq"] for l in lines]
assert seqs == sorted(seqs)
EOF
check "the call log never shows a token" sh -c "! grep -q 'Bearer\|\"tok\"\|\"other\"' '$tmp/e9.log'"

start_emulator e10 --data "$root/test/data/regress.tsv" --token 'tok=*' --operation-ms 0
e10=$addr
check "--operation-ms 0: Delete answers the operation done, the backup gone" sh -c "
	'$client' delete '$e10' tok mut-prod-3 | grep -q '^OK	mdb[a-z0-9]*	1	.*response:type.googleapis.com/google.protobuf.Empty\$' &&
	'$client' get '$e10' tok mut-prod-3 | grep -q '^NOT_FOUND'"
check "--operation-ms: 0..86400000 only" sh -c "! '$emulator' --operation-ms -1 2>/dev/null && ! '$emulator' --operation-ms x 2>/dev/null"
check "--read-only names a --token or --service-account" sh -c "! '$emulator' --token a=x --read-only b 2>/dev/null"

# Pre-encoded pages of a changed folder or cluster are made anew: the same
# deletions on a normal and a pre-encoded emulator give identical pages.
start_emulator e11 --generate gen=2500 --token 'tok=*'
e11=$addr
start_emulator e12 --generate gen=2500 --token 'tok=*' --preencoded 1000 --operation-ms 0
e12=$addr
"$client" dump "$e12" tok gen 1000 "$tmp/pre_before.bin" >/dev/null
"$client" ids "$e12" tok cluster gen-c7 >/dev/null
for e in "$e11" "$e12"; do
	for id in gen-b0000007 gen-b0001500 gen-b0002499; do
		out=$("$client" delete "$e" tok $id)
		"$client" wait "$e" tok "$(field 2 "$out")" >/dev/null
	done
done
"$client" dump "$e11" tok gen 1000 "$tmp/normal_after.bin" >"$tmp/d11"
"$client" dump "$e12" tok gen 1000 "$tmp/pre_after.bin" >"$tmp/d12"
check "pre-encoded: pages after deletions are made anew (2497 backups)" sh -c "
	! cmp -s '$tmp/pre_before.bin' '$tmp/pre_after.bin' &&
	cut -f1-3 '$tmp/d12' | grep -qx 'OK	3	2497'"
check "... byte-identical to normal mode's" cmp "$tmp/normal_after.bin" "$tmp/pre_after.bin"
check "... and ListBackups of a changed cluster too" \
	expect_prefix "$(printf 'OK\t249\tgen-b0000017,gen-b0000027,')" "$("$client" ids "$e12" tok cluster gen-c7)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
