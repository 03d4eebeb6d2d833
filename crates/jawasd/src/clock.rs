//! The real clock admission reads: the time, the local time of day and the
//! load average. Tests use a fake one (see `admission`).

use std::time::{Duration, Instant};

use crate::admission::Clock;

#[derive(Default)]
pub struct SystemClock {
    /// The 1-minute load average and when it was read.
    load: Option<(f64, Instant)>,
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn minute_of_day(&self) -> u16 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0) as libc::time_t;
        let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
        // SAFETY: localtime_r reads `t` and fills the `tm` we own; it is the
        // thread-safe variant, and nix has no wrapper for it. A zeroed tm
        // (midnight) stands if it fails.
        let tm = unsafe {
            libc::localtime_r(&t, tm.as_mut_ptr());
            tm.assume_init()
        };
        (tm.tm_hour * 60 + tm.tm_min).clamp(0, 24 * 60) as u16
    }

    /// Read at most once a second, and only for services that set max_load.
    fn load_average(&mut self) -> f64 {
        let now = Instant::now();
        if let Some((v, at)) = self.load {
            if now.duration_since(at) < Duration::from_secs(1) {
                return v;
            }
        }
        let v = nix::sys::sysinfo::sysinfo()
            .map(|s| s.load_average().0)
            .unwrap_or(0.0);
        self.load = Some((v, now));
        v
    }
}
