//! Seccomp: which system calls a container may make.
//!
//! A profile is written in Docker's format ([`Profile`]: rules with capability, architecture
//! and kernel conditions); [`to_oci`] resolves it for one container (its capabilities, this
//! machine) into the runtime spec's `linux.seccomp`, which runc and crun apply as they are; the
//! built-in runtime compiles that same `linux.seccomp` with [`compile`] and loads the program
//! just before exec. The default profile ([`default`]) is Docker's.
//!
//! Compiling uses libseccomp (the `libseccomp` crate over Debian's libseccomp), the library
//! runc and crun use: a filter the built-in runtime loads is the one they would load from the
//! same spec (syscall names resolved per architecture, the 32-bit and x32 ABIs of an x86_64 host
//! covered, argument comparisons on 64-bit values, one action per rule), which a pure-Rust
//! compiler such as seccompiler would have to re-implement (its filters have a single match
//! action and no table of syscall names).

pub mod default;

use std::collections::HashSet;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A seccomp profile in Docker's format (`--security-opt seccomp=profile.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The older form of `archMap`: the architectures themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMapping>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// An architecture and the others whose syscalls its processes may make (x86 and x32 on x86_64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapping {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<Arch>,
}

/// These syscalls get `action` when their arguments match `args` (all of them), if the
/// container meets `includes` and not `excludes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub names: Vec<String>,
    /// The older form of `names`: one syscall.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub includes: Conditions,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub excludes: Conditions,
}

impl Default for Rule {
    fn default() -> Rule {
        Rule {
            names: Vec::new(),
            name: String::new(),
            action: LinuxSeccompAction::ScmpActAllow,
            errno_ret: None,
            args: Vec::new(),
            includes: Conditions::default(),
            excludes: Conditions::default(),
        }
    }
}

/// What a rule's `includes` asks of the container (all of it), or its `excludes` (any of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    /// Capabilities, `CAP_` names.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub caps: Vec<String>,
    /// Go's architecture names, as Docker matches them: `amd64`, `arm64`, `s390x`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub arches: Vec<String>,
    /// `MAJOR.MINOR`: the running kernel is at least this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Parses a profile as `--security-opt seccomp=` carries it (the file's content), with
/// Docker's wording for a bad one.
pub fn parse_profile(json: &str) -> Result<Profile> {
    serde_json::from_str(json)
        .map_err(|e| Error::InvalidInput(format!("Decoding seccomp profile failed: {e}")))
}

/// This machine's architecture as Go (and so Docker's profiles) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// This machine's architecture as seccomp names it.
fn native_arch() -> Option<Arch> {
    Some(match go_arch() {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        _ => return None,
    })
}

/// The running kernel's `(major, minor)`.
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_version(&release).unwrap_or((0, 0))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// Resolves `profile` for a container with capabilities `caps` (its bounding set) on this
/// machine: the rules whose conditions it meets, as the runtime spec's `linux.seccomp`. The
/// same resolution as Docker's daemon makes.
pub fn to_oci(profile: &Profile, caps: &HashSet<Capability>) -> Result<LinuxSeccomp> {
    resolve(profile, caps, go_arch(), kernel_version())
}

fn resolve(
    profile: &Profile,
    caps: &HashSet<Capability>,
    arch: &str,
    kernel: (u32, u32),
) -> Result<LinuxSeccomp> {
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(Error::InvalidInput(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let cap_names: HashSet<String> = caps.iter().map(|c| format!("CAP_{c}")).collect();
    let has_cap = |c: &String| cap_names.contains(&c.to_ascii_uppercase());
    let mut architectures = profile.architectures.clone();
    let native = native_arch();
    for m in &profile.arch_map {
        if Some(m.architecture) == native {
            architectures.push(m.architecture);
            architectures.extend(m.sub_architectures.iter().copied());
        }
    }
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for rule in &profile.syscalls {
        if !rule.name.is_empty() && !rule.names.is_empty() {
            return Err(Error::InvalidInput(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
                    .into(),
            ));
        }
        let ex = &rule.excludes;
        if ex.arches.iter().any(|a| a == arch)
            || ex.caps.iter().any(has_cap)
            || ex.min_kernel.as_deref().and_then(parse_version).is_some_and(|v| kernel >= v)
        {
            continue;
        }
        let inc = &rule.includes;
        if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
            || !inc.caps.iter().all(has_cap)
            || inc.min_kernel.as_deref().and_then(parse_version).is_some_and(|v| kernel < v)
        {
            continue;
        }
        let names = if rule.name.is_empty() { rule.names.clone() } else { vec![rule.name.clone()] };
        let mut b = LinuxSyscallBuilder::default().names(names).action(rule.action);
        if let Some(e) = rule.errno_ret {
            b = b.errno_ret(e);
        }
        if !rule.args.is_empty() {
            b = b.args(rule.args.clone());
        }
        syscalls.push(b.build().map_err(|e| Error::InvalidInput(format!("seccomp profile: {e}")))?);
    }
    let mut b = LinuxSeccompBuilder::default().default_action(profile.default_action).syscalls(syscalls);
    if let Some(e) = profile.default_errno_ret {
        b = b.default_errno_ret(e);
    }
    if !architectures.is_empty() {
        b = b.architectures(architectures);
    }
    b.build().map_err(|e| Error::InvalidInput(format!("seccomp profile: {e}")))
}

fn scmp_error(what: &str, e: libseccomp::error::SeccompError) -> Error {
    Error::InvalidInput(format!("seccomp: {what}: {e}"))
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    use LinuxSeccompAction::*;
    Ok(match action {
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32),
        ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16),
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
        ScmpActNotify => {
            return Err(Error::InvalidInput("seccomp: SCMP_ACT_NOTIFY is not supported by berth".into()))
        }
    })
}

fn compare(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare> {
    use LinuxSeccompOperator::*;
    let index = u32::try_from(arg.index()).ok().filter(|i| *i < 6).ok_or_else(|| {
        Error::InvalidInput(format!("seccomp: argument index {} out of range", arg.index()))
    })?;
    let (op, datum) = match arg.op() {
        ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // `value` is the mask, `valueTwo` what the masked argument must equal (as runc reads it).
        ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(arg.value()), arg.value_two().unwrap_or(0)),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

/// Compiles the spec's `linux.seccomp` into a BPF program for seccomp(2), as runc builds its
/// filter: syscalls this libseccomp does not know are skipped (a newer profile on an older
/// machine), rules with the default action are left out, and conditions on the same argument
/// become separate rules (libseccomp cannot AND them).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| scmp_error("creating the filter", e))?;
    for arch in seccomp.architectures().as_deref().unwrap_or_default() {
        let name =
            serde_json::to_value(arch).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let arch = ScmpArch::from_str(&name).map_err(|e| scmp_error(&name, e))?;
        if arch != ScmpArch::native() {
            ctx.add_arch(arch).map_err(|e| scmp_error(&format!("adding {name}"), e))?;
        }
    }
    for call in seccomp.syscalls().as_deref().unwrap_or_default() {
        let act = action(call.action(), call.errno_ret())?;
        if act == default {
            continue;
        }
        let conditions =
            call.args().as_deref().unwrap_or_default().iter().map(compare).collect::<Result<Vec<_>>>()?;
        let mut indexes: Vec<u32> =
            call.args().as_deref().unwrap_or_default().iter().map(|a| a.index() as u32).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in call.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else { continue };
            let added = if conditions.is_empty() {
                ctx.add_rule(act, syscall)
            } else if repeated {
                conditions
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, syscall, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, syscall, &conditions)
            };
            added.map_err(|e| scmp_error(&format!("adding a rule for {name}"), e))?;
        }
    }
    // libseccomp writes the program to a descriptor: a memfd, read back whole.
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is new and ours.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("creating a memfd for the seccomp filter", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor we own.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file).map_err(|e| scmp_error("exporting the filter", e))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Error::io("reading the seccomp filter", e))?;
    Ok(decode(&bytes))
}

/// The bundle's file with its filter compiled at create ([`write_program`]), so that a start
/// or an exec loads it instead of compiling it again (libseccomp takes milliseconds for Docker's
/// profile on three architectures). It begins with [`spec_key`] of the `linux.seccomp` it was
/// compiled from: a spec changed since is compiled afresh.
pub const PROGRAM_FILE: &str = "seccomp.bpf";

/// A digest of a `linux.seccomp`, as this build serialises it.
fn spec_key(seccomp: &LinuxSeccomp) -> u64 {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(seccomp).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    hasher.finish()
}

/// [`compile`], remembering the programs this process compiled: the daemon compiles the
/// default filter (per capability set) once, not once per container.
pub fn compile_cached(seccomp: &LinuxSeccomp) -> Result<std::sync::Arc<Vec<libc::sock_filter>>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Programs = Mutex<HashMap<u64, Arc<Vec<libc::sock_filter>>>>;
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    let programs = PROGRAMS.get_or_init(Default::default);
    let key = spec_key(seccomp);
    if let Some(p) = programs.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let program = Arc::new(compile(seccomp)?);
    let mut programs = programs.lock().unwrap_or_else(|e| e.into_inner());
    if programs.len() >= 64 {
        programs.clear();
    }
    programs.insert(key, program.clone());
    Ok(program)
}

/// Writes [`PROGRAM_FILE`] into `bundle` for its `linux.seccomp` (removes it when there is none).
pub fn write_program(bundle: &std::path::Path, seccomp: Option<&LinuxSeccomp>) -> Result<()> {
    let path = bundle.join(PROGRAM_FILE);
    let Some(seccomp) = seccomp else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        };
    };
    let program = compile_cached(seccomp)?;
    let mut bytes = spec_key(seccomp).to_le_bytes().to_vec();
    for f in program.iter() {
        bytes.extend_from_slice(&f.code.to_ne_bytes());
        bytes.extend_from_slice(&[f.jt, f.jf]);
        bytes.extend_from_slice(&f.k.to_ne_bytes());
    }
    // A cache: no fsync (a lost or old file is compiled again).
    crate::fsutil::write_replace(&path, &bytes)
}

/// The program of `seccomp` for a process of `bundle`: its [`PROGRAM_FILE`] when that was
/// compiled from this very `linux.seccomp`, else compiled now.
pub fn program(bundle: &std::path::Path, seccomp: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    if let Ok(bytes) = std::fs::read(bundle.join(PROGRAM_FILE)) {
        if bytes.len() > 8 && (bytes.len() - 8) % 8 == 0 && bytes[..8] == spec_key(seccomp).to_le_bytes() {
            return Ok(decode(&bytes[8..]));
        }
    }
    compile(seccomp)
}

fn decode(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(std::mem::size_of::<libc::sock_filter>())
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests;
