//! Receiving a descriptor passed over a Unix socket (SCM_RIGHTS): the
//! hand-back of a routed connection.
//!
//! Owns nothing; the one unsafe step is taking ownership of descriptors
//! the kernel just installed.

use std::io::IoSliceMut;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// One message from `channel`: `Ok(Some(fd))` when it carried a
/// descriptor, `Ok(None)` at the end (the peer is gone) or for a message
/// without one. Descriptors beyond the first are closed.
pub fn receive_fd(channel: RawFd) -> Result<Option<OwnedFd>, nix::errno::Errno> {
    let mut bytes = [0u8; 16];
    let mut iov = [IoSliceMut::new(&mut bytes)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        channel,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut first = None;
    for c in msg.cmsgs().map_err(|_| nix::errno::Errno::EINVAL)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: SCM_RIGHTS just installed `fd` in this process
                // and nothing else owns it; extra ones close as they drop.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if first.is_none() {
                    first = Some(owned);
                }
            }
        }
    }
    Ok(first)
}
