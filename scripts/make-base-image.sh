#!/usr/bin/env bash
# Builds the local `debian:bookworm-slim` base image with debootstrap.
# No container registry is reachable on the machines bottle is developed and
# tested on, so the images' `FROM debian:bookworm-slim` is satisfied by an image
# made here from Debian's package archive. Users with a registry never need it.
set -euo pipefail

tag="${1:-debian:bookworm-slim}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi

# The mirror is the one apt already uses on this host (override: DEBIAN_MIRROR).
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -n1 || true)
fi
[ -n "$mirror" ] || { echo "make-base-image: no Debian mirror found; set DEBIAN_MIRROR" >&2; exit 2; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# Trim what a slim image does not carry.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "built base image $tag"
