#!/bin/bash
# Build the Debian packages postgresql-N-redis-backup-fdw (debian/), one for
# each PostgreSQL version in debian/pgversions that this Debian release
# supports, with `dpkg-buildpackage -us -uc -b` from a copy of the source
# tree whose debian/control is made anew from debian/control.in
# (`pg_buildext updatecontrol`), and put them in $RBFDW_DEB_DIR (default
# $RBFDW_WORK/deb, i.e. /tmp/rbfdw/deb).  Installs the build dependencies
# first (as root; `apt-get update` only if something is missing, like
# setup.sh).  Does not install the packages.  The last line printed is the
# path of the .deb for the PostgreSQL the scripts use (scripts/lib.sh).
#   bash scripts/package.sh
#   WERROR=1 bash scripts/package.sh       # compile with -Werror (.ci/run does)
#   RBFDW_DEB_DIR=/srv/debs bash scripts/package.sh
# The copy is the files git knows about plus untracked ones it does not ignore
# (the working tree as it is, uncommitted changes included), or, outside a git
# checkout, the whole tree (the package's clean step removes build outputs).
# The build tree and its log are kept in $RBFDW_WORK/deb-build.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit

need_pg
PKG=postgresql-$PG_VERSION-redis-backup-fdw
OUT=${RBFDW_DEB_DIR:-$WORK/deb}
[[ $OUT == /* ]] || OUT=$PWD/$OUT
BUILD=$WORK/deb-build

# --- tools and build dependencies ------------------------------------------
export DEBIAN_FRONTEND=noninteractive
updated=
apt_install() {
    [[ $(id -u) == 0 ]] || die "missing packages ($*); run as root"
    say "installing $*"
    if [[ -z $updated ]]; then apt-get update -q; updated=1; fi
    apt-get install -y -q --no-install-recommends "$@"
}

tools=(build-essential dpkg-dev debhelper ca-certificates postgresql-server-dev-all)
missing=()
for p in "${tools[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi

# --- one version everywhere ------------------------------------------------
# redis_backup_fdw.control's default_version is the version.  debian/changelog
# has it as it is; META.json has it as PGXN requires, a SemVer 1.0.0 version
# (0.1 -> 0.1.0), in version and in provides; provides names the install
# script, which must exist.
version=$(sed -n "s/^default_version *= *'\\(.*\\)'/\\1/p" redis_backup_fdw.control)
[[ $version =~ ^[0-9]+(\.[0-9]+){1,2}$ ]] ||
    die "redis_backup_fdw.control: default_version '$version' is not N.N or N.N.N"
semver=$version
[[ $semver =~ ^[0-9]+\.[0-9]+$ ]] && semver=$semver.0
deb_version=$(dpkg-parsechangelog -S Version)
read -r meta_version meta_provides meta_file < <(perl -MJSON::PP -0777 -ne \
    '$m = decode_json($_); $p = $m->{provides}{redis_backup_fdw};
     print "$m->{version} $p->{version} $p->{file}\n"' META.json) ||
    die "META.json: cannot read its versions"
bad=()
[[ $deb_version == "$version" ]] || bad+=("debian/changelog has $deb_version")
[[ $meta_version == "$semver" ]] || bad+=("META.json version is $meta_version, not $semver")
[[ $meta_provides == "$semver" ]] || bad+=("META.json provides.redis_backup_fdw.version is $meta_provides, not $semver")
[[ $meta_file == "redis_backup_fdw--$version.sql" ]] || bad+=("META.json provides.redis_backup_fdw.file is $meta_file")
[[ -f redis_backup_fdw--$version.sql ]] || bad+=("redis_backup_fdw--$version.sql does not exist")
((${#bad[@]} == 0)) ||
    die "redis_backup_fdw.control has default_version '$version', but: $(IFS=';'; echo "${bad[*]}")"
say "version $version (control file, debian/changelog, META.json $semver agree)"

# --- copy of the source tree -----------------------------------------------
rm -rf "$BUILD"
src=$BUILD/redis-backup-fdw-$version
mkdir -p "$src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    say "copying the source tree (git ls-files) to $src"
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [[ -e $f || -L $f ]] && printf '%s\0' "$f"
        done |
        tar -C "$ROOT" --null -T - -cf - | tar -C "$src" -xf -
else
    say "copying the source tree (no git checkout: everything) to $src"
    tar -C "$ROOT" --exclude=./.git -cf - . | tar -C "$src" -xf -
fi

# debian/control for the PostgreSQL versions of this release, then its
# Build-Depends, installed by apt from the file itself.
(cd "$src" && pg_buildext updatecontrol) || die "pg_buildext updatecontrol failed"
grep -q "^Package: $PKG\$" "$src/debian/control" ||
    die "debian/control has no $PKG: is PostgreSQL $PG_VERSION supported by this release and in debian/pgversions?"

if ! unmet=$((cd "$src" && dpkg-checkbuilddeps debian/control) 2>&1); then
    [[ $(id -u) == 0 ]] || die "$unmet; run as root"
    say "installing the build dependencies (${unmet##*: })"
    if [[ -z $updated ]]; then apt-get update -q; updated=1; fi
    apt-get build-dep -y -q --no-install-recommends "$src"
    (cd "$src" && dpkg-checkbuilddeps debian/control)
else
    say "build dependencies installed"
fi

# --- build -----------------------------------------------------------------
log=$BUILD/build.log
jobs=$(nproc 2>/dev/null || echo 2)
say "dpkg-buildpackage -us -uc -b${WERROR:+ (WERROR=$WERROR)}, log $log"
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "dpkg-buildpackage failed; the whole log is $log"
fi
grep -E '^dpkg-deb: building package' "$log" | sed "s/^/${0##*/}: /"

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb_name=${PKG}_${version}_${arch}.deb
[[ -f $BUILD/$deb_name ]] || die "dpkg-buildpackage did not produce $deb_name"

# --- what the package holds ------------------------------------------------
contents=$(dpkg-deb -c "$BUILD/$deb_name" | awk '{print $NF}')
for f in "./usr/lib/postgresql/$PG_VERSION/lib/redis_backup_fdw.so" \
    "./usr/share/postgresql/$PG_VERSION/extension/redis_backup_fdw.control" \
    "./usr/share/postgresql/$PG_VERSION/extension/redis_backup_fdw--$version.sql" \
    ./usr/share/doc/$PKG/copyright; do
    grep -qxF "$f" <<<"$contents" || die "$deb_name lacks $f"
done
grep -qE "^\./usr/share/doc/$PKG/README\.md(\.gz)?$" <<<"$contents" || die "$deb_name lacks the README"
if stray=$(grep -E 'emulator|client_test|/test/|/sql/|/expected/|\.proto$|\.pb-c\.[ch]$' <<<"$contents"); then
    die "$deb_name holds files that are not for DBAs: $stray"
fi
depends=$(dpkg-deb -f "$BUILD/$deb_name" Depends)
say "Depends: $depends"

# --- into $OUT ---------------------------------------------------------------
mkdir -p "$OUT"
rm -f "$OUT"/postgresql-*-redis-backup-fdw_*.deb "$OUT"/postgresql-*-redis-backup-fdw-dbgsym_*.deb \
    "$OUT"/redis-backup-fdw_*.buildinfo "$OUT"/redis-backup-fdw_*.changes
shopt -s nullglob
for f in "$BUILD"/*.deb "$BUILD"/*.buildinfo "$BUILD"/*.changes; do
    mv -f "$f" "$OUT/"
done
chmod 0644 "$OUT/$deb_name"
say "built $OUT/$deb_name"
echo "$OUT/$deb_name"
