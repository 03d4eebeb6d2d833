//! The servers behind the proxy: parsing `--to`, connecting with a
//! timeout and failing over, and the connected stream (TCP or Unix).
//!
//! Owns the upstream socket. Invariant: a connect attempt never waits
//! longer than the connect timeout per address, and every failed address
//! is named in the error so the log says why no upstream answered.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// One `--to`: `HOST:PORT` (resolved at connect time, so a name may move)
/// or the path of a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl Target {
    /// A value with a `/` is a Unix socket path; otherwise `HOST:PORT`,
    /// with IPv6 literals in brackets (`[::1]:8080`).
    pub fn parse(v: &str) -> Result<Target, String> {
        if v.contains('/') {
            return Ok(Target::Unix(PathBuf::from(v)));
        }
        let (host, port) = v
            .rsplit_once(':')
            .ok_or("expected HOST:PORT or a socket path")?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("port must be 1 to 65535")?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
                .ok_or("bad IPv6 literal")?,
            None if host.contains(':') => return Err("put an IPv6 address in brackets".into()),
            None => host,
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(Target::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// As the user wrote it, for messages and the default Host.
    pub fn authority(&self) -> String {
        match self {
            Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp { host, port } => format!("{host}:{port}"),
            Target::Unix(p) => p.display().to_string(),
        }
    }

    /// Connects to the first address of this target that accepts.
    fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Target::Tcp { host, port } => {
                let addrs: Vec<SocketAddr> = (host.as_str(), *port).to_socket_addrs()?.collect();
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                for a in addrs {
                    match TcpStream::connect_timeout(&a, timeout) {
                        Ok(s) => {
                            // Heads and small bodies go out as written.
                            let _ = s.set_nodelay(true);
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
}

/// How the first upstream to try is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Always the first, the next ones only when it refuses.
    Order,
    /// A different first one per connection.
    RoundRobin,
}

impl Balance {
    pub fn parse(v: &str) -> Result<Balance, String> {
        match v {
            "order" => Ok(Balance::Order),
            "round-robin" => Ok(Balance::RoundRobin),
            _ => Err("expected order or round-robin".into()),
        }
    }
}

/// The upstreams and how to reach them.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub targets: Vec<Target>,
    pub balance: Balance,
    pub connect_timeout: Duration,
}

impl Upstreams {
    /// Where this connection starts. Each connection is its own process,
    /// so round-robin keeps its count in a small file shared by every
    /// process proxying to the same list (see `shared_counter`); if that
    /// file cannot be used, the process id stands in.
    fn first(&self) -> usize {
        match self.balance {
            Balance::Order => 0,
            Balance::RoundRobin => {
                let key: Vec<String> = self.targets.iter().map(Target::authority).collect();
                let n = shared_counter(&key.join(" ")).unwrap_or(std::process::id() as u64);
                (n % self.targets.len() as u64) as usize
            }
        }
    }

    /// Connects to the first upstream that accepts, trying each once in
    /// order from `first`; the error names every failure.
    pub fn connect(&self) -> Result<(Stream, &Target), String> {
        let n = self.targets.len();
        let start = self.first();
        let mut why = Vec::new();
        for i in 0..n {
            let t = &self.targets[(start + i) % n];
            match t.connect(self.connect_timeout) {
                Ok(s) => return Ok((s, t)),
                Err(e) => why.push(format!("{}: {}", t.authority(), describe(&e))),
            }
        }
        Err(why.join("; "))
    }
}

/// Takes the next number of the counter named by `key`: a file of 8
/// bytes under $XDG_RUNTIME_DIR (or /dev/shm, or the temporary directory),
/// named for the user and a hash of `key`, read and incremented under an
/// exclusive lock. `None` when it cannot be used (for example a file of
/// that name owned by someone else).
fn shared_counter(key: &str) -> Option<u64> {
    use std::fs::OpenOptions;
    use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|d| d.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let uid = nix::unistd::geteuid().as_raw();
    let path = dir.join(format!("jawas-proxy-rr-{uid}-{hash:016x}"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if file.metadata().ok()?.uid() != uid {
        return None;
    }
    file.lock().ok()?;
    let mut buf = [0u8; 8];
    let n = file.read_at(&mut buf, 0).ok()?;
    let count = if n == 8 { u64::from_le_bytes(buf) } else { 0 };
    file.write_at(&count.wrapping_add(1).to_le_bytes(), 0)
        .ok()?;
    Some(count)
}

/// An I/O error as a log reads it ("connection refused", "timed out").
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

/// A connected upstream.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_cases() {
        let tcp = |h: &str, p| {
            Ok(Target::Tcp {
                host: h.into(),
                port: p,
            })
        };
        let cases: Vec<(&str, Result<Target, ()>)> = vec![
            ("127.0.0.1:3000", tcp("127.0.0.1", 3000)),
            ("app.internal:80", tcp("app.internal", 80)),
            ("[::1]:8080", tcp("::1", 8080)),
            ("/run/app.sock", Ok(Target::Unix("/run/app.sock".into()))),
            ("./app.sock", Ok(Target::Unix("./app.sock".into()))),
            ("::1:8080", Err(())),
            ("[::1:8080", Err(())),
            ("[nope]:80", Err(())),
            ("host", Err(())),
            ("host:0", Err(())),
            ("host:70000", Err(())),
            (":80", Err(())),
        ];
        for (v, want) in cases {
            assert_eq!(Target::parse(v).map_err(|_| ()), want, "{v:?}");
        }
        assert_eq!(Target::parse("[::1]:80").unwrap().authority(), "[::1]:80");
    }
}
