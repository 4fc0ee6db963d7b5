#!/usr/bin/env bash
# Build side (host): builds examples/csr, a client-side-rendered app, without cargo-leptos.
# The browser bundle: cargo (wasm32, profile wasm-release) -> the wasm-bindgen CLI (--target web)
# -> wasm-opt -Oz, into examples/csr/site/ with index.html and the CSS; then the server binary
# (target/debug/csr). Idempotent: re-running rebuilds only what changed. Run from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
source scripts/env.sh

# The size-optimised profile by default; the test command builds with CSR_PROFILE=dev (the
# tests are about behaviour, and a dev build of the dependencies is much quicker).
profile="${CSR_PROFILE:-wasm-release}"
profile_dir="$profile"
[[ "$profile" == dev ]] && profile_dir=debug
target_dir="${CARGO_TARGET_DIR:-$root/target}"
wasm="$target_dir/wasm32-unknown-unknown/$profile_dir/csr.wasm"
site="$here/site"
pkg="$site/pkg"

# The CLI must equal the wasm-bindgen crate in Cargo.lock, or the bundle does not load.
if ! command -v wasm-bindgen >/dev/null; then
  echo "no wasm-bindgen CLI on PATH: run scripts/setup.sh" >&2
  exit 1
fi
cli_version="$(wasm-bindgen --version | awk '{print $2}')"
lock_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
if [[ "$cli_version" != "$lock_version" ]]; then
  echo "wasm-bindgen CLI $cli_version on PATH, but Cargo.lock has wasm-bindgen $lock_version: run scripts/setup.sh" >&2
  exit 1
fi

echo "== browser: cargo build -p csr --lib (wasm32, --profile $profile)"
cargo build -p csr --lib --target wasm32-unknown-unknown --features csr --profile "$profile"

mkdir -p "$pkg"
if [[ "$pkg/csr_bg.wasm" -nt "$wasm" && -f "$pkg/csr.js" ]]; then
  echo "== browser: $pkg is up to date"
else
  echo "== browser: wasm-bindgen --target web -> $pkg"
  # Into a fresh directory first, so a failed step never leaves a half-written pkg/ behind.
  tmp="$(mktemp -d "$site/.pkg.XXXXXX")"
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  wasm-bindgen --target web --no-typescript --out-dir "$tmp" "$wasm"
  # Binaryen 132 from npm (scripts/setup.sh); Debian's old wasm-opt breaks the bundle, so an
  # older one (or none) is skipped: the bundle is bigger but correct.
  opt_version="$( (wasm-opt --version 2>/dev/null || true) | awk '{print $3}')"
  if [[ "$opt_version" =~ ^[0-9]+$ && "$opt_version" -ge 116 ]]; then
    echo "== browser: wasm-opt -Oz (binaryen $opt_version)"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      "$tmp/csr_bg.wasm" -o "$tmp/csr_bg.wasm"
  else
    echo "== browser: no wasm-opt >= 116 on PATH (found: ${opt_version:-none}); bundle left unoptimised" >&2
  fi
  rm -rf "$pkg"
  mv "$tmp" "$pkg"
  trap - EXIT
fi
# The page and its styles: the banner's own stylesheet comes from the library as it is.
cp "$here/index.html" "$here/main.css" "$root/style/sse-status-banner.css" "$site/"
printf '== browser: %s (%s KB, %s KB gzip)\n' "$pkg/csr_bg.wasm" \
  "$(( $(wc -c < "$pkg/csr_bg.wasm") / 1024 ))" "$(( $(gzip -c "$pkg/csr_bg.wasm" | wc -c) / 1024 ))"

echo "== server: cargo build -p csr --bin csr --features ssr"
cargo build -p csr --bin csr --features ssr
echo "== built: serve it with $target_dir/debug/csr (--addr, default 127.0.0.1:3100)"
