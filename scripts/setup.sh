#!/bin/bash
# Install the Debian packages needed to build and test redis_backup_fdw, then
# build and install the extension and build the test programs.  Idempotent.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit

PACKAGES=(
    build-essential make pkg-config ca-certificates openssl procps
    postgresql-15 postgresql-server-dev-15
    libgrpc-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler
    clang libclang-rt-14-dev # the fuzz target: libFuzzer, ASan, UBSan
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "all ${#PACKAGES[@]} packages installed"
fi

jobs=$(nproc 2>/dev/null || echo 2)
say "make"
make -s -j"$jobs"
say "make install"
make -s install >/dev/null
say "make test-programs"
make -s -j"$jobs" test-programs
say "done"
