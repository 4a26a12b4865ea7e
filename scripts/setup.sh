#!/bin/bash
# Install the Debian packages needed to build and test redis_backup_fdw, then
# build and install the extension and build the test programs.  Idempotent.
# The PostgreSQL it installs and builds for is $RBFDW_PG_VERSION if set (15,
# 16, 17 or 18), else the newest one installed, else the one this Debian
# release ships (12: 15, 13: 17, sid: 18).
# The extension is installed one of two ways, chosen by $RBFDW_INSTALL:
#   source   make, make install (the default: quick, for development)
#   package  scripts/package.sh builds the Debian package, apt-get installs
#            it (apt resolves its Depends) and the installed files are
#            checked (the default with CI=true)
# Either way the test programs (emulator, client tests) are built from source.
# WERROR=1 in the environment compiles with -Werror (.ci/run sets it).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit
export DEBIAN_FRONTEND=noninteractive
updated=

# No PostgreSQL yet and none asked for: the release's (its "postgresql"
# package says which), from apt's lists, fetched if there are none.
if [[ -z $PG_VERSION ]]; then
    if [[ -z $(release_pg_version) ]]; then
        [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed; run as root"
        apt-get update -q
        updated=1
    fi
    version=$(release_pg_version)
    [[ -n $version ]] || die "apt knows no \"postgresql\" package: set RBFDW_PG_VERSION"
    [[ " ${SUPPORTED_PG_VERSIONS[*]} " == *" $version "* ]] ||
        die "this release's PostgreSQL is $version; supported: ${SUPPORTED_PG_VERSIONS[*]} (set RBFDW_PG_VERSION)"
    set_pg_version "$version"
fi
say "PostgreSQL $PG_VERSION"

PACKAGES=(
    build-essential make pkg-config ca-certificates openssl procps
    "postgresql-$PG_VERSION" "postgresql-server-dev-$PG_VERSION"
    libgrpc-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler
    libssl-dev libcurl4-openssl-dev # JWT signatures, the VM metadata service
    curl python3 # the emulator self-check and test keys (make_sa_key.sh)
    clang libclang-rt-dev # the fuzz target: libFuzzer, ASan, UBSan
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root"
    say "installing ${missing[*]}"
    if [[ -z $updated ]]; then apt-get update -q; fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "all ${#PACKAGES[@]} packages installed"
fi

PKG=postgresql-$PG_VERSION-redis-backup-fdw
if [[ ${CI:-} == true ]]; then default_install=package; else default_install=source; fi
INSTALL=${RBFDW_INSTALL:-$default_install}

# check_installed_package DEB: the package DEB is what is installed, it owns
# the extension's files, those are this tree's, its shared library finds all
# its libraries, and each library it links comes from a package it Depends on.
check_installed_package() {
    local deb=$1 libdir sharedir so version depends dep_names needed soname owners o f dep ok
    version=$(dpkg-deb -f "$deb" Version)
    [[ $(dpkg-query -W -f='${db:Status-Status} ${Version}' "$PKG" 2>/dev/null) == "installed $version" ]] ||
        die "$PKG $version is not installed"
    libdir=$("$PG_CONFIG" --pkglibdir)
    sharedir=$("$PG_CONFIG" --sharedir)
    so=$libdir/redis_backup_fdw.so
    for f in "$so" "$sharedir/extension/redis_backup_fdw.control" \
        "$sharedir/extension/redis_backup_fdw--$version.sql"; do
        [[ $(dpkg-query -S "$f" 2>/dev/null) == "$PKG: $f" ]] || die "$f does not belong to $PKG"
    done
    cmp -s redis_backup_fdw.control "$sharedir/extension/redis_backup_fdw.control" ||
        die "the installed redis_backup_fdw.control is not this tree's"
    if ldd "$so" | grep -F 'not found'; then die "$so: libraries not found"; fi
    depends=$(dpkg-query -W -f='${Depends}' "$PKG")
    say "$PKG $version installed; Depends: $depends"
    mapfile -t dep_names < <(tr ',|' '\n' <<<"$depends" | sed 's/^ *//; s/[ :(].*//')
    mapfile -t needed < <(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    ((${#needed[@]})) || die "$so: no NEEDED entries"
    for soname in "${needed[@]}"; do
        mapfile -t owners < <(dpkg-query -S "*/$soname" 2>/dev/null | sed -n 's|: /.*||p' |
            tr ',' '\n' | sed 's/^ *//; s/:.*//' | sort -u)
        ok=
        for o in "${owners[@]}"; do
            for dep in "${dep_names[@]}"; do if [[ $o == "$dep" ]]; then ok=$o; fi; done
        done
        [[ -n $ok ]] || die "$so needs $soname (package ${owners[*]:-unknown}), which $PKG does not depend on"
        say "  $soname: $ok"
    done
}

jobs=$(nproc 2>/dev/null || echo 2)
case $INSTALL in
source)
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null) == installed ]]; then
        say "warning: $PKG is installed; make install overwrites its files (apt-get remove $PKG, or RBFDW_INSTALL=package)"
    fi
    say "make"
    make -s -j"$jobs"
    say "make install"
    make -s install >/dev/null
    ;;
package)
    mkdir -p "$WORK"
    bash scripts/package.sh | tee "$WORK/package.out"
    deb=$(tail -n1 "$WORK/package.out")
    [[ $deb == /*.deb && -f $deb ]] || die "scripts/package.sh printed no .deb path"
    say "apt-get install $deb"
    # --reinstall: a rebuilt package of the same version replaces the old one
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --no-install-recommends "$deb"
    check_installed_package "$deb"
    ;;
*) die "RBFDW_INSTALL=$INSTALL: use source or package" ;;
esac
say "make test-programs"
make -s -j"$jobs" test-programs
say "done"
