//! Benchmark placeholder replaced by the manifest check benchmark.
fn main() {}
