//! The Debian package (packaging/deb.sh): built from the binaries of this
//! build, clean under lintian, and (as root) installed with dpkg, started
//! with its own configuration, answering, then purged without a trace.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jawas_tests::{bin_dir, exchange, ready_addrs, TempDir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_deb_is_lintian_clean_installs_serves_and_purges() {
    let out = TempDir::new();
    let (ok, text) = run(Command::new(repo().join("packaging/deb.sh"))
        .args(["--no-build", "--bin-dir"])
        .arg(bin_dir())
        .arg("--out")
        .arg(out.path()));
    assert!(ok, "deb.sh failed:\n{text}");
    let deb = text
        .lines()
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no .deb named in:\n{text}"));
    assert!(deb.is_file(), "{}", deb.display());
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(findings.is_empty(), "lintian: {findings:#?}");
    let (ok, lint) = run(Command::new("lintian").arg(&deb));
    assert!(
        ok || lint.contains("not recommended"),
        "lintian (apt-get install lintian): {lint}"
    );
    assert!(
        !lint
            .lines()
            .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "{lint}"
    );

    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: the package was built and checked, not installed");
        return;
    }
    let (ok, text) = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(ok, "dpkg -i: {text}");
    let installed = |p: &str| Path::new(p).exists();
    for p in [
        "/usr/bin/jawasd",
        "/usr/bin/jawas-blog",
        "/etc/jawas/jawasd.toml",
        "/lib/systemd/system/jawasd.service",
        "/usr/share/man/man8/jawasd.8.gz",
        "/usr/share/doc/jawas/copyright",
    ] {
        assert!(installed(p), "{p} missing after dpkg -i");
    }
    // Started as the unit would (no systemd here), on its own config with
    // the port made free.
    let conf = std::fs::read_to_string("/etc/jawas/jawasd.toml").unwrap();
    let tmp = TempDir::new();
    let copy = tmp.path().join("jawasd.toml");
    std::fs::write(&copy, conf.replace("127.0.0.1:7007", "127.0.0.1:0")).unwrap();
    let mut child = Command::new("/usr/bin/jawasd")
        .arg("--config")
        .arg(&copy)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let addrs = ready_addrs(&mut stderr);
    let addr: Option<SocketAddr> = addrs.get("echo").copied();
    let echo = addr.map(|a| exchange(a, b"packaged\n"));
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let (ok, text) = run(Command::new("dpkg").args(["--purge", "jawas"]));
    assert!(ok, "dpkg --purge: {text}");
    assert_eq!(
        echo.as_deref(),
        Some(&b"packaged\n"[..]),
        "ready line: {addrs:?}"
    );
    for p in [
        "/usr/bin/jawasd",
        "/etc/jawas",
        "/lib/systemd/system/jawasd.service",
        "/usr/share/doc/jawas",
    ] {
        assert!(!installed(p), "{p} left after purge");
    }
}
