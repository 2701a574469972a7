// New migration files and a rebuilt dashboard must trigger a rebuild of the binary.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../dist");
    // The berth binary is linked as a fixed-address executable, not PIE. Every process of it
    // (each container's monitor, each CLI call) would otherwise have the dynamic loader apply
    // ~42,000 relative relocations at start, copying ~700 kB of relocated pages (.data.rel.ro,
    // .got, .data) into private memory: per running container that was half of the monitor's
    // PSS, and per CLI call a few hundred page faults. Without PIE those pages stay clean,
    // shared page-cache pages. The cost: the executable's own image is not randomised by ASLR
    // (its heap, stack, mmaps and shared libraries still are). Only the link changes; the code
    // is compiled as before (position-independent code links fine into a fixed executable).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
