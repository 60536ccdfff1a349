#!/usr/bin/env python3
"""What each hostile push costs a three-node cluster: the answer to the attack and how long
a normal push through another node takes meanwhile. Compares builds (a build before the
push limits against this one) with the same attacks as tests/it/hostile.rs
(testkit/src/hostile.rs), each on a fresh cluster.

Usage: python3 bench/hostile.py --binary NAME=PATH [--binary NAME=PATH ...] [--timeout 150]
Prints a Markdown table. Loopback only; ports 39091-39093 (web) and 39191-39193 (peers).
"""
import argparse
import gzip
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
WEB, PEER = 39090, 39190


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def protobuf_family(metrics_bytes):
    family = b"\x0a\x01m" + metrics_bytes
    return varint(len(family)) + family


def attacks():
    wide = "".join("/l%d/v" % i for i in range(1000))
    labels = ",".join('l%d="v"' % i for i in range(50_000))
    metric = b"\x0a\x00" * 1_000_000
    return [
        ("1,000 grouping labels, gzip body of 2,000 series", "/metrics/job/poison" + wide,
         {"Content-Encoding": "gzip"}, gzip.compress(b"a 1\n" * 2000)),
        ("a sample line with 50,000 labels", "/metrics/job/poison", {}, ("m{%s} 1\n" % labels).encode()),
        ("protobuf: 1,000,000 empty metrics", "/metrics/job/poison", {"Content-Type": PROTOBUF},
         protobuf_family(b"\x22\x00" * 1_000_000)),
        ("protobuf: a metric with 1,000,000 empty labels", "/metrics/job/poison", {"Content-Type": PROTOBUF},
         protobuf_family(b"\x22" + varint(len(metric)) + metric)),
        ("text: 1,000,000 series", "/metrics/job/poison", {},
         "".join('a{i="%d"} 1\n' % i for i in range(1_000_000)).encode()),
        ("a label value of 100,000 bytes", "/metrics/job/poison", {}, ('m{l="%s"} 1\n' % ("v" * 100_000)).encode()),
    ]


def request(port, method, path, headers, body, timeout):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    except Exception as e:  # noqa: BLE001 - a timeout or reset is a result here
        return type(e).__name__
    finally:
        conn.close()


def start(binary, work):
    procs = []
    members = ",".join("%d=127.0.0.1:%d" % (i, PEER + i) for i in (1, 2, 3))
    for i in (1, 2, 3):
        log = open(os.path.join(work, "node%d.log" % i), "w")
        procs.append(subprocess.Popen([
            binary, "--cluster.node-id=%d" % i, "--web.listen-address=127.0.0.1:%d" % (WEB + i),
            "--cluster.listen-address=127.0.0.1:%d" % (PEER + i), "--cluster.initial-members=" + members,
            "--storage.path=" + os.path.join(work, "node%d" % i), "--cluster.election-timeout=2s",
            "--cluster.heartbeat-interval=250ms"], stdout=log, stderr=log))
    deadline = time.time() + 120
    while time.time() < deadline:
        if all(request(WEB + i, "GET", "/-/ready", {}, None, 2) == 200 for i in (1, 2, 3)):
            if request(WEB + 2, "PUT", "/metrics/job/warm", {}, b"w 1\n", 10) == 200:
                return procs
        time.sleep(0.5)
    raise SystemExit("cluster of %s did not get ready" % binary)


def measure(binary, attack, timeout):
    work = tempfile.mkdtemp(prefix="pgw-hostile-")
    procs = start(binary, work)
    try:
        what, path, headers, body = attack
        result = {}

        def attacker():
            t = time.time()
            result["status"] = request(WEB + 1, "PUT", path, headers, body, timeout)
            result["took"] = time.time() - t

        thread = threading.Thread(target=attacker)
        thread.start()
        worst, n = 0.0, 0
        while thread.is_alive() or n < 3:
            t = time.time()
            status = request(WEB + 2, "PUT", "/metrics/job/normal/n/%d" % n, {}, b"normal 1\n", timeout)
            took = time.time() - t
            worst = max(worst, took if status == 200 else float(timeout))
            n += 1
            time.sleep(0.2)
        thread.join()
        return result["status"], result["took"], worst
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--timeout", type=float, default=150.0)
    args = parser.parse_args()
    builds = [b.split("=", 1) for b in args.binary]
    header = "| attack (through node 1) | " + " | ".join(
        "%s: answer, after | %s: slowest normal push via node 2 meanwhile" % (n, n) for n, _ in builds) + " |"
    print(header)
    print("|---|" + "---|---|" * len(builds))
    for attack in attacks():
        cells = []
        for name, binary in builds:
            status, took, worst = measure(binary, attack, args.timeout)
            cells.append("%s, %.2f s | %.2f s" % (status, took, worst))
            print("  %s / %s: %s" % (attack[0], name, cells[-1]), file=sys.stderr, flush=True)
        print("| %s | %s |" % (attack[0], " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
