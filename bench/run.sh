#!/usr/bin/env bash
# Runs every benchmark; each prints its numbers and ratios measured side by
# side in the same run. Needs a running Docker engine (and, for some, Debian
# packages the script names).
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/*_bench.ts; do
  echo "== $b"
  deno run --allow-all "$b"
done
