//! Descriptors passed over a Unix socket (SCM_RIGHTS): the zygote's
//! connections, a routed connection's hand-back, jawasd receiving it.
//!
//! One sender and one receiver for every place that passes descriptors.
//! Invariant: every descriptor received is owned (and so closed unless the
//! caller keeps it), even from a message whose control data was cut short
//! (MSG_CTRUNC): a sender cannot leak descriptors into the receiver.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Most descriptors one message carries; a sender that attaches more to a
/// message for `recv_with_fds` gets the rest discarded by the kernel.
pub const MAX_FDS: usize = 8;

/// Control buffer for `MAX_FDS` descriptors; u64s keep it aligned for
/// cmsghdr.
type Control = [u64; 2 + MAX_FDS / 2 + 2];

/// Sends `bytes` with `fds` attached (at most `MAX_FDS`), retrying on EINTR.
pub fn send_with_fds(
    sock: RawFd,
    bytes: &[u8],
    fds: &[RawFd],
    flags: libc::c_int,
) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control: Control = [0; 2 + MAX_FDS / 2 + 2];
    // SAFETY: a zeroed msghdr is valid; it points at `iov` and `control`,
    // which outlive the call; the CMSG_* macros write within `control`
    // (room for MAX_FDS descriptors, checked above); sendmsg only reads.
    let hdr = unsafe {
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if !fds.is_empty() {
            let len = std::mem::size_of_val(fds) as libc::c_uint;
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = libc::CMSG_SPACE(len) as _;
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(len) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
        hdr
    };
    loop {
        // SAFETY: `hdr` and the buffers it points at are alive.
        if unsafe { libc::sendmsg(sock, &hdr, flags) } >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message into `buf`: its length and the descriptors it
/// carried, close-on-exec. `(0, [])` is the end of the socket.
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control: Control = [0; 2 + MAX_FDS / 2 + 2];
    // SAFETY: an all-zero msghdr is valid; the fields set below point at
    // `iov` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: recvmsg writes within the buffers `msg` describes.
    let n = unsafe { libc::recvmsg(sock, &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
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
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills the two-element array it is given.
        let r =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0);
        // SAFETY: both were just created and are owned here only.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn bytes_and_descriptors_arrive_together() {
        let (a, b) = pair();
        let null = std::fs::File::open("/dev/null").unwrap();
        for n in [0, 1, 2, MAX_FDS] {
            let fds = vec![null.as_raw_fd(); n];
            send_with_fds(a.as_raw_fd(), b"CONN", &fds, libc::MSG_NOSIGNAL).unwrap();
            let mut buf = [0u8; 16];
            let (len, got) = recv_with_fds(b.as_raw_fd(), &mut buf, 0).unwrap();
            assert_eq!((&buf[..len], got.len()), (&b"CONN"[..], n));
        }
        let too_many = vec![null.as_raw_fd(); MAX_FDS + 1];
        assert!(send_with_fds(a.as_raw_fd(), b"x", &too_many, 0).is_err());
        drop(a);
        let mut buf = [0u8; 16];
        assert_eq!(recv_with_fds(b.as_raw_fd(), &mut buf, 0).unwrap().0, 0);
    }
}
