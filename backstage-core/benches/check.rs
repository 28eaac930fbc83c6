//! How long `check` takes on a generated 2,000-site Production (one Act, Sess, Venue and Gig
//! per site): parse, validate every rule, build the Production.
//!
//! `cargo bench -p backstage-core --bench check`

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use backstage_core::Manifest;
use criterion::{Criterion, criterion_group, criterion_main};

/// A valid manifest with `sites` sites.
pub fn generated_manifest(sites: usize) -> String {
    let mut s = String::from(
        "[production]\nname = \"bench\"\nstate_dir = \"/tmp/bs\"\n\n[stages.local]\nvirtualenv = \"venv\"\n\n",
    );
    for i in 0..sites {
        let _ = write!(
            s,
            "[acts.site{i}]\nroot = \"sites/site{i}\"\nwsgi = \"site{i}.wsgi:application\"\n\
             settings = \"site{i}.settings\"\nstatic = {{ \"/static/\" = \"sites/site{i}/static\" }}\n\
             env = {{ DJANGO_DEBUG = \"0\" }}\n\n\
             [sess.site{i}]\nact = \"site{i}\"\nstage = \"local\"\nprocesses = 2\nharakiri = 30\n\n\
             [venues.site{i}]\nserver_names = [\"site{i}.example.com\", \"www.site{i}.example.com\"]\n\
             listen = [\"127.0.0.1:8080\"]\n\n\
             [gigs.site{i}]\nvenue = \"site{i}\"\nsess = [\"site{i}\"]\n\n"
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = generated_manifest(2000);
    let manifest =
        Manifest::from_source("backstage.toml".into(), PathBuf::from("/srv/bench"), text);
    assert!(
        manifest.check().is_empty(),
        "the generated manifest is valid"
    );
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    let raw = generated_manifest(2000);
    group.bench_function("toml parse only", |b| {
        b.iter(|| black_box(toml::de::DeTable::parse(&raw)).is_ok());
    });
    group.bench_function("2000 sites", |b| {
        b.iter(|| black_box(manifest.parse()).is_ok());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
