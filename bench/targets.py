#!/usr/bin/env python3
"""The speed targets as ratios to upstream measured in the same pgw-bench run.

Usage: python3 bench/targets.py [bench/results/latest.json]   (prints a Markdown table)
"""
import json, sys
d = json.load(open(sys.argv[1] if len(sys.argv) > 1 else 'bench/results/latest.json'))
v = {}
for f in d['figures']:
    v[(f['target'], f['scenario'].split(' (')[0] if f['scenario'].startswith('GET') else f['scenario'])] = f['value']
def g(t, s):
    for (tt, ss), val in v.items():
        if tt == t and ss.startswith(s):
            return val
    return None
U, N, S, C = 'upstream', 'upstream, no checks', 'ours, 1 node', 'ours, 3 nodes'
tp = '32 clients PUT 10-series groups, 1,000 keys: pushes/s'
rows = []
def row(name, num, den, target, higher, fmt):
    if num is None or den is None:
        rows.append((name, 'not measured in this run', ('≥ ' if higher else '≤ ') + f'{target}×', '?'))
        return
    r = num / den
    ok = r >= target if higher else r <= target
    rows.append((name, fmt.format(num=num, den=den, r=r), ('≥ ' if higher else '≤ ') + f'{target}×', 'yes' if ok else '**no**'))
row('three nodes, pushes/s vs upstream without checks', g(C, tp), g(N, tp), 0.6, True, '{num:.0f} / {den:.0f} = {r:.2f}×')
row('one node, pushes/s vs upstream without checks', g(S, tp), g(N, tp), 1.0, True, '{num:.0f} / {den:.0f} = {r:.2f}×')
row('one client, empty store, three nodes: p50 vs upstream', g(C, 'one client PUT, empty store: p50'), g(U, 'one client PUT, empty store: p50'), 1.5, False, '{num:.2f} / {den:.2f} ms = {r:.2f}×')
row('one client, empty store, three nodes: p99 vs upstream', g(C, 'one client PUT, empty store: p99'), g(U, 'one client PUT, empty store: p99'), 2.0, False, '{num:.2f} / {den:.2f} ms = {r:.2f}×')
for t, name in ((C, 'three nodes'), (S, 'one node')):
    for when, scenario in (('right after the fill', 'GET /metrics, 1M series'), ('servers idle', 'GET /metrics, 1M series, servers idle')):
        a, b = v.get((N, scenario)), v.get((t, scenario))
        row(f'GET /metrics at 1M series, {when}, {name}: upstream without checks / ours', a, b, 50, True, '{num:.0f} / {den:.1f} ms = {r:.1f}×')
    row(f'RSS per stored series at 1M, {name} vs upstream without checks', g(t, 'RSS growth per stored series (1M)'), g(N, 'RSS growth per stored series (1M)'), 0.33, False, '{num:.0f} / {den:.0f} B = {r:.2f}×')
f = g(C, 'failover: leader SIGKILL')
rows.append(('leader SIGKILL to the first accepted push', f'{f:.2f} s' if f else '—', '≤ 1.5 s', 'yes' if f and f <= 1.5 else '**no**'))
r = g(C, 'ready after restarting')
rows.append(('ready after restarting every node (largest store of the run)', f'{r:.2f} s' if r else '—', '≤ 10 s', 'yes' if r and r <= 10 else '**no**'))
print('| target | measured | wanted | met |')
print('|---|---|---|---|')
for x in rows:
    print('| %s | %s | %s | %s |' % x)
