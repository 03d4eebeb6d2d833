//! Starting an engine: the only module with unsafe process code.
//!
//! Owns the child's side of a connection between clone and exec. jawasd
//! spawns with vfork semantics, `clone(CLONE_VM | CLONE_VFORK)` as
//! posix_spawn does, so the cost of a spawn does not grow with the parent's
//! memory: no page tables are copied and the parent sleeps until the child
//! has called execve (or failed).
//!
//! Because the child shares the parent's memory, it must not allocate, take
//! locks or touch Rust's runtime: everything it needs (paths, argv, envp,
//! ids, limits) is prepared by the parent as C data first, and the child only
//! makes raw system calls. A failure is written into the shared `Plan` as
//! (step, errno), then the child calls `_exit(127)`; the parent reads it after
//! clone returns and reaps the child at once.
//!
//! The order of the child's steps is fixed and short, as in OpenBSD's inetd:
//! new session, fds, resource limits, priority, chroot, credentials, working
//! directory, umask, signals, exec.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::ptr;

use crate::config::{Creds, RlimitKind};

/// Everything the child needs, laid out before clone.
pub struct Plan<'a> {
    pub path: &'a CStr,
    /// Null-terminated argv.
    pub argv: &'a [*const libc::c_char],
    /// Null-terminated envp.
    pub envp: &'a [*const libc::c_char],
    /// The connection: becomes fds 0 and 1.
    pub socket: RawFd,
    /// Becomes fd 2 when set (the stderr capture pipe); otherwise fd 2 stays
    /// jawasd's own stderr.
    pub stderr: Option<RawFd>,
    pub creds: Option<&'a Creds>,
    pub rlimits: &'a [(RlimitKind, u64)],
    pub nice: Option<i32>,
    pub chroot: Option<&'a CStr>,
    pub workdir: Option<&'a CStr>,
    pub umask: Option<libc::mode_t>,
    /// Filled in by the child when a step fails.
    failure: Option<(&'static str, i32)>,
}

impl<'a> Plan<'a> {
    pub fn new(
        path: &'a CStr,
        argv: &'a [*const libc::c_char],
        envp: &'a [*const libc::c_char],
        socket: RawFd,
    ) -> Self {
        Plan {
            path,
            argv,
            envp,
            socket,
            stderr: None,
            creds: None,
            rlimits: &[],
            nice: None,
            chroot: None,
            workdir: None,
            umask: None,
            failure: None,
        }
    }
}

/// Why a spawn failed: the step and the OS error.
#[derive(Debug)]
pub struct SpawnError {
    pub step: &'static str,
    pub error: io::Error,
}

/// Builds a null-terminated pointer array over C strings; the strings must
/// outlive the array's use.
pub fn pointers<'s>(strings: impl IntoIterator<Item = &'s CString>) -> Vec<*const libc::c_char> {
    let mut v: Vec<*const libc::c_char> = strings.into_iter().map(|s| s.as_ptr()).collect();
    v.push(ptr::null());
    v
}

/// The child's stack. One is enough: CLONE_VFORK keeps the parent, the only
/// other user, asleep until the child has exec'd or exited.
pub struct Spawner {
    stack: Vec<u8>,
}

const STACK_SIZE: usize = 128 * 1024;

impl Spawner {
    pub fn new() -> Self {
        Spawner {
            stack: vec![0; STACK_SIZE],
        }
    }

    /// Starts the engine described by `plan`; returns its pid.
    pub fn spawn(&mut self, plan: &mut Plan<'_>) -> Result<libc::pid_t, SpawnError> {
        plan.failure = None;
        // The stack grows down on every architecture Linux runs Rust on that
        // we build for; align the top to 16 bytes as the ABI asks.
        let top = unsafe { self.stack.as_mut_ptr().add(STACK_SIZE) };
        let top = ((top as usize) & !15) as *mut libc::c_void;
        // SAFETY: `child` only makes raw system calls on data `plan` points
        // to, which lives on our stack until clone returns; CLONE_VFORK
        // guarantees clone does not return before the child has exec'd or
        // exited, so nothing is used concurrently.
        let pid = unsafe {
            libc::clone(
                child,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                plan as *mut Plan<'_> as *mut libc::c_void,
            )
        };
        if pid < 0 {
            return Err(SpawnError {
                step: "clone",
                error: io::Error::last_os_error(),
            });
        }
        if let Some((step, errno)) = plan.failure {
            // The child has already exited; reap it here so the event loop
            // never sees a connection that was never served.
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
            return Err(SpawnError {
                step,
                error: io::Error::from_raw_os_error(errno),
            });
        }
        Ok(pid)
    }
}

impl Default for Spawner {
    fn default() -> Self {
        Self::new()
    }
}

/// The child between clone and exec. Only async-signal-safe system calls.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` the parent passed to clone, alive and
    // untouched by the sleeping parent.
    let plan = unsafe { &mut *(arg as *mut Plan<'_>) };
    let fail = |plan: &mut Plan<'_>, step: &'static str| -> libc::c_int {
        plan.failure = Some((step, unsafe { *libc::__errno_location() }));
        unsafe { libc::_exit(127) }
    };
    unsafe {
        // Its own session and process group, so that limits and shutdown
        // signals reach whatever the engine starts.
        if libc::setsid() < 0 {
            return fail(plan, "setsid");
        }
        // dup2 clears close-on-exec on the new descriptor; every other
        // descriptor of jawasd is close-on-exec and so vanishes at exec. The
        // socket is never 0, 1 or 2 because jawasd keeps those open.
        if libc::dup2(plan.socket, 0) < 0 || libc::dup2(plan.socket, 1) < 0 {
            return fail(plan, "dup2");
        }
        if let Some(fd) = plan.stderr {
            if libc::dup2(fd, 2) < 0 {
                return fail(plan, "dup2");
            }
        }
        for &(kind, value) in plan.rlimits {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(kind.resource(), &lim) < 0 {
                return fail(plan, "setrlimit");
            }
        }
        if let Some(n) = plan.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, n) < 0 {
                return fail(plan, "setpriority");
            }
        }
        if let Some(dir) = plan.chroot {
            if libc::chroot(dir.as_ptr()) < 0 || libc::chdir(c"/".as_ptr()) < 0 {
                return fail(plan, "chroot");
            }
        }
        if let Some(c) = plan.creds {
            // Groups first: after setuid we could no longer change them.
            if libc::setgroups(c.groups.len(), c.groups.as_ptr()) < 0 {
                return fail(plan, "setgroups");
            }
            if libc::setgid(c.gid) < 0 {
                return fail(plan, "setgid");
            }
            if let Some(uid) = c.uid {
                if libc::setuid(uid) < 0 {
                    return fail(plan, "setuid");
                }
            }
        }
        if let Some(dir) = plan.workdir {
            if libc::chdir(dir.as_ptr()) < 0 {
                return fail(plan, "chdir");
            }
        }
        if let Some(m) = plan.umask {
            libc::umask(m);
        }
        // jawasd ignores SIGPIPE (it writes limit banners to sockets that
        // may be gone); engines get the default back. Every other
        // disposition already is the default. The mask is emptied last, so
        // no signal is delivered to this half-made child.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execve(plan.path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
        fail(plan, "execve")
    }
}

/// Makes sure fds 0, 1 and 2 are open, so that no socket or pipe of ours is
/// ever given one of those numbers (an engine would then find its
/// connection on the wrong descriptor).
pub fn ensure_std_fds() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) only queries; opening /dev/null fills the
        // lowest free slot, which is `fd` when fcntl says it is closed.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) < 0 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// Closes every descriptor above 2 that jawasd inherited: a supervisor's or
/// build tool's pipe left open across our exec would otherwise be handed to
/// every engine, and would hold fd slots a tight RLIMIT_NOFILE needs.
pub fn close_inherited_fds() {
    // SAFETY: called first thing in main, before jawasd opens anything of its
    // own; close_range only closes descriptors.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            // Kernels before 5.9: walk the open descriptors instead.
            let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(0, 65536) as libc::c_int;
            for fd in 3..max {
                libc::close(fd);
            }
        }
    }
}

/// The kernel's `struct sigaction` (same layout on x86_64 and aarch64).
/// glibc's sigaction refuses the signals it reserves (32 and 33), which a
/// parent may still have left ignored, so the reset goes to the kernel.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Resets every signal jawasd inherited as ignored to the default, then
/// blocks the ones the event loop reads through its signalfd. Ignored
/// dispositions survive exec, so engines would inherit them; an ignored
/// SIGCHLD would make children vanish unreaped, and an ignored SIGHUP
/// (nohup) would silently discard reload requests.
pub fn prepare_signals(blocked: &[libc::c_int]) -> io::Result<()> {
    unsafe {
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old = KernelSigaction {
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            let rc = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ptr::null::<KernelSigaction>(),
                &mut old,
                8usize,
            );
            if rc == 0 && old.handler == libc::SIG_IGN {
                let dfl = KernelSigaction {
                    handler: libc::SIG_DFL,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl,
                    ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in blocked {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, ptr::null_mut()) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends `sig` to the engine's whole process group.
pub fn signal_group(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill has no memory effects. A group already gone gives ESRCH,
    // which is fine.
    unsafe {
        libc::kill(-pid, sig);
    }
}

/// A reaped child.
pub struct Exit {
    pub pid: libc::pid_t,
    pub status: libc::c_int,
}

/// Reaps one finished child without blocking.
pub fn reap() -> Option<Exit> {
    let mut status = 0;
    // SAFETY: plain waitpid with an out-parameter we own.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some(Exit { pid, status })
}

/// "exit 0", "signal 9 (SIGKILL)" and the like.
pub fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit={}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str())
            .unwrap_or("?");
        format!("signal={name}")
    } else {
        format!("status={status}")
    }
}
