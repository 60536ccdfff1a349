import http.client, threading, sys
port=int(sys.argv[1]); groups=int(sys.argv[2])
body="# TYPE load_metric gauge\n"+"".join(f'load_metric{{k="{i}"}} {i}\n' for i in range(100))
nxt=[0]; lock=threading.Lock()
def w():
    c=http.client.HTTPConnection('127.0.0.1',port)
    while True:
        with lock:
            g=nxt[0]; nxt[0]+=1
        if g>=groups: return
        c.request('PUT',f'/metrics/job/load/instance/g{g}',body)
        r=c.getresponse(); r.read()
        assert r.status<300, r.status
ts=[threading.Thread(target=w) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
