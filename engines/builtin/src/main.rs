//! jawas-builtin: xinetd's internal services as an ordinary engine.
//!
//! `jawas-builtin echo|discard|chargen|daytime|time` serves RFC 862, 863,
//! 864, 867 and 868 over stdin/stdout. When fd 0 is a TCP connection (or a
//! pipe) it serves that one stream; when fd 0 is a UDP socket (an inetd
//! `wait = yes` datagram service) it answers every queued datagram, lingers
//! a moment for more, and exits so the super-server watches the socket again.
//! `jawas-builtin relay ADDRESS:PORT` copies a connection both ways to
//! another TCP server (xinetd's `redirect`).
//!
//! Start-up, options (`--linger`, `--connect-timeout`, and the common
//! `--help`, `--version`, `--check`), error reporting and exit codes come
//! from the shared runtime, jawas-engine.
//!
//! Failure paths, each one `jawas-builtin: error: ...` line on stderr and an
//! exit code (s6 convention): usage error (100), peer reset or broke
//! protocol (1, silently), system failure (111). A peer that simply goes
//! away while chargen is writing is the normal end of chargen, and SIGTERM
//! the normal end of any service (except relay, which it kills), so both
//! exit 0.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use jawas_engine::{join, parse_secs, stopping, Args, Connection, Engine, Error, Kind, Opt};

/// The service names, as given on the command line.
const SERVICES: [&str; 7] = [
    "echo", "discard", "chargen", "daytime", "time", "relay", "metrics",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Echo,
    Discard,
    Chargen,
    Daytime,
    Time,
    Relay(SocketAddr),
    /// jawasd's counters over HTTP (the socket is `Builtin::control`).
    Metrics,
}

#[derive(Debug)]
struct Builtin {
    service: Service,
    /// How long a datagram service waits for another datagram before exiting.
    linger: Duration,
    /// How long relay waits for the target to accept.
    connect_timeout: Duration,
    /// metrics: jawasd's control socket.
    control: Option<std::path::PathBuf>,
}

impl Engine for Builtin {
    const NAME: &'static str = "jawas-builtin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[
        "echo|discard|chargen|daytime|time",
        "relay ADDRESS:PORT",
        "metrics SOCKET",
    ];
    const ABOUT: &'static str = "\
xinetd's internal services as an engine, over the connection on fds 0 and 1:
  echo      RFC 862: sends back what it receives
  discard   RFC 863: reads and ignores
  chargen   RFC 864: writes the rotating character pattern till the reader goes
  daytime   RFC 867: one line, DD MON YYYY HH:MM:SS ZONE, local time
  time      RFC 868: 4 bytes, seconds since 1900-01-01 UTC, big-endian
  relay     copies the connection both ways to ADDRESS:PORT (xinetd's redirect)
  metrics   HTTP: jawasd's counters, asked from its control socket SOCKET, as
            Prometheus text (GET /metrics) or an HTML status page (GET /)

When fd 0 is a UDP socket, each datagram is answered to its sender, and the
engine exits after --linger without one so the super-server watches the
socket again.";
    const OPTIONS: &'static [Opt] = &[
        Opt::value(
            "linger",
            "SECS",
            "Datagram services: exit after SECS without a datagram (default 1).",
        ),
        Opt::value(
            "connect-timeout",
            "SECS",
            "relay: give up connecting to the target after SECS (default 10).",
        ),
    ];

    fn init(args: &Args) -> Result<Self, Error> {
        // Every problem at once, for --check.
        let ((service, control), (linger, connect_timeout)) = join(
            parse_service(args.positionals()),
            join(
                args.parse("linger", parse_secs),
                args.parse("connect-timeout", parse_secs),
            ),
        )?;
        Ok(Builtin {
            service,
            linger: linger.unwrap_or(Duration::from_secs(1)),
            connect_timeout: connect_timeout.unwrap_or(Duration::from_secs(10)),
            control,
        })
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        match (conn.kind(), self.service) {
            (Kind::Listener, _) => Err(Error::config(
                "fd 0 is a listening socket: serve jawas-builtin with wait = false",
            )),
            (Kind::Datagram, Service::Relay(_)) => {
                Err(Error::config("relay serves TCP connections, not datagrams"))
            }
            (Kind::Datagram, Service::Metrics) => {
                Err(Error::config("metrics serves HTTP over TCP, not datagrams"))
            }
            (Kind::Stream, Service::Metrics) => {
                let socket = self.control.clone().unwrap_or_default();
                let (mut input, mut output) = conn.into_files();
                metrics::serve(&socket, &mut input, &mut output)
            }
            (Kind::Datagram, service) => serve_datagrams(conn.input(), service, self.linger),
            (Kind::Stream, Service::Relay(target)) => relay(conn, target, self.connect_timeout),
            (Kind::Stream, service) => serve_stream(conn, service),
        }
    }
}

mod metrics;

fn main() {
    jawas_engine::run::<Builtin>()
}

/// The positional arguments: one service name, `relay ADDRESS:PORT` or
/// `metrics SOCKET` (with the socket's path).
fn parse_service(args: &[String]) -> Result<(Service, Option<std::path::PathBuf>), Error> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let service = match words.as_slice() {
        [] => {
            return Err(Error::usage(
                "no service given: echo, discard, chargen, daytime, time or relay ADDRESS:PORT",
            ))
        }
        ["echo"] => Service::Echo,
        ["discard"] => Service::Discard,
        ["chargen"] => Service::Chargen,
        ["daytime"] => Service::Daytime,
        ["time"] => Service::Time,
        ["relay"] => return Err(Error::usage("relay needs a target: relay ADDRESS:PORT")),
        ["metrics"] => {
            return Err(Error::usage(
                "metrics needs jawasd's control socket: metrics SOCKET (see [server] control)",
            ))
        }
        ["metrics", socket] => return Ok((Service::Metrics, Some(socket.into()))),
        ["relay", target] => Service::Relay(target.parse().map_err(|_| {
            Error::usage(format!(
                "relay: '{target}' is not ADDRESS:PORT (an IP address and a port, such as 192.0.2.1:80 or [::1]:80)"
            ))
        })?),
        [first, extra, ..] if SERVICES.contains(first) => {
            return Err(Error::usage(format!(
                "unexpected argument '{extra}' after {first}"
            )))
        }
        [first, ..] => {
            let hint = jawas_engine::suggest(first, SERVICES)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            return Err(Error::usage(format!(
                "unknown service '{first}'{hint}: echo, discard, chargen, daytime, time or relay ADDRESS:PORT"
            )));
        }
    };
    Ok((service, None))
}

/// The service loops' read and write, ended by SIGTERM: once `stopping()`
/// is set they return `Interrupted` instead of blocking again (a write
/// interrupted after some bytes returns the count, not EINTR, so the flag
/// is checked before every call, not only on EINTR).
fn read_or_stop(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        if stopping() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn write_or_stop(output: &mut impl Write, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        if stopping() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match output.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve_stream(conn: Connection, service: Service) -> Result<(), Error> {
    let (mut input, mut output) = conn.into_files();
    let result = match service {
        Service::Echo => echo(&mut input, &mut output),
        Service::Discard => discard(&mut input),
        Service::Chargen => chargen(&mut output),
        Service::Daytime => write_or_stop(&mut output, daytime(now()).as_bytes()),
        Service::Time => write_or_stop(&mut output, &rfc868(now())),
        Service::Relay(_) | Service::Metrics => unreachable!("served by relay() and metrics"),
    };
    match result {
        Ok(()) => Ok(()),
        // SIGTERM: jawasd is stopping; ending here is the clean end.
        Err(_) if stopping() => Ok(()),
        Err(e) => match Error::io("connection", &e) {
            // The client hanging up is how chargen ends.
            gone if service == Service::Chargen && gone.code() == jawas_engine::exit::PEER => {
                Ok(())
            }
            other => Err(other),
        },
    }
}

fn echo(input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match read_or_stop(input, &mut buf)? {
            0 => return Ok(()),
            n => write_or_stop(output, &buf[..n])?,
        }
    }
}

fn discard(input: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while read_or_stop(input, &mut buf)? > 0 {}
    Ok(())
}

/// Line `n` of the RFC 864 pattern: 72 characters of the 95-character ring
/// of printable ASCII (space to '~'), starting one further along each
/// line, then CRLF. Line 0 starts at '!' as in the RFC's example.
fn chargen_line(n: usize) -> [u8; 74] {
    let mut line = [0u8; 74];
    for (i, b) in line[..72].iter_mut().enumerate() {
        *b = b' ' + ((n + i + 1) % 95) as u8;
    }
    line[72] = b'\r';
    line[73] = b'\n';
    line
}

fn chargen(output: &mut impl Write) -> io::Result<()> {
    // One full cycle of the pattern (95 lines), written over and over.
    let cycle: Vec<u8> = (0..95).flat_map(chargen_line).collect();
    loop {
        write_or_stop(output, &cycle)?;
    }
}

/// RFC 867 leaves the format free; this is xinetd's: "DD MON YYYY HH:MM:SS ZONE\r\n"
/// in local time, e.g. "24 NOV 2026 13:45:12 UTC".
fn daytime(t: libc::time_t) -> String {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    // SAFETY: localtime_r into a tm we own; tm_zone points at static storage.
    let (tm, zone) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        let zone = if tm.tm_zone.is_null() {
            "UTC".to_string()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (tm, zone)
    };
    format!(
        "{:02} {} {} {:02}:{:02}:{:02} {}\r\n",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        zone
    )
}

/// RFC 868: seconds since 1900-01-01 00:00 UTC, 32 bits, big-endian.
fn rfc868(t: libc::time_t) -> [u8; 4] {
    const EPOCH_OFFSET: i64 = 2_208_988_800;
    ((t + EPOCH_OFFSET) as u32).to_be_bytes()
}

/// Answers datagrams on the UDP socket `sock` until none has come for
/// `linger`, or SIGTERM.
fn serve_datagrams(sock: BorrowedFd<'_>, service: Service, linger: Duration) -> Result<(), Error> {
    let fd = sock.as_raw_fd();
    let timeout_ms = i32::try_from(linger.as_millis()).unwrap_or(i32::MAX);
    let mut buf = vec![0u8; 65536];
    let mut line = 0usize;
    // A socket connected to one sender (a UDP service without wait) may
    // still hold datagrams other senders sent before it was connected,
    // which no access rule checked: only the peer is answered.
    let peer = nix::sys::socket::getpeername::<nix::sys::socket::SockaddrStorage>(fd).ok();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, for a descriptor the borrow
        // keeps open.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ready == 0 || stopping() {
            return Ok(());
        }
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::system(format!("poll: {e}")));
        }
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: recvfrom into buffers we own, with their true sizes.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            continue;
        }
        if let Some(peer) = &peer {
            // SAFETY: the kernel filled `from_len` bytes of the
            // sockaddr_storage we own.
            let sender = unsafe {
                <nix::sys::socket::SockaddrStorage as nix::sys::socket::SockaddrLike>::from_raw(
                    (&from as *const libc::sockaddr_storage).cast(),
                    Some(from_len),
                )
            };
            if sender.as_ref() != Some(peer) {
                continue;
            }
        }
        let reply: Vec<u8> = match service {
            Service::Echo => buf[..n as usize].to_vec(),
            Service::Discard | Service::Relay(_) | Service::Metrics => continue,
            // RFC 864 over UDP: one datagram of up to 512 characters.
            Service::Chargen => {
                let l = chargen_line(line);
                line += 1;
                l.to_vec()
            }
            Service::Daytime => daytime(now()).into_bytes(),
            Service::Time => rfc868(now()).to_vec(),
        };
        // SAFETY: sendto from a buffer we own, to the sender's own address
        // as recvfrom filled it in. A lost reply is UDP's normal risk, so
        // the result is not checked.
        unsafe {
            libc::sendto(
                fd,
                reply.as_ptr().cast(),
                reply.len(),
                0,
                (&from as *const libc::sockaddr_storage).cast(),
                from_len,
            )
        };
    }
}

/// Copies the connection to the target and the target's answer back until
/// both directions end (xinetd's `redirect`), passing each end on as a
/// half-close.
fn relay(conn: Connection, target: SocketAddr, timeout: Duration) -> Result<(), Error> {
    // Two threads block in copies that retry on EINTR and there is nothing
    // to flush: SIGTERM's default action is the right end.
    jawas_engine::die_on_sigterm()
        .map_err(|e| Error::system(format!("relay: signal set-up: {e}")))?;
    let upstream = TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| Error::system(format!("relay: unable to connect to {target}: {e}")))?;
    let mut down = upstream
        .try_clone()
        .map_err(|e| Error::system(format!("relay: {e}")))?;
    let (mut input, mut output) = conn.into_files();
    // Client to server in a thread; server to client here.
    let forward = std::thread::spawn(move || {
        let mut up = upstream;
        let r = pump(&mut input, &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
        r
    });
    let back = pump(&mut down, &mut output);
    // Half-close toward the client so it sees the end of the reply.
    let _ = Connection::shutdown_output(output.as_fd());
    let fwd = forward
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    match (fwd, back) {
        (Ok(_), Ok(_)) => Ok(()),
        _ => Err(Error::peer_gone()),
    }
}

/// Copies `from` to `to` until EOF. Not `io::copy`: on Linux that splices
/// when one side is a pipe, and a splice from a socket waits for data while
/// holding the pipe's lock, so the reader at the other end cannot take the
/// bytes already spliced (a relay writing to a pipe stalls until the
/// target sends more).
fn pump(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn now() -> libc::time_t {
    // SAFETY: time(NULL) has no memory effects.
    unsafe { libc::time(std::ptr::null_mut()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_rotate_through_printable_ascii() {
        let first = chargen_line(0);
        assert_eq!(&first[..10], b"!\"#$%&'()*");
        assert_eq!(&first[72..], b"\r\n");
        let second = chargen_line(1);
        assert_eq!(second[0], b'"');
        // After 95 lines the pattern repeats.
        assert_eq!(chargen_line(95), first);
        for n in 0..95 {
            assert!(chargen_line(n)[..72].iter().all(|b| (32..=126).contains(b)));
        }
    }

    #[test]
    fn rfc868_epoch() {
        // 1970-01-01 is 2208988800 seconds after 1900-01-01.
        assert_eq!(rfc868(0), 2_208_988_800u32.to_be_bytes());
        assert_eq!(u32::from_be_bytes(rfc868(1_000_000_000)), 3_208_988_800);
    }

    #[test]
    fn daytime_shape() {
        // 2001-09-09 01:46:40 UTC; only the shape is checked, as the
        // zone is the machine's.
        let line = daytime(1_000_000_000);
        assert!(line.ends_with("\r\n"), "{line:?}");
        let words: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(words.len(), 5, "{line:?}");
        assert_eq!(words[2].len(), 4);
        assert_eq!(words[3].len(), 8);
    }
}
