//! Batched UDP I/O: `recvmmsg` takes up to [`BATCH`] datagrams in one system
//! call and `sendmmsg` sends their replies in one more. All the `unsafe` of the
//! UDP path lives here, behind [`Batch::exchange`]; so does the rule on which
//! sources are never answered (port 0, broadcast: hickory-server's
//! `sanitize_src_address`).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use super::precheck;

/// Datagrams taken from (and sent to) the kernel in one system call.
const BATCH: usize = 32;
/// Receive buffer per datagram; a larger one is cut, and the cut query fails to parse.
const DATAGRAM: usize = 4096;

/// Buffers for `recvmmsg`/`sendmmsg`: datagrams, their addresses, the replies.
pub struct Batch {
    packets: Vec<u8>,
    replies: Vec<Vec<u8>>,
    addresses: [libc::sockaddr_storage; BATCH],
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

impl Batch {
    pub fn new() -> Box<Self> {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which
        // all-zero bytes are a valid value (null pointers, zero lengths).
        let zeroed = unsafe { std::mem::zeroed::<[libc::sockaddr_storage; BATCH]>() };
        Box::new(Batch {
            packets: vec![0u8; BATCH * DATAGRAM],
            replies: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            addresses: zeroed,
            // SAFETY: as above.
            iovecs: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            headers: unsafe { std::mem::zeroed() },
        })
    }

    /// Waits for datagrams (up to the socket's read timeout), then calls `answer`
    /// with each one from a source that may be answered, the time the batch was
    /// read, and a buffer for its reply; the replies for which it returns true are sent, all at once.
    /// Returns how many datagrams were received.
    pub fn exchange(
        &mut self,
        socket: &UdpSocket,
        mut answer: impl FnMut(&[u8], SocketAddr, Instant, &mut Vec<u8>) -> bool,
    ) -> usize {
        let fd = socket.as_raw_fd();
        let received = self.receive(fd);
        // One clock reading for the batch: when its datagrams were read.
        let now = Instant::now();
        let mut replies = 0;
        for i in 0..received {
            let len = (self.headers[i].msg_len as usize).min(DATAGRAM);
            let Some(src) = socket_addr(&self.addresses[i]) else {
                continue;
            };
            if let Err(reason) = precheck::sanitize_source(src) {
                tracing::debug!(%src, reason, "dropped a datagram");
                continue;
            }
            let packet = &self.packets[i * DATAGRAM..i * DATAGRAM + len];
            if answer(packet, src, now, &mut self.replies[i]) {
                // Reply slot `replies` takes this datagram's address and bytes.
                self.addresses.swap(replies, i);
                self.replies.swap(replies, i);
                replies += 1;
            }
        }
        if replies > 0 {
            self.send(fd, replies);
        }
        received
    }

    /// Receives up to BATCH datagrams; 0 after the receive timeout or an error.
    fn receive(&mut self, fd: RawFd) -> usize {
        self.arm_receive();
        // SAFETY: `headers` holds BATCH valid mmsghdr, each pointing at its own iovec,
        // packet buffer (DATAGRAM bytes) and address slot, all owned by `self`, which
        // outlives the call; the kernel writes at most those lengths.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        // Negative: EAGAIN after the receive timeout (the caller looks at its stop flag).
        usize::try_from(received).unwrap_or(0).min(BATCH)
    }

    /// Points every header at its packet buffer and address slot, for receiving.
    fn arm_receive(&mut self) {
        // One pointer for the whole buffer, so no later borrow invalidates the others.
        let packets = self.packets.as_mut_ptr();
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                // SAFETY: `packets` holds BATCH * DATAGRAM bytes, so slot i starts in bounds.
                iov_base: unsafe { packets.add(i * DATAGRAM) }.cast(),
                iov_len: DATAGRAM,
            };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut self.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = std::ptr::null_mut();
            header.msg_controllen = 0;
            header.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
    }

    /// Sends `count` replies (slots 0..count) with one `sendmmsg`, going on past
    /// a datagram the kernel refuses.
    fn send(&mut self, fd: RawFd, count: usize) {
        for i in 0..count {
            let reply = &mut self.replies[i];
            self.iovecs[i] = libc::iovec {
                iov_base: reply.as_mut_ptr().cast(),
                iov_len: reply.len(),
            };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = match i32::from(self.addresses[i].ss_family) {
                libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
                _ => std::mem::size_of::<libc::sockaddr_in>(),
            } as libc::socklen_t;
            header.msg_iov = &mut self.iovecs[i];
            header.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers[sent..count] each point at a live reply buffer of the
            // stated length and at an initialised address of the stated length, all
            // owned by `self` for the duration of the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                tracing::debug!(error = %std::io::Error::last_os_error(), "UDP send failed");
                // Skip the datagram that failed; the client will retry.
                sent += 1;
                continue;
            }
            sent += usize::try_from(n).unwrap_or(1);
        }
    }
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any socket address.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Replies go to the datagram they answer, skipped ones get none, and the
    /// buffers survive the swaps.
    #[test]
    fn replies_reach_their_senders() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let clients: Vec<UdpSocket> = (0..5)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, client) in clients.iter().enumerate() {
            client
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            client.send_to(&[i as u8; 3], addr).unwrap();
        }
        let mut batch = Batch::new();
        let mut seen = 0;
        while seen < clients.len() {
            let got = batch.exchange(&server, |packet, _src, _received, out| {
                out.clear();
                out.extend_from_slice(&[packet[0], 0xaa]);
                // Every odd sender is not answered.
                packet[0] % 2 == 0
            });
            assert!(got > 0, "the datagrams arrive");
            seen += got;
        }
        let mut reply = [0u8; 16];
        for (i, client) in clients.iter().enumerate() {
            let result = client.recv(&mut reply);
            if i % 2 == 0 {
                assert_eq!(result.unwrap(), 2);
                assert_eq!(reply[..2], [i as u8, 0xaa]);
            } else {
                assert!(result.is_err(), "client {i} got an answer");
            }
        }
    }
}
