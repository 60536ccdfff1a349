//! Micro-benchmarks of the code on the push and scrape paths: the text and protobuf
//! parsers, the consistency check (a push applied to a store of 100k series), and the
//! renderer (a scrape of 100k series).
//!
//! ```text
//! cargo bench -p bench --bench micro
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use model::{Command, GroupStore, GroupingKey, UnixNanos};
use pushgateway::exposition::{protobuf, render, text_parse};

/// The reference workload's body: three gauge families, ten series.
fn reference_body() -> Vec<u8> {
    let mut body =
        String::from("# TYPE bench_metric_0 gauge\n# TYPE bench_metric_1 gauge\n# TYPE bench_metric_2 gauge\n");
    for i in 1..=10 {
        body.push_str(&format!("bench_metric_{}{{shard=\"s{i}\"}} {}\n", i % 3, i * 7));
    }
    body.into_bytes()
}

/// One family of `series` gauges.
fn load_body(series: usize) -> Vec<u8> {
    let mut body = String::from("# HELP load_metric Load.\n# TYPE load_metric gauge\n");
    for i in 0..series {
        body.push_str(&format!("load_metric{{k=\"{i}\"}} {i}\n"));
    }
    body.into_bytes()
}

fn key(job: &str, instance: &str) -> GroupingKey {
    GroupingKey::new(BTreeMap::from([
        ("job".to_string(), job.to_string()),
        ("instance".to_string(), instance.to_string()),
    ]))
}

fn push(store: &mut GroupStore, key: GroupingKey, body: &[u8]) {
    let families = text_parse::parse_text(body).expect("valid body");
    let command =
        Command::Push { key, families, replace: true, time: UnixNanos(1_700_000_000_000_000_000), defect: None };
    store.apply(command);
}

/// 1,000 groups of 100 series: the 100k-series store of the reference workload.
fn store_100k() -> GroupStore {
    let mut store = GroupStore::new();
    let body = load_body(100);
    for g in 0..1000 {
        push(&mut store, key("load", &format!("g{g}")), &body);
    }
    store
}

fn parsers(c: &mut Criterion) {
    let small = reference_body();
    let large = load_body(10_000);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("text, reference 10-series push", |b| b.iter(|| text_parse::parse_text(black_box(&small))));
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("text, 10k series", |b| b.iter(|| text_parse::parse_text(black_box(&large))));
    let families = text_parse::parse_text(&large).expect("valid");
    let mut encoded = Vec::new();
    for family in families.values() {
        protobuf::encode_family(family, family.help.as_deref(), &mut encoded);
    }
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("protobuf delimited, 10k series", |b| {
        b.iter(|| protobuf::parse_delimited(black_box(&encoded)))
    });
    group.finish();
}

fn consistency_check(c: &mut Criterion) {
    let mut store = store_100k();
    let families = text_parse::parse_text(&reference_body()).expect("valid");
    let mut n = 0u64;
    c.bench_function("apply a checked 10-series push to a 100k-series store", |b| {
        b.iter(|| {
            n += 1;
            let command = Command::Push {
                key: key("bench", &format!("i{}", n % 1000)),
                families: families.clone(),
                replace: true,
                time: UnixNanos(n as i64),
                defect: None,
            };
            black_box(store.apply(command))
        })
    });
}

fn renderer(c: &mut Criterion) {
    let store = store_100k().view();
    let own = Vec::new();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    // A text scrape keeps each stored family's series text and the timestamp families'
    // text; repeated scrapes of an unchanged store copy them.
    let escaping = pushgateway::exposition::escaping::Escaping::Underscores;
    let kept = render::TimestampText::of(&store, escaping).expect("no group holds a timestamp family");
    group.bench_function("text, 100k series, series and timestamp text kept from the first scrape", |b| {
        b.iter(|| {
            assert!(kept.is_for(&store, escaping));
            let families = render::gather(&store, render::Stamps::Text(&kept), &own, render::Prepare::Text);
            black_box(render::render_text(&families, escaping))
        })
    });
    group.bench_function("text, 100k series, every series formatted", |b| {
        b.iter(|| {
            let timestamps = render::timestamp_families(&store);
            let families = render::gather(&store, render::Stamps::Series(&timestamps), &own, render::Prepare::Series);
            black_box(render::render_text(&families, pushgateway::exposition::escaping::Escaping::Underscores))
        })
    });
    group.finish();
}

criterion_group!(benches, parsers, consistency_check, renderer);
criterion_main!(benches);
