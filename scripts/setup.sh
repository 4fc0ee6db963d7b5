#!/usr/bin/env bash
# Installs what sse-status needs to build, run and test, skipping whatever is already there.
# Safe to run again (a run that finds everything takes seconds). Expects rustup's Rust, node, npm.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen` crate pinned in Cargo.toml
CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_VERSION=132           # Debian's binaryen 108 breaks the .wasm: use npm's

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    say "adding $comp"; rustup component add "$comp"
  fi
done

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # No --locked: its lockfile pins a webpki-roots version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (debug build, ~7 minutes)"
  # no_downloads: use the tools on PATH instead of fetching binaries (this machine is offline).
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads --debug --force
fi

if [ "$(wasm-opt --version 2>/dev/null | grep -o 'version [0-9]*' | awk '{print $2}')" != "$BINARYEN_VERSION" ]; then
  say "installing binaryen@$BINARYEN_VERSION (wasm-opt) into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi

# Debian packages: the browser for Playwright (it must not download one here), and the real
# Redis and nginx that the fleet tests start themselves (never as system services).
apt_pkgs=()
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium chromium-driver)
[ -x /usr/bin/redis-server ] || apt_pkgs+=(redis-server)
[ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  say "installing Debian packages: ${apt_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: the packages must not start system services (tests start their own).
  [ -e /usr/sbin/policy-rc.d ] \
    || $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  $SUDO apt-get install -y --no-install-recommends "${apt_pkgs[@]}" \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${apt_pkgs[@]}"; }
fi

if [ -f end2end/package-lock.json ]; then
  if [ ! -d end2end/node_modules ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing end-to-end test dependencies (npm ci)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
fi
say "ready"
