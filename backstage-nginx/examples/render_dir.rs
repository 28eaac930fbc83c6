//! Renders every nginx file of a manifest into a directory (validation included), touching
//! nothing live: the Rust side of `scripts/bench-render`.
//!
//! `cargo run --release -p backstage-nginx --example render_dir -- MANIFEST OUT_DIR`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [manifest, out] = args.as_slice() else {
        eprintln!("usage: render_dir MANIFEST OUT_DIR");
        return ExitCode::from(2);
    };
    let production = match backstage_core::Production::load(manifest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = match backstage_nginx::render(&production) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for f in &files {
        let rel = f.path.strip_prefix("/").unwrap_or(&f.path);
        let target = out.join(rel);
        let dir = target.parent().unwrap_or(Path::new("."));
        if let Err(e) =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&target, &f.content))
        {
            eprintln!("error: failed to write `{}`: {e}", target.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
