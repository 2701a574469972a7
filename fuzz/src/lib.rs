//! What the fuzz targets share: a container's run options taken as far as they go without a
//! store, i.e. the checks of `create` on the request and the OCI runtime spec built from it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use berth_engine::container::store::validate_name;
use berth_engine::runtime::{build_spec, RuntimeKind};
use berth_types::container::ContainerConfig;
use berth_types::signal::Signal;
use oci_spec::image::ImageConfiguration;

/// A root filesystem with the /etc/passwd and /etc/group users are resolved in (made once).
fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("berth-fuzz-rootfs-").tempdir().expect("rootfs").keep();
        std::fs::create_dir(dir.join("etc")).expect("rootfs/etc");
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("rootfs/etc/passwd");
        std::fs::write(dir.join("etc/group"), "root:x:0:\napp:x:1000:app\nwheel:x:10:app\n")
            .expect("rootfs/etc/group");
        dir
    })
}

/// The run options of `config`, checked as a create checks them, into a runtime spec (with an
/// empty image config). Errors are fine; a panic is the bug.
pub fn run_options(config: &ContainerConfig) {
    if let Some(name) = config.name.as_deref().filter(|n| !n.is_empty()) {
        let _ = validate_name(name);
    }
    let _ = RuntimeKind::from_str(config.runtime.as_deref().unwrap_or(""));
    if let Some(signal) = config.stop_signal.as_deref() {
        let _ = signal.parse::<Signal>();
    }
    let _ = berth_types::mount::validate_mounts(&config.mounts);
    if let Ok(spec) = build_spec("0123456789abcdef", config, &ImageConfiguration::default(), rootfs()) {
        serde_json::to_vec(&spec).expect("runtime specs serialise");
    }
}
