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
//! Failure paths, each one line on stderr and an exit code (s6 convention):
//! usage error (100), peer reset or broke protocol (1), system failure (111).
//! A peer that simply goes away while chargen is writing is the normal end
//! of chargen, so that exits 0.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

const USAGE: &str = "usage: jawas-builtin echo|discard|chargen|daytime|time | relay ADDRESS:PORT";

/// How long a datagram service waits for another datagram before exiting.
const UDP_LINGER_MS: i32 = 1000;

enum Service {
    Echo,
    Discard,
    Chargen,
    Daytime,
    Time,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Writing to a closed connection should be an error we handle, not a
    // silent death, so chargen can tell "peer left" from a crash.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let service = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["echo"] => Service::Echo,
        ["discard"] => Service::Discard,
        ["chargen"] => Service::Chargen,
        ["daytime"] => Service::Daytime,
        ["time"] => Service::Time,
        ["relay", target] => std::process::exit(relay(target)),
        ["--help"] | ["-h"] => {
            println!("{USAGE}");
            return;
        }
        _ => {
            eprintln!("jawas-builtin: {USAGE}");
            std::process::exit(100);
        }
    };
    let code = if is_datagram_socket(0) {
        serve_datagrams(&service)
    } else {
        serve_stream(&service)
    };
    std::process::exit(code);
}

/// fd 0 is a UDP socket.
fn is_datagram_socket(fd: i32) -> bool {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && kind == libc::SOCK_DGRAM
}

fn exit_code_for(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => 1,
        _ => 111,
    }
}

fn serve_stream(service: &Service) -> i32 {
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let result = match service {
        Service::Echo => echo(&mut stdin, &mut stdout),
        Service::Discard => discard(&mut stdin),
        Service::Chargen => match chargen(&mut stdout) {
            // The client hanging up is how chargen ends.
            Err(e) if exit_code_for(&e) == 1 => Ok(()),
            other => other,
        },
        Service::Daytime => stdout
            .write_all(daytime(now()).as_bytes())
            .and_then(|_| stdout.flush()),
        Service::Time => stdout
            .write_all(&rfc868(now()))
            .and_then(|_| stdout.flush()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = exit_code_for(&e);
            if code == 111 {
                eprintln!("jawas-builtin: {e}");
            }
            code
        }
    }
}

fn echo(input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return output.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        output.write_all(&buf[..n])?;
        output.flush()?;
    }
}

fn discard(input: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
        output.write_all(&cycle)?;
        output.flush()?;
    }
}

fn now() -> libc::time_t {
    // SAFETY: time(NULL) has no memory effects.
    unsafe { libc::time(std::ptr::null_mut()) }
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

/// Answers datagrams on the UDP socket at fd 0 until none has come for
/// UDP_LINGER_MS.
fn serve_datagrams(service: &Service) -> i32 {
    let mut buf = vec![0u8; 65536];
    let mut line = 0usize;
    loop {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own.
        let ready = unsafe { libc::poll(&mut pfd, 1, UDP_LINGER_MS) };
        if ready == 0 {
            return 0;
        }
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("jawas-builtin: poll: {e}");
            return 111;
        }
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: recvfrom into buffers we own, with their true sizes.
        let n = unsafe {
            libc::recvfrom(
                0,
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
        let reply: Vec<u8> = match service {
            Service::Echo => buf[..n as usize].to_vec(),
            Service::Discard => continue,
            // RFC 864 over UDP: one datagram of up to 512 characters.
            Service::Chargen => {
                let l = chargen_line(line);
                line += 1;
                l.to_vec()
            }
            Service::Daytime => daytime(now()).into_bytes(),
            Service::Time => rfc868(now()).to_vec(),
        };
        // SAFETY: sendto with the sender's own address.
        unsafe {
            libc::sendto(
                0,
                reply.as_ptr().cast(),
                reply.len(),
                0,
                (&from as *const libc::sockaddr_storage).cast(),
                from_len,
            )
        };
    }
}

/// Copies stdin to the target and the target to stdout until both
/// directions end (xinetd's `redirect`).
fn relay(target: &str) -> i32 {
    let addr: SocketAddr = match target.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("jawas-builtin: relay: '{target}' is not ADDRESS:PORT");
            return 100;
        }
    };
    let upstream = match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jawas-builtin: relay: unable to connect to {addr}: {e}");
            return 111;
        }
    };
    let down = upstream.try_clone().expect("dup of a socket");
    // Client to server in a thread; server to client here.
    let forward = std::thread::spawn(move || {
        // SAFETY: fd 0 is ours for the life of the process.
        let mut stdin = unsafe { std::fs::File::from_raw_fd(0) };
        let mut up = upstream;
        let r = io::copy(&mut stdin, &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
        std::mem::forget(stdin);
        r
    });
    let mut down = down;
    // SAFETY: fd 1 is ours for the life of the process.
    let mut stdout = unsafe { std::fs::File::from_raw_fd(1) };
    let back = io::copy(&mut down, &mut stdout);
    // Half-close toward the client so it sees the end of the reply.
    unsafe { libc::shutdown(stdout.as_raw_fd(), libc::SHUT_WR) };
    std::mem::forget(stdout);
    let fwd = forward
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    match (fwd, back) {
        (Ok(_), Ok(_)) => 0,
        _ => 1,
    }
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
