#!/usr/bin/env python3
"""Builds the results table of jepsen/README.md from jepsen/results.jsonl.

Usage: python3 jepsen/table.py [jepsen/results.jsonl]
"""
import json
import re
import sys
from collections import defaultdict

path = sys.argv[1] if len(sys.argv) > 1 else "jepsen/results.jsonl"
rows = defaultdict(list)
with open(path, encoding="utf-8") as fh:
    for line in fh:
        if line.strip():
            r = json.loads(line)
            names = [re.sub(r"(?<!^)(?=[A-Z])", "-", n).lower() for n in r["nemeses"]]
            rows[",".join(names) or "none"].append(r)

print("| nemeses | runs | seconds each | ops attempted | acknowledged writes | unknown | lost | linearizability violations | max recovery after heal (ms) | verdicts | reproduce (first seed) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for nemeses, runs in sorted(rows.items()):
    violations = sum(1 for r in runs if r["linearizable"] != "Valid")
    recoveries = [r["recovery_ms_max"] for r in runs if r.get("recovery_ms_max") is not None]
    verdicts = defaultdict(int)
    for r in runs:
        verdicts[r["verdict"]] += 1
    print("| %s | %d | %s | %d | %d | %d | %d | %d | %s | %s | `%s` |" % (
        nemeses, len(runs), "/".join(sorted({str(r["duration_s"]) for r in runs})),
        sum(r["attempted"] for r in runs), sum(r["acknowledged_writes"] for r in runs),
        sum(r["unknown"] for r in runs), sum(len(r["lost"]) for r in runs), violations,
        max(recoveries) if recoveries else "-",
        ", ".join("%d %s" % (n, v) for v, n in sorted(verdicts.items())), runs[0]["command"]))
