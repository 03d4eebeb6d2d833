//! install.sh on a clean prefix: every binary, manual page (checked by
//! groff), completion script (bash -n), unit and example lands where the
//! script says; the demo configuration then runs from there with the
//! installed binaries; a second install keeps the configuration the user
//! edited.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jawas_tests::{bin_dir, exchange, ready_addrs, TempDir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn install(prefix: &Path) -> String {
    let out = Command::new(repo().join("install.sh"))
        .args(["--no-build", "--bin-dir"])
        .arg(bin_dir())
        .arg("--prefix")
        .arg(prefix)
        .output()
        .expect("sh runs install.sh");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh failed:\n{text}");
    text
}

/// Every `:PORT"` of the demo (four-digit ports) becomes `:0"`.
fn free_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(':') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let digits: String = tail[1..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if digits.len() == 4 && tail[1 + 4..].starts_with('"') {
            out.push_str(":0");
            rest = &tail[5..];
        } else {
            out.push(':');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn install_sh_puts_everything_under_the_prefix_and_the_demo_runs_from_there() {
    let tmp = TempDir::new();
    let prefix = tmp.path().join("prefix");
    let report = install(&prefix);
    let engines = [
        "jawas-builtin",
        "jawas-static",
        "jawas-cgi",
        "jawas-ws",
        "jawas-blog",
        "jawas-proxy",
    ];
    for b in engines.iter().chain(&["jawasd"]) {
        assert!(prefix.join("bin").join(b).is_file(), "bin/{b}\n{report}");
    }
    let mut pages = vec![
        prefix.join("share/man/man8/jawasd.8"),
        prefix.join("share/man/man5/jawasd.toml.5"),
    ];
    pages.extend(
        engines
            .iter()
            .map(|e| prefix.join(format!("share/man/man1/{e}.1"))),
    );
    for page in &pages {
        let text =
            std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(".TH "), "{}", page.display());
        let check = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(page)
            .output()
            .expect("groff runs (apt-get install groff-base)");
        let warnings = String::from_utf8_lossy(&check.stderr);
        assert!(
            check.status.success() && warnings.trim().is_empty(),
            "{}: {warnings}",
            page.display()
        );
    }
    let bash = prefix.join("share/bash-completion/completions/jawasd");
    let syntax = Command::new("bash").arg("-n").arg(&bash).status().unwrap();
    assert!(syntax.success(), "bash completion syntax");
    for f in [
        "share/zsh/site-functions/_jawasd",
        "share/fish/vendor_completions.d/jawasd.fish",
        "share/doc/jawas/README.md",
        "share/doc/jawas/docs/config.md",
        "share/jawas/examples/etc/jawasd.toml",
        "share/jawas/examples/engines/examples/hello.sh",
        "lib/systemd/system/jawasd.socket",
    ] {
        assert!(prefix.join(f).is_file(), "{f}\n{report}");
    }
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/system/jawasd.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/bin/jawasd --config {}/etc/jawas/jawasd.toml",
            prefix.display(),
            prefix.display()
        )),
        "{unit}"
    );
    // The installed configuration is valid as installed.
    let conf = prefix.join("etc/jawas/jawasd.toml");
    let check = Command::new(prefix.join("bin/jawasd"))
        .arg("--config")
        .arg(&conf)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The demo, with the installed binaries, from the installed examples
    // (on free ports, from a copy beside the original so relative paths
    // resolve the same).
    let demo_dir = prefix.join("share/jawas/examples/etc");
    let demo = std::fs::read_to_string(demo_dir.join("jawasd.toml")).unwrap();
    let copy = demo_dir.join("test-copy.toml");
    std::fs::write(&copy, free_ports(&demo)).unwrap();
    let mut child = Command::new(prefix.join("bin/jawasd"))
        .arg("--config")
        .arg(&copy)
        .env("PATH", "/usr/bin:/bin")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let addrs = ready_addrs(&mut stderr);
    let addr = |svc: &str| -> SocketAddr {
        *addrs
            .get(svc)
            .unwrap_or_else(|| panic!("no {svc} in the ready line: {addrs:?}"))
    };
    let echo = exchange(addr("echo"), b"installed\n");
    let page = String::from_utf8_lossy(&exchange(
        addr("web"),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ))
    .into_owned();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert_eq!(echo, b"installed\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    // A second install keeps an edited configuration.
    std::fs::write(
        &conf,
        "# mine\n[services.x]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-builtin\"\n",
    )
    .unwrap();
    let again = install(&prefix);
    assert!(again.contains("kept the existing"), "{again}");
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .starts_with("# mine"));
}

#[test]
fn install_sh_refuses_bad_arguments_by_name() {
    let out = Command::new(repo().join("install.sh"))
        .args(["--prefix", "relative/dir", "--no-build"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prefix must be an absolute path"));
    let out = Command::new(repo().join("install.sh"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument '--bogus'"));
}
