#!/bin/bash
# singlecs.sh BINARY LABEL: three fresh nodes, one client 2000 sequential PUTs to the leader; per-thread CPU and voluntary switches per push
B=$1; L=$2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
M="1=127.0.0.1:19401,2=127.0.0.1:19402,3=127.0.0.1:19403"
for i in 1 2 3; do
  $B --web.listen-address=127.0.0.1:1939$i --storage.path=$D/n$i --cluster.node-id=$i --cluster.listen-address=127.0.0.1:1940$i --cluster.initial-members=$M > $D/log$i 2>&1 &
  echo $! > $D/pid$i
done
for i in 1 2 3; do for t in $(seq 100); do curl -sf 127.0.0.1:1939$i/-/ready >/dev/null && break; sleep 0.2; done; done
sleep 2
snap() { for i in 1 2 3; do P=$(cat $D/pid$i); for t in /proc/$P/task/*; do echo "n$i ${t##*/} $(cat $t/comm) $(awk '/voluntary_ctxt_switches/{print $2}' $t/status | paste -sd' ') $(awk '{print $14, $15}' $t/stat)"; done; done; }
snap > $D/s0
python3 - <<'PY'
import http.client,time
body=b"".join(b"m%d{a=\"x\"} %d\n"%(i,i) for i in range(10))
c=http.client.HTTPConnection('127.0.0.1',19391)
ts=[]
for i in range(2000):
    t=time.perf_counter(); c.request('PUT','/metrics/job/single/instance/x%d'%(i%10),body); r=c.getresponse(); r.read(); ts.append(time.perf_counter()-t)
    assert r.status==200
ts.sort(); print('p50 %.3f p99 %.3f ms'%(ts[1000]*1e3, ts[1980]*1e3))
PY
snap > $D/s1
python3 - $D <<'PY'
import sys
d=sys.argv[1]
def rd(f):
    r={}
    for l in open(f):
        n,tid,comm,v,iv,u,s=l.split(); r[(n,tid,comm)]=(int(v),int(iv),int(u),int(s))
    return r
a,b=rd(d+'/s0'),rd(d+'/s1')
for k in sorted(b):
    if k in a:
        dv=[b[k][i]-a[k][i] for i in range(4)]
        if dv[0]>20: print('%s %-7s %-16s vol cs/push %.2f  invol %.2f  user %4.0f us  sys %4.0f us'%(k[0],k[1],k[2],dv[0]/2000,dv[1]/2000,dv[2]*1e4/2000,dv[3]*1e4/2000))
PY
for i in 1 2 3; do kill $(cat $D/pid$i); done
