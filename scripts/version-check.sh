#!/usr/bin/env bash
# Cargo.toml's version, CHANGELOG.md and the git tags agree (the test command runs this):
# - released (CHANGELOG has `## [X.Y.Z] - YYYY-MM-DD` for Cargo.toml's version): a tag `vX.Y.Z`
#   exists, and Cargo.toml's version is the newest released heading;
# - not released yet: no tag `vX.Y.Z` exists for it, and CHANGELOG opens with `## [Unreleased]`.
# To release X.Y.Z: rename `## [Unreleased]` to `## [X.Y.Z] - <date>` (a new, empty Unreleased
# above it), set the version in Cargo.toml, commit, `git tag vX.Y.Z`.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
newest=$(grep -m1 -oE '^## \[[0-9]+\.[0-9]+\.[0-9]+\]' CHANGELOG.md | tr -d '#[] ' || true)
tagged=$(git tag --list "v$version")

if grep -qE "^## \[$version\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$" CHANGELOG.md; then
  [ "$newest" = "$version" ] || { echo "version: Cargo.toml says $version, CHANGELOG's newest release is $newest" >&2; exit 1; }
  [ -n "$tagged" ] || { echo "version: $version is released in CHANGELOG.md but there is no tag v$version" >&2; exit 1; }
  echo "version: $version, released, tagged v$version"
else
  [ -z "$tagged" ] || { echo "version: tag v$version exists but CHANGELOG.md has no '## [$version] - <date>'" >&2; exit 1; }
  grep -qx '## \[Unreleased\]' CHANGELOG.md || { echo "version: CHANGELOG.md has no '## [Unreleased]' section" >&2; exit 1; }
  [ "$(grep -c '^## \[Unreleased\]' CHANGELOG.md)" = 1 ] || { echo "version: more than one Unreleased section" >&2; exit 1; }
  echo "version: $version, not released yet (CHANGELOG: Unreleased; no tag v$version)"
fi
