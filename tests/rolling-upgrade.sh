#!/usr/bin/env bash
# Rolling upgrade, as docs/OPERATIONS.md describes it: a three-node cluster running the
# build of an earlier commit is upgraded to this build one node at a time (stop it, start
# the new binary on the same data and flags, wait for /-/ready) while a client keeps
# pushing through every node. Every acknowledged push, before and during the upgrade,
# must be on every node at the end, and the nodes must hold identical groups.
#
#   tests/rolling-upgrade.sh <earlier commit> <this build's binary> [<earlier build's binary>]
#
# The earlier commit is built by tests/old-build.sh. When it predates the cluster version
# (docs/decisions/0012), the upgrade also crosses a change of the replicated format: the
# version in force must stay 1 while any node runs the earlier build, rise to this build's by itself
# once all run this one, and pushes must go on across the switch.
set -euo pipefail
cd "$(dirname "$0")/.."
old_commit="${1:?usage: $0 <earlier commit> <binary of this build>}"
new_src="${2:?usage: $0 <earlier commit> <binary of this build>}"
export WEB_BASE="${UPGRADE_WEB_BASE:-29490}" PEER_BASE="${UPGRADE_PEER_BASE:-29590}"
work="$(mktemp -d)"
cluster="$work/cluster"
cleanup() {
  touch "$work/stop"
  deploy/local/cluster.sh stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cp "$new_src" "$work/pushgateway-new"
if [ -n "${3:-}" ]; then
  cp "$3" "$work/pushgateway-old"
else
  tests/old-build.sh "$old_commit" "$work/pushgateway-old"
fi

PUSHGATEWAY_BIN="$work/pushgateway-old" deploy/local/cluster.sh start "$cluster" >/dev/null
web() { echo "http://127.0.0.1:$((WEB_BASE + $1))"; }
# The replicated-format version in force on node $1 ("none" from a build without it).
format_version() {
  curl -fsS "$(web "$1")/api/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("format_version", "none"))'
}

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
old_format="$(format_version 1)"
echo "the earlier build reports format version: $old_format"
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
  if [ "$i" -lt 3 ] && [ "$old_format" = none ]; then
    # Long enough for the leader to have asked (it looks every 2 s): a member still runs
    # the earlier build, so the version must not have risen.
    sleep 3
    v="$(format_version "$i")"
    case "$v" in
      1) ;;
      *) echo "node $i reports format version $v while node 3 runs the earlier build"; exit 1 ;;
    esac
  fi
done
new_version=1
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    new_version="$(format_version "$i")"
    [ "$new_version" != 1 ] && [ "$new_version" != none ] && break
    sleep 0.2
  done
  echo "node $i: format version $new_version"
done
[ "$new_version" != 1 ] || { echo "the format version did not rise after every node was upgraded"; exit 1; }
acked_at_switch=$(wc -l <"$work/acked")
sleep 3
touch "$work/stop"
wait "$pusher"
[ "$(wc -l <"$work/acked")" -gt "$acked_at_switch" ] || { echo "no push acknowledged after the version switch"; exit 1; }

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
for i in 1 2 3; do
  v="$(format_version "$i")"
  [ "$v" = "$new_version" ] || { echo "node $i is at format version $v, node 3 at $new_version"; exit 1; }
done
echo "rolling upgrade from $old_commit: $acked pushes acknowledged, all on every node, nodes identical; format version $new_version in force on every node"
