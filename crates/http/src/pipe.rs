//! Reading a local producer (a CGI script's stdout, a helper process)
//! under a deadline, for engines that stream another program's output to
//! the client.
//!
//! Owns the producer's descriptor (or a thread draining it, at most
//! `DRAIN_AHEAD` chunks ahead) and bytes put back after a look-ahead.
//! Invariant: no read waits past the deadline (or, after `idle_after`,
//! longer than the idle time); one that would fails with `TimedOut`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

/// Where the bytes come from.
enum Source {
    /// A descriptor read here, each read after a poll(2) bounded by the
    /// deadline.
    Fd(File),
    /// Chunks from a thread that drains the producer as fast as it writes,
    /// so a producer that writes before it has read all its input cannot
    /// deadlock with a caller busy feeding it.
    Channel(Receiver<io::Result<Vec<u8>>>),
}

/// A producer's output as a `Read` with a deadline.
pub struct DeadlineReader {
    source: Source,
    pending: VecDeque<u8>,
    deadline: Instant,
    /// Once set (`idle_after`), each read may wait this long from its own
    /// start instead of up to the fixed deadline.
    idle: Option<std::time::Duration>,
}

/// Chunks a drain thread may gather ahead of the reader: bounds its memory
/// (32 KiB each) whatever the producer writes and however slowly the
/// client reads.
const DRAIN_AHEAD: usize = 64;

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

impl DeadlineReader {
    /// Reads `fd` (a pipe, say) directly.
    pub fn new(fd: impl Into<OwnedFd>, deadline: Instant) -> DeadlineReader {
        DeadlineReader {
            source: Source::Fd(File::from(fd.into())),
            pending: VecDeque::new(),
            deadline,
            idle: None,
        }
    }

    /// Drains `reader` on a thread of its own from now on; reads here take
    /// what it gathered.
    pub fn drained(mut reader: impl Read + Send + 'static, deadline: Instant) -> DeadlineReader {
        let (tx, rx) = mpsc::sync_channel(DRAIN_AHEAD);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        DeadlineReader {
            source: Source::Channel(rx),
            pending: VecDeque::new(),
            deadline,
            idle: None,
        }
    }

    /// From now on each read waits at most `idle` (a producer that goes
    /// quiet that long times out) rather than up to the fixed deadline: for
    /// a long body after a head that had to come in time.
    pub fn idle_after(&mut self, idle: std::time::Duration) {
        self.idle = Some(idle);
    }

    /// Puts bytes back in front (what a look-ahead read too far).
    pub fn unread(&mut self, bytes: Vec<u8>) {
        for b in bytes.into_iter().rev() {
            self.pending.push_front(b);
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            for (i, b) in self.pending.drain(..n).enumerate() {
                buf[i] = b;
            }
            return Ok(n);
        }
        let left = match self.idle {
            Some(idle) => idle,
            None => self.deadline.saturating_duration_since(Instant::now()),
        };
        match &mut self.source {
            Source::Fd(f) => {
                let mut pfd = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: poll on one pollfd we own.
                match unsafe { libc::poll(&mut pfd, 1, ms) } {
                    0 => Err(timed_out()),
                    n if n < 0 => Err(io::Error::last_os_error()),
                    _ => f.read(buf),
                }
            }
            Source::Channel(rx) => match rx.recv_timeout(left) {
                Ok(Ok(chunk)) => {
                    self.pending.extend(chunk);
                    self.read(buf)
                }
                Ok(Err(e)) => Err(e),
                Err(RecvTimeoutError::Disconnected) => Ok(0),
                Err(RecvTimeoutError::Timeout) => Err(timed_out()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_unread_and_times_out() {
        let soon = Instant::now() + Duration::from_millis(200);
        let mut r = DeadlineReader::drained(io::Cursor::new(b"abcdef".to_vec()), soon);
        let mut buf = [0u8; 4];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"abcd");
        r.unread(b"cd".to_vec());
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "cdef");
        // A pipe nobody writes to: TimedOut at the deadline, not a hang.
        let (rd, _wr) = std::io::pipe().unwrap();
        let started = Instant::now();
        let mut r = DeadlineReader::new(rd, started + Duration::from_millis(100));
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
