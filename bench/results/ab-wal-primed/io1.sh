#!/bin/bash
# io1.sh BINARY LABEL: one node, wrk 3x10 for 14 s; over 8 s after 4 s: pushes, process write_bytes, disk sectors written (vda)
# (vda is this machine's one disk; nothing else wrote during the runs)
B=$1; L=$2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
$B --web.listen-address=127.0.0.1:19391 --storage.path=$D/n1 > $D/log1 2>&1 &
P=$!
for t in $(seq 100); do curl -sf 127.0.0.1:19391/-/ready >/dev/null && break; sleep 0.2; done
sleep 1
for i in 1 2 3; do PGW_GROUPS=1000 wrk -t1 -c10 -d14s -s /work/shared/bench/push.lua http://127.0.0.1:19391 > $D/wrk$i 2>&1 & done
sleep 4
pushes() { curl -s 127.0.0.1:19391/metrics | grep '^pushgateway_http_requests_total' | grep 'handler="push"' | grep 'method="put"' | awk '{s+=$2} END {print s+0}'; }
wb() { awk '/^write_bytes/{print $2}' /proc/$P/io; }
ds() { awk '$3=="vda"{printf "%.0f\n", $10*512}' /proc/diskstats; }
p0=$(pushes); w0=$(wb); d0=$(ds); sleep 8; p1=$(pushes); w1=$(wb); d1=$(ds)
echo "pushes/s $(( (p1-p0)/8 )) process write_bytes/push $(( (w1-w0)/(p1-p0) )) disk bytes/push $(( (d1-d0)/(p1-p0) ))"
sleep 3; kill $P
