//! Headless Chromium for system tests: a real browser loading a page
//! from jawasd and reporting what the page wrote.

use std::process::Command;

use crate::TempDir;

/// `cmd` on PATH; a test that needs it fails naming the Debian package.
pub fn require(cmd: &str, package: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{cmd} not found: install the Debian package {package}"))
}

/// Drives headless Chromium over `--remote-debugging-pipe` (commands on
/// its fd 3, replies on fd 4, NUL-terminated JSON): starts it with a fresh
/// profile and defines `call(method, params, session)`; the page at
/// `url` is then opened in `session` and the caller's Python runs.
/// Bounded: 30 s in all.
const PRELUDE: &str = r#"import json, os, select, subprocess, sys, time
chromium, url, profile = sys.argv[1:4]
ARGS = sys.argv[4:]
# Commands go to Chromium's fd 3, replies come from its fd 4.
to_r, to_w = os.pipe()
from_r, from_w = os.pipe()
def fds():
    # Copies first: dup2 onto itself would leave close-on-exec set.
    a, b = os.dup(to_r), os.dup(from_w)
    os.dup2(a, 3)
    os.dup2(b, 4)
p = subprocess.Popen([chromium, '--headless', '--no-sandbox', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--remote-debugging-pipe',
    '--user-data-dir=' + profile, 'about:blank'],
    preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_r); os.close(from_w)
deadline = time.monotonic() + 30
buf = b''
n = 0
def call(method, params=None, session=None):
    global n, buf
    n += 1
    msg = {'id': n, 'method': method, 'params': params or {}}
    if session: msg['sessionId'] = session
    os.write(to_w, json.dumps(msg).encode() + b'\0')
    while True:
        while b'\0' in buf:
            raw, buf = buf.split(b'\0', 1)
            reply = json.loads(raw)
            if reply.get('id') == n:
                if 'error' in reply: raise SystemExit('CDP error: %r' % reply['error'])
                return reply['result']
        left = deadline - time.monotonic()
        if left <= 0: raise SystemExit('TIMEOUT waiting for ' + method)
        r, _, _ = select.select([from_r], [], [], left)
        if r:
            chunk = os.read(from_r, 65536)
            if not chunk: raise SystemExit('chromium closed the pipe')
            buf += chunk
def text_of(session, element):
    expr = "(document.getElementById('%s') || {}).textContent || ''" % element
    return call('Runtime.evaluate', {'expression': expr, 'returnByValue': True}, session)['result'].get('value', '')
try:
    target = call('Target.createTarget', {'url': url})['targetId']
    session = call('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
"#;

const EPILOGUE: &str = r#"    call('Browser.close')
finally:
    try: p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
"#;

/// Opens `url` in headless Chromium and runs `body` (Python, indented
/// four spaces, with `session`, `call`, `text_of(session, id)` and `ARGS`
/// = `args` at hand); what it prints is returned. Fails the test, with
/// the script's output, if the script fails.
pub fn drive_chromium(url: &str, body: &str, args: &[&str]) -> String {
    let chromium = require("chromium", "chromium");
    let profile = TempDir::new();
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}{body}{EPILOGUE}"))
        .arg(chromium)
        .arg(url)
        .arg(profile.path())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "driving chromium failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// The text the page at `url` wrote into `#out` (once it is no longer
/// `pending`; the page's socket is real network I/O, which `--dump-dom`'s
/// virtual time does not wait for).
pub fn chromium_text(url: &str) -> String {
    drive_chromium(
        url,
        "    text = ''
    while time.monotonic() < deadline:
        text = text_of(session, 'out')
        if text and text != 'pending': break
        time.sleep(0.1)
    print(text)
",
        &[],
    )
}
