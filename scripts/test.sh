#!/usr/bin/env bash
# Installs whatever is missing (idempotent), then runs every check and test:
# format, clippy (server and browser builds), unit + server tests, and Playwright end-to-end
# tests in Debian's Chromium against real faults.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"
# A test run builds once: incremental caches would only cost disk space (several GB) and time.
export CARGO_INCREMENTAL=0

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
started=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (server: --features ssr)"
cargo clippy --all-targets --features ssr -- -D warnings

step "clippy (browser: --features hydrate, wasm32)"
cargo clippy --lib --features hydrate --target wasm32-unknown-unknown -- -D warnings

step "unit and server tests (real sockets)"
cargo test --features ssr

step "end-to-end tests (Playwright + Chromium)"
cargo leptos end-to-end

printf '\n\033[1;32mall checks passed in %ss\033[0m\n' "$(( $(date +%s) - started ))"
