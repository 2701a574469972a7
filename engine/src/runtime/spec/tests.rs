use super::*;

use berth_types::container::Resources;
use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534::/:/bin/false\n",
    )
    .unwrap();
    fs::write(dir.path().join("etc/group"), "root:x:0:\nwww:x:33:\nwheel:x:10:www,root\naudio:x:29:www\n")
        .unwrap();
    dir
}

fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>, env: &[&str]) -> ImageConfiguration {
    let mut c = ConfigBuilder::default().env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if let Some(e) = entrypoint {
        c = c.entrypoint(e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    if let Some(cmd) = cmd {
        c = c.cmd(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    ImageConfigurationBuilder::default().config(c.build().unwrap()).build().unwrap()
}

fn config() -> ContainerConfig {
    ContainerConfig { image: "busybox".into(), ..Default::default() }
}

fn args(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().args().clone().unwrap()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

#[test]
fn args_merge_like_docker() {
    let root = rootfs();
    let img = image(Some(&["/entry", "-x"]), Some(&["default"]), &[]);
    let spec = build_spec(ID, &config(), &img, root.path()).unwrap();
    assert_eq!(args(&spec), ["/entry", "-x", "default"]);

    let c = ContainerConfig { cmd: vec!["mine".into()], ..config() };
    assert_eq!(args(&build_spec(ID, &c, &img, root.path()).unwrap()), ["/entry", "-x", "mine"]);

    // --entrypoint drops the image's CMD.
    let c = ContainerConfig { entrypoint: Some(vec!["/other".into()]), ..config() };
    assert_eq!(args(&build_spec(ID, &c, &img, root.path()).unwrap()), ["/other"]);

    // --entrypoint "" with a command runs the command alone.
    let c = ContainerConfig { entrypoint: Some(vec![]), cmd: vec!["ls".into()], ..config() };
    assert_eq!(args(&build_spec(ID, &c, &img, root.path()).unwrap()), ["ls"]);

    let c = ContainerConfig { entrypoint: Some(vec![]), ..config() };
    let err = build_spec(ID, &c, &img, root.path()).unwrap_err();
    assert_eq!(err.to_string(), "no command specified");
}

#[test]
fn env_merges_and_gets_path_and_hostname() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &["A=image", "B=image"]);
    let c =
        ContainerConfig { env: vec!["B=mine".into(), "C=new".into(), "UNSET".into()], tty: true, ..config() };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    assert_eq!(
        env(&spec),
        [
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=0123456789ab".to_string(),
            "A=image".into(),
            "B=mine".into(),
            "C=new".into(),
            "TERM=xterm".into()
        ]
    );
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));

    let img = image(None, Some(&["sh"]), &["PATH=/only"]);
    let c = ContainerConfig { hostname: Some("web".into()), ..config() };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    assert_eq!(env(&spec), ["PATH=/only", "HOSTNAME=web"]);
    assert_eq!(spec.hostname().as_deref(), Some("web"));

    let c = ContainerConfig { hostname: Some("bad host".into()), ..config() };
    assert_eq!(
        build_spec(ID, &c, &img, root.path()).unwrap_err().to_string(),
        "invalid hostname format: bad host"
    );
}

#[test]
fn user_resolution() {
    let root = rootfs();
    let r = |u: &str| resolve_user(root.path(), u);
    let root_user = r("").unwrap();
    assert_eq!((root_user.uid(), root_user.gid()), (0, 0));
    assert_eq!(root_user.additional_gids().clone().unwrap(), [10]);

    let www = r("www").unwrap();
    assert_eq!((www.uid(), www.gid()), (33, 33));
    assert_eq!(www.additional_gids().clone().unwrap(), [10, 29]);

    let u = r("33:wheel").unwrap();
    assert_eq!((u.uid(), u.gid()), (33, 10));
    let u = r("1234:5678").unwrap();
    assert_eq!((u.uid(), u.gid()), (1234, 5678));
    assert!(u.additional_gids().clone().unwrap().is_empty());
    let u = r("1234").unwrap();
    assert_eq!((u.uid(), u.gid()), (1234, 0));

    assert_eq!(
        r("ghost").unwrap_err().to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert_eq!(
        r("www:ghosts").unwrap_err().to_string(),
        "unable to find group ghosts: no matching entries in group file"
    );
}

#[test]
fn passwd_symlink_cannot_escape_the_rootfs() {
    let root = rootfs();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
    fs::remove_file(root.path().join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(host.path().join("passwd"), root.path().join("etc/passwd")).unwrap();
    // The absolute link resolves inside the rootfs, where it does not exist.
    assert!(resolve_user(root.path(), "evil").is_err());
}

#[test]
fn capabilities_default_add_drop() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let caps = |c: &ContainerConfig| {
        let spec = build_spec(ID, c, &img, root.path()).unwrap();
        spec.process().as_ref().unwrap().capabilities().clone().unwrap()
    };
    let default = caps(&config());
    let bounding = default.bounding().clone().unwrap();
    assert_eq!(bounding.len(), 14);
    assert!(bounding.contains(&Capability::NetRaw));
    assert!(!bounding.contains(&Capability::SysAdmin));
    assert_eq!(default.effective(), default.bounding());

    let c = ContainerConfig {
        cap_add: vec!["net_admin".into()],
        cap_drop: vec!["CAP_NET_RAW".into()],
        ..config()
    };
    let b = caps(&c).bounding().clone().unwrap();
    assert!(b.contains(&Capability::NetAdmin) && !b.contains(&Capability::NetRaw));

    let c = ContainerConfig { cap_add: vec!["CHOWN".into()], cap_drop: vec!["ALL".into()], ..config() };
    assert_eq!(caps(&c).bounding().clone().unwrap(), HashSet::from([Capability::Chown]));

    let c = ContainerConfig { cap_add: vec!["ALL".into()], ..config() };
    assert!(caps(&c).bounding().clone().unwrap().contains(&Capability::SysAdmin));

    let c = ContainerConfig { cap_add: vec!["FLY".into()], ..config() };
    assert_eq!(build_spec(ID, &c, &img, root.path()).unwrap_err().to_string(), "unknown capability: \"FLY\"");

    // A non-root user starts with no effective capabilities.
    let c = ContainerConfig { user: Some("www".into()), ..config() };
    let caps = caps(&c);
    assert!(caps.effective().clone().unwrap().is_empty());
    assert_eq!(caps.bounding().clone().unwrap().len(), 14);
}

#[test]
fn resources_and_limits() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let c = ContainerConfig {
        resources: Resources { memory: Some(64 << 20), cpus: Some(0.5), pids_limit: Some(100) },
        ..config()
    };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(res.cpu().as_ref().unwrap().period(), Some(100_000));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(linux.cgroups_path().as_deref(), Some(Path::new(&format!("/berth/{ID}"))));

    let c =
        ContainerConfig { resources: Resources { memory: Some(1 << 20), ..Default::default() }, ..config() };
    assert_eq!(
        build_spec(ID, &c, &img, root.path()).unwrap_err().to_string(),
        "Minimum memory limit allowed is 6MB"
    );
    let c = ContainerConfig { resources: Resources { cpus: Some(0.0), ..Default::default() }, ..config() };
    assert!(build_spec(ID, &c, &img, root.path())
        .unwrap_err()
        .to_string()
        .starts_with("Range of CPUs is from 0.01"));
    let c =
        ContainerConfig { resources: Resources { cpus: Some(f64::NAN), ..Default::default() }, ..config() };
    assert!(build_spec(ID, &c, &img, root.path()).is_err());

    // Requested rlimits never exceed what this process could set.
    let rl = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    let nofile = rl.iter().find(|r| r.typ() == PosixRlimitType::RlimitNofile).unwrap();
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    assert!(nofile.hard() <= cur.rlim_max && nofile.soft() <= nofile.hard());
}

#[test]
fn docker_defaults_and_read_only() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let c = ContainerConfig { read_only: true, working_dir: Some("/srv".into()), ..config() };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(spec.root().as_ref().unwrap().path(), root.path());
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.cwd(), Path::new("/srv"));
    // Docker's default: no_new_privs off (setuid programs work), seccomp on.
    assert_eq!(process.no_new_privileges(), Some(false));
    assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
    let dests: Vec<_> = spec.mounts().as_ref().unwrap().iter().map(|m| m.destination().clone()).collect();
    for d in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"] {
        assert!(dests.contains(&PathBuf::from(d)), "{d} missing");
    }
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.masked_paths().as_ref().unwrap().contains(&"/proc/kcore".to_string()));
    assert!(linux.readonly_paths().as_ref().unwrap().contains(&"/proc/sys".to_string()));
    let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    for t in [LinuxNamespaceType::Pid, LinuxNamespaceType::Mount, LinuxNamespaceType::Network] {
        assert!(ns.contains(&t));
    }

    let c = ContainerConfig { working_dir: Some("rel".into()), ..config() };
    assert!(build_spec(ID, &c, &img, root.path())
        .unwrap_err()
        .to_string()
        .contains("needs to be an absolute path"));
}

#[test]
fn bundle_round_trip_and_exec_process() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &["A=1"]);
    let c = ContainerConfig { user: Some("www".into()), working_dir: Some("/srv".into()), ..config() };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    let bundle = tempfile::tempdir().unwrap();
    write_bundle(bundle.path(), &spec).unwrap();
    assert_eq!(read_bundle(bundle.path()).unwrap(), spec);

    let exec = ExecConfig { cmd: vec!["id".into()], env: vec!["B=2".into()], ..Default::default() };
    let p = build_exec_process(&spec, root.path(), &exec).unwrap();
    assert_eq!(p.args().clone().unwrap(), ["id"]);
    assert_eq!(p.user().uid(), 33);
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
    assert!(p.env().as_ref().unwrap().contains(&"B=2".to_string()));

    let exec = ExecConfig {
        cmd: vec!["id".into()],
        user: Some("0".into()),
        working_dir: Some("/".into()),
        ..Default::default()
    };
    let p = build_exec_process(&spec, root.path(), &exec).unwrap();
    assert_eq!(p.user().uid(), 0);
    assert_eq!(p.capabilities().as_ref().unwrap().effective().as_ref().unwrap().len(), 14);

    assert_eq!(
        build_exec_process(&spec, root.path(), &ExecConfig::default()).unwrap_err().to_string(),
        "No exec command specified"
    );
    assert!(read_bundle(root.path()).is_err());
}

#[test]
fn runtime_kind_names() {
    use crate::runtime::RuntimeKind;
    assert_eq!("berth".parse::<RuntimeKind>().unwrap(), RuntimeKind::Builtin);
    assert_eq!("runc".parse::<RuntimeKind>().unwrap().to_string(), "runc");
    assert_eq!("crun".parse::<RuntimeKind>().unwrap(), RuntimeKind::Crun);
    assert_eq!(
        "kata".parse::<RuntimeKind>().unwrap_err().to_string(),
        "unknown or invalid runtime name: kata (choose berth, runc or crun)"
    );
}

#[test]
fn security_options() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let build = |c: ContainerConfig| build_spec(ID, &c, &img, root.path());

    let spec =
        build(ContainerConfig { privileged: true, cap_drop: vec!["CHOWN".into()], ..config() }).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    let bounding =
        spec.process().as_ref().unwrap().capabilities().as_ref().unwrap().bounding().clone().unwrap();
    assert!(bounding.contains(&Capability::SysAdmin) && bounding.contains(&Capability::Chown));
    let rules = linux.resources().as_ref().unwrap().devices().clone().unwrap();
    assert!(rules.len() == 1 && rules[0].allow() && rules[0].typ() == Some(LinuxDeviceType::A));
    assert!(
        linux
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .any(|d| d.path() == Path::new("/dev/loop-control") || d.path() == Path::new("/dev/kmsg")),
        "host devices"
    );
    let sys = spec.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));

    let spec = build(ContainerConfig {
        security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges=true".into()],
        ..config()
    })
    .unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
    assert_eq!(spec.process().as_ref().unwrap().no_new_privileges(), Some(true));
    let profile =
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let spec =
        build(ContainerConfig { security_opt: vec![format!("seccomp={profile}")], ..config() }).unwrap();
    let seccomp = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(seccomp.default_action(), oci_spec::runtime::LinuxSeccompAction::ScmpActAllow);
    let err = build(ContainerConfig { security_opt: vec!["seccomp={".into()], ..config() }).unwrap_err();
    assert!(err.to_string().contains("Decoding seccomp profile failed"), "{err}");
    let err = build(ContainerConfig { security_opt: vec!["bogus".into()], ..config() }).unwrap_err();
    assert!(err.to_string().contains(r#"invalid --security-opt 1: "bogus""#), "{err}");

    let spec = build(ContainerConfig {
        devices: vec![berth_types::security::parse_device("/dev/null:/dev/mynull:r").unwrap()],
        ulimits: vec![berth_types::security::parse_ulimit("nproc=50:60").unwrap()],
        ..config()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let d = linux.devices().as_ref().unwrap().iter().find(|d| d.path() == Path::new("/dev/mynull")).unwrap();
    assert_eq!((d.major(), d.minor(), d.typ()), (1, 3, LinuxDeviceType::C));
    let rule = linux.resources().as_ref().unwrap().devices().clone().unwrap().pop().unwrap();
    assert_eq!((rule.major(), rule.minor(), rule.access().as_deref()), (Some(1), Some(3), Some("r")));
    let rlimits = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    let nproc = rlimits.iter().find(|r| r.typ() == PosixRlimitType::RlimitNproc).unwrap();
    assert_eq!((nproc.soft(), nproc.hard()), (50, 60));
    let err = build(ContainerConfig {
        devices: vec![berth_types::security::parse_device("/etc/passwd").unwrap()],
        ..config()
    })
    .unwrap_err();
    assert!(err.to_string().contains("not a device node"), "{err}");
}

#[test]
fn group_add_adds_groups_by_number_and_by_name() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let c = ContainerConfig {
        user: Some("www".into()),
        group_add: vec!["1234".into(), "wheel".into()],
        ..config()
    };
    let spec = build_spec(ID, &c, &img, root.path()).unwrap();
    let user = spec.process().as_ref().unwrap().user().clone();
    // www's own groups (wheel, audio), then the added ones, each once.
    assert_eq!(user.additional_gids().clone().unwrap(), [10, 29, 1234]);
    let c = ContainerConfig { group_add: vec!["nosuchgroup".into()], ..config() };
    let e = build_spec(ID, &c, &img, root.path()).unwrap_err();
    assert_eq!(e.to_string(), "Unable to find group nosuchgroup: no matching entries in group file");
}

#[test]
fn masked_and_readonly_paths_replace_the_defaults_when_given() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let build = |c: ContainerConfig| build_spec(ID, &c, &img, root.path());
    let spec = build(ContainerConfig {
        masked_paths: Some(vec!["/etc/secret".into()]),
        readonly_paths: Some(vec![]),
        ..config()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().clone().unwrap(), ["/etc/secret"]);
    assert!(linux.readonly_paths().clone().unwrap().is_empty());
    // Privileged: none, whatever was asked.
    let spec = build(ContainerConfig { privileged: true, masked_paths: Some(vec!["/x".into()]), ..config() })
        .unwrap();
    assert!(spec.linux().as_ref().unwrap().masked_paths().clone().unwrap().is_empty());
    let e = build(ContainerConfig { readonly_paths: Some(vec!["relative".into()]), ..config() }).unwrap_err();
    assert!(e.to_string().contains("must be absolute"), "{e}");
}

#[test]
fn bind_propagation_reaches_the_mount_and_the_root() {
    let root = rootfs();
    let img = image(None, Some(&["sh"]), &[]);
    let bind = |target: &str, propagation: Option<&str>| UserMount {
        kind: MountType::Bind,
        source: PathBuf::from("/srv"),
        destination: PathBuf::from(target),
        read_only: false,
        tmpfs_size: None,
        propagation: propagation.map(String::from),
    };
    let rootfs_propagation = |mounts: &[UserMount]| {
        let mut spec = build_spec(ID, &config(), &img, root.path()).unwrap();
        add_user_mounts(&mut spec, mounts).unwrap();
        let options = spec.mounts().clone().unwrap().last().unwrap().options().clone().unwrap();
        (options, spec.linux().as_ref().unwrap().rootfs_propagation().clone())
    };
    let (options, root_mode) = rootfs_propagation(&[bind("/a", None)]);
    assert_eq!((options[1].as_str(), root_mode), ("rprivate", None));
    let (options, root_mode) = rootfs_propagation(&[bind("/a", Some("rslave"))]);
    assert_eq!((options[1].as_str(), root_mode.as_deref()), ("rslave", Some("rslave")));
    let (options, root_mode) = rootfs_propagation(&[bind("/a", Some("rslave")), bind("/b", Some("rshared"))]);
    assert_eq!((options[1].as_str(), root_mode.as_deref()), ("rshared", Some("rshared")));
}
