#!/bin/bash
# single.sh BINARY LABEL [NODES]: NODES (3 by default, or 1) fresh nodes, one client (Python,
# one keep-alive connection) making 2,000 PUTs of a 10-series group in a row to the leader;
# prints the client's p50 and p99 and each node's mean synced-append time over those PUTs.
B=$1; L=$2; N=${3:-3}; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
M="1=127.0.0.1:19401,2=127.0.0.1:19402,3=127.0.0.1:19403"
for i in $(seq $N); do
  if [ "$N" = 3 ]; then c="--cluster.node-id=$i --cluster.listen-address=127.0.0.1:1940$i --cluster.initial-members=$M"; else c=; fi
  $B --web.listen-address=127.0.0.1:1939$i --storage.path=$D/n$i $c > $D/log$i 2>&1 &
  echo $! > $D/pid$i
done
for i in $(seq $N); do for t in $(seq 100); do curl -sf 127.0.0.1:1939$i/-/ready >/dev/null && break; sleep 0.2; done; done
sleep 2
for i in $(seq $N); do curl -s 127.0.0.1:1939$i/api/v1/status > $D/st0-$i.json; done
python3 - $N <<'PY'
import http.client,sys,time
body=b"".join(b"m%d{a=\"x\"} %d\n"%(i,i) for i in range(10))
for port in range(19391, 19391+int(sys.argv[1])):
    c=http.client.HTTPConnection('127.0.0.1',port); c.request('PUT','/metrics/job/w',body); r=c.getresponse(); r.read()
    if r.status==200: break
ts=[]
for i in range(2000):
    t=time.perf_counter(); c.request('PUT','/metrics/job/single/instance/x%d'%(i%10),body); r=c.getresponse(); r.read(); ts.append(time.perf_counter()-t)
ts.sort(); print('p50 %.3f p99 %.3f ms'%(ts[1000]*1e3, ts[1980]*1e3))
PY
for i in $(seq $N); do curl -s 127.0.0.1:1939$i/api/v1/status > $D/st1-$i.json; done
for i in $(seq $N); do echo "node $i $(python3 $(dirname "$0")/../ab-wal-recycling/statdiff.py $D -$i | grep -E 'append ms')"; done
for i in $(seq $N); do kill $(cat $D/pid$i); done
