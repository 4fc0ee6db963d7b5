#!/usr/bin/env bash
# Installs what sse-status needs to build, run and test, skipping whatever is already there.
# Safe to run again (a run that finds everything takes seconds). Expects rustup's Rust, node, npm.
#
# What it changes outside this repository: rustup's wasm32 target and the rustfmt/clippy
# components, and Debian packages (see apt_pkgs below). Everything else goes into `.tools/`
# inside the repository: cargo-leptos and wasm-bindgen-cli (`cargo install --root .tools`,
# unless the exact versions are already on PATH) and npm's binaryen (wasm-opt). Nothing that
# was on the machine before is replaced, and no system-wide file is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen` version in Cargo.lock
CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_VERSION=132           # Debian's binaryen 108 breaks the .wasm: use npm's
# Older ESRs (140, still in bookworm's main pocket) lack WebDriver BiDi's network emulation, which
# the Firefox suite's offline test needs (puppeteer's setOfflineMode); bookworm-security has 153.
FIREFOX_ESR_MIN=153

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    say "adding $comp"; rustup component add "$comp"
  fi
done

# The pinned tools go into .tools/bin (first on PATH for every script), never over a global
# install the user keeps for other projects.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION into .tools/ (a few minutes)"
  # No --locked: its lockfile pins a webpki-roots version the registry no longer serves.
  # A debug build without debug info (a few minutes less; only examples/csr/build.sh runs it,
  # on one small wasm file).
  CARGO_PROFILE_DEV_DEBUG=0 cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" \
    --debug --root .tools --force
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION into .tools/ (debug build, ~7 minutes)"
  # no_downloads: use the tools on PATH instead of fetching binaries (this machine is offline).
  # Debug build, no debug info: the compile (548 crates, swc among them) is what takes the time.
  CARGO_PROFILE_DEV_DEBUG=0 cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked \
    --features no_downloads --debug --root .tools --force
fi

if [ "$(wasm-opt --version 2>/dev/null | grep -o 'version [0-9]*' | awk '{print $2}')" != "$BINARYEN_VERSION" ]; then
  say "installing binaryen@$BINARYEN_VERSION (wasm-opt) into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi

# Debian packages: the browsers (Chromium for Playwright, which must not download one here;
# Firefox ESR and WebKitGTK's WebDriver + MiniBrowser for the cross-engine suite, with Xvfb for
# MiniBrowser's X display), and the real Redis (server and Sentinel) and nginx that the fleet
# tests start themselves (never as system services).
apt_pkgs=()
apt_update_first=""
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_pkgs+=(chromium-driver)
firefox_major=$(/usr/bin/firefox-esr --version 2>/dev/null | grep -o '[0-9][0-9]*' | head -1 || true)
if [ "${firefox_major:-0}" -lt "$FIREFOX_ESR_MIN" ]; then
  apt_pkgs+=(firefox-esr)
  # The security pocket moves fast: a stale package list would install an older ESR.
  apt_update_first=1
fi
[ -x /usr/bin/WebKitWebDriver ] || apt_pkgs+=(webkit2gtk-driver)
[ -x /usr/bin/Xvfb ] && [ -x /usr/bin/xvfb-run ] || apt_pkgs+=(xvfb)
[ -x /usr/bin/xauth ] || apt_pkgs+=(xauth)
[ -x /usr/bin/redis-server ] || apt_pkgs+=(redis-server)
[ -x /usr/bin/redis-sentinel ] || apt_pkgs+=(redis-sentinel)
[ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  say "installing Debian packages: ${apt_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The packages must not start system services (tests start their own). A policy-rc.d that
  # answers 101 does that; we put one there only for this install and remove it afterwards,
  # so later apt-get runs on this machine behave as before. One that was already there stays.
  policy=/usr/sbin/policy-rc.d
  ours=""
  if [ ! -e "$policy" ]; then
    $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
    ours=1
    # Removed however this script ends (a failed install included).
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  [ -z "$apt_update_first" ] || $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${apt_pkgs[@]}" \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${apt_pkgs[@]}"; }
  if [ -n "$ours" ]; then
    $SUDO rm -f "$policy"
    trap - EXIT
  fi
fi

# The end-to-end test dependencies (Playwright, puppeteer-core for Firefox): `npm ci` whenever
# end2end/node_modules was not installed from this exact package-lock.json (a stamp with the
# lock's checksum, not file times: a checkout, copy or revert can leave an older time on a changed
# lock). Neither package may download a browser here; puppeteer-core never does, and the
# variables make sure.
if [ -f end2end/package-lock.json ]; then
  lock_sum=$(sha256sum end2end/package-lock.json | cut -d' ' -f1)
  stamp=end2end/node_modules/.sse-status-lock.sha256
  if [ ! -d end2end/node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    say "installing end-to-end test dependencies (npm ci)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund)
    echo "$lock_sum" > "$stamp"
  fi
fi
say "ready"
