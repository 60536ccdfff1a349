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
            workload = r.get("workload", "normal")
            rows[(",".join(names) or "none", workload)].append(r)

print("| nemeses | workload | runs | seconds each | ops attempted | acknowledged writes | write availability (lowest run) | unknown | lost | linearizability violations | max recovery after heal (ms) | hostile pushes sent / refused 4xx / wrongly answered / stored | terms seen / with two leaders | format version at the end | verdicts | reproduce (first seed) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (nemeses, workload), runs in sorted(rows.items()):
    violations = sum(1 for r in runs if r["linearizable"] != "Valid")
    recoveries = [r["recovery_ms_max"] for r in runs if r.get("recovery_ms_max") is not None]
    verdicts = defaultdict(int)
    for r in runs:
        verdicts[r["verdict"]] += 1
    availability = [r["availability"] for r in runs if r.get("availability") is not None]
    poisons = [r["poison"] for r in runs if r.get("poison")]
    hostile = "%d / %d / %d / %d" % (
        sum(p["sent"] for p in poisons), sum(p["refused"] for p in poisons),
        sum(len(p["wrong"]) for p in poisons), sum(len(p["stored"]) for p in poisons)) if poisons else "-"
    watched = [r for r in runs if "terms_seen" in r]
    terms = "%d / %d" % (sum(r["terms_seen"] for r in watched), sum(len(r["two_leader_terms"]) for r in watched)) if watched else "-"
    versions = sorted({str(v) for r in runs for v in r.get("format_versions", {}).values()})
    print("| %s | %s | %d | %s | %d | %d | %s | %d | %d | %d | %s | %s | %s | %s | %s | `%s` |" % (
        nemeses, workload, len(runs), "/".join(sorted({str(r["duration_s"]) for r in runs})),
        sum(r["attempted"] for r in runs), sum(r["acknowledged_writes"] for r in runs),
        "%.2f" % min(availability) if availability else "-",
        sum(r["unknown"] for r in runs), sum(len(r["lost"]) for r in runs), violations,
        max(recoveries) if recoveries else "-", hostile, terms, ", ".join(versions) or "-",
        ", ".join("%d %s" % (n, v) for v, n in sorted(verdicts.items())), runs[0]["command"]))
