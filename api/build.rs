// New migration files and a rebuilt dashboard must trigger a rebuild of the binary.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../dist");
    // The berth binary is a position-independent executable (rustc's default on Linux) with full
    // RELRO: the root daemon listening on the network gets its code at a random address, and
    // after the loader's relocations the GOT and .data.rel.ro are read-only. Said here rather
    // than left to the default, so that a linker flag elsewhere cannot quietly drop it.
    // The price of PIE is ~42,000 relative relocations per exec'd process (~700 kB of private
    // pages); container monitors are forked from one zygote that paid it once and share those
    // pages copy-on-write (see ARCHITECTURE.md; benches/monitor_memory.sh measures it).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-pie");
        println!("cargo:rustc-link-arg-bins=-Wl,-z,relro,-z,now");
    }
}
