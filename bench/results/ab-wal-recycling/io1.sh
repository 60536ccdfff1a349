#!/bin/bash
# io1.sh BIN LABEL: one node under 3x10 wrk connections for LOAD s (22); over 8 s from FROM s (12): pushes, process write_bytes, device sectors written
LOAD=${LOAD:-22}; FROM=${FROM:-12}
. $(dirname "$0")/pushes.sh
B=$1; L=$2; D=/tmp/w/load-$L; rm -rf $D; mkdir -p $D
$B --web.listen-address=127.0.0.1:19391 --storage.path=$D/n1 > $D/log1 2>&1 & P=$!
for t in $(seq 100); do curl -sf 127.0.0.1:19391/-/ready >/dev/null && break; sleep 0.2; done
W=""; for i in 1 2 3; do PGW_GROUPS=1000 wrk -t1 -c10 -d${LOAD}s -s /work/shared/bench/push.lua http://127.0.0.1:19391 > $D/wrk$i 2>&1 & W="$W $!"; done
sleep $FROM
wb() { awk '/^write_bytes/{print $2}' /proc/$P/io; }
ds() { awk '$3=="vda"{print $10, $8}' /proc/diskstats; }
p0=$(pushes 19391); w0=$(wb); d0=$(ds); sleep 8; p1=$(pushes 19391); w1=$(wb); d1=$(ds)
wait $W
kill $P
python3 -c "
p=($p1-$p0); w=($w1-$w0); d0='$d0'.split(); d1='$d1'.split(); sec=int(d1[0])-int(d0[0]); ops=int(d1[1])-int(d0[1])
print('$L pushes/s %.0f  process write_bytes/push %.0f  device bytes/push %.0f  device writes/s %.0f' % (p/8, w/p, sec*512/p, ops/8))"
