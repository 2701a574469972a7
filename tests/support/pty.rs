//! A command run on a real pseudo-terminal, as a person at a terminal would run it: its stdin,
//! stdout and stderr are the pty's slave side and its controlling terminal; the test types into
//! the master side and reads what the terminal shows.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A process on a pty.
pub struct Pty {
    master: std::fs::File,
    child: Option<Child>,
    screen: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl Pty {
    /// Starts `cmd` in a new session with a new 80×24 pty as its controlling terminal.
    pub fn spawn(mut cmd: Command) -> Pty {
        let size = nix::pty::Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(stdio(&slave)).stdout(stdio(&slave)).stderr(stdio(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Like the test daemon: gone with the test's thread even when Drop never runs.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawning on the pty");
        // Only the child holds the slave now: when it exits, reading the master ends (EIO).
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (lock, cvar) = &*shared;
                        lock.lock().unwrap().extend_from_slice(&buf[..n]);
                        cvar.notify_all();
                    }
                }
            }
        });
        Pty { master, child: Some(child), screen }
    }

    /// Types `text` on the terminal.
    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("writing to the pty");
        self.master.flush().expect("flushing the pty");
    }

    /// Everything the terminal showed so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.0.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `needle` after byte offset `from`; returns the offset just
    /// past it. Panics with the screen after `timeout`.
    #[track_caller]
    pub fn expect_after(&self, from: usize, needle: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.screen;
        let mut screen = lock.lock().unwrap();
        loop {
            if let Some(i) = find(&screen[from.min(screen.len())..], needle.as_bytes()) {
                return from + i + needle.len();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "the terminal did not show {needle:?} within {timeout:?}; it shows:\n{}",
                    String::from_utf8_lossy(&screen)
                );
            }
            screen = cvar.wait_timeout(screen, deadline - now).unwrap().0;
        }
    }

    /// Waits for the process to exit (at most `timeout`, then kills it and panics); its code.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let mut child = self.child.take().expect("not waited for yet");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the pty process") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the process on the pty did not exit within {timeout:?}; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pty's terminal settings, as the process left them (raw mode must be undone).
    pub fn local_flags(&self) -> nix::sys::termios::LocalFlags {
        // SAFETY: tcgetattr on the master reads the pair's settings into a struct we own.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        nix::sys::termios::LocalFlags::from_bits_truncate(t.c_lflag)
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
