#!/bin/bash
# tid3.sh BINARY LABEL: three nodes under wrk load; per-thread CPU and context switches of every node over 8 s
B=$1; L=$2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
M="1=127.0.0.1:19401,2=127.0.0.1:19402,3=127.0.0.1:19403"
for i in 1 2 3; do
  $B --web.listen-address=127.0.0.1:1939$i --web.enable-admin-api --storage.path=$D/n$i \
     --cluster.node-id=$i --cluster.listen-address=127.0.0.1:1940$i --cluster.initial-members=$M > $D/log$i 2>&1 &
  echo $! > $D/pid$i
done
for i in 1 2 3; do for t in $(seq 100); do curl -sf 127.0.0.1:1939$i/-/ready >/dev/null && break; sleep 0.2; done; done
sleep 2
for i in 1 2 3; do PGW_GROUPS=1000 wrk -t1 -c10 -d16s -s /work/shared/bench/push.lua http://127.0.0.1:1939$i > $D/wrk$i 2>&1 & done
sleep 5
snap() { for i in 1 2 3; do P=$(cat $D/pid$i); for t in /proc/$P/task/*; do echo "n$i ${t##*/} $(cat $t/comm) $(awk '/voluntary_ctxt_switches/{print $2}' $t/status | paste -sd' ') $(awk '{print $14+$15}' $t/stat)"; done; done; }
snap > $D/s0; sleep 8; snap > $D/s1
sleep 4
grep -h "Requests/sec" $D/wrk? | awk '{s+=$2} END {print "pushes/s", s}'
python3 - $D <<'PY'
import sys
d=sys.argv[1]
def rd(f):
    r={}
    for l in open(f):
        n,tid,comm,v,iv,c=l.split(); r[(n,tid,comm)]=(int(v),int(iv),int(c))
    return r
a,b=rd(d+'/s0'),rd(d+'/s1')
for k in sorted(b):
    if k in a:
        dv=[b[k][i]-a[k][i] for i in range(3)]
        if dv[2]>2: print('%s %-7s %-16s CPU %5.1f%%  vol cs/s %6.0f invol/s %5.0f'%(k[0],k[1],k[2],dv[2]/8,dv[0]/8,dv[1]/8))
PY
grep -h "this_node=true" $D/log? | tail -1
for i in 1 2 3; do kill $(cat $D/pid$i); done
