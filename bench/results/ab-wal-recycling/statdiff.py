import json,sys
d=sys.argv[1]; sfx=sys.argv[2] if len(sys.argv)>2 else ''
def st(f):
    j=json.load(open(f)); j=j.get('data',j)
    def find(o):
        if isinstance(o,dict):
            if 'log_appends' in o: return o
            for v in o.values():
                r=find(v)
                if r: return r
    return find(j)
a=st(d+'/st0'+sfx+'.json'); b=st(d+'/st1'+sfx+'.json')
dd={k:b[k]-a[k] for k in a if isinstance(a[k],(int,float))}
print({k:round(v,4) for k,v in dd.items()})
if dd.get('log_appends'): print('append ms', 1000*dd['log_append_seconds']/dd['log_appends'])
for k in dd:
    if k.endswith('_seconds') and k!='log_append_seconds':
        base=k[:-8]
        for c in (base+'s', base+'es', base.replace('apply','apply_batches')):
            if dd.get(c): print(k,'ms per',c, 1000*dd[k]/dd[c])
