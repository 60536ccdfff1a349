use std::io::{Read, Write};
use std::time::Instant;
fn main() {
    // A scrape-like text: 10,000 groups x 100 series.
    let mut text = String::new();
    for g in 0..10_000 {
        for s in 0..100 {
            text.push_str(&format!("bench_metric_{s}{{instance=\"host-{g}\",job=\"batch\",le=\"{}\"}} {}\n", s % 7, g * s));
        }
    }
    let bytes = text.as_bytes();
    let mut best_c = f64::MAX; let mut best_d = f64::MAX; let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(std::env::var("L").map(|l| l.parse().unwrap()).unwrap_or(1)));
        e.write_all(bytes).unwrap();
        let z = e.finish().unwrap();
        best_c = best_c.min(t.elapsed().as_secs_f64());
        size = z.len();
        let t = Instant::now();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..]).read_to_end(&mut out).unwrap();
        best_d = best_d.min(t.elapsed().as_secs_f64());
        assert_eq!(out.len(), bytes.len());
    }
    let mb = bytes.len() as f64 / 1e6;
    println!("{} MB text -> {} MB gz; compress {:.0} MB/s, decompress {:.0} MB/s", mb as u64, size / 1_000_000, mb / best_c, mb / best_d);
}
