//! Socket helpers of the routing stage: receiving a routed connection's
//! hand-back (through jawas-engine's `fdpass`, which owns every received
//! descriptor, so a sender cannot leak any into jawasd), and telling
//! whether a TCP peer has closed.
//!
//! Owns nothing; the one unsafe step is the getsockopt(TCP_INFO) call.

use std::os::fd::{OwnedFd, RawFd};

/// One message from `channel`: `Ok(Some(fd))` when it carried a
/// descriptor, `Ok(None)` at the end (the peer is gone) or for a message
/// without one. Descriptors beyond the first are closed.
pub fn receive_fd(channel: RawFd) -> Result<Option<OwnedFd>, nix::errno::Errno> {
    let mut bytes = [0u8; 16];
    match jawas_http::jawas_engine::fdpass::recv_with_fds(channel, &mut bytes, libc::MSG_DONTWAIT) {
        // The others close as the vector drops.
        Ok((_, fds)) => Ok(fds.into_iter().next()),
        Err(e) => Err(nix::errno::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        )),
    }
}

/// Whether the peer of TCP socket `fd` has sent its FIN (the socket is in
/// CLOSE_WAIT), which a peek cannot tell while unread bytes wait.
pub fn peer_closed(fd: RawFd) -> bool {
    const TCP_CLOSE_WAIT: u8 = 8;
    // struct tcp_info starts with `u8 tcpi_state`; the kernel copies at
    // most the length given.
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which we
    // own, and sets `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    r == 0 && len >= 1 && info[0] == TCP_CLOSE_WAIT
}
