//! `berth system check [--repair]` against a real daemon: a clean state passes; a corrupt blob,
//! a deleted and an incomplete layer, an orphaned mount and container directory, an orphaned
//! cgroup, a stale netns pin and a volume without its data directory are each found, and
//! repaired (removed, unpacked again, or moved to lost+found), after which the check is clean.
//! Also over the API, for admins only.

use std::path::{Path, PathBuf};

use berth_tests::{check_findings, Daemon};
use sha2::{Digest, Sha256};

/// A cgroup made by the test, removed however the test ends.
struct CgroupGuard(PathBuf);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    hex::encode(bytes)
}

/// `system check` found nothing (but others' cgroups).
#[track_caller]
fn assert_clean(daemon: &Daemon) {
    let out = daemon.berth(&["system", "check"]);
    assert!(check_findings(&out.stdout, None).is_empty(), "{}\n{}", out.stdout, out.stderr);
}

fn only_layer(root: &Path) -> PathBuf {
    let layers: Vec<PathBuf> =
        std::fs::read_dir(root.join("snapshots/layers")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    layers[0].clone()
}

#[test]
fn damage_is_found_and_repaired() {
    let daemon = Daemon::with_busybox();
    let root = daemon.root();
    assert_clean(&daemon);
    let clean = daemon.berth(&["system", "check"]);
    assert!(clean.stdout.contains("blobs: "), "{}", clean.stdout);

    // A blob whose content is not what its name says.
    let bogus = hex::encode(Sha256::digest(b"what the name promises"));
    let blob = root.join("blobs/sha256").join(&bogus);
    std::fs::write(&blob, b"something else").unwrap();
    // The image's only layer deleted, and an unpacked layer without its record (an unpack cut
    // short before the marker).
    let layer = only_layer(&root);
    std::fs::remove_dir_all(&layer).unwrap();
    let incomplete = root.join("snapshots/layers").join(random_id());
    std::fs::create_dir_all(incomplete.join("fs/etc")).unwrap();
    // A mount in the directory of a container that does not exist.
    let ghost = random_id();
    let ghost_rootfs = root.join("containers").join(&ghost).join("rootfs");
    std::fs::create_dir_all(&ghost_rootfs).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &ghost_rootfs,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mounting a tmpfs");
    // An empty cgroup of no container.
    let cgroup_parent = ["/sys/fs/cgroup/berth", "/sys/fs/cgroup/unified/berth", "/sys/fs/cgroup/pids/berth"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .or_else(|| {
            std::fs::create_dir("/sys/fs/cgroup/berth").ok().map(|()| PathBuf::from("/sys/fs/cgroup/berth"))
        });
    let cgroup = cgroup_parent.map(|parent| {
        let path = parent.join(random_id());
        std::fs::create_dir(&path).expect("making a cgroup");
        CgroupGuard(path)
    });
    // A network namespace pin left by a container that is gone.
    std::fs::create_dir_all(daemon.run_dir().join("netns")).unwrap();
    let pin = daemon.run_dir().join("netns").join(random_id());
    std::fs::write(&pin, b"").unwrap();
    // A volume whose data directory went missing.
    daemon.berth(&["volume", "create", "data"]).ok();
    std::fs::remove_dir_all(root.join("volumes/data/_data")).unwrap();

    let found = daemon.berth(&["system", "check"]);
    assert_eq!(found.code, 1, "stdout: {}\nstderr: {}", found.stdout, found.stderr);
    assert!(found.stderr.contains("findings"), "{}", found.stderr);
    let own_cgroup = cgroup.as_ref().map(|c| c.0.file_name().unwrap().to_string_lossy().into_owned());
    let listed = check_findings(&found.stdout, own_cgroup.as_deref());
    let layer_id = format!("sha256:{}", layer.file_name().unwrap().to_string_lossy());
    let mut expected = vec![
        format!("blob sha256:{bogus}"),
        format!("layer sha256:{}", incomplete.file_name().unwrap().to_string_lossy()),
        format!("layer {layer_id}"),
        format!("mount {}", ghost_rootfs.display()),
        format!("container {ghost}"),
        format!("netns {}", pin.display()),
        "volume data".to_string(),
    ];
    if let Some(cgroup) = &cgroup {
        expected.push(format!("cgroup {}", cgroup.0.display()));
    }
    for want in &expected {
        assert!(listed.contains(want), "{want} not found in:\n{}", found.stdout);
    }

    let repaired = daemon.berth(&["system", "check", "--repair"]);
    let fixed: Vec<&str> = repaired.stdout.lines().filter(|l| l.contains("\trepaired: ")).collect();
    for want in &expected {
        assert!(
            fixed.iter().any(|l| l.starts_with(&want.replacen(' ', "\t", 1))),
            "{want} not repaired:\n{}\n{}",
            repaired.stdout,
            repaired.stderr
        );
    }
    assert_clean(&daemon);

    // What was broken is kept aside, nothing of it deleted; what was missing is back.
    let lost = root.join("lost+found");
    assert!(lost.join("blobs").join(&bogus).is_file());
    assert!(lost.join("containers").join(&ghost).is_dir());
    assert!(lost.join("layers").join(incomplete.file_name().unwrap()).join("fs/etc").is_dir());
    assert!(layer.join("layer.json").is_file(), "the layer is unpacked again");
    assert!(root.join("volumes/data/_data").is_dir());
    assert!(!pin.exists());
    if let Some(cgroup) = &cgroup {
        assert!(!cgroup.0.exists());
    }
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounted.contains(&ghost), "the orphaned mount is gone");
    // And the image runs again.
    daemon.berth(&["run", "--rm", "busybox", "true"]).ok();
}

#[test]
fn the_check_is_for_admins_over_the_api() {
    let daemon = Daemon::with_busybox();
    let viewer = daemon.user_with_token("watcher", "viewer", None);
    let refused = daemon.call(Some(&viewer), "POST", "/api/v1/system/check", None);
    assert_eq!(refused.status, 403, "{}", refused.text());
    let report = daemon.call(Some(berth_tests::ADMIN_TOKEN), "POST", "/api/v1/system/check", None);
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    let own: Vec<_> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["area"] != "cgroup").collect();
    assert!(own.is_empty(), "{report:#}");
    let checked = report["checked"].to_string();
    assert!(checked.contains("history database"), "{checked}");
    let bad = daemon.call(Some(berth_tests::ADMIN_TOKEN), "POST", "/api/v1/system/check?repair=maybe", None);
    assert_eq!(bad.status, 400, "{}", bad.text());
}
