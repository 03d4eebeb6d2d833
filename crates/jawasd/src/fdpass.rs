//! Socket helpers of the routing stage: receiving a descriptor passed over
//! a Unix socket (SCM_RIGHTS), the hand-back of a routed connection, and
//! telling whether a TCP peer has closed.
//!
//! Owns nothing; the unsafe steps are the recvmsg call and taking
//! ownership of the descriptors the kernel installed. Invariant: every
//! descriptor received is owned (and so closed unless returned), even from
//! a message whose control data was cut short (MSG_CTRUNC): a sender
//! cannot leak descriptors into jawasd.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Room for this many descriptors; a sender that attaches more gets the
/// rest discarded by the kernel (it installs only what fits).
const MAX_FDS: usize = 8;

/// One message from `channel`: `Ok(Some(fd))` when it carried a
/// descriptor, `Ok(None)` at the end (the peer is gone) or for a message
/// without one. Descriptors beyond the first are closed.
pub fn receive_fd(channel: RawFd) -> Result<Option<OwnedFd>, nix::errno::Errno> {
    let mut bytes = [0u8; 16];
    let mut iov = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: bytes.len(),
    };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 2 + MAX_FDS / 2 + 2];
    // SAFETY: an all-zero msghdr is valid; the fields set below point at
    // `iov` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg writes within the buffers `msg` describes.
    let n = unsafe {
        libc::recvmsg(
            channel,
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if n < 0 {
        return Err(nix::errno::Errno::last());
    }
    let mut received = Vec::new();
    // SAFETY: the CMSG_* macros walk the control data recvmsg filled,
    // within msg_controllen (whether or not it was cut short); each
    // SCM_RIGHTS payload is an array of descriptors just installed in this
    // process, owned by no one else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    received.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // The others close as `received` drops.
    Ok(received.into_iter().next())
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
