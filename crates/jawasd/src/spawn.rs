//! Starting an engine: the only module with unsafe process code.
//!
//! Owns the child's side of a connection between clone and exec, and the
//! few raw calls around process lifetime (start-up hygiene, signalling a
//! process group). jawasd spawns with vfork semantics,
//! `clone(CLONE_VM | CLONE_VFORK)` as posix_spawn does, so the cost of a
//! spawn does not grow with the parent's memory: no page tables are copied
//! and the parent sleeps until the child has called execve (or failed).
//!
//! Because the child shares the parent's memory, it must not allocate, take
//! locks or touch Rust's runtime or glibc's wrappers that do (glibc's
//! setuid/setgid/setgroups broadcast to every thread of the process through a
//! signal, which is not safe in a CLONE_VM child): everything it needs is
//! prepared by the parent as C data first ([`CStrArray`], [`Command`]), and
//! the child only makes raw system calls. A failure is written into the
//! shared plan as (step, errno), then the child calls `_exit(127)`; the
//! parent reads it after clone returns and reaps the child at once.
//!
//! The order of the child's steps is fixed and short, as in OpenBSD's inetd:
//! new session, fds, resource limits, priority, chroot, credentials, working
//! directory, umask, signals, exec.
//!
//! Invariants: the public API is safe; every pointer the child reads points
//! into a [`Command`] that outlives the clone call.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use crate::config::{Creds, RlimitKind};

/// An owned, NULL-terminated array of C strings, ready to be an argv or
/// envp. Built once (per service at load, or per connection for the
/// connection's variables).
///
/// Invariant: `ptrs[i]` points into `strings[i]` (a `CString`'s heap buffer
/// does not move when the `CString` itself is moved) and `ptrs` ends with
/// NULL.
#[derive(Debug)]
pub struct CStrArray {
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrArray {
    pub fn new(strings: Vec<CString>) -> CStrArray {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(ptr::null());
        CStrArray { strings, ptrs }
    }

    /// `base` followed by `more`: the service's environment plus one
    /// connection's variables. Pointers into `base` are shared, so `base`
    /// must outlive the result (the borrow says so).
    pub fn chain<'a>(base: &'a CStrArray, more: &'a [CString]) -> Chained<'a> {
        let mut ptrs = Vec::with_capacity(base.strings.len() + more.len() + 1);
        ptrs.extend_from_slice(&base.ptrs[..base.strings.len()]);
        ptrs.extend(more.iter().map(|s| s.as_ptr()));
        ptrs.push(ptr::null());
        Chained {
            ptrs,
            _borrow: std::marker::PhantomData,
        }
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

impl Clone for CStrArray {
    fn clone(&self) -> Self {
        CStrArray::new(self.strings.clone())
    }
}

/// A NULL-terminated pointer array over strings borrowed for `'a`.
pub struct Chained<'a> {
    ptrs: Vec<*const libc::c_char>,
    _borrow: std::marker::PhantomData<&'a CString>,
}

/// Everything one engine start needs, owned or borrowed safely.
pub struct Command<'a> {
    pub path: &'a CStr,
    pub argv: &'a CStrArray,
    pub envp: &'a Chained<'a>,
    /// The connection: becomes fds 0 and 1.
    pub socket: BorrowedFd<'a>,
    /// Becomes fd 2 when set (a capture pipe, or the socket); otherwise fd 2
    /// stays jawasd's own stderr.
    pub stderr: Option<BorrowedFd<'a>>,
    /// Becomes fd 3 when set: a routed connection's hand-back socket.
    pub handback: Option<BorrowedFd<'a>>,
    pub creds: Option<&'a Creds>,
    pub rlimits: &'a [(RlimitKind, u64)],
    pub nice: Option<i32>,
    pub chroot: Option<&'a CStr>,
    pub workdir: Option<&'a CStr>,
    pub umask: Option<libc::mode_t>,
}

/// jawasd's RLIMIT_NOFILE as it started, when `raise_nofile` raised it:
/// engines get it back, so a raise meant for jawasd's own descriptors (a
/// pidfd per engine) never reaches a program that uses select(2).
static ORIGINAL_NOFILE: std::sync::OnceLock<libc::rlimit> = std::sync::OnceLock::new();

/// Raises jawasd's soft RLIMIT_NOFILE to the hard limit: it holds a pidfd
/// per running engine (and a pipe per engine whose stderr it captures).
pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        let _ = ORIGINAL_NOFILE.set(libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        });
    }
}

/// Where descriptors that live as long as an engine (pidfds, stderr pipes)
/// are kept: above the ones a connection uses briefly (its socket), so a
/// new engine's descriptor table is copied only up to the connection's
/// descriptors, however many engines run (see `Spawner::spawn`).
fn high_fd_base() -> i32 {
    // Read once (after `raise_nofile`): a limit lowered later only makes
    // the move fail, and the descriptor stays where it is.
    static BASE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        (limit / 2).clamp(0, 4096) as i32
    })
}

/// Moves a long-lived descriptor up to the high range (see
/// `high_fd_base`); keeps it where it is when there is no room there.
pub fn keep_high(fd: OwnedFd) -> OwnedFd {
    use nix::fcntl::{fcntl, FcntlArg};
    let base = high_fd_base();
    if fd.as_raw_fd() >= base {
        return fd;
    }
    match fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(base)) {
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor we own; the
        // old one closes when `fd` drops.
        Ok(high) => unsafe { OwnedFd::from_raw_fd(high) },
        Err(_) => fd,
    }
}

/// What the child reads: raw pointers into a live `Command`, and where it
/// reports a failed step.
struct Plan<'c, 'a> {
    cmd: &'c Command<'a>,
    nofile: Option<libc::rlimit>,
    /// With CLONE_FILES: the child's first step gives it a table of its
    /// own holding only the descriptors below this one.
    unshare_below: Option<libc::c_uint>,
    socket: RawFd,
    stderr: Option<RawFd>,
    handback: Option<RawFd>,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Filled in by the child when a step fails.
    failure: Option<(&'static str, i32)>,
}

/// Why a spawn failed: the step and the OS error.
#[derive(Debug)]
pub struct SpawnError {
    pub step: &'static str,
    pub error: io::Error,
}

/// A started engine: its pid and, where the kernel gives one, a pidfd that
/// becomes readable when it exits.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: Option<OwnedFd>,
}

/// The child's stack. One is enough: CLONE_VFORK keeps the parent, the only
/// other user, asleep until the child has exec'd or exited.
pub struct Spawner {
    stack: Vec<u8>,
    /// Whether to ask clone for a pidfd (Linux 5.2+); cleared when the
    /// kernel refuses.
    pidfds: bool,
    /// Whether the kernel has close_range(CLOSE_RANGE_UNSHARE) (5.9+), so
    /// the child can share jawasd's descriptor table at clone and copy only
    /// its low part. Without it, clone copies the whole table and exec
    /// closes it again: a cost that grows with every pidfd jawasd holds.
    unshare: bool,
}

const STACK_SIZE: usize = 128 * 1024;

impl Spawner {
    pub fn new() -> Self {
        Spawner {
            stack: vec![0; STACK_SIZE],
            pidfds: true,
            unshare: close_range_unshare_works(),
        }
    }

    /// Starts the engine described by `cmd`.
    pub fn spawn(&mut self, cmd: &Command<'_>) -> Result<Spawned, SpawnError> {
        let mut plan = Plan {
            cmd,
            socket: cmd.socket.as_raw_fd(),
            stderr: cmd.stderr.map(|fd| fd.as_raw_fd()),
            handback: cmd.handback.map(|fd| fd.as_raw_fd()),
            argv: cmd.argv.as_ptr(),
            envp: cmd.envp.ptrs.as_ptr(),
            nofile: ORIGINAL_NOFILE.get().copied(),
            unshare_below: None,
            failure: None,
        };
        if self.unshare {
            let top = plan
                .socket
                .max(plan.stderr.unwrap_or(0))
                .max(plan.handback.unwrap_or(0));
            plan.unshare_below = Some(top as libc::c_uint + 1);
        }
        let mut pidfd: libc::c_int = -1;
        let mut pid = self.clone_child(&mut plan, &mut pidfd, self.pidfds);
        if pid < 0 && self.pidfds {
            match io::Error::last_os_error().raw_os_error() {
                // A kernel without CLONE_PIDFD: reaping falls back to
                // SIGCHLD and waitpid from now on.
                Some(libc::EINVAL) => {
                    self.pidfds = false;
                    pid = self.clone_child(&mut plan, &mut pidfd, false);
                }
                // No descriptor left for the pidfd: this engine still
                // serves its client, and is reaped by pid.
                Some(libc::EMFILE | libc::ENFILE) => {
                    pid = self.clone_child(&mut plan, &mut pidfd, false);
                }
                _ => {}
            }
        }
        if pid < 0 {
            return Err(SpawnError {
                step: "clone",
                error: io::Error::last_os_error(),
            });
        }
        // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we own
        // in `pidfd`; -1 means none was asked for.
        let pidfd = (pidfd >= 0).then(|| keep_high(unsafe { OwnedFd::from_raw_fd(pidfd) }));
        if let Some((step, errno)) = plan.failure {
            // The child has already exited; reap it here so the event loop
            // never sees a connection that was never served.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(SpawnError {
                step,
                error: io::Error::from_raw_os_error(errno),
            });
        }
        Ok(Spawned { pid, pidfd })
    }

    fn clone_child(
        &mut self,
        plan: &mut Plan<'_, '_>,
        pidfd: &mut libc::c_int,
        want_pidfd: bool,
    ) -> libc::pid_t {
        // The stack grows down on every architecture we build for; align
        // the top to 16 bytes as the ABI asks.
        let top = self.stack.as_mut_ptr_range().end;
        let top = ((top as usize) & !15) as *mut libc::c_void;
        let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        if want_pidfd {
            flags |= libc::CLONE_PIDFD;
        }
        if plan.unshare_below.is_some() {
            flags |= libc::CLONE_FILES;
        }
        // SAFETY: `child` only makes raw system calls on data `plan` points
        // to, which lives on our stack until clone returns; CLONE_VFORK
        // guarantees clone does not return before the child has exec'd or
        // exited, so nothing is used concurrently. The stack is ours and
        // unused by anyone else. With CLONE_PIDFD, the parent_tid argument is
        // where the kernel writes the pidfd.
        unsafe {
            libc::clone(
                child,
                top,
                flags,
                (plan as *mut Plan<'_, '_>).cast(),
                pidfd as *mut libc::c_int,
            )
        }
    }
}

impl Default for Spawner {
    fn default() -> Self {
        Self::new()
    }
}

/// Raw system calls for the child: glibc's wrappers for the credential
/// calls synchronise every thread of the process (setxid broadcast), which
/// a CLONE_VM child must not do.
mod raw {
    pub unsafe fn setgroups(groups: &[libc::gid_t]) -> libc::c_long {
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr())
    }
    pub unsafe fn setgid(gid: libc::gid_t) -> libc::c_long {
        libc::syscall(libc::SYS_setgid, gid)
    }
    pub unsafe fn setuid(uid: libc::uid_t) -> libc::c_long {
        libc::syscall(libc::SYS_setuid, uid)
    }
}

/// The child between clone and exec. Only async-signal-safe system calls.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` the parent passed to clone, alive and
    // untouched by the sleeping parent.
    let plan = unsafe { &mut *(arg as *mut Plan<'_, '_>) };
    let fail = |plan: &mut Plan<'_, '_>, step: &'static str| -> libc::c_int {
        // SAFETY: reading errno and exiting without running any destructor
        // or atexit handler: the only correct way out of a vfork child.
        unsafe {
            plan.failure = Some((step, *libc::__errno_location()));
            libc::_exit(127)
        }
    };
    let cmd = plan.cmd;
    // SAFETY: every call below is a plain system call on descriptors and
    // C data prepared by the parent; nothing allocates or locks.
    unsafe {
        // First a descriptor table of its own (until now it shares
        // jawasd's): only the low descriptors, which hold the connection,
        // are copied; the rest are jawasd's and close-on-exec anyway.
        if let Some(below) = plan.unshare_below {
            if libc::syscall(
                libc::SYS_close_range,
                below,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            ) < 0
            {
                return fail(plan, "close_range");
            }
        }
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
        // Last, so that 0, 1 and 2 are in place whatever number the
        // socket or the pipe had (3 included).
        if let Some(fd) = plan.handback {
            if libc::dup2(fd, 3) < 0 {
                return fail(plan, "dup2");
            }
        }
        if let Some(lim) = &plan.nofile {
            if libc::setrlimit(libc::RLIMIT_NOFILE, lim) < 0 {
                return fail(plan, "setrlimit");
            }
        }
        for &(kind, value) in cmd.rlimits {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(kind.resource(), &lim) < 0 {
                return fail(plan, "setrlimit");
            }
        }
        if let Some(n) = cmd.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, n) < 0 {
                return fail(plan, "setpriority");
            }
        }
        if let Some(dir) = cmd.chroot {
            if libc::chroot(dir.as_ptr()) < 0 || libc::chdir(c"/".as_ptr()) < 0 {
                return fail(plan, "chroot");
            }
        }
        if let Some(c) = cmd.creds {
            // Groups first: after setuid we could no longer change them.
            if raw::setgroups(&c.groups) < 0 {
                return fail(plan, "setgroups");
            }
            if raw::setgid(c.gid) < 0 {
                return fail(plan, "setgid");
            }
            if let Some(uid) = c.uid {
                if raw::setuid(uid) < 0 {
                    return fail(plan, "setuid");
                }
            }
        }
        if let Some(dir) = cmd.workdir {
            if libc::chdir(dir.as_ptr()) < 0 {
                return fail(plan, "chdir");
            }
        }
        if let Some(m) = cmd.umask {
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
        libc::execve(cmd.path.as_ptr(), plan.argv, plan.envp);
        fail(plan, "execve")
    }
}

/// Whether close_range(CLOSE_RANGE_UNSHARE) works here. Tried on jawasd
/// itself with an empty range: it gives jawasd a private copy of its own
/// table (it has one thread, so nothing changes) or fails on old kernels.
fn close_range_unshare_works() -> bool {
    // SAFETY: closes nothing (the range is empty of open descriptors: the
    // top two possible numbers); at most unshares our own table.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::MAX - 1,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) == 0
    }
}

/// Makes sure fds 0, 1 and 2 are open, so that no socket or pipe of ours is
/// ever given one of those numbers (an engine would then find its
/// connection on the wrong descriptor).
pub fn ensure_std_fds() {
    use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
    for fd in 0..3 {
        // Opening /dev/null fills the lowest free slot, which is `fd` when
        // fcntl says it is closed. The descriptor is kept for ever.
        if fcntl(fd, FcntlArg::F_GETFD).is_err() {
            let _ = open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty());
        }
    }
}

/// Closes every descriptor above 2 that jawasd inherited: a supervisor's or
/// build tool's pipe left open across our exec would otherwise be handed to
/// every engine, and would hold fd slots a tight RLIMIT_NOFILE needs.
/// Descriptors below `from` are kept (the sockets systemd passed, already
/// adopted by `activation`).
pub fn close_inherited_fds(from: libc::c_int) {
    let from = from.max(3);
    // SAFETY: called first thing in main, before jawasd opens anything of its
    // own (no Rust object owns these descriptors at or above `from`; those
    // below it are stdio and the adopted sockets); close_range only closes.
    unsafe {
        if libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32) < 0 {
            // Kernels before 5.9: walk the open descriptors instead.
            let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(0, 65536) as libc::c_int;
            for fd in from..max {
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
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
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
        // SAFETY: rt_sigaction with a NULL new action only reads the current
        // one into `old`, a kernel-layout struct we own; 8 is the kernel's
        // sigset size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ptr::null::<KernelSigaction>(),
                &mut old,
                8usize,
            )
        };
        if rc == 0 && old.handler == libc::SIG_IGN {
            let dfl = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: installs SIG_DFL, which runs no code of ours.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl,
                    ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
    // SAFETY: SIG_IGN runs no code of ours.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) }?;
    let mut set = SigSet::empty();
    for &s in blocked {
        set.add(Signal::try_from(s)?);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(())
}

/// Starts `cmd` (a new jawasd, for an upgrade) with `fds` as its
/// descriptors 3, 4, ... as socket activation passes them; every other
/// descriptor of jawasd is close-on-exec. Returns its pid.
pub fn spawn_with_listen_fds(
    cmd: &mut std::process::Command,
    fds: &[RawFd],
) -> io::Result<libc::pid_t> {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    let n = fds.len() as RawFd;
    // SAFETY: the closure runs in the child between fork and exec and
    // makes only async-signal-safe calls (fcntl, dup2, close) on
    // descriptors the child inherited; it allocates nothing (`fds` was
    // built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            // First copy every socket above the target range, so that
            // moving them into 3.. cannot overwrite one not moved yet.
            let mut high = [0 as RawFd; 4096];
            for (i, fd) in fds.iter().enumerate().take(high.len()) {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3 + n);
                if h < 0 {
                    return Err(io::Error::last_os_error());
                }
                high[i] = h;
            }
            for (i, h) in high.iter().take(fds.len()).enumerate() {
                // dup2 clears close-on-exec on the copy, which must survive.
                if libc::dup2(*h, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::close(*h);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id() as libc::pid_t)
}

/// Sends `sig` to the engine's whole process group. A group already gone
/// gives ESRCH, which is fine.
pub fn signal_group(pid: libc::pid_t, sig: libc::c_int) {
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), s);
    }
}

/// Sends `sig` to one process.
pub fn signal_pid(pid: libc::pid_t, sig: libc::c_int) {
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
    }
}
