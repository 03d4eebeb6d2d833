//! Moving bytes both ways between the client and the upstream with
//! splice(2) through a pipe per direction, so the data never enters user
//! space: the whole of `jawas-proxy tcp`, and the tunnel after an HTTP
//! Upgrade.
//!
//! Owns the four descriptors' non-blocking mode and the two pipes.
//! Invariants: an end of input in one direction is passed on as a
//! half-close (shutdown(SHUT_WR)) once everything read before it has been
//! written, while the other direction goes on; the relay ends when both
//! directions have ended, when either side fails, or after the idle
//! timeout with no byte moving either way.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Bytes a pipe may hold: four times Linux's default, so one splice moves
/// more per wake-up on a fast link. Refused sizes keep the default.
const PIPE_SIZE: i32 = 256 * 1024;

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their sending half and everything was delivered.
    Done,
    /// No byte moved for the idle timeout.
    Idle,
    /// The process was asked to stop (SIGTERM).
    Stopping,
}

/// One direction: bytes from `src` into the pipe, from the pipe to `dst`.
struct Flow<'a> {
    src: BorrowedFd<'a>,
    dst: BorrowedFd<'a>,
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    /// Bytes in the pipe not yet written to `dst`.
    queued: usize,
    /// `src` reached its end (or failed: either way nothing more comes).
    eof: bool,
    /// The end was passed on to `dst`.
    closed: bool,
    /// Total bytes moved, for the caller's log.
    moved: u64,
}

fn nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl<'a> Flow<'a> {
    fn new(src: BorrowedFd<'a>, dst: BorrowedFd<'a>) -> io::Result<Flow<'a>> {
        let (pipe_r, pipe_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let _ = fcntl(pipe_w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        Ok(Flow {
            src,
            dst,
            pipe_r,
            pipe_w,
            queued: 0,
            eof: false,
            closed: false,
            moved: 0,
        })
    }

    fn wants_read(&self) -> bool {
        !self.eof && self.queued < PIPE_SIZE as usize
    }

    fn wants_write(&self) -> bool {
        self.queued > 0
    }

    /// Moves what can move without blocking. `Ok(true)` when a byte moved
    /// or an end was seen; an error when `dst` refuses bytes (its reader
    /// is gone), which ends the relay.
    fn step(&mut self) -> io::Result<bool> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        let mut progress = false;
        if self.wants_read() {
            let room = PIPE_SIZE as usize - self.queued;
            match splice(self.src, None, &self.pipe_w, None, room, flags) {
                Ok(0) => {
                    self.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.queued += n;
                    progress = true;
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // A reset or other failure on the source: nothing more
                // will come from it, which is its end.
                Err(_) => {
                    self.eof = true;
                    progress = true;
                }
            }
        }
        if self.wants_write() {
            match splice(&self.pipe_r, None, self.dst, None, self.queued, flags) {
                Ok(n) => {
                    self.queued -= n;
                    self.moved += n as u64;
                    progress |= n > 0;
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.eof && self.queued == 0 && !self.closed {
            // Not a socket (pipes in tests): nothing to half-close.
            let _ = jawas_engine::Connection::shutdown_output(self.dst);
            self.closed = true;
            progress = true;
        }
        Ok(progress)
    }
}

/// Relays between the client (`client_in`, `client_out`: one socket twice
/// under jawasd) and `upstream` until both directions end. Returns how it
/// ended and the bytes moved (client to upstream, upstream to client).
pub fn run(
    client_in: BorrowedFd<'_>,
    client_out: BorrowedFd<'_>,
    upstream: BorrowedFd<'_>,
    idle: Option<Duration>,
) -> io::Result<(End, u64, u64)> {
    for fd in [client_in, client_out, upstream] {
        nonblocking(fd)?;
    }
    let mut up = Flow::new(client_in, upstream)?;
    let mut down = Flow::new(upstream, client_out)?;
    let mut last = Instant::now();
    loop {
        if up.closed && down.closed {
            return Ok((End::Done, up.moved, down.moved));
        }
        if jawas_engine::stopping() {
            return Ok((End::Stopping, up.moved, down.moved));
        }
        let moved = up.step()? | down.step()?;
        if moved {
            last = Instant::now();
            continue;
        }
        let wait = match idle {
            Some(t) => {
                let left = t.saturating_sub(last.elapsed());
                if left.is_zero() {
                    return Ok((End::Idle, up.moved, down.moved));
                }
                // Wake at least once a second to notice SIGTERM's flag
                // even if poll was restarted.
                left.min(Duration::from_secs(1))
            }
            None => Duration::from_secs(1),
        };
        wait_for(&up, &down, wait)?;
    }
}

/// Sleeps until one of the descriptors the flows wait on is ready, or
/// `wait` passes.
fn wait_for(up: &Flow<'_>, down: &Flow<'_>, wait: Duration) -> io::Result<()> {
    let mut fds = Vec::with_capacity(4);
    for f in [up, down] {
        if f.wants_read() {
            fds.push(PollFd::new(f.src.as_fd(), PollFlags::POLLIN));
        }
        if f.wants_write() {
            fds.push(PollFd::new(f.dst.as_fd(), PollFlags::POLLOUT));
        }
    }
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
