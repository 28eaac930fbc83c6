//! Decode and encode of packets captured from real nginx (`tests/fixtures/nginx-*.bin`).
use std::hint::black_box;

use backstage_uwsgi::{BufferSize, Packet, encode_packet};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FIXTURES: [(&str, &[u8]); 4] = [
    (
        "get-query-headers",
        include_bytes!("../tests/fixtures/nginx-get-query-headers.bin"),
    ),
    (
        "post-form",
        include_bytes!("../tests/fixtures/nginx-post-form.bin"),
    ),
    (
        "browser-get-cookies",
        include_bytes!("../tests/fixtures/nginx-browser-get-cookies.bin"),
    ),
    (
        "post-binary",
        include_bytes!("../tests/fixtures/nginx-post-binary.bin"),
    ),
];

fn codec(c: &mut Criterion) {
    let mut decode = c.benchmark_group("decode");
    for (name, wire) in FIXTURES {
        decode.throughput(Throughput::Bytes(wire.len() as u64));
        // Decoding validates every key and value size in the block.
        decode.bench_function(format!("{name} ({} B)", wire.len()), |b| {
            b.iter(|| {
                Packet::decode(black_box(wire), BufferSize::MAX)
                    .unwrap()
                    .unwrap()
            });
        });
    }
    decode.finish();

    let mut iterate = c.benchmark_group("decode+iterate");
    for (name, wire) in FIXTURES {
        iterate.throughput(Throughput::Bytes(wire.len() as u64));
        iterate.bench_function(format!("{name} ({} B)", wire.len()), |b| {
            b.iter(|| {
                let (packet, _) = Packet::decode(black_box(wire), BufferSize::MAX)
                    .unwrap()
                    .unwrap();
                packet
                    .vars()
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
            });
        });
    }
    iterate.finish();

    let mut encode = c.benchmark_group("encode");
    for (name, wire) in FIXTURES {
        let (packet, _) = Packet::decode(wire, BufferSize::MAX).unwrap().unwrap();
        let header = packet.header();
        let vars: Vec<(&[u8], &[u8])> = packet.vars().iter().collect();
        let mut dst = BytesMut::with_capacity(8 * 1024);
        encode.throughput(Throughput::Bytes(wire.len() as u64));
        encode.bench_function(format!("{name} ({} B)", wire.len()), |b| {
            b.iter(|| {
                dst.clear();
                encode_packet(
                    &mut dst,
                    header.modifier1,
                    header.modifier2,
                    black_box(&vars).iter().copied(),
                    BufferSize::MAX,
                )
                .unwrap();
            });
        });
    }
    encode.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
