//! systemd's journal, natively: when systemd started jawasd with stderr
//! connected to the journal (JOURNAL_STREAM names stderr's device and
//! inode), each log record goes as one datagram of `KEY=value` fields to
//! the journal's socket, so its priority and identifier are fields rather
//! than text to parse (see systemd.journal-fields(7)).
//!
//! Owns the detection, the field formatting and the datagram socket.
//! Invariant: a send never blocks (MSG_DONTWAIT); a record the journal
//! cannot take now is dropped and counted, and the count is sent with
//! the next record that goes through.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// The journal's native socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// Whether JOURNAL_STREAM (`DEVICE:INODE`) names the file `dev`/`ino`.
pub fn stream_matches(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// Whether jawasd's stderr is the journal stream systemd announced.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream_matches(&stream, meta.dev(), meta.ino())
}

/// The priority of a level (syslog numbering).
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// One record's datagram. The message is one line (jawasd escapes what
/// it logs), so the simple `KEY=value\n` form serves.
pub fn fields(priority: u8, message: &str) -> Vec<u8> {
    let message = message.replace('\n', " ");
    format!(
        "PRIORITY={priority}\nSYSLOG_IDENTIFIER=jawasd\nSYSLOG_PID={}\nMESSAGE={message}\n",
        std::process::id()
    )
    .into_bytes()
}

/// The logger's target when logging to the journal: each record arrives
/// as `LEVEL MESSAGE\n` (see `main::init_logger`).
pub struct Journal {
    socket: UnixDatagram,
    /// Where the journal listens, to connect again after journald
    /// restarted (its socket replaced, ours left connected to nothing).
    path: std::path::PathBuf,
    dropped: u64,
}

impl Journal {
    pub fn connect(path: &Path) -> io::Result<Journal> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Journal {
            socket,
            path: path.to_path_buf(),
            dropped: 0,
        })
    }

    fn send(&mut self, datagram: &[u8]) -> bool {
        let send = |s: &UnixDatagram| {
            nix::sys::socket::send(
                s.as_raw_fd(),
                datagram,
                nix::sys::socket::MsgFlags::MSG_DONTWAIT,
            )
        };
        match send(&self.socket) {
            Ok(_) => true,
            // The peer is gone (journald restarted): connect to the new
            // socket once and try again; a full queue (EAGAIN) is not
            // retried, so the loop never waits.
            Err(nix::errno::Errno::ECONNREFUSED | nix::errno::Errno::ENOTCONN) => {
                match UnixDatagram::unbound().and_then(|s| s.connect(&self.path).map(|()| s)) {
                    Ok(fresh) => {
                        self.socket = fresh;
                        send(&self.socket).is_ok()
                    }
                    Err(_) => false,
                }
            }
            Err(_) => false,
        }
    }
}

impl Write for Journal {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines() {
            let (level, message) = line.split_once(' ').unwrap_or(("info", line));
            let level = level.parse().unwrap_or(log::Level::Info);
            if self.dropped > 0 {
                let note = format!(
                    "log: {} records dropped while the journal was not taking them",
                    self.dropped
                );
                if self.send(&fields(priority(log::Level::Warn), &note)) {
                    self.dropped = 0;
                }
            }
            if !self.send(&fields(priority(level), message)) {
                self.dropped += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_detection() {
        let cases = [
            ("8:1234", 8, 1234, true),
            ("8:1234\n", 8, 1234, true),
            ("8:1235", 8, 1234, false),
            ("9:1234", 8, 1234, false),
            ("8", 8, 1234, false),
            ("", 8, 1234, false),
            ("a:b", 8, 1234, false),
        ];
        for (env, dev, ino, want) in cases {
            assert_eq!(stream_matches(env, dev, ino), want, "{env:?}");
        }
    }

    #[test]
    fn records_reach_a_fake_journal_as_fields() {
        let dir = std::env::temp_dir().join(format!("jawasd-journal-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut j = Journal::connect(&path).unwrap();
        j.write_all(b"warn refuse svc=web reason=rate\n").unwrap();
        j.write_all(b"info two\nlines\n").unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        for _ in 0..3 {
            let n = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        let pid = std::process::id();
        assert_eq!(
            got[0],
            format!("PRIORITY=4\nSYSLOG_IDENTIFIER=jawasd\nSYSLOG_PID={pid}\nMESSAGE=refuse svc=web reason=rate\n")
        );
        assert!(got[1].starts_with("PRIORITY=6\n") && got[1].ends_with("MESSAGE=two\n"));
        assert!(got[2].ends_with("MESSAGE=lines\n"), "no level: info");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
