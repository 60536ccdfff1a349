# pushes PORT...: total PUT requests answered on the push handler, summed over the given ports
pushes() { for p in "$@"; do curl -s 127.0.0.1:$p/metrics | grep '^pushgateway_http_requests_total' | grep 'handler="push"' | grep 'method="put"' | awk '{s+=$2} END {print s+0}'; done | awk '{s+=$1} END {print s+0}'; }
