#!/usr/bin/env bash
# Builds the pushgateway binary of an earlier commit and copies it to <output>, for the
# tests that run two builds in one cluster (the rolling upgrade, the mixed-version fault
# injection runs).
#
#   tests/old-build.sh <commit> <output>
#
# The commit is built in a git worktree with the same cargo command as this one
# (`cargo build --workspace --all-targets`: another selection of targets resolves other
# features and rebuilds RocksDB), in a target directory of its own: cargo tells a path
# crate's artifacts by name and source times, not by location, so sharing this build's
# directory would let either checkout take the other's artifacts for its own. The first
# time, that directory is seeded with a copy of this build's dependencies, so RocksDB's
# C++ (same version, same profile) is not compiled a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
commit="${1:?usage: $0 <commit> <output>}"
output="${2:?usage: $0 <commit> <output>}"
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/pushgateway-target}"
old_target="${UPGRADE_TARGET_DIR:-$HOME/.cache/pushgateway-upgrade-target}"
src="$(mktemp -d)/src"
cleanup() {
  git worktree remove --force "$src" >/dev/null 2>&1 || true
  rm -rf "$(dirname "$src")"
}
trap cleanup EXIT

echo "building $commit"
git worktree add --detach "$src" "$commit" >/dev/null
if [ ! -d "$old_target/debug" ] && [ -d "$main_target/debug/deps" ]; then
  echo "seeding $old_target with this build's dependencies"
  mkdir -p "$old_target/debug.partial"
  cp -a "$main_target/debug/.fingerprint" "$main_target/debug/build" "$main_target/debug/deps" "$old_target/debug.partial/"
  mv "$old_target/debug.partial" "$old_target/debug"
fi
# The earlier commit's Cargo.toml may lack this one's profile settings for build scripts;
# the same settings from the environment keep RocksDB's build hash, and so its artifacts.
(cd "$src" && CARGO_TARGET_DIR="$old_target" CARGO_PROFILE_DEV_BUILD_OVERRIDE_DEBUG=false \
  cargo build --workspace --all-targets)
cp "$old_target/debug/pushgateway" "$output"
