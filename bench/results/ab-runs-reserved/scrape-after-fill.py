import http.client, threading, time, subprocess, sys, os, shutil, socket
BIN=sys.argv[1]; N=int(sys.argv[2]) if len(sys.argv)>2 else 10000
d='/tmp/exp/d1'; shutil.rmtree(d, ignore_errors=True)
p=subprocess.Popen([BIN,'--web.listen-address=127.0.0.1:19091','--web.enable-admin-api',f'--storage.path={d}'],stdout=open('/tmp/exp/s.log','w'),stderr=subprocess.STDOUT)
def conn(): return http.client.HTTPConnection('127.0.0.1',19091)
for _ in range(100):
    try:
        c=conn(); c.request('GET','/-/ready'); r=c.getresponse(); r.read()
        if r.status==200: break
    except Exception: pass
    time.sleep(0.1)
body=('# TYPE load_metric gauge\n'+''.join(f'load_metric{{k="{i}"}} {i}\n' for i in range(100))).encode()
nxt=[0]; lock=threading.Lock()
def w():
    c=conn()
    while True:
        with lock:
            g=nxt[0]; nxt[0]+=1
        if g>=N: return
        c.request('PUT',f'/metrics/job/load/instance/g{g}',body); r=c.getresponse(); r.read(); assert r.status<300
t=time.time(); ts=[threading.Thread(target=w) for _ in range(8)]; [x.start() for x in ts]; [x.join() for x in ts]
print('fill',time.time()-t)
c=conn()
for i in range(1000):
    c.request('PUT',f'/metrics/job/single/instance/x{i%10}',b'# TYPE one gauge\none 1\n'); r=c.getresponse(); r.read()
def scrapes(k):
    out=[]
    for _ in range(k):
        o=subprocess.run(['curl','-s','-o','/dev/null','-w','%{time_total} %{size_download}','http://127.0.0.1:19091/metrics'],capture_output=True,text=True).stdout.split()
        out.append(round(float(o[0])*1000,1))
    return out, o[1]
if os.environ.get('RSS_AFTER_FILL'):
    # The resident memory after the fill instead (bench/results/ab-checkpoints).
    print('after fill', scrapes(3))
    rss=lambda: int(open(f'/proc/{p.pid}/status').read().split('VmRSS:')[1].split()[0])//1024
    out=[]
    for w in (2,4,6):
        time.sleep(w); out.append(rss())
    print('rss MB', out, open(f'/proc/{p.pid}/smaps_rollup').read().split('Anonymous:')[1].split()[0])
else:
    print('after fill', scrapes(5))
    time.sleep(3)
    print('idle', scrapes(5))
p.terminate(); p.wait()
