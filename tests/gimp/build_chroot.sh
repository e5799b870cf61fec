#!/usr/bin/env bash
# Build (or reuse) a Debian trixie chroot with GIMP 3 for the GIMP plug-in tests.
#
# GIMP 3 is only packaged for Debian trixie, so the tests run it inside a debootstrap chroot.
# The chroot is cached between runs: ${SMARTBRUSH_TEST_CACHE:-$HOME/.cache/smartbrush-tests}/gimp-trixie.
# Two stamp files, written only after the step succeeded, make the build idempotent:
#   .smartbrush-base      debootstrap finished (otherwise the half-built tree is deleted and rebuilt)
#   .smartbrush-packages  the exact package list below is installed (a changed list re-runs apt only)
# /proc is mounted only while apt runs and always unmounted afterwards (GIMP itself needs no /proc).
# Prints the chroot path on the last line of stdout. Needs root (debootstrap and chroot do).
set -euo pipefail

SUITE=trixie
MIRROR=${SMARTBRUSH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${SMARTBRUSH_TEST_CACHE:-$HOME/.cache/smartbrush-tests}
ROOT=$CACHE/gimp-trixie
PACKAGES=(
    gimp python3-gi gir1.2-gimp-3.0 python3-zmq python3-msgpack  # GIMP 3 + the plug-in's Python deps
    xvfb xauth xdotool x11-apps imagemagick                      # dialog test: display, keys, screenshot
    fonts-dejavu-core librsvg2-common                            # readable text and SVG icons in the dialog
)

log() { echo "build_chroot: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "needs root (debootstrap/chroot); run as root or build the chroot once with sudo"
    exit 1
fi

mounted_below() {  # mount points inside $1, deepest first
    awk -v root="$1" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts | sort -r
}

unmount_all() {
    local m
    for m in $(mounted_below "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}

mkdir -p "$CACHE"
# One builder at a time (pytest workers, .ci/run and a developer may race).
exec 9>"$CACHE/gimp-trixie.lock"
flock 9

unmount_all "$ROOT"  # a previous run killed mid-apt may have left /proc mounted

if [ ! -f "$ROOT/.smartbrush-base" ]; then
    if [ -e "$ROOT" ]; then
        log "removing half-built chroot $ROOT"
        [ -z "$(mounted_below "$ROOT")" ] || { log "still mounted below $ROOT; refusing to delete"; exit 1; }
        rm -rf --one-file-system "$ROOT"
    fi
    if ! command -v debootstrap >/dev/null; then
        log "debootstrap missing; installing it"
        { apt-get update -qq && apt-get install -y -qq debootstrap; } >&2 || {
            # The host's apt may be locked or unavailable: unpack the .deb by hand instead.
            tmp=$(mktemp -d)
            (cd "$tmp" && apt-get download debootstrap >&2 && dpkg-deb -x debootstrap_*.deb x)
            export DEBOOTSTRAP_DIR=$tmp/x/usr/share/debootstrap
            PATH=$tmp/x/usr/sbin:$PATH
        }
    fi
    for attempt in 1 2; do  # one retry: a flaky mirror shouldn't fail a CI run
        log "debootstrap $SUITE into $ROOT (about a minute; attempt $attempt)"
        if debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2; then
            touch "$ROOT/.smartbrush-base"
            break
        fi
        unmount_all "$ROOT"
        [ -z "$(mounted_below "$ROOT")" ] && rm -rf --one-file-system "$ROOT"
    done
    [ -f "$ROOT/.smartbrush-base" ] || { log "debootstrap failed"; exit 1; }
fi

want="${PACKAGES[*]}"
if [ "$(cat "$ROOT/.smartbrush-packages" 2>/dev/null)" != "$want" ]; then
    rm -f "$ROOT/.smartbrush-packages"
    log "installing ${PACKAGES[*]} (about a minute)"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    trap 'unmount_all "$ROOT"' EXIT
    mount -t proc proc "$ROOT/proc" || log "could not mount /proc; trying apt without it"
    apt=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
         DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3)
    "${apt[@]}" update >&2
    "${apt[@]}" install -y --no-install-recommends "${PACKAGES[@]}" >&2
    "${apt[@]}" clean
    unmount_all "$ROOT"
    trap - EXIT
    # Smoke check: GIMP's Python sees every module the plug-in needs.
    chroot "$ROOT" /usr/bin/env -i /usr/bin/python3 -c \
        "import gi, zmq, msgpack; gi.require_version('Gimp', '3.0')" >&2
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin gimp-console-3.0 --version >&2
    echo "$want" >"$ROOT/.smartbrush-packages"
fi

mkdir -p "$ROOT/root"
echo "$ROOT"
