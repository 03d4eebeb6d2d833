//! Zygote mode: `init` once, then a fresh fork per connection.
//!
//! jawasd starts a `spawn = "zygote"` engine with `JAWAS_ZYGOTE=1` and a
//! control socket (a Unix SOCK_SEQPACKET socket) on fd 0 instead of a
//! connection. The engine runs `init`, says `READY`, and then for every
//! connection jawasd sends (`CONN` and its environment, with the socket,
//! and the stderr descriptor when jawasd gives one, attached by
//! SCM_RIGHTS) forks a child that serves it exactly as an exec'd engine
//! would: the socket on fds 0 and 1, its own session, the UCSPI
//! environment of that connection, the same signal set-up. The zygote
//! answers `PID n INO` (or `FAIL ino=INO why`; INO names the connection
//! by its socket's inode, since jawasd does not wait for one answer before
//! the next connection), reaps its children and reports each
//! as `EXIT n exit CODE` or `EXIT n signal SIGNO`. When jawasd closes the
//! control socket (a reload or a stop), the zygote takes no more
//! connections, waits for its children and exits. The whole contract is in
//! docs/engine-protocol.md.
//!
//! To take the fork off the latency path, the zygote keeps a child forked
//! ahead (a spare) that waits on the control socket itself: jawasd's next
//! `CONN` wakes the spare, not the zygote, and the spare tells the zygote
//! (a pipe) and jawasd (`PID`, with its own pid) before it serves. The
//! zygote then forks the next spare. With no spare (a fork failed), the
//! zygote reads the `CONN` and forks for it.
//!
//! Owns the control socket (fd 0) and the zygote's children. Invariants:
//! the zygote never serves a connection itself and closes every received
//! descriptor right after the fork; a child never returns into the
//! zygote's loop (it exits with its serve's code); the zygote is single
//! threaded when it forks (checked before `READY`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use crate::{exit, report, signals, Connection, Engine, Error};

/// The variable that puts an engine in zygote mode.
pub const ENV: &str = "JAWAS_ZYGOTE";
/// The control socket's descriptor.
const CONTROL: RawFd = 0;
/// Largest control message: a connection's environment is a few hundred
/// bytes, plus a routed connection's route table (jawasd caps that at
/// 32 KiB).
const MAX_MESSAGE: usize = 48 * 1024;

/// Whether jawasd started this process as a zygote.
pub fn active() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

/// One connection handed over by jawasd.
struct Handed {
    socket: OwnedFd,
    stderr: Option<OwnedFd>,
    /// A routed connection's hand-back socket (announced by
    /// `JAWAS_HANDBACK_FD` in `env`, whose value `parse` sets to the
    /// number it has here).
    handback: Option<OwnedFd>,
    env: Vec<(OsString, OsString)>,
}

/// The variable naming a routed connection's hand-back descriptor.
const HANDBACK: &str = "JAWAS_HANDBACK_FD";

/// The zygote's life after `init`: answers jawasd until it closes the
/// control socket and the last child is reaped. Returns the exit code.
pub fn serve_forever<E: Engine>(engine: &mut E) -> i32 {
    match run::<E>(engine) {
        Ok(()) => exit::OK,
        Err(e) => report(E::NAME, &e),
    }
}

fn run<E: Engine>(engine: &mut E) -> Result<(), Error> {
    if threads() > 1 {
        return Err(Error::config(
            "zygote mode needs a single-threaded init (threads were started)",
        ));
    }
    let children_fd = sigchld_fd().map_err(|e| Error::system(format!("signalfd: {e}")))?;
    // The CPU feature cache (std's, which httparse, memchr and the like
    // consult) is filled here, once: each child would otherwise run the
    // detection's CPUID instructions again, which in a virtual machine
    // trap to the hypervisor (about 6% of a child's time).
    #[cfg(target_arch = "x86_64")]
    let _ = std::arch::is_x86_feature_detected!("avx2");
    // The receive buffer is set up here, once: spares, which receive into
    // their copy, would otherwise each allocate and zero it.
    RECEIVE_BUF.with_borrow(|_| ());
    let (taken_r, taken_w) = pipe().map_err(|e| Error::system(format!("pipe: {e}")))?;
    let mut z = Zygote {
        children_fd,
        taken_r,
        taken_w,
        children: HashSet::new(),
        spares: HashSet::new(),
    };
    send(CONTROL, b"READY", &[]).map_err(|e| Error::io("control socket", &e))?;
    let mut control = Control::Open;
    z.refill(engine);
    while control != Control::Gone || !z.children.is_empty() || !z.spares.is_empty() {
        // While spares wait on the control socket, the zygote only watches
        // for its end; it reads connections itself when it has no spare,
        // and drains the last ones once jawasd has closed its end.
        let read_control = control == Control::Closing || z.spares.is_empty();
        let ready = wait(control, read_control, &z)?;
        if ready.children || ready.taken {
            drain(z.children_fd.as_raw_fd());
            z.taken();
            z.reap();
        }
        if ready.hangup && control == Control::Open {
            control = Control::Closing;
        }
        if ready.control && read_control {
            control = z.answer(engine, control);
        }
        if control == Control::Open {
            z.refill(engine);
        }
    }
    Ok(())
}

/// What the zygote knows of jawasd's end of the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    /// Connections may come.
    Open,
    /// jawasd closed its end: the connections still queued are served, no
    /// spare is forked again.
    Closing,
    /// The end of the socket was read: only children are left to reap.
    Gone,
}

/// The zygote's state between connections.
struct Zygote {
    children_fd: OwnedFd,
    /// Where spares write their pid when they take a connection (so that
    /// it is reported, and a spare forked again), and its writing end,
    /// which every spare inherits.
    taken_r: OwnedFd,
    taken_w: OwnedFd,
    /// Children serving a connection: their exits are reported.
    children: HashSet<libc::pid_t>,
    /// Children forked ahead, waiting on the control socket. At most
    /// `SPARES`; one that ends unused is nobody's session.
    spares: HashSet<libc::pid_t>,
}

/// How many children wait forked ahead.
const SPARES: usize = 2;

impl Zygote {
    /// Reads one message from the control socket and answers it: forks a
    /// child for a connection (no spare was there to take it).
    fn answer<E: Engine>(&mut self, engine: &mut E, control: Control) -> Control {
        match receive(CONTROL) {
            Ok(Some((_, handed))) => {
                let reply = self.fork_for(engine, handed);
                if send(CONTROL, reply.as_bytes(), &[]).is_err() {
                    return Control::Gone;
                }
                control
            }
            Ok(None) => Control::Gone,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => control,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = send(CONTROL, format!("FAIL {e}").as_bytes(), &[]);
                control
            }
            Err(_) => Control::Gone,
        }
    }

    /// Forks a child for a connection the zygote received. The reply for
    /// jawasd.
    fn fork_for<E: Engine>(&mut self, engine: &mut E, handed: Handed) -> String {
        let ino = inode(&handed.socket);
        // SAFETY: the zygote is single threaded (checked in `run`), so the
        // child may run any code after fork, as after a fork in any
        // single-threaded program.
        match unsafe { libc::fork() } {
            -1 if ino == 0 => format!("FAIL fork: {}", io::Error::last_os_error()),
            -1 => format!("FAIL ino={ino} fork: {}", io::Error::last_os_error()),
            0 => {
                release_control();
                // SAFETY: closes this process's copies of the pipe, used by
                // the zygote and its spares only.
                unsafe {
                    libc::close(self.taken_r.as_raw_fd());
                    libc::close(self.taken_w.as_raw_fd());
                }
                quick_exit(child::<E>(engine, handed, self.children_fd.as_raw_fd()))
            }
            pid => {
                self.children.insert(pid);
                // `handed` drops here: the zygote keeps no client descriptor.
                answer_pid(pid, ino)
            }
        }
    }

    /// Forks spares up to `SPARES`. Failure is not an error: the zygote
    /// reads the next connection itself and forks for it.
    fn refill<E: Engine>(&mut self, engine: &mut E) {
        while self.spares.len() < SPARES {
            // SAFETY: as in `fork_for`: the zygote is single threaded.
            match unsafe { libc::fork() } {
                -1 => return,
                0 => {
                    let taken = self.taken_w.as_raw_fd();
                    // SAFETY: closes this process's copy of the pipe's
                    // reading end, which only the zygote reads.
                    unsafe { libc::close(self.taken_r.as_raw_fd()) };
                    quick_exit(spare::<E>(engine, taken, self.children_fd.as_raw_fd()))
                }
                pid => {
                    self.spares.insert(pid);
                }
            }
        }
    }

    /// Spares that took a connection become children whose exit is
    /// reported.
    fn taken(&mut self) {
        let mut buf = [0u8; 4 * 64];
        loop {
            // SAFETY: reads into a buffer we own, at most its length, from
            // the non-blocking pipe we own.
            let n =
                unsafe { libc::read(self.taken_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            // Whole pids only: each is one write of 4 bytes (atomic on a pipe).
            for chunk in buf[..n as usize].chunks_exact(4) {
                let pid = libc::pid_t::from_ne_bytes(chunk.try_into().expect("4 bytes"));
                if self.spares.remove(&pid) {
                    self.children.insert(pid);
                }
            }
        }
    }

    /// Reaps every exited child and reports those that served a
    /// connection (a spare that ended unused is nobody's session).
    fn reap(&mut self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes the status into an int we own.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if self.spares.contains(&pid) {
                // It may have taken a connection after the pipe was last
                // read: its pid is in the pipe now that it has ended.
                self.taken();
                self.spares.remove(&pid);
            }
            if !self.children.remove(&pid) {
                continue;
            }
            let how = if libc::WIFEXITED(status) {
                format!("exit {}", libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                format!("signal {}", libc::WTERMSIG(status))
            } else {
                continue;
            };
            let _ = send(CONTROL, format!("EXIT {pid} {how}").as_bytes(), &[]);
        }
    }
}

/// A spare's life: waits on the control socket for a connection, tells the
/// zygote (the pipe `taken`) and jawasd (`PID`) it took it, and serves it.
/// Ends quietly when jawasd closes the control socket first.
fn spare<E: Engine>(engine: &mut E, taken: RawFd, children_fd: RawFd) -> i32 {
    let handed = loop {
        match receive(CONTROL) {
            Ok(Some((_, handed))) => break handed,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Answered, and still unused.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = send(CONTROL, format!("FAIL {e}").as_bytes(), &[]);
            }
            // The zygote retired, or jawasd is gone.
            Ok(None) | Err(_) => return exit::OK,
        }
    };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    // The zygote first, so that this pid's exit is reported whatever
    // happens next; then jawasd, whose session starts with the answer.
    let bytes = pid.to_ne_bytes();
    // SAFETY: writes 4 bytes we own to the pipe this process holds, then
    // closes it: a write of 4 bytes to a pipe is whole or nothing.
    unsafe {
        libc::write(taken, bytes.as_ptr().cast(), bytes.len());
        libc::close(taken);
    }
    // Named by its socket: two spares may answer in either order.
    let answer = answer_pid(pid, inode(&handed.socket));
    if send(CONTROL, answer.as_bytes(), &[]).is_err() {
        return exit::OK;
    }
    child::<E>(engine, handed, children_fd)
}

/// In a child: lets go of the control socket (it must not read jawasd's
/// messages, nor keep the socket open past the zygote's end) by putting
/// /dev/null on fd 0, so that fd 0 stays taken until the connection is
/// put there: a descriptor received meanwhile cannot land on it.
fn release_control() {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: dup2 onto fd 0, which this process owns (the control
        // socket); `null` stays owned by the File and closes on drop.
        unsafe { libc::dup2(null.as_raw_fd(), CONTROL) };
    }
}

/// `PID n`, naming the connection by its socket's inode when known.
fn answer_pid(pid: libc::pid_t, ino: u64) -> String {
    if ino == 0 {
        format!("PID {pid}")
    } else {
        format!("PID {pid} {ino}")
    }
}

/// The inode of a received socket, by which answers name the connection
/// (0 if it cannot be read: the answer then names none).
fn inode(fd: &OwnedFd) -> u64 {
    // SAFETY: fstat writes into a stat we own, from a descriptor we own;
    // all-zero bytes are a valid `stat`.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
            return 0;
        }
        st.st_ino
    }
}

/// A non-blocking, close-on-exec pipe: (reading end, writing end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own; on
    // success they are new and ours.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Ends a child: flushes Rust's stdout, then `_exit`, skipping the C
/// library's exit handlers and the dynamic loader's finalisers, which
/// would only touch (and copy-on-write) pages of the zygote's for nothing:
/// the engine's own destructors have run when `serve` returned, and no
/// engine writes through C stdio.
fn quick_exit(code: i32) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// In the child: become the engine an exec would have started, and serve.
fn child<E: Engine>(engine: &mut E, handed: Handed, children_fd: RawFd) -> i32 {
    if let Err(e) = become_connection(&handed, children_fd) {
        return report(E::NAME, &Error::system(format!("zygote child set-up: {e}")));
    }
    for (key, value) in &handed.env {
        std::env::set_var(key, value);
    }
    std::env::remove_var(ENV);
    // The hand-back socket stays open at the number JAWAS_HANDBACK_FD
    // names, for the engine's HTTP layer; the rest closes.
    let mut handed = handed;
    if let Some(fd) = handed.handback.take() {
        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    }
    drop(handed);
    if let Err(e) = signals::install() {
        return report(E::NAME, &Error::system(format!("signal set-up: {e}")));
    }
    match engine.serve(Connection::stdio()) {
        Ok(()) => exit::OK,
        Err(e) => report(E::NAME, &e),
    }
}

/// The descriptors and process state of an exec'd engine: the socket on
/// fds 0 and 1 (and 2 when given), its own session, SIGCHLD delivered
/// again, the zygote's signalfd closed.
fn become_connection(handed: &Handed, children_fd: RawFd) -> io::Result<()> {
    let sock = handed.socket.as_raw_fd();
    // SAFETY: plain syscalls on descriptors this process owns: dup2 onto
    // 0/1/2 replaces the control socket (fd 0) and stdout/stderr, which is
    // the point; close of the signalfd the child does not use; setsid and
    // sigprocmask take no pointers but the set we own.
    unsafe {
        libc::close(children_fd);
        if libc::dup2(sock, 0) < 0 || libc::dup2(sock, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(err) = &handed.stderr {
            if libc::dup2(err.as_raw_fd(), 2) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The number of threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// SIGCHLD blocked and readable from a non-blocking signalfd.
fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset operations on a set we own; sigprocmask and signalfd
    // take it by pointer and do not keep it; the returned descriptor is
    // new and ours.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// What woke the zygote.
#[derive(Default)]
struct Ready {
    /// A message (or the end) is waiting on the control socket.
    control: bool,
    /// jawasd closed its end.
    hangup: bool,
    /// A child ended.
    children: bool,
    /// A spare took a connection.
    taken: bool,
}

/// Waits for the control socket (for a message when `read_control`, else
/// only for its end), a child's exit or a spare taking a connection.
fn wait(control: Control, read_control: bool, z: &Zygote) -> Result<Ready, Error> {
    let events = if read_control {
        libc::POLLIN
    } else {
        libc::POLLRDHUP
    };
    let pollfd = |fd: RawFd, events| libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let mut fds = [
        pollfd(
            if control == Control::Gone {
                -1
            } else {
                CONTROL
            },
            events,
        ),
        pollfd(z.children_fd.as_raw_fd(), libc::POLLIN),
        pollfd(z.taken_r.as_raw_fd(), libc::POLLIN),
    ];
    // SAFETY: poll on an array of pollfds we own, of its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(Ready::default());
        }
        return Err(Error::io("poll", &e));
    }
    let hangup = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
    Ok(Ready {
        control: fds[0].revents & (libc::POLLIN | hangup) != 0,
        hangup: fds[0].revents & hangup != 0,
        children: fds[1].revents != 0,
        taken: fds[2].revents != 0,
    })
}

/// Empties the signalfd (its contents are not needed: `reap` looks at
/// every child).
fn drain(fd: RawFd) {
    let mut buf = [0u8; 128 * 8];
    // SAFETY: reads into a buffer we own, at most its length.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Sends one message on a control socket or a spare's channel, with
/// descriptors attached when `fds` is not empty.
fn send(fd: RawFd, msg: &[u8], fds: &[RawFd]) -> io::Result<()> {
    crate::fdpass::send_with_fds(fd, msg, fds, libc::MSG_NOSIGNAL)
}

/// Receives one message from `fd`: the raw bytes and the connection they
/// describe; `None` at the end of the socket.
fn receive(fd: RawFd) -> io::Result<Option<(Vec<u8>, Handed)>> {
    RECEIVE_BUF.with_borrow_mut(|buf| receive_into(fd, buf))
}

thread_local! {
    /// The buffer messages are received into, allocated and touched once in
    /// the zygote: a child that receives into its copy writes one page or
    /// two (copy-on-write) instead of faulting in and zeroing a fresh
    /// MAX_MESSAGE per connection.
    static RECEIVE_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0u8; MAX_MESSAGE]);
}

fn receive_into(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(Vec<u8>, Handed)>> {
    let (n, fds) = crate::fdpass::recv_with_fds(fd, buf, 0)?;
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    let raw = buf[..n].to_vec();
    let handed = parse(&raw, fds)?;
    Ok(Some((raw, handed)))
}

/// `CONN\0KEY=VALUE\0...` with the socket (and maybe stderr) attached.
fn parse(body: &[u8], fds: Vec<OwnedFd>) -> io::Result<Handed> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut parts = body.split(|b| *b == 0).filter(|p| !p.is_empty());
    if parts.next() != Some(b"CONN".as_slice()) {
        return Err(bad("expected CONN"));
    }
    let mut env = Vec::new();
    for p in parts {
        let eq = p
            .iter()
            .position(|b| *b == b'=')
            .filter(|i| *i > 0)
            .ok_or_else(|| bad("an environment entry without KEY="))?;
        env.push((
            OsString::from_vec(p[..eq].to_vec()),
            OsString::from_vec(p[eq + 1..].to_vec()),
        ));
    }
    let mut fds = fds;
    let handback = match env.iter_mut().find(|(k, _)| k == HANDBACK) {
        Some((_, value)) if fds.len() >= 2 => {
            let fd = fds.pop().expect("two or more");
            *value = OsString::from(fd.as_raw_fd().to_string());
            Some(fd)
        }
        Some(_) => return Err(bad("JAWAS_HANDBACK_FD without its descriptor attached")),
        None => None,
    };
    let mut fds = fds.into_iter();
    let socket = fds
        .next()
        .ok_or_else(|| bad("CONN without a socket attached"))?;
    Ok(Handed {
        socket,
        stderr: fds.next(),
        handback,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn conn_messages_parse_or_are_refused_by_name() {
        let h = parse(b"CONN\0PROTO=TCP\0TCPREMOTEIP=127.0.0.1\0", vec![null()]).unwrap();
        assert_eq!(h.env.len(), 2);
        assert_eq!(h.env[1].0, "TCPREMOTEIP");
        assert_eq!(h.env[1].1, "127.0.0.1");
        assert!(h.stderr.is_none());
        let h = parse(b"CONN\0A=\0", vec![null(), null()]).unwrap();
        assert_eq!(h.env[0].1, "");
        assert!(h.stderr.is_some());
        // The hand-back socket is the last descriptor, with or without
        // stderr, and its variable names the number it has here.
        for n in [2, 3] {
            let fds: Vec<OwnedFd> = (0..n).map(|_| null()).collect();
            let last = fds[n - 1].as_raw_fd();
            let h = parse(b"CONN\0JAWAS_HANDBACK_FD=3\0", fds).unwrap();
            assert_eq!(h.handback.as_ref().map(|f| f.as_raw_fd()), Some(last));
            assert_eq!(h.env[0].1, OsString::from(last.to_string()));
            assert_eq!(h.stderr.is_some(), n == 3);
        }
        assert!(parse(b"CONN\0JAWAS_HANDBACK_FD=3\0", vec![null()]).is_err());
        let table: &[(&[u8], usize, &str)] = &[
            (b"HELLO\0", 1, "expected CONN"),
            (b"CONN\0=x\0", 1, "without KEY="),
            (b"CONN\0novalue\0", 1, "without KEY="),
            (b"CONN\0A=1\0", 0, "without a socket"),
        ];
        for (body, nfds, want) in table {
            let fds = (0..*nfds).map(|_| null()).collect();
            let e = parse(body, fds).err().expect("refused");
            assert!(e.to_string().contains(want), "{body:?}: {e}");
        }
    }
}
