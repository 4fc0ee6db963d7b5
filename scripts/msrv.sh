#!/usr/bin/env bash
# The library's minimum supported Rust version (`rust-version` in Cargo.toml), checked without an
# older toolchain (none can be installed offline): it must be at least the highest
# `rust-version` any dependency of the library declares, on each side the library ships (server:
# `ssr,redis`; browser: `hydrate` and `csr` on wasm32). Clippy's `incompatible_msrv` lint (on by
# default, run by the test command) checks the library's own code against the same number:
# a standard-library item newer than it fails clippy.
#
#   scripts/msrv.sh     # prints the lowest possible MSRV per side; exit 1 if Cargo.toml's is lower
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

declared=$(awk -F'"' '/^rust-version *=/ {print $2; exit}' Cargo.toml)
[ -n "$declared" ] || { echo "msrv: Cargo.toml has no rust-version" >&2; exit 1; }

meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --format-version 1 --locked >"$meta"

status=0
side() {
  local name=$1; shift
  local needed
  needed=$(cargo tree -p sse-status -e normal,build --prefix none --locked "$@" \
    | awk '{print $1" "$2}' | sort -u \
    | node -e '
      const meta = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const rv = new Map(meta.packages.map((p) => [p.name + " v" + p.version, p.rust_version]));
      const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
      const parse = (v) => (v || "0").split(".").map(Number);
      const cmp = (a, b) => { for (let i = 0; i < 3; i++) { const d = (a[i] || 0) - (b[i] || 0); if (d) return d; } return 0; };
      let best = ["0", "(none)"];
      for (const l of lines) { const v = rv.get(l); if (v && cmp(parse(v), parse(best[0])) > 0) best = [v, l]; }
      console.log(best[0] + " " + best[1]);
    ' "$meta")
  printf 'msrv: %-28s needs Rust %s (highest: %s)\n' "$name" "${needed%% *}" "${needed#* }"
  if node -e 'const p=(v)=>v.split(".").map(Number);const [a,b]=[p(process.argv[1]),p(process.argv[2])];for(let i=0;i<3;i++){const d=(a[i]||0)-(b[i]||0);if(d){process.exit(d<0?1:0)}}' "$declared" "${needed%% *}"; then :; else
    echo "msrv: Cargo.toml's rust-version $declared is below what $name needs (${needed%% *})" >&2
    status=1
  fi
}
side "server (ssr,redis)" --features ssr,redis
side "browser (hydrate, wasm32)" --features hydrate --target wasm32-unknown-unknown
side "browser (csr, wasm32)" --features csr --target wasm32-unknown-unknown
echo "msrv: Cargo.toml says rust-version = $declared"
exit $status
