//! jawasd under systemd's protocols, without systemd itself: readiness
//! notifications (sd_notify) received on a test NOTIFY_SOCKET in order
//! (READY, WATCHDOG pings, RELOADING with MONOTONIC_USEC then READY around
//! a reload, STOPPING), and socket activation through
//! `systemd-socket-activate` (Debian's systemd package), TCP and UDP,
//! kept across a reload.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jawas_tests::{bin, exchange, free_port, Jawasd, TempDir};

const SECS: Duration = Duration::from_secs(10);

/// Every message on `sock` until `until` is seen (or 10 s pass).
fn collect(sock: &UnixDatagram, until: &str, got: &mut Vec<String>) {
    let deadline = Instant::now() + SECS;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m.contains(until);
            got.push(m);
            if done {
                return;
            }
        }
    }
    panic!("no {until:?} in {got:?}");
}

#[test]
fn readiness_reload_watchdog_and_stop_are_notified_in_order() {
    let dir = TempDir::new();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let config = "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/sh\"\n\
                  args = [\"-c\", \"env\"]\npass_env = [\"*\"]\n";
    let mut d = Jawasd::builder(config)
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "200000")
        .start();
    let mut got = Vec::new();
    collect(&sock, "READY=1", &mut got);
    assert!(got[0].contains(&format!("MAINPID={}", d.pid())), "{got:?}");
    // Pings at half the watchdog interval.
    let before = got.len();
    collect(&sock, "WATCHDOG=1", &mut got);
    collect(&sock, "WATCHDOG=1", &mut got);
    assert!(got[before..].iter().filter(|m| *m == "WATCHDOG=1").count() >= 2);
    // The engines never see systemd's variables, even with pass_env "*".
    let env = String::from_utf8(exchange(d.addr("echo"), b"")).unwrap();
    assert!(env.contains("JAWAS_SERVICE=echo"), "{env}");
    for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"] {
        assert!(!env.contains(k), "{k} leaked: {env}");
    }
    // A reload: RELOADING=1 with the time, then READY=1.
    let mark = got.len();
    assert!(d.reload(config));
    collect(&sock, "READY=1", &mut got);
    let states: Vec<&String> = got[mark..].iter().filter(|m| *m != "WATCHDOG=1").collect();
    assert!(states.len() >= 2, "{states:?}");
    assert!(
        states[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{states:?}"
    );
    let usec: u64 = states[0].rsplit('=').next().unwrap().parse().unwrap();
    assert!(usec > 0);
    assert!(states[1].starts_with("READY=1"), "{states:?}");
    // A failed reload still ends with READY=1 (the old config serves).
    let mark = got.len();
    assert!(!d.reload("[services.echo]\nlisten = nonsense\n"));
    collect(&sock, "READY=1", &mut got);
    assert!(got[mark..].iter().any(|m| m.starts_with("RELOADING=1")));
    // Stop.
    d.signal(libc::SIGTERM);
    collect(&sock, "STOPPING=1", &mut got);
    assert_eq!(d.wait_exit(SECS), Some(0));
}

/// jawasd started by systemd-socket-activate, which binds `listen` and
/// passes the sockets.
struct Activated {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Activated {
    fn start(listen: &[&str], config: &std::path::Path) -> Activated {
        let mut cmd = Command::new("systemd-socket-activate");
        for l in listen {
            if let Some(udp) = l.strip_prefix("udp:") {
                cmd.args(["-d", "-l", udp]);
            } else {
                cmd.args(["-l", l]);
            }
        }
        let mut child = cmd
            .arg(bin("jawasd"))
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate runs (apt-get install systemd)");
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Activated { child, log }
    }

    fn wait_log(&self, needle: &str, count: usize) -> bool {
        let deadline = Instant::now() + SECS;
        while Instant::now() < deadline {
            if self.log.lock().unwrap().matches(needle).count() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[test]
fn socket_activation_uses_systemds_tcp_socket_and_keeps_it_across_a_reload() {
    let dir = TempDir::new();
    let tcp = free_port();
    let config = dir.path().join("jawasd.toml");
    let text = format!(
        "[services.echo]\nlisten = \"127.0.0.1:{tcp}\"\nengine = \"jawas-builtin\"\nargs = [\"echo\"]\n"
    );
    std::fs::write(&config, &text).unwrap();
    let j = Activated::start(&[&format!("127.0.0.1:{tcp}")], &config);
    let addr = format!("127.0.0.1:{tcp}").parse().unwrap();
    // systemd-socket-activate starts jawasd at the first connection.
    assert!(
        jawas_tests::wait_for_port(addr, SECS),
        "systemd-socket-activate did not listen"
    );
    assert_eq!(
        exchange(addr, b"activated\n"),
        b"activated\n",
        "{}",
        j.log()
    );
    assert!(j.wait_log(" ready ", 1), "{}", j.log());
    assert!(
        j.log()
            .contains(&format!("socket activation: listen=127.0.0.1:{tcp}")),
        "{}",
        j.log()
    );
    // A reload keeps systemd's socket (nothing is bound again).
    std::fs::write(&config, format!("{text}nodelay = true\n")).unwrap();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(j.child.id() as i32, libc::SIGHUP) };
    assert!(j.wait_log(" ready ", 2), "{}", j.log());
    assert!(!j.log().contains("unable to bind"), "{}", j.log());
    assert_eq!(exchange(addr, b"still\n"), b"still\n");
}

#[test]
fn socket_activation_of_a_udp_service() {
    let dir = TempDir::new();
    let udp = free_port();
    let config = dir.path().join("jawasd.toml");
    std::fs::write(
        &config,
        format!(
            "[services.uecho]\nlisten = \"127.0.0.1:{udp}\"\nprotocol = \"udp\"\n\
             engine = \"jawas-builtin\"\nargs = [\"echo\"]\n"
        ),
    )
    .unwrap();
    let j = Activated::start(&[&format!("udp:127.0.0.1:{udp}")], &config);
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    // The first datagram may come before systemd-socket-activate listens.
    let deadline = Instant::now() + SECS;
    let n = loop {
        u.send_to(b"datagram", format!("127.0.0.1:{udp}")).unwrap();
        if let Ok(n) = u.recv(&mut buf) {
            break n;
        }
        assert!(Instant::now() < deadline, "no UDP echo: {}", j.log());
    };
    assert_eq!(&buf[..n], b"datagram");
    assert!(
        j.log()
            .contains(&format!("socket activation: listen=127.0.0.1:{udp}")),
        "{}",
        j.log()
    );
}

#[test]
fn the_unit_files_verify_clean() {
    let dir = TempDir::new();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/systemd");
    let mut paths = Vec::new();
    for name in ["jawasd.service", "jawasd.socket"] {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        // verify insists that ExecStart's program exists.
        let text = text.replace("/usr/local/bin/jawasd", bin("jawasd").to_str().unwrap());
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("systemd-analyze runs (apt-get install systemd)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let about_ours: Vec<&str> = text.lines().filter(|l| l.contains("jawasd.")).collect();
    assert!(out.status.success() && about_ours.is_empty(), "{text}");
}

/// `[server] drain`: SIGTERM stops accepting at once, an interactive
/// session that ends within the drain is not interrupted, one that does
/// not is sent SIGTERM when the drain is over; a second SIGTERM skips the
/// rest of the drain.
#[test]
fn sigterm_drains_before_stopping_engines() {
    use std::io::{Read, Write};
    let config = "[server]\ndrain = \"3s\"\nshutdown_grace = \"1s\"\n\
                  [services.probe]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-test-probe\"\n";
    let mut d = Jawasd::start(config);
    let addr = d.addr("probe");
    let mut session = jawas_tests::connect(addr);
    session.write_all(b"hold\n").unwrap();
    let mut held = [0u8; 5];
    session.read_exact(&mut held).unwrap();
    let started = Instant::now();
    d.signal(libc::SIGTERM);
    assert!(d.wait_log("drain=3.0s", SECS), "{}", d.log());
    // No new connections...
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
    // ... but the running session finishes its work undisturbed.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!d.log().contains("done svc=probe"), "{}", d.log());
    drop(session);
    assert_eq!(d.wait_exit(SECS), Some(0), "{}", d.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "jawasd waited out the drain: {:?}",
        started.elapsed()
    );
    assert!(
        d.log().contains("done svc=probe") && d.log().contains("exit=0"),
        "{}",
        d.log()
    );

    // A session that outlives the drain is stopped; a second SIGTERM
    // cuts the drain short.
    let mut d = Jawasd::start(config);
    let mut session = jawas_tests::connect(d.addr("probe"));
    session.write_all(b"hold\n").unwrap();
    session.read_exact(&mut held).unwrap();
    let started = Instant::now();
    d.signal(libc::SIGTERM);
    assert!(d.wait_log("drain=3.0s", SECS), "{}", d.log());
    d.signal(libc::SIGTERM);
    assert!(
        d.wait_log("second stop signal; stopping engines=1", SECS),
        "{}",
        d.log()
    );
    assert_eq!(d.wait_exit(SECS), Some(0), "{}", d.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// SIGUSR2: the new jawasd takes the sockets while a client loops
/// (nothing refused), the old one finishes its engine and exits; a new
/// jawasd that cannot start leaves the old one serving.
#[test]
fn sigusr2_upgrades_without_refusing_a_connection() {
    use std::io::{Read, Write};
    let port = free_port();
    let config = format!(
        "[services.probe]\nlisten = \"127.0.0.1:{port}\"\nengine = \"{{bin}}/jawas-test-probe\"\n"
    );
    let mut d = Jawasd::start(&config);
    let addr = d.addr("probe");
    let old = d.pid();
    // A session of the old jawasd, still running through the upgrade.
    let mut session = jawas_tests::connect(addr);
    session.write_all(b"hold\n").unwrap();
    let mut held = [0u8; 5];
    session.read_exact(&mut held).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let client = std::thread::spawn(move || {
        let (mut parents, mut failed) = (Vec::new(), 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let reply = String::from_utf8(exchange(addr, b"info\n")).unwrap();
            match reply
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ppid="))
            {
                Some(p) => parents.push(p.to_string()),
                None => failed += 1,
            }
        }
        (parents, failed)
    });
    std::thread::sleep(Duration::from_millis(200));
    d.signal(libc::SIGUSR2);
    assert!(d.wait_log("upgrade: pid=", SECS), "{}", d.log());
    let new: i32 = {
        let log = d.log();
        let line = log
            .lines()
            .find(|l| l.contains("upgrade: started"))
            .unwrap();
        let pid = line.split("pid=").nth(1).unwrap();
        pid.split_whitespace().next().unwrap().parse().unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (parents, failed) = client.join().unwrap();
    // The old jawasd still runs its engine.
    assert_eq!(d.wait_exit(Duration::from_millis(200)), None, "{}", d.log());
    drop(session);
    assert_eq!(
        d.wait_exit(SECS),
        Some(0),
        "the old jawasd exits: {}",
        d.log()
    );
    let kill_new = || {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(new, libc::SIGTERM) };
    };
    if failed != 0 || !parents.contains(&new.to_string()) {
        kill_new();
        panic!(
            "{failed} failed; parents {:?} (old {old}, new {new})",
            parents.iter().collect::<std::collections::BTreeSet<_>>()
        );
    }
    assert!(
        parents.contains(&old.to_string()),
        "served by the old one first"
    );
    // After the old one is gone, the new one serves alone.
    let reply = String::from_utf8(exchange(addr, b"info\n")).unwrap();
    kill_new();
    assert!(reply.contains(&format!("ppid={new} ")), "{reply}");
}

#[test]
fn a_successor_that_cannot_start_leaves_the_old_jawasd_serving() {
    let port = free_port();
    let config = format!(
        "[services.probe]\nlisten = \"127.0.0.1:{port}\"\nengine = \"{{bin}}/jawas-test-probe\"\n"
    );
    let d = Jawasd::start(&config);
    // The new process reads the file again: make it refuse.
    std::fs::write(
        d.dir().join("jawasd.toml"),
        "[services.probe]\nlisten = nonsense\n",
    )
    .unwrap();
    d.signal(libc::SIGUSR2);
    assert!(
        d.wait_log("upgrade failed: the new jawasd pid=", SECS),
        "{}",
        d.log()
    );
    assert!(d.log().contains("still serving"));
    let reply = String::from_utf8(exchange(d.addr("probe"), b"info\n")).unwrap();
    assert!(reply.contains(&format!("ppid={} ", d.pid())), "{reply}");
}

/// CapEff of a process, from /proc.
fn cap_eff(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// As root, jawasd keeps only the capabilities its configuration needs;
/// a reload needing one it dropped is refused by name.
#[test]
fn root_jawasd_keeps_only_the_capabilities_it_needs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: nothing to drop");
        return;
    }
    let (setuid, setgid, kill, bind, chroot) =
        (1u64 << 7, 1u64 << 6, 1u64 << 5, 1u64 << 10, 1u64 << 18);
    let plain = "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-builtin\"\nargs = [\"echo\"]\n";
    let mut d = Jawasd::start(plain);
    // The drop follows the ready line.
    assert!(d.wait_log("capabilities kept", SECS), "{}", d.log());
    let eff = cap_eff(d.pid());
    assert_eq!(
        eff & (setuid | setgid | kill | bind | chroot),
        0,
        "{eff:x}\n{}",
        d.log()
    );
    assert!(eff & (1 << 21) == 0, "CAP_SYS_ADMIN dropped: {eff:x}");
    assert!(
        d.log()
            .contains("capabilities kept: CAP_DAC_OVERRIDE,CAP_DAC_READ_SEARCH"),
        "{}",
        d.log()
    );
    assert_eq!(exchange(d.addr("echo"), b"still\n"), b"still\n");
    // A reload that would switch users needs CAP_SETUID: refused by name.
    let users = format!("{plain}user = \"nobody\"\n");
    assert!(!d.reload(&users));
    assert!(
        d.log().contains("needs CAP_KILL, CAP_SETGID, CAP_SETUID"),
        "{}",
        d.log()
    );
    drop(d);
    // With a user switch, those are kept (and nothing like SYS_ADMIN).
    let d = Jawasd::start(&users);
    assert!(d.wait_log("capabilities kept", SECS), "{}", d.log());
    let eff = cap_eff(d.pid());
    assert_eq!(
        eff & (setuid | setgid | kill),
        setuid | setgid | kill,
        "{eff:x}"
    );
    assert_eq!(eff & (bind | chroot | (1 << 21) | (1 << 12)), 0, "{eff:x}");
    assert_eq!(exchange(d.addr("echo"), b"as nobody\n"), b"as nobody\n");
}

/// A low port without the right to bind it: the error names the fixes.
#[test]
fn a_low_port_refused_to_a_plain_user_names_the_fix() {
    let dir = TempDir::new();
    let conf = dir.path().join("low.toml");
    std::fs::write(
        &conf,
        "[services.e]\nlisten = \"127.0.0.1:99\"\nengine = \"/bin/cat\"\n",
    )
    .unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("jawasd"));
        c
    } else {
        Command::new(bin("jawasd"))
    };
    let out = cmd
        .arg("--config")
        .arg(&conf)
        .output()
        .expect("setpriv runs (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(111), "{err}");
    assert!(
        err.contains("unable to bind 127.0.0.1:99: permission denied (ports below 1024 need root, or CAP_NET_BIND_SERVICE")
            && err.contains("systemd socket unit"),
        "{err}"
    );
}
