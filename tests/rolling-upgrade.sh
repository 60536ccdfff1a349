#!/usr/bin/env bash
# Rolling upgrade, as docs/OPERATIONS.md describes it: a three-node cluster running the
# build of an earlier commit is upgraded to this build one node at a time (stop it, start
# the new binary on the same data and flags, wait for /-/ready) while a client keeps
# pushing through every node. Every acknowledged push, before and during the upgrade,
# must be on every node at the end, and the nodes must hold identical groups.
#
#   tests/rolling-upgrade.sh <earlier commit> <this build's binary>
#
# The earlier commit is built in a git worktree with the same cargo command as this one
# (`cargo build --workspace --all-targets`: another selection of targets resolves other
# features and rebuilds RocksDB), in a target directory of its own: cargo tells a path
# crate's artifacts by name and source times, not by location, so sharing this build's
# directory would let either checkout take the other's artifacts for its own. The first
# time, that directory is seeded with a copy of this build's dependencies, so RocksDB's
# C++ (same version, same profile) is not compiled a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
old_commit="${1:?usage: $0 <earlier commit> <binary of this build>}"
new_src="${2:?usage: $0 <earlier commit> <binary of this build>}"
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/pushgateway-target}"
old_target="${UPGRADE_TARGET_DIR:-$HOME/.cache/pushgateway-upgrade-target}"
export WEB_BASE="${UPGRADE_WEB_BASE:-29490}" PEER_BASE="${UPGRADE_PEER_BASE:-29590}"
work="$(mktemp -d)"
cluster="$work/cluster"
cleanup() {
  touch "$work/stop"
  deploy/local/cluster.sh stop "$cluster" >/dev/null 2>&1 || true
  git worktree remove --force "$work/old-src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cp "$new_src" "$work/pushgateway-new"
echo "building $old_commit"
git worktree add --detach "$work/old-src" "$old_commit" >/dev/null
if [ ! -d "$old_target/debug" ] && [ -d "$main_target/debug/deps" ]; then
  echo "seeding $old_target with this build's dependencies"
  mkdir -p "$old_target/debug.partial"
  cp -a "$main_target/debug/.fingerprint" "$main_target/debug/build" "$main_target/debug/deps" "$old_target/debug.partial/"
  mv "$old_target/debug.partial" "$old_target/debug"
fi
# The earlier commit's Cargo.toml may lack this one's profile settings for build scripts;
# the same settings from the environment keep RocksDB's build hash, and so its artifacts.
(cd "$work/old-src" && CARGO_TARGET_DIR="$old_target" CARGO_PROFILE_DEV_BUILD_OVERRIDE_DEBUG=false \
  cargo build --workspace --all-targets)
cp "$old_target/debug/pushgateway" "$work/pushgateway-old"
git worktree remove --force "$work/old-src"

PUSHGATEWAY_BIN="$work/pushgateway-old" deploy/local/cluster.sh start "$cluster" >/dev/null
web() { echo "http://127.0.0.1:$((WEB_BASE + $1))"; }

# Each push creates its own group (seq label), through the nodes in turn; the
# acknowledged ones are listed in $work/acked.
touch "$work/acked"
(
  n=0
  while [ ! -f "$work/stop" ]; do
    n=$((n + 1))
    if curl -fsS -o /dev/null --max-time 15 -X PUT --data-binary "upgrade_seq $n"$'\n' \
      "$(web $((n % 3 + 1)))/metrics/job/upgrade/seq/$n" 2>/dev/null; then
      echo "$n" >>"$work/acked"
    fi
    sleep 0.05
  done
) &
pusher=$!

sleep 2
for i in 1 2 3; do
  pid="$(cat "$cluster/node$i.pid")"
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$cluster/node$i.pid"
  PUSHGATEWAY_BIN="$work/pushgateway-new" deploy/local/cluster.sh start "$cluster" >/dev/null
  curl -fsS -o /dev/null "$(web "$i")/-/ready" || { echo "node $i not ready after its upgrade"; tail -20 "$cluster/node$i.log"; exit 1; }
  [ "$(readlink "/proc/$(cat "$cluster/node$i.pid")/exe")" = "$work/pushgateway-new" ] || { echo "node $i does not run the new build"; exit 1; }
  echo "node $i upgraded; $(wc -l <"$work/acked") pushes acknowledged so far"
  sleep 2
done
touch "$work/stop"
wait "$pusher"

# Sorted as text, the order comm needs (numerically sorted input makes comm fail as
# soon as a node still lacks a push).
seqs() { curl -fsS "$(web "$1")/metrics" | sed -n 's/^upgrade_seq{.*seq="\([0-9]*\)".*/\1/p' | sort; }
sort "$work/acked" >"$work/acked.sorted"
acked=$(wc -l <"$work/acked.sorted")
[ "$acked" -gt 50 ] || { echo "too few pushes acknowledged: $acked"; exit 1; }
for i in 1 2 3; do
  # The last pushes may still be applying on a follower: give it a moment.
  for _ in $(seq 1 50); do
    seqs "$i" >"$work/node$i.seqs"
    missing=$(comm -23 "$work/acked.sorted" "$work/node$i.seqs" | wc -l)
    [ "$missing" -eq 0 ] && break
    sleep 0.2
  done
  [ "$missing" -eq 0 ] || { echo "node $i lost $missing acknowledged pushes:"; comm -23 "$work/acked.sorted" "$work/node$i.seqs" | head; exit 1; }
done
cmp -s "$work/node1.seqs" "$work/node2.seqs" && cmp -s "$work/node1.seqs" "$work/node3.seqs" \
  || { echo "the nodes hold different groups"; exit 1; }
echo "rolling upgrade from $old_commit: $acked pushes acknowledged, all on every node, nodes identical"
