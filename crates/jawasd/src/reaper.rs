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
    /// Not seen: a zygote's answer named a process that is no child of
    /// its, and the zygote is gone (see `forget_strangers`).
    Unknown,
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
            ExitStatus::Unknown => "exit=?".to_string(),
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

/// The parent of `pid` now, from /proc/PID/stat (`None` when it is gone
/// or the file cannot be read).
pub fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parent_in_stat(&stat)
}

/// The ppid field of a /proc/PID/stat line: the fourth field, the second
/// after the command name, which is in parentheses and may hold spaces
/// and parentheses itself (so the last `)` ends it).
fn parent_in_stat(stat: &[u8]) -> Option<libc::pid_t> {
    let end = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[end + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
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
    fn the_parent_is_read_past_a_command_name_with_parentheses() {
        assert_eq!(parent_in_stat(b"42 (a) b) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_in_stat(b"42 (sleep) S 1 42 42"), Some(1));
        assert_eq!(parent_in_stat(b"42 (sleep"), None);
        let me = std::process::id() as libc::pid_t;
        assert_eq!(parent_of(me), Some(nix::unistd::getppid().as_raw()));
    }

    #[test]
    fn statuses_read_as_in_the_log() {
        assert_eq!(ExitStatus::Exited(0).describe(), "exit=0");
        assert_eq!(ExitStatus::Exited(111).describe(), "exit=111");
        assert_eq!(ExitStatus::Signaled(9).describe(), "signal=SIGKILL");
        assert_eq!(ExitStatus::Signaled(99).describe(), "signal=?");
    }
}
