#!/bin/sh
# Install what the test bed (tests/testbed) needs on Debian bookworm, as root.
# Idempotent: installs only what is missing and runs `apt-get update` at most once.
#
#   dockerd 20.10 ......... docker.io          (Debian's Docker Engine)
#   registry 2.8 .......... docker-registry    (distribution, token auth)
#   base image rootfs ..... debootstrap        (testbed/python:3 from Debian's archive)
#   tiny base image ....... busybox-static     (testbed/busybox:latest)
#   bridge for dockerd .... iproute2; iptables (the bed's NAT rules for the 28.5 engines)
#   docker-init ........... tini (sid's docker-init links to bookworm's tini-static)
#   sid's packages ........ debian-archive-keyring: the bed itself (tests/testbed/engines.py,
#                           on `make testbed`) fetches sid's docker.io 28.5, containerd 2.1
#                           and docker-buildx 0.29 with a private apt config and unpacks
#                           them under its cache with dpkg -x; nothing is installed.
#   buildx ................ docker-buildx from trixie for the system's docker CLI: bookworm
#                           lacks the package; the trixie .deb installs with dpkg -i and
#                           works as a CLI plugin against dockerd 20.10 (the bed's tests use
#                           sid's 0.29 instead). Fetched with a private apt config so the
#                           system's sources.list is never touched.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-testbed-deps.sh: run as root (apt-get, dpkg)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
UPDATED=""
apt_update_once() {
    if [ -z "$UPDATED" ]; then
        apt-get update -q
        UPDATED=1
    fi
}

# Debian's docker.io only where no Docker Engine is installed: a runner image ships its
# own (docker-ce/moby), and installing docker.io beside it would conflict or replace it.
engine=""
command -v dockerd >/dev/null 2>&1 || engine="docker.io"

missing=""
for pkg in $engine docker-registry debootstrap busybox-static iproute2 iptables tini \
    debian-archive-keyring ca-certificates; do
    if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    apt_update_once
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -q --no-install-recommends $missing
fi

# The Debian docker-registry package starts a system service on :5000 when an init
# system runs; the test bed starts its own instance, so the packaged one is not needed.

if ! docker buildx version >/dev/null 2>&1; then
    T="$(mktemp -d)"
    trap 'rm -rf "$T"' EXIT
    mkdir -p "$T/lists/partial" "$T/archives/partial"
    echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
        >"$T/sources.list"
    O="-o Dir::Etc::sourcelist=$T/sources.list -o Dir::Etc::sourceparts=/dev/null"
    O="$O -o Dir::State::Lists=$T/lists -o Dir::Cache::Archives=$T/archives"
    # shellcheck disable=SC2086  # $O holds several options
    apt-get $O update -q
    # shellcheck disable=SC2086
    (cd "$T" && apt-get $O download docker-buildx)
    dpkg -i "$T"/docker-buildx_*.deb
    docker buildx version
fi

echo "test bed dependencies present: $(dockerd --version 2>/dev/null | head -1); $(docker buildx version)"
