//! The escape battery's probe: one raw system call per case, for the calls busybox has no tool
//! for. It runs only inside test containers. Each attempt is made harmless when it is allowed
//! (a process-private key, a tiny BPF map, a perf counter on itself, invalid arguments to
//! kexec_load and init_module so that they stop right after the permission check).
//!
//! `escape-probe CASE [ARG]` prints `escaped` and exits 0 when the call got past the kernel's
//! checks, prints `blocked: ERRNO` and exits 1 when it was refused; 2 on bad usage.

use std::ffi::CString;
use std::io::Error;

/// What the call returned: Ok, or the errno.
fn call(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r < 0 {
        Err(Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("");
    let result: Result<(), i32> = match case {
        "add_key" => {
            let (typ, desc) = (CString::new("user").unwrap(), CString::new("berth-probe").unwrap());
            // SAFETY: add_key with valid strings and payload, into the process's own keyring.
            call(unsafe {
                libc::syscall(
                    libc::SYS_add_key,
                    typ.as_ptr(),
                    desc.as_ptr(),
                    b"x".as_ptr(),
                    1usize,
                    -2i32, // KEY_SPEC_PROCESS_KEYRING
                )
            })
            .map(drop)
        }
        "keyctl" => {
            // KEYCTL_GET_KEYRING_ID of the process keyring, creating it: private to this process.
            // SAFETY: integer arguments.
            call(unsafe { libc::syscall(libc::SYS_keyctl, 0, -2i32, 1) }).map(drop)
        }
        "bpf" => {
            // BPF_MAP_CREATE of a one-entry array map.
            let mut attr = [0u32; 16];
            attr[0] = 2; // BPF_MAP_TYPE_ARRAY
            attr[1] = 4; // key size
            attr[2] = 4; // value size
            attr[3] = 1; // max entries
                         // SAFETY: bpf reads `size_of_val(&attr)` bytes of attr.
            call(unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), std::mem::size_of_val(&attr)) })
                .map(|fd| unsafe { libc::close(fd as i32) }.max(0))
                .map(drop)
        }
        "perf_event_open" => {
            // A software clock counter on this process.
            let mut attr = [0u8; 128];
            attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // PERF_TYPE_SOFTWARE
            attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
                                                               // SAFETY: perf_event_open reads the attr struct of the given size.
            call(unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) })
                .map(|fd| unsafe { libc::close(fd as i32) }.max(0))
                .map(drop)
        }
        "kexec_load" => {
            // Invalid flags: allowed, the call fails with EINVAL after its permission check.
            // SAFETY: no pointer is read (zero segments).
            match call(unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0xdead_0000u64) }) {
                Err(libc::EPERM) => Err(libc::EPERM),
                _ => Ok(()),
            }
        }
        "init_module" => {
            // An empty image: allowed, the call fails (ENOEXEC/EINVAL) after its permission check.
            let params = CString::new("").unwrap();
            // SAFETY: zero bytes of image are read.
            match call(unsafe { libc::syscall(libc::SYS_init_module, b"".as_ptr(), 0usize, params.as_ptr()) })
            {
                Err(libc::EPERM) => Err(libc::EPERM),
                _ => Ok(()),
            }
        }
        "open_by_handle_at" => open_by_handle(),
        "ptrace" => {
            // PTRACE_ATTACH to a host process ID (the test's): nothing outside may be reached.
            let pid: i32 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(1);
            // SAFETY: integer arguments.
            call(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, pid, 0, 0) }).map(drop)
        }
        "raw_socket" => {
            // SAFETY: plain syscall.
            call(unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) } as libc::c_long)
                .map(|fd| unsafe { libc::close(fd as i32) }.max(0))
                .map(drop)
        }
        "exe_watch" => {
            let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
            exe_watch(std::time::Duration::from_secs(seconds))
        }
        _ => {
            eprintln!("usage: escape-probe add_key|keyctl|bpf|perf_event_open|kexec_load|init_module|open_by_handle_at|ptrace PID|raw_socket|exe_watch SECONDS");
            std::process::exit(2);
        }
    };
    match result {
        Ok(()) => println!("escaped"),
        Err(errno) => {
            println!("blocked: {}", Error::from_raw_os_error(errno));
            std::process::exit(1);
        }
    }
}

/// The shocker escape's calls: a handle of `/dev` (a tmpfs: overlayfs roots give no handles)
/// by name_to_handle_at, opened again by open_by_handle_at (which, allowed, opens any inode of
/// a filesystem by a guessed handle).
fn open_by_handle() -> Result<(), i32> {
    let mut buf = [0u8; 8 + 128];
    buf[0..4].copy_from_slice(&128u32.to_ne_bytes()); // handle_bytes
    let mut mount_id = 0i32;
    let root = CString::new("/dev").unwrap();
    // SAFETY: a file_handle buffer with room for 128 bytes of handle.
    call(unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            root.as_ptr(),
            buf.as_mut_ptr(),
            &mut mount_id,
            0,
        )
    })?;
    // SAFETY: opening the directory for a mount descriptor.
    let mount_fd = unsafe { libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    // SAFETY: the handle filled in above.
    let fd = call(unsafe {
        libc::syscall(libc::SYS_open_by_handle_at, mount_fd, buf.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY)
    })?;
    // SAFETY: closing our descriptors.
    unsafe {
        libc::close(fd as i32);
        libc::close(mount_fd);
    }
    Ok(())
}

/// The runtime-overwrite escape (CVE-2019-5736), up to the point of harm: for `limit`, hold
/// every other process's executable (/proc/PID/exe) that can be opened, and try to open each for
/// writing, again after its process is gone. An executable that is not the file of the same
/// name in the container (the runtime's own binary, entered through `#!/proc/self/exe`) and
/// opens for writing is an escape; nothing is ever written.
fn exe_watch(limit: std::time::Duration) -> Result<(), i32> {
    use std::os::unix::fs::MetadataExt;
    let deadline = std::time::Instant::now() + limit;
    let me = std::process::id().to_string();
    let mut held: Vec<(String, std::fs::File)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut last_error = libc::EACCES;
    while std::time::Instant::now() < deadline {
        for entry in std::fs::read_dir("/proc").map_err(|e| e.raw_os_error().unwrap_or(0))?.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me || !seen.insert(pid.clone()) {
                continue;
            }
            let link = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            match std::fs::File::open(format!("/proc/{pid}/exe")) {
                Ok(f) => held.push((link.display().to_string(), f)),
                Err(e) => {
                    last_error = e.raw_os_error().unwrap_or(0);
                    // Not openable now (not dumpable yet): look again next round.
                    seen.remove(&pid);
                }
            }
        }
        for (link, file) in &held {
            let same_here = std::fs::metadata(link)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
            if same_here {
                continue;
            }
            use std::os::fd::AsRawFd;
            let path = format!("/proc/self/fd/{}", file.as_raw_fd());
            match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(_) => {
                    println!("opened the executable {link} (outside the container) for writing");
                    return Ok(());
                }
                Err(e) => last_error = e.raw_os_error().unwrap_or(0),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let outside: Vec<&str> = held.iter().map(|(l, _)| l.as_str()).collect();
    eprintln!("executables held: {outside:?}");
    Err(last_error)
}
