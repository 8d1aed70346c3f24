//! Rebuild when the embedded web client changes (rust-embed only tracks files it already saw).
fn main() {
    println!("cargo:rerun-if-changed=web");
}
