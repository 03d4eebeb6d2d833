//! Reaping: collecting the exit of engines and of orphans jawasd adopts.
//!
//! Owns the calls that wait for children. An engine started with a pidfd is
//! reaped through it (`waitid(P_PIDFD)`), which costs the same however many
//! engines run; `waitpid(-1)` walks every child on each call, which made
//! each connection cost milliseconds with thousands of engines running. The
//! scan remains for kernels without pidfds and for orphans: jawasd is a
//! child subreaper, so a process an engine started that called setsid and
//! outlived the engine comes back to jawasd, to be reaped and, at shutdown,
//! stopped.

#![forbid(unsafe_code)]

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::BorrowedFd;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    fn from_wait(s: WaitStatus) -> Option<(libc::pid_t, ExitStatus)> {
        match s {
            WaitStatus::Exited(pid, code) => Some((pid.as_raw(), ExitStatus::Exited(code))),
            WaitStatus::Signaled(pid, sig, _) => {
                Some((pid.as_raw(), ExitStatus::Signaled(sig as i32)))
            }
            _ => None,
        }
    }

    /// `exit=0`, `signal=SIGKILL`.
    pub fn describe(self) -> String {
        match self {
            ExitStatus::Exited(code) => format!("exit={code}"),
            ExitStatus::Signaled(sig) => {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                format!("signal={name}")
            }
        }
    }
}

/// The result of one scan step.
pub enum Reaped {
    One(libc::pid_t, ExitStatus),
    /// Children exist, none has exited.
    NoneYet,
    /// jawasd has no child at all.
    NoChildren,
}

/// Reaps the process behind `pidfd` if it has exited.
pub fn reap_pidfd(pidfd: BorrowedFd<'_>) -> Option<(libc::pid_t, ExitStatus)> {
    loop {
        match waitid(
            Id::PIDFd(pidfd),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(s) => return ExitStatus::from_wait(s),
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Reaps one exited child, whichever it is.
pub fn reap_any() -> Reaped {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Reaped::NoneYet,
            Ok(s) => match ExitStatus::from_wait(s) {
                Some((pid, st)) => return Reaped::One(pid, st),
                None => continue,
            },
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Reaped::NoChildren,
            Err(_) => return Reaped::NoneYet,
        }
    }
}

/// Reaps `pid` if it is a child of ours that has exited.
pub fn reap_pid(pid: libc::pid_t) -> Option<ExitStatus> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(s) => ExitStatus::from_wait(s).map(|(_, st)| st),
        Err(_) => None,
    }
}

/// Makes orphaned descendants come back to jawasd instead of init.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// The pids of jawasd's children now, from /proc (every thread's list).
pub fn children() -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_in_the_log() {
        assert_eq!(ExitStatus::Exited(0).describe(), "exit=0");
        assert_eq!(ExitStatus::Exited(111).describe(), "exit=111");
        assert_eq!(ExitStatus::Signaled(9).describe(), "signal=SIGKILL");
        assert_eq!(ExitStatus::Signaled(99).describe(), "signal=?");
    }
}
