use std::collections::HashSet;
use std::str::FromStr;

use oci_spec::runtime::{Capability, LinuxSeccompAction};

use super::*;

fn caps(names: &[&str]) -> HashSet<Capability> {
    names.iter().map(|n| Capability::from_str(n).unwrap()).collect()
}

fn allowed(s: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
    s.syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| c.names().iter().any(|n| n == name))
        .cloned()
        .collect()
}

#[test]
fn default_profile_without_sys_admin_filters_clone_and_denies_mount() {
    let s = resolve(&default::profile(), &caps(&["CHOWN", "SETUID"]), "amd64", (6, 1)).unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    assert!(allowed(&s, "mount").is_empty() && allowed(&s, "unshare").is_empty());
    assert!(allowed(&s, "open_by_handle_at").is_empty() && allowed(&s, "init_module").is_empty());
    let clone = allowed(&s, "clone");
    assert_eq!(clone.len(), 1);
    let arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!((arg.index(), arg.value()), (0, 0x7E02_0000));
    let clone3 = allowed(&s, "clone3");
    assert_eq!((clone3[0].action(), clone3[0].errno_ret()), (LinuxSeccompAction::ScmpActErrno, Some(38)));
    // ptrace from 4.8 on; arch_prctl on amd64, not the ARM-only calls.
    assert_eq!(allowed(&s, "ptrace").len(), 1);
    assert_eq!(allowed(&s, "arch_prctl").len(), 1);
    assert!(allowed(&s, "set_tls").is_empty());
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let old = resolve(&default::profile(), &caps(&[]), "amd64", (4, 4)).unwrap();
    assert!(allowed(&old, "ptrace").is_empty());
}

#[test]
fn capabilities_add_their_syscalls() {
    let s = resolve(&default::profile(), &caps(&["SYS_ADMIN", "SYS_PTRACE"]), "amd64", (6, 1)).unwrap();
    assert_eq!(allowed(&s, "mount").len(), 1);
    let clone = allowed(&s, "clone");
    assert!(clone.len() == 1 && clone[0].args().is_none(), "clone unfiltered with SYS_ADMIN");
    assert_eq!(allowed(&s, "clone3")[0].action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(allowed(&s, "process_vm_writev").len(), 2);
}

#[test]
fn docker_profile_json_is_read() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no"},
            {"name": "chmod", "action": "SCMP_ACT_ERRNO", "args": null,
             "includes": {}, "excludes": {"caps": ["CAP_FOWNER"]}}
        ]
    }"#;
    let p = parse_profile(json).unwrap();
    let s = resolve(&p, &caps(&[]), "amd64", (6, 1)).unwrap();
    assert_eq!(allowed(&s, "mkdir")[0].errno_ret(), Some(13));
    assert_eq!(allowed(&s, "chmod").len(), 1);
    let s = resolve(&p, &caps(&["FOWNER"]), "amd64", (6, 1)).unwrap();
    assert!(allowed(&s, "chmod").is_empty());
    let err = parse_profile("{nope").unwrap_err().to_string();
    assert!(err.contains("Decoding seccomp profile failed"), "{err}");
}

#[test]
fn compiles_to_bpf() {
    let s = to_oci(&default::profile(), &caps(&["CHOWN"])).unwrap();
    let program = compile(&s).unwrap();
    assert!(program.len() > 100, "{} instructions", program.len());
    // A syscall name this libseccomp does not know is skipped, as runc skips it.
    let p = parse_profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_call","mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    assert!(!compile(&to_oci(&p, &caps(&[])).unwrap()).unwrap().is_empty());
}
