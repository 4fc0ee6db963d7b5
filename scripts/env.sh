# Sourced by the scripts: the repository's own tools (.tools/bin: cargo-leptos and
# wasm-bindgen-cli; .tools/node_modules/.bin: wasm-opt) come first on PATH, then rustup's.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_repo/.tools/bin:$_repo/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
unset _repo
