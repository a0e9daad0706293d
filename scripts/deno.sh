#!/bin/sh
# Prints the path of the pinned Deno, installing it first where it is not
# there: the `deno` on PATH if it is the pinned version, else a copy in
# bottle's cache dir, fetched from the npm package where npm exists and by
# Deno's official installer otherwise. Nothing is installed system-wide.
#   BOTTLE_DENO_DIR   where the cached copies live (default: $XDG_CACHE_HOME/bottle/deno)
set -eu

DENO_VERSION=2.9.6

if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -n1 | grep -q "^deno $DENO_VERSION "; then
  command -v deno
  exit 0
fi

cache=${BOTTLE_DENO_DIR:-${XDG_CACHE_HOME:-${HOME:?set HOME or BOTTLE_DENO_DIR}/.cache}/bottle/deno}
dir="$cache/$DENO_VERSION"
bin="$dir/deno"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | head -n1 | grep -q "^deno $DENO_VERSION "; then
  echo "$bin"
  exit 0
fi

say() { echo "bottle: $*" >&2; }
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) npm_pkg=linux-x64-glibc triple=x86_64-unknown-linux-gnu ;;
  Linux/aarch64 | Linux/arm64) npm_pkg=linux-arm64-glibc triple=aarch64-unknown-linux-gnu ;;
  Darwin/x86_64) npm_pkg=darwin-x64 triple=x86_64-apple-darwin ;;
  Darwin/arm64) npm_pkg=darwin-arm64 triple=aarch64-apple-darwin ;;
  *) say "no Deno build for $(uname -s) $(uname -m)"; exit 2 ;;
esac

mkdir -p "$dir"
work=$(mktemp -d "$cache/.install.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "installing Deno $DENO_VERSION into $dir"
if command -v npm >/dev/null 2>&1; then
  # The npm package carries the real binary (no install scripts run).
  (cd "$work" && npm pack --silent "@deno/$npm_pkg@$DENO_VERSION" >/dev/null) ||
    { say "npm could not fetch @deno/$npm_pkg@$DENO_VERSION"; exit 1; }
  tar -xzf "$work"/deno-*.tgz -C "$work"
  found=$(find "$work/package" -type f -name deno | head -n1)
elif command -v curl >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1; then
  curl -fsSL -o "$work/deno.zip" \
    "https://github.com/denoland/deno/releases/download/v$DENO_VERSION/deno-$triple.zip" ||
    { say "could not download Deno $DENO_VERSION"; exit 1; }
  unzip -q "$work/deno.zip" -d "$work"
  found="$work/deno"
else
  say "installing Deno needs npm, or curl and unzip"
  exit 1
fi
[ -n "$found" ] && [ -f "$found" ] || { say "no deno binary in the download"; exit 1; }
chmod 0755 "$found"
"$found" --version >/dev/null || { say "the downloaded deno does not run here"; exit 1; }
mv "$found" "$bin.tmp" && mv "$bin.tmp" "$bin"
echo "$bin"
