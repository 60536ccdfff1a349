"""Pushes made with Python's prometheus_client against this server and upstream's, side
by side: every kind of metric the library has (Counter, Gauge, Summary, Histogram, Info,
Enum, with and without labels), pushed (PUT), push-added (POST) and deleted. After every
step both servers must hold the same groups, in /api/v1/metrics and in the text scrape
(push times aside).

Usage: python3 tests/python/test_client.py PATH_TO_PUSHGATEWAY [PATH_TO_UPSTREAM]
(upstream defaults to Debian's prometheus-pushgateway).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client import (CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary,
                               delete_from_gateway, push_to_gateway, pushadd_to_gateway)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(argv, addr):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://%s/-/ready" % addr, timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not become ready: %s" % " ".join(argv))


def groups(addr):
    """The groups of /api/v1/metrics keyed by their labels, time stamps and push times masked."""
    with urllib.request.urlopen("http://%s/api/v1/metrics" % addr) as r:
        doc = json.load(r)
    out = {}
    for g in doc["data"]:
        for name, fam in g.items():
            if isinstance(fam, dict) and "time_stamp" in fam:
                fam["time_stamp"] = "<TIME>"
                if name in ("push_time_seconds", "push_failure_time_seconds"):
                    for m in fam["metrics"]:
                        if m["value"] != "0":
                            m["value"] = "<TIME>"
        out[json.dumps(g["labels"], sort_keys=True)] = g
    return out


def pushed_lines(addr):
    """The text scrape's lines of pushed series (those with a job label), push times masked."""
    with urllib.request.urlopen("http://%s/metrics" % addr) as r:
        text = r.read().decode()
    lines = []
    for line in text.splitlines():
        if 'job="' not in line:
            continue
        if line.startswith("push_") and not line.endswith(" 0"):
            line = line.rsplit(" ", 1)[0] + " <TIME>"
        lines.append(line)
    return lines


def every_kind(registry, round_):
    """One metric of each kind the library has, values depending on the round."""
    runs = Counter("job_runs", "Runs of the batch job.", ["kind"], registry=registry)
    runs.labels("full").inc(3 * round_)
    runs.labels("delta").inc(0.5)
    Gauge("job_last_success_unixtime", "Last success.", registry=registry).set(1234.5 * round_)
    summary = Summary("job_batch_size", "Batch sizes.", registry=registry)
    for v in (10, 20, 30 * round_):
        summary.observe(v)
    histogram = Histogram("job_duration_seconds", "Durations.", ["stage"], buckets=(0.1, 1, 10),
                          registry=registry)
    for v in (0.05, 0.5, 5, 50 * round_):
        histogram.labels("load").observe(v)
    Info("job_build", "Build of the job.", registry=registry).info({"version": "1.%d" % round_, "branch": "main"})
    state = Enum("job_state", "State of the job.", states=["starting", "running", "done"], registry=registry)
    state.state("running" if round_ == 1 else "done")


def main():
    binary = sys.argv[1]
    upstream = sys.argv[2] if len(sys.argv) > 2 else shutil.which("prometheus-pushgateway")
    if not upstream:
        raise SystemExit("upstream prometheus-pushgateway not found")
    tmp = tempfile.mkdtemp()
    ours_addr = "127.0.0.1:%d" % free_port()
    ref_addr = "127.0.0.1:%d" % free_port()
    ours = start([binary, "--web.listen-address=" + ours_addr, "--storage.path=" + os.path.join(tmp, "data")],
                 ours_addr)
    ref = start([upstream, "--web.listen-address=" + ref_addr, "--persistence.file="], ref_addr)
    key = {"instance": "host:1", "path": "/var/tmp", "empty": ""}

    # Each step builds its registries once and pushes them to both servers, so both get
    # the same samples (the library stamps _created series when a metric is made).
    def step_push(addrs):
        registry = CollectorRegistry()
        every_kind(registry, 1)
        for addr in addrs:
            push_to_gateway(addr, job="batch", registry=registry, grouping_key=key)
            push_to_gateway(addr, job="batch", registry=registry, grouping_key={"instance": "other"})

    def step_pushadd(addrs):
        only = CollectorRegistry()
        Gauge("job_last_success_unixtime", "Last success.", registry=only).set(99)
        Histogram("job_duration_seconds", "Durations.", ["stage"], buckets=(0.1, 1, 10),
                  registry=only).labels("load").observe(0.2)
        for addr in addrs:
            pushadd_to_gateway(addr, job="batch", registry=only, grouping_key=key)

    def step_replace(addrs):
        registry = CollectorRegistry()
        Gauge("job_last_success_unixtime", "Last success.", registry=registry).set(7)
        for addr in addrs:
            push_to_gateway(addr, job="batch", registry=registry, grouping_key={"instance": "other"})

    def step_refused(addrs):
        registry = CollectorRegistry()
        Gauge("job_runs_total", "Runs of the batch job.", registry=registry).set(1)
        verdicts = []
        for addr in addrs:
            try:
                push_to_gateway(addr, job="batch", registry=registry, grouping_key={"instance": "third"})
                verdicts.append("accepted")
            except urllib.error.HTTPError as e:
                verdicts.append("refused %d" % e.code)
        return verdicts

    def step_delete(addrs):
        for addr in addrs:
            delete_from_gateway(addr, job="batch", grouping_key=key)

    steps = [
        ("push (PUT) of every kind of metric to two groups", step_push),
        ("pushadd (POST) of two families", step_pushadd),
        ("push (PUT) replacing a whole group", step_replace),
        ("a push inconsistent with another group", step_refused),
        ("delete of a group", step_delete),
    ]
    failures = 0
    try:
        for name, step in steps:
            verdicts = step([ours_addr, ref_addr]) or ["ok", "ok"]
            seen = None
            deadline = time.time() + 3  # upstream applies some changes after answering
            while time.time() < deadline:
                seen = ((groups(ours_addr), pushed_lines(ours_addr)), (groups(ref_addr), pushed_lines(ref_addr)))
                if seen[0] == seen[1]:
                    break
                time.sleep(0.1)
            if step is step_push:
                assert any("job_build_info" in line for line in seen[0][1]), "the pushes reached the server"
            if verdicts[0] != verdicts[1] or seen[0] != seen[1]:
                failures += 1
                print("FAIL %s: verdicts %r" % (name, verdicts))
                if seen[0][0] != seen[1][0]:
                    print("  /api/v1/metrics\n  this server: %s\n  upstream:    %s" % (
                        json.dumps(seen[0][0], sort_keys=True), json.dumps(seen[1][0], sort_keys=True)))
                if seen[0][1] != seen[1][1]:
                    print("  text scrape\n  this server: %s\n  upstream:    %s" % (seen[0][1], seen[1][1]))
            else:
                print("ok   %s (%d groups, verdict %r)" % (name, len(seen[0][0]), verdicts[0]))
    finally:
        for proc in (ours, ref):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        raise SystemExit("%d step(s) differ from upstream" % failures)
    print("prometheus_client push, pushadd and delete: the same groups as upstream")


if __name__ == "__main__":
    main()
