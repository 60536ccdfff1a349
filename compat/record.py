#!/usr/bin/env python3
"""Record this project's own conformance cases against upstream.

The shared kit's cases were recorded against upstream 1.5.1; the cases defined here cover
what a current client pushes as protobuf (native, classic+native, float and gauge
histograms, exemplars, created timestamps, the family unit, fields no schema defines) and
the reading edges of upstream's text parser, gzip reader, protobuf reader and Accept
negotiation, and are recorded the same way: every step is sent to a running upstream, and
what it answered (status, protobuf scrape, text scrape, JSON API, a scrape's Content-Type)
becomes the expectation. Nothing expected is written by hand.

    python3 compat/record.py ../shared/conformance/run.py            # writes compat/cases/
    python3 ../shared/conformance/run.py --launch CMD compat/cases    # replays them

The runner's own normalisation is imported from the kit, so a recording compares exactly
as the kit compares. Recording launches `prometheus-pushgateway` (Debian's 1.5.1) once per
case on a free loopback port.
"""

import base64
import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
import zlib

PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
ACCEPT_PROTOBUF = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")

# ---------------------------------------------------------------------------------------
# A hand encoder of metrics.proto (client_model v0.6): field numbers as that schema has
# them, written in field-number order as Go marshals them.
# ---------------------------------------------------------------------------------------


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def uint(field, v):
    return key(field, 0) + varint(v)


def sint(field, v):
    return uint(field, (v << 1) ^ (v >> 63))


def double(field, v):
    return key(field, 1) + struct.pack("<d", v)


def fixed32(field, v):
    return key(field, 5) + struct.pack("<I", v)


def ld(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def packed_sint(field, values):
    return ld(field, b"".join(varint((v << 1) ^ (v >> 63)) for v in values))


def packed_double(field, values):
    return ld(field, b"".join(struct.pack("<d", v) for v in values))


def label(name, value, field=1):
    return ld(field, ld(1, name) + ld(2, value))


def timestamp(seconds, nanos, field):
    return ld(field, uint(1, seconds) + uint(2, nanos))


def exemplar(value, trace, seconds=1_700_000_000, nanos=0, field=2):
    return ld(field, label("trace_id", trace) + double(2, value) + timestamp(seconds, nanos, 3))


def span(offset, length, field):
    return ld(field, sint(1, offset) + uint(2, length))


def bucket(upper, count, ex=b"", as_float=False):
    return ld(3, (double(4, count) if as_float else uint(1, count)) + double(2, upper) + ex)


COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)


def family(name, mtype, metrics, help_text=None, extra=b""):
    """One length-delimited MetricFamily. `metrics` are Metric payloads."""
    body = ld(1, name)
    if help_text is not None:
        body += ld(2, help_text)
    body += uint(3, mtype)
    for m in metrics:
        body += ld(4, m)
    body += extra
    return varint(len(body)) + body


def metric(labels, value_field, value, timestamp_ms=None, extra=b""):
    """A Metric: its labels, one value message under `value_field`, extra raw fields."""
    body = b"".join(label(k, v) for k, v in labels)
    body += ld(value_field, value)
    if timestamp_ms is not None:
        body += uint(6, timestamp_ms)
    return body + extra


def native(count, total, schema, zero_threshold, zero_count, pos_spans, pos_deltas,
           neg_spans=(), neg_deltas=(), buckets=b"", created=None, exemplars=b"",
           packed=True):
    h = uint(1, count) + double(2, total) + buckets + sint(5, schema) + double(6, zero_threshold)
    h += uint(7, zero_count)
    h += b"".join(span(o, n, 9) for o, n in neg_spans)
    if neg_deltas:
        h += packed_sint(10, neg_deltas) if packed else b"".join(sint(10, d) for d in neg_deltas)
    h += b"".join(span(o, n, 12) for o, n in pos_spans)
    if pos_deltas:
        h += packed_sint(13, pos_deltas) if packed else b"".join(sint(13, d) for d in pos_deltas)
    if created is not None:
        h += timestamp(created[0], created[1], 15)
    return h + exemplars


# ---------------------------------------------------------------------------------------
# The cases. Each is (id, description, steps, flags). A step is a request; "record" on a
# step names what of its answer becomes the expectation besides its status.
# ---------------------------------------------------------------------------------------


def push(method, path, body, record=None, headers=None):
    h = {"Content-Type": PROTOBUF}
    h.update(headers or {})
    step = {"method": method, "path": path, "headers": h, "body_b64": base64.b64encode(body).decode()}
    if record:
        step["record"] = record
    return step


def scrape_protobuf():
    return {"method": "GET", "path": "/metrics", "headers": {"Accept": ACCEPT_PROTOBUF}, "record": "exposition"}


def scrape_text():
    return {"method": "GET", "path": "/metrics", "record": "exposition"}


def cases():
    out = []

    def case(cid, description, steps, flags=("--web.enable-admin-api",), tags=("protobuf",),
             record_text=True, record_api=True, prefix=""):
        c = {"id": cid, "description": description, "tags": list(tags), "flags": list(flags),
             "steps": steps, "record_text": record_text, "record_api": record_api}
        if prefix:
            c["prefix"] = prefix
        out.append(c)

    # Upstream 1.10+ shows native buckets in /api/v1/metrics where 1.5.1 showed the classic
    # reading; the cases below that push native histograms record the JSON only in
    # pb-native-histogram-json (a listed deviation), so the rest of each case still
    # compares with 1.5.1.

    nat = native(7, 12.5, 3, 1e-128, 1, [(0, 2), (3, 1)], [2, -1, 1], [(-2, 1)], [1],
                 created=(1_700_000_000, 500_000_000))
    case("pb-native-only-histogram",
         "A native-only histogram (schema, zero bucket, positive and negative spans with deltas, "
         "a created timestamp) is kept field for field; text shows count and sum with a +Inf bucket.",
         [push("PUT", "/metrics/job/native/instance/a",
               family("latency_seconds", HISTOGRAM, [metric([("path", "/x")], 7, nat)], "Request latency.")),
          scrape_protobuf()],
         record_api=False)

    both = native(5, 3.25, 0, 0.001, 0, [(1, 3)], [1, 0, 2],
                  buckets=bucket(0.5, 1) + bucket(1.0, 3) + bucket(4.0, 5), packed=False)
    case("pb-classic-and-native-histogram",
         "A histogram with classic buckets and native buckets (unpacked deltas) keeps both; "
         "text and JSON show the classic buckets.",
         [push("PUT", "/metrics/job/both",
               family("size_bytes", HISTOGRAM, [metric([], 7, both)], "Sizes.")),
          scrape_protobuf()],
         record_api=False)

    flt = (double(2, 10.0) + bucket(1.0, 1.5, as_float=True) + bucket(2.0, 2.5, as_float=True)
           + double(4, 3.5) + sint(5, 1) + double(6, 1e-128) + double(8, 0.5)
           + span(0, 2, 9) + packed_double(11, [0.25, 1.0]) + span(-1, 3, 12)
           + packed_double(14, [1.0, 0.5, 0.25]))
    case("pb-float-histogram",
         "A float histogram (float counts, float zero bucket, float buckets on both sides) comes "
         "back as pushed; text prints the float counts.",
         [push("PUT", "/metrics/job/float",
               family("weights", HISTOGRAM, [metric([("k", "v")], 7, flt)], "Float histogram.")),
          scrape_protobuf()])

    gh = native(4, 2.0, 2, 0.0, 1, [(0, 1)], [3], buckets=bucket(1.0, 2) + bucket(5.0, 4))
    case("pb-gauge-histogram",
         "A gauge histogram (type 5) with classic and native buckets is kept; text shows its "
         "type as upstream prints it; the JSON API shows it as upstream does.",
         [push("PUT", "/metrics/job/gh",
               family("queue_depth", GAUGE_HISTOGRAM, [metric([], 7, gh)], "Gauge histogram.")),
          scrape_protobuf()])

    ctr = double(1, 42.0) + exemplar(41.5, "t-ctr", nanos=250_000_000) + timestamp(1_690_000_000, 0, 3)
    hist = (uint(1, 3) + double(2, 1.5) + bucket(0.1, 1, exemplar(0.05, "t-b1", field=3))
            + bucket(1.0, 3, exemplar(0.7, "t-b2", field=3)))
    case("pb-exemplars-counter-and-buckets",
         "Exemplars on a counter (with a created timestamp) and on classic buckets are kept.",
         [push("PUT", "/metrics/job/ex",
               family("requests_total", COUNTER, [metric([("code", "200")], 3, ctr)], "Requests.")
               + family("rt_seconds", HISTOGRAM, [metric([], 7, hist)], "Response time.")),
          scrape_protobuf()])

    summ = uint(1, 9) + double(2, 4.5) + ld(3, double(1, 0.5) + double(2, 0.25)) + ld(
        3, double(1, 0.99) + double(2, 1.75)) + timestamp(1_680_000_000, 123_000_000, 4)
    hcr = uint(1, 2) + double(2, 0.5) + bucket(1.0, 2) + timestamp(1_680_000_001, 0, 15)
    case("pb-created-timestamps",
         "Created timestamps on a counter, a summary and a histogram are kept; text and JSON do "
         "not show them.",
         [push("PUT", "/metrics/job/created",
               family("c_total", COUNTER, [metric([], 3, double(1, 1.0) + timestamp(1_680_000_000, 0, 3))])
               + family("s_seconds", SUMMARY, [metric([], 4, summ)])
               + family("h_seconds", HISTOGRAM, [metric([], 7, hcr)])),
          scrape_protobuf()])

    unk_metric = metric([], 2, double(1, 5.0) + ld(7, "gauge-extra"),
                        extra=ld(20, b"\x08\x01") + uint(21, 99) + fixed32(22, 7))
    case("pb-unknown-fields",
         "Fields that metrics.proto does not define, on the family, the metric and the value "
         "message, are kept and served back as pushed.",
         [push("PUT", "/metrics/job/unknown",
               family("future_gauge", GAUGE, [unk_metric], "Later schema.",
                      extra=ld(5, "seconds") + uint(30, 3))),
          scrape_protobuf()])

    case("pb-family-unit",
         "The family's unit (field 5 of a later metrics.proto) is kept in protobuf scrapes.",
         [push("PUT", "/metrics/job/unit",
               family("disk_bytes", GAUGE, [metric([], 2, double(1, 1024.0))], "Disk.",
                      extra=ld(5, "bytes"))),
          scrape_protobuf()])

    empty = native(0, 0.0, 3, 2.938735877055719e-39, 0, [(0, 0)], [])
    case("pb-native-empty-histogram",
         "A native histogram without observations (a zero-length span marks it native, as "
         "client_golang sends it) is kept.",
         [push("PUT", "/metrics/job/empty",
               family("idle_seconds", HISTOGRAM, [metric([], 7, empty)])),
          scrape_protobuf()],
         record_api=False)

    case("pb-native-post-replaces-and-text-over-native",
         "POST replaces a native histogram by a classic text histogram of the same name; the "
         "other native family stays untouched.",
         [push("PUT", "/metrics/job/swap",
               family("a_seconds", HISTOGRAM, [metric([], 7, nat)])
               + family("b_seconds", HISTOGRAM, [metric([], 7, both)])),
          {"method": "POST", "path": "/metrics/job/swap",
           "body": "# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 2\n"
                   "a_seconds_bucket{le=\"+Inf\"} 3\na_seconds_sum 1.5\na_seconds_count 3\n"},
          scrape_protobuf()],
         record_api=False)

    case("pb-native-histogram-suffix-collision",
         "A gauge named like a native histogram's _count series, pushed to another group, is "
         "judged by the consistency check as upstream judges it.",
         [push("PUT", "/metrics/job/coll1",
               family("jobs", HISTOGRAM, [metric([], 7, nat)])),
          push("PUT", "/metrics/job/coll2",
               family("jobs_count", GAUGE, [metric([], 2, double(1, 1.0))])),
          scrape_protobuf()],
         record_api=False)

    case("pb-native-histogram-type-clash",
         "The same name pushed as a native histogram in one group and a gauge histogram in "
         "another: upstream accepts both and serves them as one family whose type is the first "
         "group's in Go's map order (so only the answers and the per-group JSON are recorded).",
         [push("PUT", "/metrics/job/clash1",
               family("work", HISTOGRAM, [metric([], 7, nat)])),
          push("PUT", "/metrics/job/clash2",
               family("work", GAUGE_HISTOGRAM, [metric([], 7, gh)]))],
         record_text=False)

    case("pb-native-histogram-gzip",
         "A gzipped protobuf push of a native histogram with exemplars on the histogram "
         "(field 16) keeps every field.",
         [dict(push("PUT", "/metrics/job/gz",
                    family("gz_seconds", HISTOGRAM, [metric([], 7, native(
                        2, 0.75, -1, 0.0, 0, [(2, 2)], [1, 0],
                        exemplars=exemplar(0.3, "t-h", field=16) + exemplar(0.45, "t-i", field=16)))]),
                    headers={"Content-Encoding": "gzip"}), body_encoding="gzip"),
          scrape_protobuf()],
         record_api=False)

    case("pb-native-histogram-with-timestamp",
         "A native histogram with a metric timestamp is refused as any timestamped push is.",
         [push("PUT", "/metrics/job/ts",
               family("ts_seconds", HISTOGRAM, [metric([], 7, nat, timestamp_ms=1_700_000_000_000)])),
          scrape_protobuf()])

    case("pb-native-histogram-json",
         "/api/v1/metrics of native-only, classic+native, float and empty native histograms "
         "(1.5.1 shows their classic reading; 1.10+ lists native buckets with boundaries).",
         [push("PUT", "/metrics/job/json",
               family("n_seconds", HISTOGRAM, [metric([], 7, nat)])
               + family("b_seconds", HISTOGRAM, [metric([], 7, both)])
               + family("f_seconds", HISTOGRAM, [metric([], 7, flt)])
               + family("e_seconds", HISTOGRAM, [metric([], 7, empty)]))])

    case("pb-native-histogram-text-scrape",
         "A text scrape of native-only, classic+native and float histograms side by side.",
         [push("PUT", "/metrics/job/txt",
               family("n_seconds", HISTOGRAM, [metric([], 7, nat)])
               + family("b_seconds", HISTOGRAM, [metric([], 7, both)])
               + family("f_seconds", HISTOGRAM, [metric([], 7, flt)])),
          scrape_text()])

    # Reading edges of upstream 1.5.1's text parser, gzip reader, protobuf reader and
    # Accept negotiation.
    def text(method, path, body, headers=None):
        step = {"method": method, "path": path, "body_b64": base64.b64encode(body).decode()}
        if headers:
            step["headers"] = headers
        return step

    def gz(data, cut=0, checksum=False, tail=b"", flushed=False):
        if flushed:
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        z = bytearray(gzip.compress(data, mtime=0))
        if checksum:
            z[-8] ^= 0xFF
        return bytes(z[:len(z) - cut]) + tail

    gzip_header = {"Content-Encoding": "gzip"}
    case("text-nan-quantile-and-le",
         "A summary sample with quantile=\"NaN\" and a bucket with le=\"NaN\" add their series "
         "but not their values, as samples without the label do.",
         [text("PUT", "/metrics/job/nan",
               b'# TYPE s summary\ns{quantile="NaN"} 1\ns{quantile="0.5"} 2\ns_count 3\n'
               b'# TYPE h histogram\nh_bucket{le="NaN"} 1\nh_bucket{le="+Inf"} 4\nh_count 4\n'),
          scrape_protobuf()], tags=("text",))
    case("gzip-text-fails-after-a-whole-line",
         "A gzip text body that fails after a whole line (bad checksum, cut trailer, flushed and "
         "never closed, bytes after the stream) pushes the lines before; inside a line, 400.",
         [text("PUT", "/metrics/job/crc", gz(b"a 1\n", checksum=True), gzip_header),
          text("PUT", "/metrics/job/cut", gz(b"b 1\n", cut=4), gzip_header),
          text("PUT", "/metrics/job/flushed", gz(b"c 1\n", flushed=True), gzip_header),
          text("PUT", "/metrics/job/junk", gz(b"d 1\n", tail=b"junk"), gzip_header),
          text("PUT", "/metrics/job/inside", gz(b"e 1\nf 2", checksum=True), gzip_header),
          text("PUT", "/metrics/job/early", gz(b"metric_one 1\nmetric_two 2\n")[:16], gzip_header)],
         tags=("gzip",))
    case("gzip-header-read-whole",
         "A gzip header is read whole before any route answers: a cut file name or extra field, "
         "a wrong header checksum are 400 (a DELETE too); reserved flag bits are ignored.",
         [text("PUT", "/metrics/job/keep", b"k 1\n"),
          text("PUT", "/metrics/job/keep", bytes([0x1F, 0x8B, 8, 8, 0, 0, 0, 0, 0, 0xFF]) + b"abc", gzip_header),
          text("PUT", "/metrics/job/keep", bytes([0x1F, 0x8B, 8, 4, 0, 0, 0, 0, 0, 0xFF, 0x10, 0]) + b"ab", gzip_header),
          text("PUT", "/metrics/job/keep", bytes([0x1F, 0x8B, 8, 2, 0, 0, 0, 0, 0, 0xFF, 0, 0]) + gz(b"x 1\n")[10:],
               gzip_header),
          text("DELETE", "/metrics/job/keep", bytes([0x1F, 0x8B, 8, 8, 0, 0, 0, 0, 0, 0xFF]) + b"abc", gzip_header),
          text("PUT", "/metrics/job/reserved", bytes([0x1F, 0x8B, 8, 0xE0, 0, 0, 0, 0, 0, 0xFF]) + gz(b"r 1\n")[10:],
               gzip_header)],
         tags=("gzip",))
    tz = family("tz", GAUGE, [metric([], 2, double(1, 1.0))])
    case("pb-tail-after-the-last-message",
         "A protobuf body ending inside or right after a length prefix ends there; a prefix of "
         "more than five bytes is 400.",
         [push("PUT", "/metrics/job/varint", tz + b"\x80"),
          push("PUT", "/metrics/job/prefix", tz + b"\x05"),
          push("PUT", "/metrics/job/part", tz + b"\x05ab"),
          push("PUT", "/metrics/job/long", tz + b"\xff\xff\xff\xff\xff\x01")])
    accept = [
        "APPLICATION/VND.GOOGLE.PROTOBUF;proto=io.prometheus.client.MetricFamily;encoding=delimited",
        ACCEPT_PROTOBUF + ";Q=0.5,text/plain;q=0.6",
        ACCEPT_PROTOBUF.replace("encoding=delimited", 'encoding="delimited"'),
        ACCEPT_PROTOBUF + ';q=0.9,text/plain;version="0.0.4";q=1',
        ACCEPT_PROTOBUF + ";q=abc, text/plain;q=0.5",
        ACCEPT_PROTOBUF + ";q= 0.9, text/plain;q=0.5",
        ACCEPT_PROTOBUF.replace("encoding=delimited", "encoding=text;encoding=delimited"),
        "application / vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
    ]
    case("expo-accept-read-as-goautoneg",
         "Accept is read as goautoneg reads it: case, quotes and spaces kept, a bad q is 0, the "
         "last of a repeated parameter wins; the format served is recorded.",
         [push("PUT", "/metrics/job/a", tz)]
         + [{"method": "GET", "path": "/metrics", "headers": {"Accept": a}, "record": "content_type"}
            for a in accept])
    case("text-timestamp-on-the-timestamp-families",
         "A push whose push_time_seconds or push_failure_time_seconds series carry a timestamp is "
         "400 (the failure recorded, a new group created for it); without one they are dropped.",
         [text("PUT", "/metrics/job/e", b"other 1\n"),
          text("PUT", "/metrics/job/e", b"push_time_seconds 5 1000\nother 2\n"),
          text("PUT", "/metrics/job/f", b"# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 5 1000\n"
               b"other 1\n"),
          text("POST", "/metrics/job/g", b"push_time_seconds 5\nother 3\n")],
         tags=("text", "timestamps"))
    case("gzip-header-read-before-the-main-tree-answers",
         "A body declared gzip that does not decompress is 400 on every route outside the API, "
         "where the route would answer 404, 405, OPTIONS or a redirect; the API answers as without it.",
         [text("GET", "/nonexistent", b"garbage", gzip_header),
          text("PATCH", "/metrics/job/x", b"garbage", gzip_header),
          text("OPTIONS", "/metrics", b"garbage", gzip_header),
          text("GET", "/metrics/", b"garbage", gzip_header),
          text("POST", "/-/healthy", b"", gzip_header),
          text("GET", "/api/v1/nonexistent", b"garbage", gzip_header),
          text("PATCH", "/api/v1/status", b"garbage", gzip_header),
          text("GET", "/nonexistent", b"garbage")],
         tags=("gzip",))

    case("api-json-key-order",
         "The JSON API writes its answer and each family in upstream's key order (Go structs: "
         "status before data; time_stamp, type, help, metrics), a group's keys sorted, and "
         "escapes <, >, &, U+2028 and U+2029 in strings as Go does.",
         [{"method": "GET", "path": "/api/v1/metrics", "record": "body"},
          text("PUT", "/metrics/job/x", b"zz 1\n"),
          {"method": "GET", "path": "/api/v1/metrics", "record": ("body_until", '"time_stamp":"')},
          {"method": "GET", "path": "/api/v1/status", "record": ("body_until", '"data":{')},
          text("PUT", "/metrics/job/x%3C",
               "# HELP m a <b> & c \u2028 d \u2029 é\nm{v=\"<&>\"} 1\n".encode()),
          {"method": "GET", "path": "/api/v1/metrics", "record": ("body_span", '"help":"a ', '"value":"1"')}],
         tags=("api",))

    def answered(step):
        return dict(step, record="body")

    case("text-duplicate-series-message-escapes",
         "The message of a series pushed twice shows the series as Go's protobuf text format "
         "writes it: label values byte by byte (non-ASCII and control bytes in octal) and "
         "inf, -inf and nan.",
         [answered(text("PUT", "/metrics/job/x", 'm{a="é\x01"} +Inf\nm{a="é\x01"} NaN\n'.encode())),
          answered(text("PUT", "/metrics/job/x",
                        b'm{a="x\ty\\n\\"\\\\\x7f~ "} 1\nm{a="x\ty\\n\\"\\\\\x7f~ "} -Inf\n')),
          answered(text("PUT", "/metrics/job/x",
                        b'# TYPE g gauge\ng{b="\xe2\x80\xa8"} 1e+06\ng{b="\xe2\x80\xa8"} 2\n'))],
         tags=("text",))

    case("text-parse-error-quotes-as-go",
         "A parse error quotes what it could not read as Go's strconv.Quote does: characters Go "
         "does not call printable as \\u or \\U escapes, controls with a letter as \\a \\b \\f \\v.",
         [answered(text("PUT", "/metrics/job/x", 'm{c}{{a="b"}} 1\n'.format(c=c).encode()))
          for c in ("\u2028", "\ufeff", "\ue000", "\u3000", "\U0010ffff", "\u00a0", "\u0085", "é€😀",
                    "\x07\x08\x0c\x0b\x1b")],
         tags=("text",))

    pb_gauge = family("m", GAUGE, [metric([], 2, double(1, 1.0))])
    base_ct = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    content_types = [
        base_ct + "; foo", base_ct + ";;", base_ct + "; ;", base_ct + ";", base_ct + " ; ",
        "application/vnd.google.protobuf;; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding*=utf-8''delimited",
        "application/vnd.google.protobuf; proto*0=io.prometheus.; proto*1=client.MetricFamily; encoding=delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding*=utf-8''%64elimited",
        base_ct + "; proto=io.prometheus.client.MetricFamily", base_ct + "; Proto=x", base_ct + "; x=1; X=2",
        base_ct + '; foo="bar', base_ct + "; foo=", base_ct + "; =bar", base_ct + "; f@o=bar",
        base_ct + "; foo=b@r", base_ct + "; a=b c=d", base_ct + "; (comment)", base_ct + "; a=b ",
        base_ct + '; x="a\\"b"', base_ct + '; x="\\', base_ct + "; charset=utf-8",
        'application/vnd.google.protobuf; proto="io.prometheus.client.MetricFamily"; encoding="delimited"',
        "application/vnd.google.protobuf ; proto = io.prometheus.client.MetricFamily ; encoding = delimited",
        "application/vnd.google.protobuf/x; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        "application/; proto=io.prometheus.client.MetricFamily; encoding=delimited",
    ]
    case("pb-content-type-read-as-go",
         "A push's Content-Type is read as Go's mime.ParseMediaType reads it: one that does not "
         "parse (a parameter without a value, a repeated one, a stray semicolon) makes the body "
         "text; RFC 2231 parameters are decoded.",
         [answered(push("PUT", "/metrics/job/ct%d" % i, pb_gauge, headers={"Content-Type": ct}))
          for i, ct in enumerate(content_types)],
         record_text=True)

    g1 = double(1, 1.0)

    def bare(body):
        return varint(len(body)) + body

    case("pb-fields-of-another-wire-type",
         "A declared field written with another wire type is read as Go reads it, as an unknown "
         "field: kept in values, labels and the metric and served back, dropped in the family "
         "(the field then reads as absent); unknown fields in a label pair are kept with it, a "
         "grouping label's too.",
         [push("PUT", "/metrics/job/a", family("ma", GAUGE, [metric([], 2, uint(1, 5))]), record="body"),
          push("PUT", "/metrics/job/b", family("mb", SUMMARY, [metric([], 4, double(1, 3.0) + double(2, 1.0)
                                                                          + ld(3, uint(1, 1) + double(2, 2.0)))]),
               record="body"),
          push("PUT", "/metrics/job/c", family("mc", HISTOGRAM, [metric([], 7, uint(1, 3) + double(2, 1.0)
                                                                            + ld(3, uint(1, 1) + uint(2, 2)))]),
               record="body"),
          push("PUT", "/metrics/job/d", family("md", GAUGE, [metric([], 2, g1, extra=ld(6, b"\x01"))]), record="body"),
          push("PUT", "/metrics/job/e", bare(ld(1, "me") + uint(2, 9) + uint(3, GAUGE) + ld(4, ld(2, g1))
                                            + key(2, 3) + key(2, 4)), record="body"),
          push("PUT", "/metrics/job/f", family("mf", GAUGE, [ld(1, ld(1, "a") + double(2, 1.0)) + ld(2, g1)]),
               record="body"),
          push("PUT", "/metrics/job/g", family("mg", GAUGE, [ld(1, ld(1, "b") + ld(2, "v"))
                                                            + ld(1, ld(1, "a") + ld(2, "w") + ld(7, b"zz"))
                                                            + ld(1, ld(1, "job") + ld(2, "x") + uint(3, 7))
                                                            + ld(2, g1)]), record="body"),
          push("PUT", "/metrics/job/h", bare(ld(1, "mh") + ld(3, b"\x01") + ld(4, ld(2, g1))), record="body"),
          push("PUT", "/metrics/job/i", family("mi", GAUGE, [uint(2, 1)])),
          scrape_protobuf()])

    case("errors-several-listed",
         "A push with several problems in one family is refused with each of them listed, as "
         "client_golang's MultiError words them ('N error(s) occurred:'); a series that fails "
         "a check is not counted as seen, so its copy is not named a duplicate.",
         [answered(text("PUT", "/metrics/job/x", b'# TYPE m gauge\nm{a="1"} 1\nm{a="1"} 2\nm{a="2"} 1\nm{a="2"} 3\n')),
          answered(text("PUT", "/metrics/job/x", b'm{a="1"} 1\nm{a="1"} 1\nm{a="1"} 1\n')),
          answered(text("PUT", "/metrics/job/x", b'm{__a="1"} 1\nm{__a="1"} 1\nm{b="1"} 1\nm{b="1"} 1\n')),
          answered(text("PUT", "/metrics/job/x", b'# TYPE go_goroutines gauge\ngo_goroutines 1\ngo_goroutines 2\n')),
          answered(push("PUT", "/metrics/job/y", family("m", GAUGE, [metric([("a-b", "1")], 2, g1),
                                                                     metric([("c-d", "1")], 2, g1),
                                                                     metric([], 2, g1), metric([], 2, g1)]))),
          answered(push("PUT", "/metrics/job/y", family("m", GAUGE, [metric([("a", "1")], 3, g1),
                                                                     metric([("a", "2")], 3, g1),
                                                                     metric([("a", "3")], 2, g1)])))],
         tags=("text", "protobuf", "validation"))

    case("path-label-values-not-utf8",
         "A label value or job that is not UTF-8 once decoded names no group a push can create: "
         "deleting it is 202; an error elsewhere in the path is answered first.",
         [text("PUT", "/metrics/job/x/l/v", b"m 1\n"),
          text("DELETE", "/metrics/job/x/l/%FF", b""),
          text("DELETE", "/metrics/job/x/l@base64/_w", b""),
          text("DELETE", "/metrics/job/%FF", b""),
          text("DELETE", "/metrics/job@base64/_w", b""),
          answered(text("DELETE", "/metrics/job/x/l/%FF/a-b/1", b"")),
          answered(text("PUT", "/metrics/job/x/l/%FF/a-b/1", b"m 1\n")),
          answered(text("POST", "/metrics/job/x/l/%FF/k", b"m 1\n"))],
         tags=("path",))

    case("api-value-of-several-value-fields",
         "A metric with several value fields shows the field of its family's type in scrapes, "
         "and in /api/v1/metrics the gauge, else the counter, else the untyped value, whatever "
         "the family's type.",
         [push("PUT", "/metrics/job/a", family("ca", COUNTER, [metric([], 3, g1) + ld(2, double(1, 2.0))])),
          push("PUT", "/metrics/job/b", family("ub", UNTYPED, [metric([], 5, g1) + ld(3, double(1, 2.0))])),
          push("PUT", "/metrics/job/c", family("gc", GAUGE, [metric([], 2, g1) + ld(3, double(1, 2.0))])),
          scrape_protobuf()])

    case("pb-label-values-not-utf8-worded",
         "A protobuf label value that is not UTF-8 is refused in upstream's words, the series shown "
         "as it would be stored with the pushed bytes; a value the grouping key overrides, or "
         "in a family a later one of the same name replaces, is no problem.",
         [answered(push("PUT", "/metrics/job/x", family("m", GAUGE, [ld(1, ld(1, "a") + ld(2, b"\xff")) + ld(2, g1)]))),
          answered(push("PUT", "/metrics/job/x", family("m", GAUGE, [
              ld(1, ld(1, "b") + ld(2, b"\xfe")) + ld(1, ld(1, "a") + ld(2, b"\xff")) + ld(2, g1), ld(2, g1),
              ld(1, ld(1, "c") + ld(2, b"\xfdok\n")) + ld(2, g1)]))),
          answered(push("PUT", "/metrics/job/x", family("m", GAUGE, [
              ld(1, ld(1, "a") + ld(2, "é\x01\"".encode() + b"\xff\\")) + ld(2, g1)]))),
          answered(push("PUT", "/metrics/job/y", family("m", GAUGE, [ld(1, ld(1, "job") + ld(2, b"\xff")) + ld(2, g1)]))),
          answered(push("PUT", "/metrics/job/z", family("n", GAUGE, [ld(1, ld(1, "a") + ld(2, b"\xff")) + ld(2, g1)])
                        + family("n", GAUGE, [ld(1, ld(1, "a") + ld(2, b"v")) + ld(2, g1)])))],
         tags=("protobuf", "validation"))

    case("route-telemetry-path-joined-as-go",
         "--web.telemetry-path is joined to the prefix as Go's path.Join joins it: a trailing "
         "slash is dropped, so /m serves the scrape and /m/ redirects to it.",
         [text("PUT", "/metrics/job/x", b"m 1\n"),
          {"method": "GET", "path": "/m"},
          {"method": "GET", "path": "/m/", "record": "content_type"},
          {"method": "PUT", "path": "/m"},
          {"method": "OPTIONS", "path": "/m"},
          {"method": "GET", "path": "/metrics"}],
         flags=("--web.enable-admin-api", "--web.telemetry-path=/m/"), tags=("route",), record_text=False)
    case("misc-pprof-unknown-profile",
         "A profile name Go's pprof handlers do not know is their 404 'Unknown profile'.",
         [answered({"method": "GET", "path": "/debug/pprof/nonexistent"}),
          answered({"method": "GET", "path": "/debug/pprof/trace"}),
          answered({"method": "GET", "path": "/debug/pprof/heap/x"}),
          {"method": "GET", "path": "/debug/pprof/"}],
         tags=("misc",), record_text=False)

    case("pb-malformed-worded-as-go",
         "A protobuf body cut inside a varint or a group is 'unexpected EOF', an end of group "
         "without its start 'can't skip unknown wire type 4', wherever they stand, as Go words them.",
         [answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + b"\x18\xff"))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + b"\x18" + b"\xff" * 10 + b"\x01"))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + uint(3, 1) + ld(4, ld(2, g1) + b"\x30\xff")))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + uint(3, 1) + ld(4, ld(2, g1) + b"\x4b")))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + b"\x4b\x08\x01"))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + b"\x0c"))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + uint(3, 1) + ld(4, ld(2, g1) + b"\x0c")))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + uint(3, 1) + ld(4, ld(2, g1) + b"\x4c")))),
          answered(push("PUT", "/metrics/job/x", bare(ld(1, "m") + uint(3, 1) + ld(4, ld(2, g1 + b"\x4c")))))])

    case("pb-families-without-series-of-several-types",
         "Families of one name without series may have different types in different groups: "
         "upstream merges them into one family without series, which no scrape shows, and "
         "takes every such push; each group keeps its own in /api/v1/metrics.",
         [push("PUT", "/metrics/job/a", family("x", COUNTER, [])),
          push("PUT", "/metrics/job/b", family("x", SUMMARY, [], "Help of b.")),
          push("POST", "/metrics/job/c", family("x", HISTOGRAM, []) + family("y", GAUGE, [metric([], 2, g1)])),
          push("PUT", "/metrics/job/a", family("x", GAUGE_HISTOGRAM, [])),
          push("PUT", "/metrics/job/d/instance/i", family("x", UNTYPED, [])),
          scrape_protobuf()])

    case("pb-quantile-label-beside-a-summary",
         "A quantile label is refused on a series that carries a summary message, whatever its "
         "family's type; without one it is an ordinary label.",
         [push("PUT", "/metrics/job/a", family("g", GAUGE, [metric([("quantile", "x")], 2, g1, extra=ld(4, b""))])),
          push("PUT", "/metrics/job/a", family("c", COUNTER, [metric([("quantile", "x")], 3, g1, extra=ld(4, b""))])),
          push("PUT", "/metrics/job/b", family("g", GAUGE, [metric([("quantile", "x")], 2, g1)])),
          scrape_protobuf()],
         tags=("protobuf", "validation"))

    case("pb-timestamp-families-not-utf8-in-a-new-group",
         "Label values that are not UTF-8 in the two timestamp families of a push to a new group "
         "are no problem: the server's own replace those families before the check.",
         [push("PUT", "/metrics/job/a", family("push_time_seconds", GAUGE, [ld(1, ld(1, "b") + ld(2, b"\xff")) + ld(2, g1)])),
          push("PUT", "/metrics/job/b", family("push_failure_time_seconds", GAUGE, [ld(1, ld(1, "b") + ld(2, b"\xff")) + ld(2, g1)])),
          scrape_protobuf()],
         tags=("protobuf", "validation"))

    case("path-label-value-not-utf8-replaced",
         "A grouping label value in the URL that is not UTF-8 is no problem when a later value "
         "of the same name, or the job segment for a job label, replaces it: the last value "
         "wins, and the key is UTF-8.",
         [text("PUT", "/metrics/job/x/l/%FF/l/v", b"a 1\n"),
          text("PUT", "/metrics/job/y/job/%FF", b"a 2\n"),
          text("PUT", "/metrics/job/z/l@base64/_w/l/w", b"a 3\n")],
         tags=("path",))

    case("api-prefix-matched-as-sent",
         "The API tree sits behind Go's http.StripPrefix, which compares the path as sent too: "
         "an escape inside <prefix>/api/v1 that is not Go's own encoding makes every API "
         "request 404 (such a wipe wipes nothing); escapes after it are decoded.",
         [text("PUT", "/metrics/job/a", b"m 1\n"),
          answered({"method": "PUT", "path": "/ap%69/v1/admin/wipe"}),
          answered({"method": "GET", "path": "/api%2Fv1%2Fmetrics"}),
          answered({"method": "OPTIONS", "path": "/ap%69/v1/metrics"}),
          {"method": "GET", "path": "/api/v1/metric%73"},
          {"method": "PUT", "path": "/api/v1/admin/wip%65"},
          text("PUT", "/metrics/job/b", b"m 2\n")],
         tags=("api", "path"))

    def moved(method, path):
        return {"method": method, "path": path, "record": "location"}

    case("path-redirect-locations-as-go",
         "Go's ServeMux redirects a path it cleans, and one that cleans to /api/v1 straight to "
         "/api/v1/, without an empty query's '?'; a routing tree's own redirects (a trailing "
         "slash) keep it.",
         [moved("GET", "/metrics/job/x/./?"),
          moved("GET", "/metrics/job/x/./?a=1"),
          moved("GET", "/a//b?"),
          moved("PUT", "/metrics//job/x?"),
          moved("GET", "/api/v1?"),
          moved("GET", "/api/v1/."),
          moved("GET", "/api/v1/x/..?"),
          moved("GET", "/api/v1/%2e"),
          moved("GET", "/metrics/?"),
          moved("GET", "/api/v1/metrics/?")],
         tags=("path",))

    case("static-paths-moved-as-gos-file-server",
         "Go's file server moves a path ending in /index.html to ./ (whether or not it exists) "
         "and a file's path with a trailing slash, decoded, to ../<file>, keeping the query; "
         "no body.",
         [moved("GET", "/static/index.html"),
          moved("GET", "/static/index.html?x=1"),
          moved("GET", "/static/nope/index.html"),
          moved("GET", "/static/functions.js/"),
          moved("GET", "/static/prometheus.css/?a=b&c"),
          moved("GET", "/static/%66unctions.js/"),
          moved("GET", "/static/functions.js%2F"),
          moved("GET", "/static/functions.js/?"),
          answered({"method": "GET", "path": "/static/index.html/"}),
          answered({"method": "GET", "path": "/static/functions.js/x"})],
         tags=("path",))

    case("route-external-url-parsed-as-go",
         "--web.external-url is read by Go's url.Parse: without a scheme the whole value is the "
         "path, so example.com/ext gives the route prefix /example.com/ext.",
         [text("PUT", "/example.com/ext/metrics/job/x", b"m 1\n"),
          {"method": "GET", "path": "/example.com/ext/-/ready"},
          {"method": "GET", "path": "/ext/-/ready"},
          {"method": "PUT", "path": "/ext/metrics/job/y", "body": "m 2\n"}],
         flags=("--web.enable-admin-api", "--web.external-url=example.com/ext"), tags=("route",),
         prefix="/example.com/ext")

    case("errors-quote-and-decode-as-go",
         "Parse errors quote a byte as Go's %q quotes a rune, and names and values as Go's %q "
         "quotes a string; a base64 job name that does not decode is named as far as it decoded; "
         "base64 values may hold CR and LF, which Go's decoder skips.",
         [answered(text("PUT", "/metrics/job/x", b'm{a\x01="b"} 1\n')),
          answered(text("PUT", "/metrics/job/x", b'm{a="b"\xc2\xa0} 1\n')),
          answered(text("PUT", "/metrics/job/x", b'm{a=\x07"b"} 1\n')),
          answered(text("PUT", "/metrics/job/x", b"m{a='b'} 1\n")),
          answered(text("PUT", "/metrics/job/x", b'# TYPE m \x01gauge\n')),
          answered(text("PUT", "/metrics/job/x", b'# TYPE m summary\nm{quantile="\xe2\x80\xa8"} 1\n')),
          answered(text("PUT", "/metrics/job/x", b'# HELP m\xc2\xa0 a\n')),
          answered(text("POST", "/metrics/job@base64/YW%0AJj", b"m 1\n")),
          answered(text("PUT", "/metrics/job/x/l@base64/YW%0D%0AJj!", b"m 1\n")),
          answered(text("PUT", "/metrics/job/x/l@base64/YW%0AJj", b"m 1\n")),
          # The last: upstream 1.5.1's job@base64 route then hangs for this method.
          answered(text("PUT", "/metrics/job@base64/YWJjZGVm%3F", b"m 1\n"))],
         tags=("text", "path"))
    case("consist-self-metric-build-info-help",
         "Pushed series of pushgateway_build_info (a gauge, as the gateway's own) are exposed "
         "beside the gateway's own series under the gateway's own help, whatever help they "
         "were pushed with; /api/v1/metrics keeps the pushed help.",
         [answered(text("PUT", "/metrics/job/a", b"# TYPE pushgateway_build_info gauge\npushgateway_build_info 1\n")),
          answered(text("POST", "/metrics/job/b", b"# HELP pushgateway_build_info mine\n"
                        b"# TYPE pushgateway_build_info gauge\npushgateway_build_info{x=\"1\"} 2\n"))],
         tags=("consistency", "self-metrics"))
    return out


# ---------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------


def load_kit(path):
    spec = importlib.util.spec_from_file_location("conformance_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def record(kit, case, command):
    prefix = case.get("prefix", "")
    srv = kit.Server(command, case["flags"], prefix)
    srv.start()
    try:
        base = srv.base
        kit.wipe(base, prefix)
        steps = []
        for step in case["steps"]:
            what = step.pop("record", None)
            resp = kit.execute_step(base, step)
            step["expect_status"] = resp.status
            if what == "content_type":
                step["expect_headers"] = {"Content-Type": resp.header("content-type")}
            if what == "location":
                step["expect_headers"] = {"Location": resp.header("location")}
            if what in ("body", "location"):
                step["compare_body"] = "exact"
                step["expect_body"] = resp.body.decode("utf-8")
            if isinstance(what, tuple) and what[0] == "body_until":
                # The body up to the end of `what[1]`'s first occurrence (what follows it
                # varies: a time).
                text = resp.body.decode("utf-8")
                step["compare_body"] = "prefix"
                step["expect_body"] = text[:text.index(what[1]) + len(what[1])]
            if isinstance(what, tuple) and what[0] == "body_span":
                # The body from `what[1]` to the end of the `what[2]` after it, as written.
                text = resp.body.decode("utf-8")
                start = text.index(what[1])
                step["compare_body"] = "contains"
                step["expect_body"] = text[start:text.index(what[2], start) + len(what[2])]
            if what == "exposition":
                step["compare_body"] = "exposition"
                step["retry"] = True
                step["expect_exposition"] = kit.normalize_exposition_response(resp)
            steps.append(step)
        case["steps"] = steps
        if case.pop("record_text"):
            text = kit.http_request(base, "GET", prefix + "/metrics")
            case["expect_metrics"] = kit.normalize_text_exposition(text.body.decode("utf-8", "replace"))
        if case.pop("record_api"):
            case["expect_api_metrics"] = kit.normalize_api_metrics(kit.fetch_api(base, prefix))
        return case
    finally:
        srv.cleanup()


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: record.py PATH/TO/conformance/run.py [UPSTREAM_COMMAND]")
    kit = load_kit(sys.argv[1])
    command = sys.argv[2] if len(sys.argv) > 2 else "prometheus-pushgateway"
    version = subprocess.run(command.split()[:1] + ["--version"], capture_output=True, text=True)
    reference = " ".join((version.stdout + version.stderr).split())
    os.makedirs(CASES_DIR, exist_ok=True)
    for old in os.listdir(CASES_DIR):
        if old.endswith(".json"):
            os.remove(os.path.join(CASES_DIR, old))
    for n, case in enumerate(cases(), start=1):
        recorded = record(kit, case, command)
        recorded["reference"] = reference
        name = "%03d-%s.json" % (n, recorded["id"])
        with open(os.path.join(CASES_DIR, name), "w", encoding="utf-8") as fh:
            json.dump(recorded, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        print("recorded", name, [s["expect_status"] for s in recorded["steps"]])


if __name__ == "__main__":
    main()
