#!/usr/bin/env bash
# Start, stop and show a three-node cluster on loopback, from the built binary.
#
#   deploy/local/cluster.sh start [DIR]    # nodes 1-3; data and logs under DIR (default ./local-cluster)
#   deploy/local/cluster.sh status [DIR]   # role, leader and progress of each node
#   deploy/local/cluster.sh stop [DIR]
#
# Node i serves the HTTP API on 127.0.0.1:$((WEB_BASE + i)) (default 9090+i) and peer
# traffic on 127.0.0.1:$((PEER_BASE + i)) (default 9190+i). Extra server flags can be
# given in PUSHGATEWAY_FLAGS (e.g. "--web.enable-admin-api"). The binary is
# $PUSHGATEWAY_BIN, else $CARGO_TARGET_DIR/debug/pushgateway, else target/debug/pushgateway.
set -euo pipefail
cmd="${1:-status}"
dir="${2:-./local-cluster}"
web_base="${WEB_BASE:-9090}"
peer_base="${PEER_BASE:-9190}"
bin="${PUSHGATEWAY_BIN:-${CARGO_TARGET_DIR:-target}/debug/pushgateway}"
members="1=127.0.0.1:$((peer_base + 1)),2=127.0.0.1:$((peer_base + 2)),3=127.0.0.1:$((peer_base + 3))"

start() {
  [ -x "$bin" ] || { echo "no binary at $bin (build it with cargo build)" >&2; exit 1; }
  mkdir -p "$dir"
  for i in 1 2 3; do
    if [ -f "$dir/node$i.pid" ] && kill -0 "$(cat "$dir/node$i.pid")" 2>/dev/null; then
      echo "node $i already running (pid $(cat "$dir/node$i.pid"))"
      continue
    fi
    # shellcheck disable=SC2086
    "$bin" --cluster.node-id="$i" \
      --web.listen-address="127.0.0.1:$((web_base + i))" \
      --cluster.listen-address="127.0.0.1:$((peer_base + i))" \
      --cluster.initial-members="$members" \
      --storage.path="$dir/node$i" ${PUSHGATEWAY_FLAGS:-} \
      >>"$dir/node$i.log" 2>&1 &
    echo $! >"$dir/node$i.pid"
    echo "node $i: http://127.0.0.1:$((web_base + i)) (pid $!, log $dir/node$i.log)"
  done
  for i in 1 2 3; do
    for _ in $(seq 1 300); do
      if curl -fsS "http://127.0.0.1:$((web_base + i))/-/ready" >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
  done
  status
}

status() {
  for i in 1 2 3; do
    printf 'node %s: ' "$i"
    curl -fsS "http://127.0.0.1:$((web_base + i))/api/v1/cluster" 2>/dev/null || printf 'down'
    echo
  done
}

stop() {
  for i in 1 2 3; do
    if [ -f "$dir/node$i.pid" ]; then
      pid="$(cat "$dir/node$i.pid")"
      kill "$pid" 2>/dev/null && echo "stopping node $i (pid $pid)"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/node$i.pid"
    fi
  done
}

case "$cmd" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop [DIR]" >&2; exit 2 ;;
esac
