// New migration files and a rebuilt dashboard must trigger a rebuild of the binary.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../dist");
}
