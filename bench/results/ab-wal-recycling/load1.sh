#!/bin/bash
. $(dirname "$0")/pushes.sh
# load1.sh BINARY LABEL: one fresh node, three wrk processes (CONNS each, default 10) for WARM + 10 s; over the 8 s after WARM: pushes answered, the node's CPU, machine idle, its storage timings.
WARM=${WARM:-2}
B=$1; L=$2; shift 2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
$B --web.listen-address=127.0.0.1:19391 --web.enable-admin-api --storage.path=$D/n1 "$@" > $D/log1 2>&1 &
echo $! > $D/pid1
for t in $(seq 100); do curl -sf 127.0.0.1:19391/-/ready >/dev/null && break; sleep 0.2; done
sleep 1
for i in 1 2 3; do PGW_GROUPS=1000 wrk -t1 -c${CONNS:-10} -d$((WARM+10))s -s /work/shared/bench/push.lua http://127.0.0.1:19391 > $D/wrk$i 2>&1 & done
sleep $WARM
cpu() { awk '{print $14+$15}' /proc/$(cat $D/pid1)/stat; }
idle() { awk '/^cpu /{print $5+$6}' /proc/stat; }
ai() { curl -s 127.0.0.1:19391/metrics | grep "^pushgateway_cluster_applied_index" | cut -d" " -f2; }
curl -s 127.0.0.1:19391/api/v1/status > $D/st0.json; a0=$(ai); p0=$(pushes 19391); c0=$(cpu); i0=$(idle); sleep 8; c1=$(cpu); i1=$(idle); a1=$(ai); p1=$(pushes 19391); curl -s 127.0.0.1:19391/api/v1/status > $D/st1.json
python3 -c "print('entries/s', ($a1-$a0)/8)"
curl -s 127.0.0.1:19391/metrics | grep -E "^pushgateway_cluster_" > $D/own.txt
sleep 3
python3 -c "print('node CPU (cores): %.2f'%(($c1-$c0)/100/8), ' machine idle (cores): %.2f'%(($i1-$i0)/100/8))"
python3 -c "print('window pushes/s', ($p1-$p0)/8)"
grep -h "Requests/sec" $D/wrk? | awk '{s+=$2} END {print "pushes/s", s}'
python3 $(dirname "$0")/statdiff.py $D
kill $(cat $D/pid1)
