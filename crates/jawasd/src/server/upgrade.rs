//! Zero-downtime upgrade: SIGUSR2 makes jawasd start its executable again
//! (a new binary installed at the same path) with the listening sockets
//! passed on as in socket activation; once the new process has taken them
//! and is ready it says so (SIGUSR2 back), and the old one stops accepting,
//! lets its own engines finish, reaps and logs them, and exits.
//!
//! Owns the successor's pid. Invariants: the old jawasd keeps serving
//! until the successor is ready, so a successor that fails to start (a bad
//! binary, a configuration it refuses) changes nothing but a log line; no
//! listening socket is ever closed on the kernel's side during the
//! hand-over (both processes hold it until the old one lets go), so no
//! connection is refused; the successor is never signalled by the old
//! jawasd's shutdown.

use std::os::fd::{AsRawFd, RawFd};

use log::{error, info, warn};

use super::{Server, Source};
use crate::reaper::ExitStatus;

/// The variable that tells a new jawasd its parent hands over sockets.
pub const FROM_VAR: &str = "JAWAS_UPGRADE_FROM";

#[derive(Default)]
pub struct Upgrade {
    /// The new jawasd, while it starts and after it took over.
    pub successor: Option<libc::pid_t>,
    /// The successor said it is ready: this jawasd only finishes.
    pub handed_over: bool,
}

impl Server {
    /// SIGUSR2 from `from`: the successor's "ready", or a request to
    /// upgrade.
    pub(super) fn upgrade_signal(&mut self, from: libc::pid_t) {
        if self.upgrade.successor == Some(from) && from > 0 {
            self.handed_over();
            return;
        }
        if self.stopping.is_some() || self.upgrade.successor.is_some() {
            warn!(
                "upgrade: ignored, {}",
                if self.stopping.is_some() {
                    "jawasd is stopping"
                } else {
                    "an upgrade is under way"
                }
            );
            return;
        }
        self.start_successor();
    }

    fn start_successor(&mut self) {
        let exe = match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return error!("upgrade: cannot find jawasd's executable: {e}"),
        };
        // /proc/self/exe of a replaced binary reads "PATH (deleted)": the
        // new file is at PATH.
        let exe = std::path::PathBuf::from(
            exe.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string(),
        );
        let keys = self.listener_keys();
        let mut fds: Vec<RawFd> = Vec::new();
        let mut names = Vec::new();
        for key in keys {
            if let Some(Source::Listener(l)) = self.registry.get(key) {
                fds.push(std::os::fd::AsFd::as_fd(&l.socket).as_raw_fd());
                names.push(format!("{}={}", l.service, l.local));
            }
        }
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(std::env::args_os().skip(1))
            .env(FROM_VAR, std::process::id().to_string())
            .env("LISTEN_FDS", fds.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env_remove("LISTEN_PID");
        if let Some(path) = self.notify.socket_path() {
            cmd.env("NOTIFY_SOCKET", path);
        }
        match crate::spawn::spawn_with_listen_fds(&mut cmd, &fds) {
            Ok(pid) => {
                info!(
                    "upgrade: started {} pid={pid} with {} sockets; serving until it is ready",
                    exe.display(),
                    fds.len()
                );
                self.upgrade.successor = Some(pid);
                self.childless = false;
            }
            Err(e) => error!(
                "upgrade: unable to start {}: {e}; still serving",
                exe.display()
            ),
        }
    }

    /// The successor is ready: stop accepting, finish what runs, exit.
    fn handed_over(&mut self) {
        if self.upgrade.handed_over {
            return;
        }
        self.upgrade.handed_over = true;
        info!(
            "upgrade: pid={} took over; finishing engines={}",
            self.upgrade.successor.unwrap_or(0),
            self.sessions.len()
        );
        // Our copies of the listening sockets close; the successor's keep
        // them open, so the kernel refuses nothing.
        for key in self.listener_keys() {
            self.registry.remove(key);
        }
        self.retire_all_zygotes();
        // Stopping with no deadline: engines end on their own (the
        // SIGTERM path, and its grace, are still there if asked).
        self.stopping = Some(far_future());
        self.sweep_within(super::SWEEP_SOON);
    }

    /// A reaped pid that is the successor's: before the hand-over, the
    /// upgrade failed and this jawasd simply goes on.
    pub(super) fn successor_exited(&mut self, pid: libc::pid_t, status: ExitStatus) -> bool {
        if self.upgrade.successor != Some(pid) {
            return false;
        }
        self.upgrade.successor = None;
        if self.upgrade.handed_over {
            warn!(
                "upgrade: the new jawasd pid={pid} ended {}",
                status.describe()
            );
        } else {
            error!(
                "upgrade failed: the new jawasd pid={pid} ended {} before it was ready; still serving",
                status.describe()
            );
        }
        true
    }

    /// While finishing after a hand-over, jawasd's only child may be its
    /// successor: then it is done.
    pub(super) fn only_successor_left(&self) -> bool {
        let Some(successor) = self.upgrade.successor else {
            return false;
        };
        crate::reaper::children().iter().all(|p| *p == successor)
    }
}

/// A stop deadline that never comes.
fn far_future() -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(std::time::Duration::from_secs(100 * 365 * 86400))
        .unwrap_or(now)
}

/// In a new jawasd started by an upgrade: tells the parent it is ready.
pub fn tell_parent_ready() {
    let Some(parent) = std::env::var(FROM_VAR)
        .ok()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return;
    };
    std::env::remove_var(FROM_VAR);
    if nix::unistd::getppid().as_raw() == parent {
        crate::spawn::signal_pid(parent, libc::SIGUSR2);
    }
}
