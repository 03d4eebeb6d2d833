//! Handing the connection to a handler that speaks something other than
//! HTTP after the request (a WebSocket after `101 Switching Protocols`, a
//! tunnel after CONNECT).
//!
//! Owns the duplicated client descriptors and the bytes the layer had
//! already read past the request head. Invariant: once handed off, the
//! layer never reads or writes the connection again, and the socket is
//! back to what accept(2) gave (blocking, no receive or send timeout), so
//! the new owner sets its own.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, RawFd};

/// The connection after `Conn::hand_off`.
pub struct Upgraded {
    /// The client, as one stream (fd 0 for reading, fd 1 for writing: one
    /// socket under jawasd, two pipes in tests).
    pub stream: Duplex,
    /// Bytes the client sent after the request head that the layer had
    /// already read: the start of the new protocol. (tungstenite's
    /// `WebSocket::from_partially_read` takes exactly this.)
    pub buffered: Vec<u8>,
}

/// Reads from one descriptor, writes to another.
pub struct Duplex {
    input: File,
    output: File,
}

impl Duplex {
    /// Duplicates `input` and `output` (close-on-exec), so the new owner
    /// holds its own descriptors.
    pub(crate) fn dup(input: RawFd, output: RawFd) -> io::Result<Duplex> {
        Ok(Duplex {
            input: dup(input)?,
            output: dup(output)?,
        })
    }

    pub fn input(&self) -> &File {
        &self.input
    }

    pub fn output(&self) -> &File {
        &self.output
    }
}

fn dup(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we hold; it only creates one.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(new) })
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}
