//! Per-request cost of the client against a real local uWSGI (1 worker, request logging off),
//! in process: what `backstage request` costs without process start-up (compare with the
//! in-process `uwsgi_tools` figure of `scripts/bench-request`). Needs `scripts/test-deps`.
#[path = "../tests/support/mod.rs"]
mod support;

use backstage_uwsgi::{Client, Request};
use criterion::{Criterion, criterion_group, criterion_main};

fn client(c: &mut Criterion) {
    let uwsgi = support::Uwsgi::start_with(&support::Options {
        processes: 1,
        lean: true,
        ..support::Options::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("client");
    for (name, target) in [("unix", &uwsgi.unix), ("tcp", &uwsgi.tcp)] {
        let client = Client::new(target.clone());
        group.bench_function(format!("GET /environ?q=1 over {name}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    client
                        .send(Request::get("/environ?q=1").header("X-Bench", "1"))
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap()
                })
            });
        });
        group.bench_function(format!("ping over {name}"), |b| {
            b.iter(|| runtime.block_on(client.ping()).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, client);
criterion_main!(benches);
