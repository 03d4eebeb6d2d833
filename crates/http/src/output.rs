//! The connection's output side: every byte to the client goes through
//! `Output`, which owns the write deadline and counts what was really sent.
//!
//! Invariants: no write waits longer than the send timeout for progress (a
//! client that stops reading is an error, `TimedOut`, within that time);
//! `written` counts only bytes the kernel accepted. On a blocking socket the
//! deadline is SO_SNDTIMEO, set once per connection, so the hot path costs
//! no extra syscall; poll(2) is used only on EAGAIN and on pipes (whose
//! writes have no timeout of their own).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Largest single write to a pipe after poll said it is writable:
/// PIPE_BUF, which a writable pipe always has room for, so the write cannot
/// block (a larger one could wait for ever on a reader that stopped).
const PIPE_CHUNK: usize = libc::PIPE_BUF;

pub(crate) struct Output {
    pub(crate) fd: RawFd,
    /// A socket (send(2) with MSG_MORE/MSG_NOSIGNAL applies).
    pub(crate) is_socket: bool,
    /// A blocking socket with SO_SNDTIMEO set: EAGAIN means the deadline
    /// passed with no progress.
    timed: bool,
    timeout: Duration,
    /// Bytes the kernel accepted so far.
    pub(crate) written: u64,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")
}

/// Sets a socket timeout option (SO_RCVTIMEO or SO_SNDTIMEO); zero means
/// none. Returns whether it was set.
pub(crate) fn set_socket_timeout(fd: RawFd, opt: libc::c_int, t: Duration) -> bool {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: if t.is_zero() {
            0
        } else {
            t.subsec_micros().max(1000) as libc::suseconds_t
        },
    };
    // SAFETY: setsockopt with a timeval we own, its size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        ) == 0
    }
}

impl Output {
    /// `blocking_socket`: fd is a socket without O_NONBLOCK.
    pub(crate) fn new(
        fd: RawFd,
        is_socket: bool,
        blocking_socket: bool,
        timeout: Duration,
    ) -> Output {
        let timed = blocking_socket && set_socket_timeout(fd, libc::SO_SNDTIMEO, timeout);
        Output {
            fd,
            is_socket,
            timed,
            timeout,
            written: 0,
        }
    }

    /// Takes SO_SNDTIMEO off again (for a connection handed to a handler).
    pub(crate) fn clear_timeout(&mut self) {
        if self.timed {
            set_socket_timeout(self.fd, libc::SO_SNDTIMEO, Duration::ZERO);
            self.timed = false;
        }
    }

    /// Waits until the output can take bytes, at most the send timeout.
    fn wait_writable(&self) -> io::Result<()> {
        let ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own.
            let n = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
            match n {
                0 => return Err(timed_out()),
                n if n > 0 => return Ok(()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// What to do after a write returned -1: retry (Ok) or fail.
    fn after_error(&self) -> io::Result<()> {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => Ok(()),
            Some(libc::EAGAIN) if self.timed => Err(timed_out()),
            Some(libc::EAGAIN) => self.wait_writable(),
            _ => Err(e),
        }
    }

    /// Writes all of `data`: send(2) on a socket (with MSG_MORE when more
    /// follows), write(2) on anything else.
    pub(crate) fn put(&mut self, mut data: &[u8], more: bool) -> io::Result<()> {
        while !data.is_empty() {
            let mut len = data.len();
            if !self.is_socket {
                self.wait_writable()?;
                len = len.min(PIPE_CHUNK);
            }
            // SAFETY: send/write from a slice we own, at most its length.
            let n = unsafe {
                if self.is_socket {
                    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
                    libc::send(self.fd, data.as_ptr().cast(), len, flags)
                } else {
                    libc::write(self.fd, data.as_ptr().cast(), len)
                }
            };
            if n < 0 {
                self.after_error()?;
                continue;
            }
            self.written += n as u64;
            data = &data[n as usize..];
        }
        Ok(())
    }

    /// Copies `len` bytes of `file` from `offset` with sendfile(2), falling
    /// back to read/write where sendfile cannot go.
    pub(crate) fn send_file_range(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let mut off = offset as libc::off_t;
        let mut left = len;
        while left > 0 {
            let mut chunk = left.min(1 << 30) as usize;
            if !self.is_socket {
                self.wait_writable()?;
                chunk = chunk.min(PIPE_CHUNK);
            }
            // SAFETY: sendfile between descriptors we hold, offset we own.
            let n = unsafe { libc::sendfile(self.fd, file.as_raw_fd(), &mut off, chunk) };
            if n > 0 {
                self.written += n as u64;
                left -= n as u64;
                continue;
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                    return self.copy_range(file, off as u64, left);
                }
                _ => self.after_error()?,
            }
        }
        Ok(())
    }

    fn copy_range(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = 0;
        while done < len {
            let want = ((len - done) as usize).min(buf.len());
            let n = file.read_at(&mut buf[..want], offset + done)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.put(&buf[..n], false)?;
            done += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    #[test]
    fn a_reader_that_stops_reading_times_out() {
        // A pipe nobody reads: its buffer fills, then the write must fail
        // with TimedOut near the deadline instead of blocking for ever.
        let (_r, w) = std::io::pipe().unwrap();
        let mut out = Output::new(w.as_raw_fd(), false, false, Duration::from_millis(200));
        let started = Instant::now();
        let e = out.put(&vec![0u8; 4 << 20], false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            out.written > 0 && out.written < 4 << 20,
            "counted {}",
            out.written
        );
        // A blocking socket: SO_SNDTIMEO does the same without a poll.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut out = Output::new(a.as_raw_fd(), true, true, Duration::from_millis(200));
        assert!(out.timed);
        let started = Instant::now();
        let e = out.put(&vec![0u8; 16 << 20], false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            out.written > 0 && out.written < 16 << 20,
            "counted {}",
            out.written
        );
    }
}
