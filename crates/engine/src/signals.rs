//! Signal set-up for serving a connection, in one place: SIGPIPE ignored
//! and a SIGTERM flag.
//!
//! Owns the process-wide SIGTERM flag. Invariants: the handler only stores
//! to an atomic (async-signal-safe); it is installed without SA_RESTART, so
//! a blocking read or write returns EINTR and the engine's loop can see
//! `stopping()`, flush what it buffered and exit within jawasd's grace.

use std::sync::atomic::{AtomicBool, Ordering};

static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOPPING.store(true, Ordering::Relaxed);
}

/// SIGTERM has arrived: finish the current piece of work and exit.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// Ignores SIGPIPE (writing to a vanished client becomes an `EPIPE` error
/// the engine handles, not a silent death) and installs the SIGTERM flag.
/// `run` calls it after `init`, just before `serve`; calling it again is
/// harmless.
pub fn install() -> std::io::Result<()> {
    // SAFETY: sigaction with a zeroed, then filled, struct we own. The
    // handler is async-signal-safe (one atomic store), SIG_IGN needs no
    // handler, and neither touches memory of ours beyond the static flag.
    // Engines call this before starting threads, but sigaction is
    // process-wide and thread-safe anyway.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        libc::sigemptyset(&mut ignore.sa_mask);
        if libc::sigaction(libc::SIGPIPE, &ignore, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut term: libc::sigaction = std::mem::zeroed();
        term.sa_sigaction = on_sigterm as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut term.sa_mask);
        // sa_flags stays 0: no SA_RESTART, on purpose (see the header).
        if libc::sigaction(libc::SIGTERM, &term, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Puts SIGTERM back to its default action (death), for an engine with
/// nothing to finish or flush, whose threads block in calls that retry on
/// EINTR (a relay copying bytes both ways): there the flag would only
/// delay the end until jawasd's SIGKILL.
pub fn die_on_sigterm() -> std::io::Result<()> {
    // SAFETY: SIG_DFL needs no handler; sigaction is process-wide and
    // thread-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        if libc::sigaction(libc::SIGTERM, &dfl, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_flag_instead_of_killing() {
        install().unwrap();
        install().unwrap();
        assert!(!stopping());
        // SAFETY: raise delivers to this thread; the handler installed above
        // only stores to an atomic.
        unsafe { libc::raise(libc::SIGTERM) };
        assert!(stopping());
    }
}
