#!/usr/bin/env bash
# The page's release wasm against its size budget (issue 18): builds the release browser bundle
# (`cargo leptos build --release --frontend-only`, which replaces target/site; the server is not
# part of the subject, so it is not built) and fails when
# `gzip -9` of target/site/pkg/sse-status.wasm is over WASM_GZIP_BUDGET bytes (default 170000).
#
#   scripts/wasm-size.sh
#   WASM_GZIP_BUDGET=160000 scripts/wasm-size.sh
#   SKIP_BUILD=1 scripts/wasm-size.sh     # measure the site already built
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

budget=${WASM_GZIP_BUDGET:-170000}
wasm=target/site/pkg/sse-status.wasm

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo leptos build --release --project sse-status --frontend-only
fi
if [ ! -f "$wasm" ]; then
  echo "wasm size: $wasm is missing (did the release build run?)" >&2
  exit 1
fi

raw=$(wc -c <"$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
printf 'release wasm: %s B raw, %s B gzip -9 (budget %s B gzip)\n' "$raw" "$gz" "$budget"
if [ "$gz" -gt "$budget" ]; then
  printf 'wasm size: FAILED: %s is %s B gzip -9, over the budget of %s B by %s B\n' \
    "$wasm" "$gz" "$budget" "$((gz - budget))" >&2
  exit 1
fi
