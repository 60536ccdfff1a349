#!/bin/bash
. $(dirname "$0")/pushes.sh
# load3.sh BINARY LABEL: three fresh nodes, wrk through every node (CONNS each, default 10) for WARM + 10 s; over the 8 s after WARM: pushes answered, each node's CPU and synced-append time, machine idle.
WARM=${WARM:-2}
B=$1; L=$2; shift 2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
M="1=127.0.0.1:19401,2=127.0.0.1:19402,3=127.0.0.1:19403"
for i in 1 2 3; do
  $B --web.listen-address=127.0.0.1:1939$i --web.enable-admin-api --storage.path=$D/n$i \
     --cluster.node-id=$i --cluster.listen-address=127.0.0.1:1940$i --cluster.initial-members=$M "$@" > $D/log$i 2>&1 &
  echo $! > $D/pid$i
done
for i in 1 2 3; do for t in $(seq 100); do curl -sf 127.0.0.1:1939$i/-/ready >/dev/null && break; sleep 0.2; done; done
sleep 2
for i in 1 2 3; do PGW_GROUPS=1000 wrk -t1 -c${CONNS:-10} -d$((WARM+10))s -s /work/shared/bench/push.lua http://127.0.0.1:1939$i > $D/wrk$i 2>&1 & done
sleep $WARM
cpu() { for i in 1 2 3; do awk '{print $14+$15}' /proc/$(cat $D/pid$i)/stat; done | paste -sd' '; }
idle() { awk '/^cpu /{print $5+$6}' /proc/stat; }
for i in 1 2 3; do curl -s 127.0.0.1:1939$i/api/v1/status > $D/st0-$i.json; done; p0=$(pushes 19391 19392 19393); c0=$(cpu); i0=$(idle); sleep 8; c1=$(cpu); i1=$(idle); p1=$(pushes 19391 19392 19393); for i in 1 2 3; do curl -s 127.0.0.1:1939$i/api/v1/status > $D/st1-$i.json; done
sleep 3
python3 -c "
c0=list(map(int,'$c0'.split())); c1=list(map(int,'$c1'.split()))
print('node CPU (cores):', ' '.join('%.2f'%((b-a)/100/8) for a,b in zip(c0,c1)), ' machine idle (cores): %.2f'%(($i1-$i0)/100/8))"
python3 -c "print('window pushes/s', ($p1-$p0)/8)"
grep -h "Requests/sec" $D/wrk? | awk '{s+=$2} END {print "pushes/s", s}'
for i in 1 2 3; do echo node $i; python3 $(dirname "$0")/statdiff.py $D -$i | grep -E "append ms|^apply"; done
for i in 1 2 3; do kill $(cat $D/pid$i); done
