//! The `backstage` binary; the command line lives in the library (`src/lib.rs`).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    backstage::run(std::env::args_os())
}
