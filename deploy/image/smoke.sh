#!/usr/bin/env bash
# Builds the image from a binary (deploy/image/build.sh) and runs three nodes of it with
# podman, as deploy/compose/compose.yaml describes them (same flags, a volume per node,
# the cluster secret made once in a volume of its own, peers found by name on one
# network), then checks, and exits non-zero on the first failure:
#   - every node gets ready; a push to node 1 is served by nodes 2 and 3;
#   - the image's health check passes (`podman healthcheck run`);
#   - the server runs as uid 65532 and writes its database under /data;
#   - a restarted node still serves the push; after all three containers are removed and
#     created again on the same volumes, the push is still there.
# Run as root, from anywhere:
#
#   deploy/image/smoke.sh [BINARY]        (default target/release/pushgateway)
#
# Needs debootstrap, buildah, podman, aardvark-dns (name resolution on the network) and
# curl. KEEP=1 leaves the containers, volumes and network in place afterwards.
#
# Engine options: every run gets --ulimit nofile and nproc at or below this shell's hard
# limits (podman otherwise raises them, which fails where the runtime lacks
# CAP_SYS_RESOURCE), and runc is used when installed (crun refuses hosts with cgroup v1
# and v2 mounted side by side). PODMAN_GLOBAL_OPTS and PODMAN_RUN_OPTS override these.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
binary="${1:-$here/../../target/release/pushgateway}"
tag=smoke
image="localhost/pushgateway:$tag"
net=pgw-smoke
start=$SECONDS

default_global=""
command -v runc >/dev/null && default_global="--runtime runc"
read -r -a global <<<"${PODMAN_GLOBAL_OPTS-$default_global}"
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] && nofile=1048576
read -r -a run_opts <<<"${PODMAN_RUN_OPTS-"--ulimit nofile=$nofile:$nofile --ulimit nproc=4096:4096"}"
pm() { podman "${global[@]}" "$@"; }

step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - start))" "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

cleanup() {
  for n in 1 2 3; do pm rm -f -v -t 2 "pgw-smoke-$n" >/dev/null 2>&1 || true; done
  for v in data-1 data-2 data-3 secret; do pm volume rm -f "pgw-smoke-$v" >/dev/null 2>&1 || true; done
  pm network rm -f "$net" >/dev/null 2>&1 || true
}
on_exit() {
  rc=$?
  if [ "$rc" -ne 0 ]; then
    for n in 1 2 3; do echo "--- logs of pgw-smoke-$n" >&2; pm logs --tail 20 "pgw-smoke-$n" >&2 2>&1 || true; done
  fi
  [ "${KEEP:-0}" = 1 ] || cleanup
  printf '\n==> %s after %ds\n' "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" "$((SECONDS - start))"
}

step "image from $binary"
"$here/build.sh" --tag "$tag" "$binary"

cleanup
trap on_exit EXIT
step "network $net, the cluster secret in a volume"
pm network create "$net" >/dev/null
pm volume create pgw-smoke-secret >/dev/null
# compose's cluster-secret service, with this image's own shell instead of alpine.
pm run --rm "${run_opts[@]}" --user 0 -v pgw-smoke-secret:/secret --entrypoint /bin/sh "$image" -c \
  'test -s /secret/secret || { head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > /secret/secret; chmod 444 /secret/secret; }'

members=1=pushgateway-1:9092,2=pushgateway-2:9092,3=pushgateway-3:9092
node() {
  local n=$1
  pm run -d "${run_opts[@]}" --name "pgw-smoke-$n" --network "$net" --network-alias "pushgateway-$n" \
    -v "pgw-smoke-data-$n:/data" -v pgw-smoke-secret:/etc/pushgateway/cluster:ro "$image" \
    --storage.path=/data --web.listen-address=:9091 --cluster.node-id="$n" \
    --cluster.listen-address=0.0.0.0:9092 --cluster.advertise-address="pushgateway-$n:9092" \
    --cluster.initial-members="$members" --cluster.secret-file=/etc/pushgateway/cluster/secret >/dev/null
}
addr() { pm inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "pgw-smoke-$1"; }
wait_ready() {
  local n ip
  for n in "$@"; do
    ip="$(addr "$n")"
    for _ in $(seq 120); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ip:9091/-/ready")" = 200 ] && continue 2
      sleep 0.5
    done
    fail "node $n ($ip) not ready after 60s"
  done
}
# Whether node $1 serves the pushed sample (a read may wait for the node to catch up).
serves_push() {
  local ip
  ip="$(addr "$1")"
  for _ in $(seq 40); do
    curl -sf "http://$ip:9091/metrics" | grep -q '^x{instance="",job="j"} 1$' && return 0
    sleep 0.5
  done
  return 1
}

step "three nodes"
for n in 1 2 3; do node "$n"; done
wait_ready 1 2 3
pm ps --format '{{.Names}} {{.Status}}'

step "push to node 1, scrape nodes 2 and 3"
curl -sf -X PUT --data-binary $'x 1\n' "http://$(addr 1):9091/metrics/job/j" || fail "push to node 1"
for n in 2 3; do serves_push "$n" || fail "node $n does not serve the push"; echo "node $n serves it"; done

step "health checks"
for n in 1 2 3; do
  pm healthcheck run "pgw-smoke-$n" >/dev/null || fail "health check of node $n"
done
pm ps --format '{{.Names}} {{.Status}}'
for n in 1 2 3; do
  [ "$(pm inspect -f '{{.State.Health.Status}}' "pgw-smoke-$n")" = healthy ] || fail "node $n not healthy"
done

step "user and data directory"
pm top pgw-smoke-1 user huser pid args
uid="$(pm exec pgw-smoke-1 sh -c 'stat -c %u /proc/1')"
[ "$uid" = 65532 ] || fail "the server runs as uid $uid"
# shellcheck disable=SC2016 # expanded by the shell in the container
pm exec pgw-smoke-1 sh -c 'ls -ln /data | head -5; test -n "$(find /data -mindepth 1 -user 65532 -print -quit)"' ||
  fail "nothing written by 65532 in /data"

step "restart node 2"
pm restart -t 10 pgw-smoke-2 >/dev/null
wait_ready 2
serves_push 2 || fail "node 2 lost the push over a restart"
echo "node 2 serves it after its restart"

step "remove all three containers, create them again on the same volumes"
for n in 1 2 3; do pm rm -f -t 10 "pgw-smoke-$n" >/dev/null; done
for n in 1 2 3; do node "$n"; done
wait_ready 1 2 3
for n in 1 2 3; do serves_push "$n" || fail "node $n lost the push"; echo "node $n serves it"; done
