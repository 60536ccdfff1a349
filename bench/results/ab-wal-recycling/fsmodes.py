# fsmodes.py FILE N SIZE MODE [GAP]: fdatasync latency of SIZE-byte writes, N of them GAP s apart, appended (append), written over blocks already written (overwrite) or into fallocated space (falloc).
import os,time,sys
fn=sys.argv[1]; n=int(sys.argv[2]); size=int(sys.argv[3]); mode=sys.argv[4]; gap=float(sys.argv[5]) if len(sys.argv)>5 else 0.002
fd=os.open(fn, os.O_RDWR|os.O_CREAT|os.O_TRUNC); buf=b'x'*size; ts=[]
if mode=='overwrite':
    os.write(fd, b'\0'*(size*n+4096)); os.fsync(fd); os.lseek(fd,0,0)
elif mode=='falloc':
    os.posix_fallocate(fd,0,size*n+4096); os.fsync(fd)
for i in range(n):
    os.write(fd,buf); t=time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter()-t); time.sleep(gap)
ts.sort(); print(mode,'fdatasync %d B: p50 %.3f ms p90 %.3f ms p99 %.3f'%(size, ts[len(ts)//2]*1000, ts[int(len(ts)*.9)]*1000, ts[int(len(ts)*.99)]*1000)); os.unlink(fn)
