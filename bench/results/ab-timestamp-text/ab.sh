#!/bin/bash
# ab.sh TAG... : one node, 1M series, 30 idle scrapes with curl; median and server CPU per scrape
for X in "$@"; do
  B=/root/.cache/pgw-ab/pushgateway-$X
  pkill -f "web.listen-address=127.0.0.1:19091" ; sleep 0.5
  rm -rf /tmp/sc/data
  setsid $B --web.listen-address=127.0.0.1:19091 --web.enable-admin-api --storage.path=/tmp/sc/data > /tmp/sc/server-$X.log 2>&1 &
  sleep 1.5
  python3 /tmp/sc/fill.py 19091 10000
  for i in 1 2 3; do curl -s -o /dev/null localhost:19091/metrics; done
  sleep 4
  P=$(pgrep -f "pushgateway-$X --web.listen-address=127.0.0.1:19091")
  c0=$(awk '{print $14+$15}' /proc/$P/stat)
  ts=$(for i in $(seq 1 30); do curl -s -o /dev/null -w '%{time_total}\n' localhost:19091/metrics; done | sort -n)
  c1=$(awk '{print $14+$15}' /proc/$P/stat)
  med=$(echo "$ts" | sed -n 15p); mn=$(echo "$ts" | head -1)
  echo "$X median_ms=$(python3 -c "print(round($med*1000,1))") min_ms=$(python3 -c "print(round($mn*1000,1))") cpu_ms_per_scrape=$(( (c1-c0)*10/30 ))"
  echo "  rss_mb=$(( $(awk "/VmRSS/{print \$2}" /proc/$P/status) / 1024 ))"; kill $P
done
