#!/usr/bin/env bash
# Installs whatever is missing (idempotent), then runs the app with live reload:
# dashboard at http://127.0.0.1:3000 (override with LEPTOS_SITE_ADDR). Extra args go to cargo leptos watch.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
# The workspace has two cargo-leptos sites (this app and examples/embed): run this one.
exec cargo leptos watch --project sse-status "$@"
