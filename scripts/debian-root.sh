#!/bin/bash
# Run a command on this source tree inside a clean Debian root of another
# release, as root, the way a new user on that release would:
#   bash scripts/debian-root.sh SUITE COMMAND...
#   bash scripts/debian-root.sh trixie bash scripts/test.sh   # PostgreSQL 17
#   bash scripts/debian-root.sh sid bash scripts/demo.sh      # PostgreSQL 18
# SUITE is a Debian suite the machine's apt mirror serves (bookworm, trixie,
# sid, ...).  The root is made with `debootstrap --variant=minbase` from that
# mirror once and kept as a tarball in $RBFDW_ROOTS (default
# /var/cache/redis_backup_fdw/roots; remade when older than
# $RBFDW_ROOT_MAX_AGE_DAYS, default 7); each run unpacks a fresh copy (its
# own: runs may overlap, each with its own RBFDW_PGPORT), puts
# the tree in it as a clean clone would have it (the files git knows, plus
# untracked files it does not ignore) at /src/redis_backup_fdw, runs COMMAND
# there and deletes the copy.  Downloaded .debs are kept per suite in
# $RBFDW_ROOTS/SUITE-debs (hard-linked into each copy before the run and
# back after it: runs that overlap each have their own apt cache and lock),
# so a second run downloads nothing.
#
# The command runs in private mount and PID namespaces (unshare): /proc,
# /dev and a fresh /dev/shm are mounted for it, and when it exits every
# process it left (PostgreSQL, emulators) is killed with it and the mounts
# vanish.  The exit status is the command's.
#
# RBFDW_ROOT_RESULTS=DIR copies the tree's pg_regress output (.regress:
# results/, regression.diffs) to DIR/SUITE before the copy is deleted.
#
# What is done to the root that a user's machine would not need: apt is told
# not to check Release files' Valid-Until (the mirror may be a dated
# snapshot, whose sid Release file has expired).  The environment passed in
# is PATH, HOME, LANG and the CI, WERROR and RBFDW_* variables.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit

(($# >= 2)) || die "usage: $0 SUITE COMMAND..."
SUITE=$1
shift
[[ $SUITE =~ ^[a-z][a-z0-9-]*$ ]] || die "not a Debian suite: $SUITE"
[[ $(id -u) == 0 ]] || die "run as root (debootstrap, chroot, mounts)"

CACHE=${RBFDW_ROOTS:-/var/cache/redis_backup_fdw/roots}
MAX_AGE_DAYS=${RBFDW_ROOT_MAX_AGE_DAYS:-7}
TARBALL=$CACHE/$SUITE.tar.gz
DEBS=$CACHE/$SUITE-debs
RUN=$CACHE/run-$SUITE-$$

# mirror: the URI of the machine's Debian archive (deb822 sources first,
# then the one-line format).
mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri=$(awk 'tolower($1) == "uris:" && $2 !~ /security/ {print $2; exit}' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    return 1
}

# --- the root's tarball ------------------------------------------------------
mkdir -p "$CACHE" "$DEBS"
if [[ ! -s $TARBALL ]] || [[ -n $(find "$TARBALL" -mtime +"$MAX_AGE_DAYS" 2>/dev/null) ]]; then
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }
    fi
    url=$(mirror) || die "no Debian mirror found in /etc/apt/sources.list(.d)"
    say "debootstrap --variant=minbase $SUITE from $url"
    rm -rf "$RUN"
    if ! debootstrap --variant=minbase "$SUITE" "$RUN" "$url" >"$CACHE/$SUITE-debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE/$SUITE-debootstrap.log" >&2
        die "debootstrap failed; log $CACHE/$SUITE-debootstrap.log"
    fi
    tar -C "$RUN" -czf "$TARBALL.$$" . && mv -f "$TARBALL.$$" "$TARBALL"
    rm -rf "$RUN"
fi

# --- a fresh copy with this tree in it ---------------------------------------
# Copies left by runs that were killed: their processes died with their PID
# namespaces, so only the files are left to remove.
for d in "$CACHE"/run-"$SUITE"-*; do
    [[ -d $d ]] || continue
    pid=${d##*-}
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && continue
    rm -rf "$d"
done
mkdir -p "$RUN"
tar -C "$RUN" -xzf "$TARBALL"
echo 'Acquire::Check-Valid-Until "false";' >"$RUN/etc/apt/apt.conf.d/99rbfdw-snapshot-mirror"
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$RUN/etc/apt/apt.conf.d/99rbfdw-keep-debs"
cp -L /etc/resolv.conf "$RUN/etc/resolv.conf" 2>/dev/null || true
src=$RUN/src/redis_backup_fdw
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [[ -e $f || -L $f ]] && printf '%s\0' "$f"
        done |
        tar --null -T - -cf - | tar -C "$src" -xf -
else
    tar --exclude=./.git -cf - . | tar -C "$src" -xf -
fi

# The .debs downloaded before, for apt to find in its own cache.
find "$DEBS" -maxdepth 1 -name '*.deb' -exec ln -f -t "$RUN/var/cache/apt/archives" {} +

# --- run it ------------------------------------------------------------------
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
while IFS='=' read -r name _; do
    [[ $name == CI || $name == WERROR || $name == RBFDW_* ]] || continue
    [[ $name == RBFDW_ROOTS || $name == RBFDW_ROOT_* ]] && continue
    envs+=("$name=${!name}")
done < <(env)

say "running in a clean $SUITE root: $*"
rc=0
unshare --mount --pid --fork --propagation private -- /bin/bash -c '
    set -e
    r=$1
    shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    exec chroot "$r" /usr/bin/env -i "$@"
' rbfdw-root "$RUN" "${envs[@]}" /bin/bash -c 'cd /src/redis_backup_fdw && exec "$@"' rbfdw-cmd "$@" || rc=$?
find "$RUN/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec ln -f -t "$DEBS" {} + 2>/dev/null || true
if [[ -n ${RBFDW_ROOT_RESULTS:-} && -d $src/.regress ]]; then
    rm -rf "${RBFDW_ROOT_RESULTS:?}/$SUITE"
    mkdir -p "$RBFDW_ROOT_RESULTS/$SUITE"
    cp -a "$src/.regress/." "$RBFDW_ROOT_RESULTS/$SUITE/"
    say "pg_regress output copied to $RBFDW_ROOT_RESULTS/$SUITE"
fi
rm -rf "$RUN"
exit "$rc"
