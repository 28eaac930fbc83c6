//! `backstage render`'s nginx half over a generated 2,000-site Production: parse + validate +
//! render every nginx file. `scripts/bench-render` compares it with a Python/Jinja2 renderer.

use std::fmt::Write;
use std::hint::black_box;
use std::path::PathBuf;

use backstage_core::Manifest;
use backstage_nginx::{RenderOptions, render_with};
use criterion::{Criterion, criterion_group, criterion_main};

/// A Production of `n` sites: one Act, Sess, Venue and Gig each.
fn manifest(n: usize) -> String {
    let mut s = String::from(
        "[production]\nname = \"bench\"\nstate_dir = \"/srv/bench/state\"\n\n[stages.local]\nvirtualenv = \"/srv/bench/venv\"\n",
    );
    for i in 0..n {
        write!(
            s,
            "\n[acts.a{i}]\nroot = \"/srv/bench/sites/s{i}\"\nwsgi = \"site.wsgi:application\"\nsettings = \"site.settings\"\nstatic = {{ \"/static/\" = \"/srv/bench/sites/s{i}/static\" }}\n\
             \n[sess.s{i}]\nact = \"a{i}\"\nstage = \"local\"\n\
             \n[venues.v{i}]\nserver_names = [\"site{i}.example.com\", \"www.site{i}.example.com\"]\nlisten = [\"127.0.0.1:8080\"]\n\
             \n[gigs.g{i}]\nvenue = \"v{i}\"\nsess = [\"s{i}\"]\n"
        )
        .unwrap();
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = manifest(2000);
    let options = RenderOptions::with_worker_user(None);
    c.bench_function("parse+validate+render nginx, 2000 sites", |b| {
        b.iter(|| {
            let m = Manifest::from_source(
                PathBuf::from("backstage.toml"),
                PathBuf::from("/srv/bench"),
                black_box(text.clone()),
            );
            let production = m.load().unwrap();
            let files = render_with(&production, &options).unwrap();
            assert_eq!(files.len(), 2001);
            files
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
