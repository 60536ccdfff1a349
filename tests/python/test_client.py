"""Pushes made with Python's prometheus_client against a real server.

Usage: python3 tests/python/test_client.py PATH_TO_PUSHGATEWAY_BINARY
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client import CollectorRegistry, Counter, Gauge, delete_from_gateway, push_to_gateway, pushadd_to_gateway


def start(binary, tmp):
    proc = subprocess.Popen(
        [binary, "--web.listen-address=127.0.0.1:0", "--storage.path=" + os.path.join(tmp, "data")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"address=(\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("server did not start")


def groups(addr):
    with urllib.request.urlopen("http://%s/api/v1/metrics" % addr) as r:
        return {json.dumps(g["labels"], sort_keys=True): g for g in json.load(r)["data"]}


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc, addr = start(binary, tmp)
        try:
            registry = CollectorRegistry()
            runs = Counter("job_runs", "Runs of the batch job.", ["kind"], registry=registry)
            runs.labels("full").inc(3)
            last = Gauge("job_last_success_unixtime", "Last success.", registry=registry)
            last.set(1234.5)
            key = {"instance": "host:1", "path": "/var/tmp", "empty": ""}
            push_to_gateway(addr, job="batch", registry=registry, grouping_key=key)
            g = groups(addr)
            want = json.dumps({"job": "batch", **key}, sort_keys=True)
            assert want in g, "pushed group missing: %s" % list(g)
            assert g[want]["job_runs_total"]["metrics"][0]["value"] == "3", g[want]["job_runs_total"]
            assert g[want]["job_last_success_unixtime"]["metrics"][0]["value"] == "1234.5"

            # pushadd replaces only the families it pushes.
            other = CollectorRegistry()
            Gauge("job_last_success_unixtime", "Last success.", registry=other).set(99)
            pushadd_to_gateway(addr, job="batch", registry=other, grouping_key=key)
            g = groups(addr)[want]
            assert g["job_last_success_unixtime"]["metrics"][0]["value"] == "99"
            assert "job_runs_total" in g, "pushadd must keep other families"

            # push replaces the whole group.
            push_to_gateway(addr, job="batch", registry=other, grouping_key=key)
            assert "job_runs_total" not in groups(addr)[want]

            delete_from_gateway(addr, job="batch", grouping_key=key)
            assert want not in groups(addr), "group not deleted"
            print("prometheus_client push, pushadd and delete: ok")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
