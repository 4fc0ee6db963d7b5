#!/usr/bin/env bash
# The library's public API, as committed listings (api/server.txt: features `ssr,redis`;
# api/browser.txt: feature `hydrate` on wasm32), generated from rustdoc's JSON output by
# scripts/public-api.mjs. The test command runs this: a difference fails it, so every change to
# what an embedder can name is deliberate (and goes in the CHANGELOG).
#
#   scripts/public-api.sh            # check: exit 1 and print the diff if the API changed
#   UPDATE=1 scripts/public-api.sh   # write the new listings (then review the diff, commit)
#
# rustdoc's JSON output is unstable: RUSTC_BOOTSTRAP=1 lets this stable toolchain emit it (the
# listing format is ours and does not change with it). Only rustdoc sees it (through
# scripts/lib/rustdoc-unstable): set for cargo, RUSTC_BOOTSTRAP is part of every fingerprint and
# would re-check all dependencies; this way the steps before it (clippy, cargo doc) already built
# what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

listing() {
  local name=$1 features=$2 target=${3:-}
  local dir=target/doc
  local args=(-p sse-status --lib --no-deps --features "$features")
  if [ -n "$target" ]; then
    args+=(--target "$target")
    dir=target/$target/doc
  fi
  RUSTDOC="$PWD/scripts/lib/rustdoc-unstable" RUSTDOCFLAGS="-Z unstable-options --output-format json" \
    cargo doc "${args[@]}" >&2
  node scripts/public-api.mjs "$dir/sse_status.json" >"target/api-$name.txt"
  if [ -n "${UPDATE:-}" ]; then
    mkdir -p api
    cp "target/api-$name.txt" "api/$name.txt"
    echo "wrote api/$name.txt ($(wc -l <"api/$name.txt") lines)"
  elif ! diff -u "api/$name.txt" "target/api-$name.txt"; then
    echo "the public API ($name) changed: review the diff above; if it is meant, run UPDATE=1 scripts/public-api.sh, commit api/ and say it in CHANGELOG.md" >&2
    return 1
  else
    echo "public API ($name) unchanged: $(wc -l <"api/$name.txt") lines"
  fi
}

status=0
listing server ssr,redis || status=1
listing browser hydrate wasm32-unknown-unknown || status=1
exit $status
