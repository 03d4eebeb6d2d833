//! jawasd's log through the real binary: one timestamp format in jawasd's
//! lines, engine stderr (captured by default) and a service's own
//! `log_file`, which also takes that service's engine lines; a
//! logrotate-style rename plus SIGUSR1 loses no line; `--log-format json`
//! lines parse; a stalled stderr reader does not stop the accept loop and
//! the dropped lines are counted; under systemd (JOURNAL_STREAM) records
//! reach a stand-in journal socket as fields; `--syslog` without /dev/log
//! is a start-up error.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::{bin, exchange, ready_addrs, Jawasd, TempDir};
use serde_json::Value;

const SECS: Duration = Duration::from_secs(10);

/// `2026-11-25T02:23:01.123Z`: RFC 3339, milliseconds, UTC.
fn is_rfc3339_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn one_timestamp_format_for_jawasd_engines_and_service_files() {
    let dir = TempDir::new();
    let engine = jawas_tests::script(dir.path(), "talk.sh", "echo said-on-stderr >&2; cat");
    let config = format!(
        "[services.talk]\nlisten = \"127.0.0.1:0\"\nengine = \"{0}\"\n\
         [services.filed]\nlisten = \"127.0.0.1:0\"\nengine = \"{0}\"\n\
         log_file = \"{{dir}}/filed.log\"\n",
        engine.display()
    );
    let d = Jawasd::builder(&config).dir(dir).start();
    assert_eq!(exchange(d.addr("talk"), b"a\n"), b"a\n");
    assert_eq!(exchange(d.addr("filed"), b"b\n"), b"b\n");
    assert!(d.wait_log("said-on-stderr", SECS), "{}", d.log());
    assert!(d.wait_log("done svc=talk", SECS), "{}", d.log());
    let log = d.log();
    for line in log.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(is_rfc3339_ms(time), "{line}");
        assert!(rest.starts_with("jawasd "), "{line}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains(" info engine svc=talk pid=") && l.ends_with(": said-on-stderr")),
        "{log}"
    );
    let path = d.dir().join("filed.log");
    let deadline = Instant::now() + SECS;
    let filed = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("done svc=filed") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(filed.contains("done svc=filed"), "{filed}");
    // The engine's own line goes to its service's file, not jawasd's log.
    assert!(
        filed
            .lines()
            .any(|l| l.contains(" engine svc=filed pid=") && l.ends_with(": said-on-stderr")),
        "{filed}"
    );
    assert!(!d.log().contains("svc=filed"), "{}", d.log());
    for line in filed.lines() {
        assert!(is_rfc3339_ms(line.split(' ').next().unwrap()), "{line}");
    }
}

/// jawasd started by hand with its stderr piped: (child, stderr, the
/// address of each service).
fn spawn(
    dir: &Path,
    config: &str,
    args: &[&str],
) -> (Child, ChildStderr, HashMap<String, SocketAddr>) {
    let path = dir.join("jawasd.toml");
    std::fs::write(
        &path,
        config.replace("{bin}", &jawas_tests::bin_dir().display().to_string()),
    )
    .unwrap();
    let mut child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let addrs = ready_addrs(&mut stderr);
    assert!(addrs.contains_key("echo"), "no ready line");
    (child, stderr, addrs)
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        // SAFETY: kill has no memory effects; the pid is our child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

const ECHO: &str =
    "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-builtin\"\nargs = [\"echo\"]\n";

#[test]
fn rename_and_sigusr1_lose_no_line() {
    let dir = TempDir::new();
    let d = dir.path();
    // jawasd's --log-file, and a service's own log_file.
    let files = [
        ("echo", d.join("jawasd.log"), d.join("jawasd.log.1")),
        ("filed", d.join("filed.log"), d.join("filed.log.1")),
    ];
    // The ready line is looked for on stderr: --log-file sends it to the
    // file, so wait for the ports instead.
    let ports = [jawas_tests::free_port(), jawas_tests::free_port()];
    let config = format!(
        "[services.echo]\nlisten = \"127.0.0.1:{}\"\nengine = \"{{bin}}/jawas-builtin\"\nargs = [\"echo\"]\n\
         [services.filed]\nlisten = \"127.0.0.1:{}\"\nengine = \"{{bin}}/jawas-builtin\"\nargs = [\"echo\"]\n\
         log_file = \"{}\"\n",
        ports[0],
        ports[1],
        files[1].1.display()
    );
    let bins = jawas_tests::bin_dir().display().to_string();
    std::fs::write(d.join("jawasd.toml"), config.replace("{bin}", &bins)).unwrap();
    let child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(d.join("jawasd.toml"))
        .arg("--log-file")
        .arg(&files[0].1)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let _stop = Stop(child);
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    for a in &addrs {
        assert!(jawas_tests::wait_for_port(*a, SECS));
    }
    let count = |p: &Path, svc: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .matches(&format!("done svc={svc} "))
            .count()
    };
    // Waits until each service's done lines, over both its files, number n.
    let wait_total = |n: usize| {
        let deadline = Instant::now() + SECS;
        files
            .iter()
            .map(|(svc, now, old)| {
                while count(now, svc) + count(old, svc) < n && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                count(now, svc) + count(old, svc)
            })
            .collect::<Vec<usize>>()
    };
    let traffic = |n: usize| {
        for _ in 0..n {
            for a in &addrs {
                assert_eq!(exchange(*a, b"x"), b"x");
            }
        }
    };
    // wait_for_port's probes were connections too.
    assert_eq!(wait_total(1), [1, 1]);
    traffic(20);
    assert_eq!(wait_total(21), [21, 21]);
    for (_, now, old) in &files {
        std::fs::rename(now, old).unwrap();
    }
    // Lines logged between the rename and the signal go to the old files.
    traffic(5);
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let deadline = Instant::now() + SECS;
    while !files.iter().all(|(_, now, _)| now.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    traffic(20);
    assert_eq!(wait_total(46), [46, 46], "a line was lost or doubled");
    for (svc, now, _) in &files {
        assert!(
            count(now, svc) >= 20,
            "{} has the later lines",
            now.display()
        );
    }
    // SIGUSR1's counters follow the reopen, in the new file.
    let new = std::fs::read_to_string(&files[0].1).unwrap();
    assert!(new.contains("stats svc=echo"), "{new}");
    assert!(!std::fs::read_to_string(&files[0].2)
        .unwrap()
        .contains("stats svc="));
}

#[test]
fn json_lines_parse() {
    let dir = TempDir::new();
    let path = dir.path().join("jawasd.toml");
    let bins = jawas_tests::bin_dir().display().to_string();
    std::fs::write(&path, ECHO.replace("{bin}", &bins)).unwrap();
    let mut child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .args(["--log-format", "json"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stop = Stop(child);
    let mut lines = BufReader::new(stderr).lines();
    let ready = loop {
        let line = lines.next().expect("a ready line").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(rest) = v["msg"].as_str().unwrap().strip_prefix("ready ") {
            break rest.to_string();
        }
    };
    let addr: SocketAddr = ready
        .split_once("echo=")
        .expect("echo's address")
        .1
        .parse()
        .unwrap();
    assert_eq!(exchange(addr, b"x"), b"x");
    let done = loop {
        let line = lines.next().expect("a done line").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(is_rfc3339_ms(v["time"].as_str().unwrap()), "{line}");
        assert!(["info", "warn", "error", "debug"].contains(&v["level"].as_str().unwrap()));
        if v["msg"].as_str().unwrap().starts_with("done svc=echo") {
            break v;
        }
    };
    assert_eq!(done["level"], "info");
    drop(stop);
}

#[test]
fn a_stalled_stderr_reader_does_not_stop_accepting() {
    let dir = TempDir::new();
    let noisy = jawas_tests::script(dir.path(), "noisy.sh", "seq 1 30000 >&2");
    let config = format!(
        "{ECHO}[services.noisy]\nlisten = \"127.0.0.1:0\"\nengine = \"{}\"\nstderr = \"capture\"\n",
        noisy.display()
    );
    let (child, mut stderr, addrs) = spawn(dir.path(), &config, &[]);
    let _stop = Stop(child);
    let (echo, noisy) = (addrs["echo"], addrs["noisy"]);
    // jawasd's stderr is not read from here on, and the noisy engine fills
    // the pipe many times over (30000 lines of about 60 bytes each).
    noisy_then_echo_in_time(noisy, echo);
    // The reader comes back: the count of what was lost follows.
    let deadline = Instant::now() + SECS;
    let mut text = String::new();
    let mut buf = vec![0u8; 1 << 16];
    while !text.contains("lines dropped while the log's reader was not reading") {
        assert!(Instant::now() < deadline, "no drop count");
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "jawasd ended");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        // Keep only the tail: the count is near the end.
        if text.len() > 1 << 20 {
            text.drain(..text.len() - 4096);
        }
    }
    let line = text
        .lines()
        .find(|l| l.contains("lines dropped"))
        .unwrap()
        .to_string();
    assert!(line.contains(" jawasd warn log: "), "{line}");
}

#[test]
fn a_fifo_as_log_file_with_a_stalled_reader_does_not_stop_accepting() {
    let dir = TempDir::new();
    let fifo = dir.path().join("log.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A reader that opens the FIFO and never reads (as a container's
    // stdout when its collector stalls).
    let reader = Command::new("python3")
        .arg("-c")
        .arg("import os, sys, time; os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK); time.sleep(60)")
        .arg(&fifo)
        .spawn()
        .unwrap();
    let _reader = Stop(reader);
    std::thread::sleep(Duration::from_millis(300));
    let noisy = jawas_tests::script(dir.path(), "noisy.sh", "seq 1 30000 >&2");
    let config = format!(
        "{ECHO}[services.noisy]\nlisten = \"127.0.0.1:0\"\nengine = \"{}\"\n",
        noisy.display()
    );
    // The ready line goes to the FIFO too, so the addresses come from
    // the control socket-free way: a config with fixed ports.
    let (echo_port, noisy_port) = (jawas_tests::free_port(), jawas_tests::free_port());
    let config = config
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{echo_port}"), 1)
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{noisy_port}"), 1);
    let path = dir.path().join("jawasd.toml");
    std::fs::write(
        &path,
        config.replace("{bin}", &jawas_tests::bin_dir().display().to_string()),
    )
    .unwrap();
    let child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .arg("--log-file")
        .arg(&fifo)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _stop = Stop(child);
    let echo: SocketAddr = format!("127.0.0.1:{echo_port}").parse().unwrap();
    let noisy: SocketAddr = format!("127.0.0.1:{noisy_port}").parse().unwrap();
    assert!(jawas_tests::wait_for_port(echo, SECS));
    noisy_then_echo_in_time(noisy, echo);
}

#[test]
fn a_long_stderr_line_is_logged_whole_in_pieces() {
    let dir = TempDir::new();
    let long = jawas_tests::script(
        dir.path(),
        "long.sh",
        "python3 -c 'import sys; sys.stderr.write(\"x\" * 100000)'",
    );
    let config = format!(
        "{ECHO}[services.long]\nlisten = \"127.0.0.1:0\"\nengine = \"{}\"\n",
        long.display()
    );
    let (child, stderr, addrs) = spawn(dir.path(), &config, &[]);
    let _stop = Stop(child);
    let _ = exchange(addrs["long"], b"");
    let mut total = 0;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some((_, text)) = line.split_once(": ") {
            if line.contains("engine svc=long") {
                total += text.len();
            }
        }
        if total >= 100_000 || line.contains("done svc=long") {
            break;
        }
    }
    assert_eq!(total, 100_000, "bytes of the line that reached the log");
}

#[test]
fn syslog_without_dev_log_is_a_start_up_error() {
    if Path::new("/dev/log").exists() {
        eprintln!("skipped: this machine has /dev/log");
        return;
    }
    let dir = TempDir::new();
    let path = dir.path().join("jawasd.toml");
    std::fs::write(
        &path,
        ECHO.replace("{bin}", &jawas_tests::bin_dir().display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .args(["--syslog", "daemon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--syslog: /dev/log is not reachable"), "{err}");
}

#[test]
fn under_systemd_records_go_to_the_journal_as_fields() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new();
    let journal_path = dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    journal.set_read_timeout(Some(SECS)).unwrap();
    // jawasd's stderr is a pipe; JOURNAL_STREAM names it, as systemd names
    // the stream socket it connects a service's stderr to.
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let meta = std::fs::File::from(r.try_clone().unwrap())
        .metadata()
        .unwrap();
    let config = format!(
        "{ECHO}[services.closed]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-builtin\"\n\
         args = [\"echo\"]\nonly_from = [\"10.9.9.9\"]\n"
    );
    let path = dir.path().join("jawasd.toml");
    let bins = jawas_tests::bin_dir().display().to_string();
    std::fs::write(&path, config.replace("{bin}", &bins)).unwrap();
    let child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("JAWASD_JOURNAL_SOCKET", &journal_path)
        .stdin(Stdio::null())
        .stderr(Stdio::from(w))
        .spawn()
        .unwrap();
    let _stop = Stop(child);
    let mut buf = vec![0u8; 65536];
    let mut next = || {
        let n = journal.recv(&mut buf).expect("a journal record");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let ready = loop {
        let record = next();
        if record.contains("\nMESSAGE=ready pid=") {
            break record;
        }
    };
    assert!(
        ready.starts_with("PRIORITY=6\nSYSLOG_IDENTIFIER=jawasd\nSYSLOG_PID="),
        "{ready}"
    );
    let addr = |svc: &str| -> SocketAddr {
        let at = ready.find(&format!(" {svc}=")).unwrap() + svc.len() + 2;
        ready[at..]
            .split([' ', '\n'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let _ = exchange(addr("closed"), b"x");
    let refused = loop {
        let record = next();
        if record.contains("MESSAGE=refuse svc=closed") {
            break record;
        }
    };
    assert!(
        refused.starts_with("PRIORITY=4\n"),
        "a refusal is a warning: {refused}"
    );
    // journald restarts: its socket is replaced; records reach the new one.
    drop(journal);
    std::fs::remove_file(&journal_path).unwrap();
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    journal.set_read_timeout(Some(SECS)).unwrap();
    let _ = exchange(addr("closed"), b"x");
    let again = loop {
        let n = journal.recv(&mut buf).expect("a record at the new journal");
        let record = String::from_utf8(buf[..n].to_vec()).unwrap();
        if record.contains("MESSAGE=refuse svc=closed") {
            break record;
        }
    };
    assert!(again.starts_with("PRIORITY=4\n"), "{again}");
    // Nothing went to stderr: the journal has it all.
    let mut stderr = std::fs::File::from(r);
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&stderr),
            libc::F_SETFL,
            libc::O_NONBLOCK,
        )
    };
    let mut byte = [0u8; 1];
    let got = stderr.read(&mut byte);
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "stderr got {got:?}"
    );
}

#[test]
fn syslog_datagrams_carry_facilities_and_a_stalled_daemon_costs_no_time() {
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new();
    let dev_log = dir.path().join("log.sock");
    let daemon = UnixDatagram::bind(&dev_log).unwrap();
    daemon.set_read_timeout(Some(SECS)).unwrap();
    let config = format!(
        "{ECHO}[services.closed]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-builtin\"\n\
         args = [\"echo\"]\nonly_from = [\"10.9.9.9\"]\nlog_syslog = \"local5.notice\"\n"
    );
    let path = dir.path().join("jawasd.toml");
    let bins = jawas_tests::bin_dir().display().to_string();
    std::fs::write(&path, config.replace("{bin}", &bins)).unwrap();
    let child = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .args(["--syslog", "local3"])
        .env("JAWASD_SYSLOG_SOCKET", &dev_log)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _stop = Stop(child);
    let mut buf = vec![0u8; 65536];
    let mut next = || {
        let n = daemon.recv(&mut buf).expect("a syslog datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let ready = loop {
        let d = next();
        if d.contains(": info ready pid=") {
            break d;
        }
    };
    // local3 (19 << 3) | info (6) = 158, then an RFC 3164 timestamp.
    assert!(ready.starts_with("<158>"), "{ready}");
    assert!(
        ready.contains(&format!(" jawasd[{pid}]: info ready")),
        "{ready}"
    );
    let addr = |svc: &str| -> SocketAddr {
        let at = ready.find(&format!(" {svc}=")).unwrap() + svc.len() + 2;
        ready[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let (echo, closed) = (addr("echo"), addr("closed"));
    let _ = exchange(closed, b"x");
    let refused = loop {
        let d = next();
        if d.contains("refuse svc=closed") {
            break d;
        }
    };
    // The service's own facility and level: local5 (21 << 3) | notice (5).
    assert!(refused.starts_with("<173>"), "{refused}");

    // The daemon stops reading: its queue fills after a few datagrams, and
    // connections are still served at once.
    for i in 0..40 {
        let t = Instant::now();
        assert_eq!(exchange(echo, b"x"), b"x", "connection {i}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "connection {i}: {:?}",
            t.elapsed()
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    // It reads again: the next line brings the count of those it missed.
    daemon.set_nonblocking(true).unwrap();
    while daemon.recv(&mut buf).is_ok() {}
    daemon.set_nonblocking(false).unwrap();
    let _ = exchange(echo, b"x");
    let note = loop {
        let n = daemon.recv(&mut buf).expect("the count of dropped lines");
        let d = String::from_utf8(buf[..n].to_vec()).unwrap();
        if d.contains("lines dropped") {
            break d;
        }
    };
    assert!(note.starts_with("<156>"), "local3 | warning: {note}");
    assert!(
        note.contains("lines dropped while syslog was not taking them"),
        "{note}"
    );
}

/// Runs the noisy engine three times (its stderr fills jawasd's log pipe
/// many times over, with nobody reading it), then checks that 20 echo
/// connections are each served within 2 s all the same.
fn noisy_then_echo_in_time(noisy: SocketAddr, echo: SocketAddr) {
    for _ in 0..3 {
        let _ = exchange(noisy, b"");
    }
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..20 {
        let t = Instant::now();
        assert_eq!(exchange(echo, b"x"), b"x", "connection {i}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "connection {i} took {:?} with the log reader stalled",
            t.elapsed()
        );
    }
}
