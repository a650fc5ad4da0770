//! In-place restarts that lose no query. The running process offers its listening
//! sockets on a unix socket (`--handover PATH`); a new process started with the
//! same path connects, receives them (`SCM_RIGHTS`, as nginx's binary upgrade and
//! Knot's do) and starts reading. Both processes then hold the same kernel
//! sockets, so the datagrams queued on them stay queued; the old process stops
//! reading only once the new one reads, answers what it has already read, and
//! exits. Closing a socket instead would drop its queue.
//!
//! The exchange, on one stream connection:
//! 1. successor: `cluster-dns handover 1\n`
//! 2. predecessor: a 4-byte length, then lines `KIND ADDR` (one per descriptor,
//!    ADDR as configured, so port 0 matches port 0), with the descriptors attached
//!    (more than 250 descriptors follow in further one-byte messages)
//! 3. successor, once it serves on them: `ready\n`
//! 4. predecessor, once it has stopped reading and drained: closes the connection,
//!    and stays idle, holding no socket, until SIGTERM (a supervisor that restarts
//!    exited processes must not start it again to take the sockets back).
//!
//! Closing the connection before step 3 (either side stopping or dying) calls the
//! handover off: the predecessor keeps serving; a successor whose predecessor
//! went away serves at once.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, UnixCredentials, getsockopt, recvmsg, sendmsg,
    sockopt,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HELLO: &[u8] = b"cluster-dns handover 1\n";
const READY: &[u8] = b"ready\n";
const HEADER: &str = "cluster-dns sockets 1";
/// Descriptors per message: Linux passes at most 253 in one (SCM_MAX_FD).
const CHUNK: usize = 250;
/// Descriptors in one offer.
const MAX_DESCRIPTORS: usize = 4096;
const MAX_TEXT: usize = 64 * 1024;
/// Each step of the exchange, except waiting for the successor to be ready.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a successor waits for its predecessor to stop reading and drain
/// (the predecessor drains for at most 5 s).
pub const PREDECESSOR_DRAIN: Duration = Duration::from_secs(15);

/// What a listening socket is for; with its configured address, the key a
/// successor finds it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Udp,
    Tcp,
    Health,
    Ready,
    Metrics,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Udp => "udp",
            Role::Tcp => "tcp",
            Role::Health => "health",
            Role::Ready => "ready",
            Role::Metrics => "metrics",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "udp" => Role::Udp,
            "tcp" => Role::Tcp,
            "health" => Role::Health,
            "ready" => Role::Ready,
            "metrics" => Role::Metrics,
            _ => return None,
        })
    }

    fn datagram(self) -> bool {
        self == Role::Udp
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("handover socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("handover socket {}: {message}", path.display())]
    Protocol { path: PathBuf, message: String },
}

/// Sockets received from the predecessor, by role and configured address.
#[derive(Default)]
pub struct Inherited {
    sockets: HashMap<(Role, SocketAddr), Vec<OwnedFd>>,
}

impl Inherited {
    /// The UDP sockets (one per worker) the predecessor listened with on `addr`.
    pub fn take_udp(&mut self, addr: SocketAddr) -> Vec<std::net::UdpSocket> {
        let fds = self.sockets.remove(&(Role::Udp, addr)).unwrap_or_default();
        fds.into_iter().map(std::net::UdpSocket::from).collect()
    }

    /// The TCP listener the predecessor had for `role` on `addr`, non-blocking.
    pub fn take_listener(
        &mut self,
        role: Role,
        addr: SocketAddr,
    ) -> std::io::Result<Option<tokio::net::TcpListener>> {
        let Some(mut fds) = self.sockets.remove(&(role, addr)) else {
            return Ok(None);
        };
        let Some(fd) = fds.pop() else {
            return Ok(None);
        };
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener).map(Some)
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The sockets still held, as `ROLE ADDR` (after the new configuration took
    /// what it listens on, those left close when dropped).
    pub fn names(&self) -> Vec<String> {
        self.sockets
            .keys()
            .map(|(role, addr)| format!("{} {addr}", role.name()))
            .collect()
    }
}

/// The sockets this process offers to its successor: duplicates of the ones it
/// serves on, so they stay open whoever else holds them.
#[derive(Default)]
pub struct Offered {
    sockets: Vec<(Role, SocketAddr, OwnedFd)>,
}

impl Offered {
    pub fn add(&mut self, role: Role, configured: SocketAddr, socket: &impl AsFd) {
        match socket.as_fd().try_clone_to_owned() {
            Ok(fd) => self.sockets.push((role, configured, fd)),
            Err(error) => {
                tracing::warn!(%error, role = role.name(), %configured, "cannot keep a socket for a handover")
            }
        }
    }

    fn text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        for (role, addr, _) in &self.sockets {
            text.push_str(&format!("{} {addr}\n", role.name()));
        }
        text
    }
}

/// The connection to the process we took the sockets from.
pub struct Predecessor {
    stream: tokio::net::UnixStream,
    path: PathBuf,
}

impl Predecessor {
    /// Wraps the connection [`inherit`] returns (in the runtime's context).
    pub fn new(stream: UnixStream, path: &Path) -> std::io::Result<Predecessor> {
        stream.set_nonblocking(true)?;
        Ok(Predecessor {
            stream: tokio::net::UnixStream::from_std(stream)?,
            path: path.to_path_buf(),
        })
    }

    /// Resolves when the predecessor closes the connection: it stopped or died.
    pub async fn gone(&mut self) {
        let mut byte = [0u8; 1];
        while let Ok(1..) = self.stream.read(&mut byte).await {}
    }

    /// Tells the predecessor we serve, and waits (up to `drain`) until it has
    /// stopped reading and answered what it had read.
    pub async fn release(mut self, drain: Duration) {
        let path = self.path.display().to_string();
        let confirmed = tokio::time::timeout(drain, async {
            self.stream.write_all(READY).await?;
            let mut rest = Vec::new();
            self.stream.read_to_end(&mut rest).await?;
            Ok::<_, std::io::Error>(())
        })
        .await;
        match confirmed {
            Ok(Ok(())) => tracing::info!(%path, "the previous process has stopped"),
            Ok(Err(error)) => {
                tracing::warn!(%path, %error, "the previous process did not confirm it stopped")
            }
            Err(_) => tracing::warn!(%path, "the previous process took too long to stop"),
        }
    }
}

/// Takes the listening sockets over from the process offering them on `path`.
/// `None` when nobody offers there (no file, or a stale one left by a process
/// that exited): the caller binds its own.
pub fn inherit(path: &Path) -> Result<Option<(Inherited, UnixStream)>, HandoverError> {
    let io = |source| HandoverError::Io {
        path: path.to_path_buf(),
        source,
    };
    let protocol = |message: String| HandoverError::Protocol {
        path: path.to_path_buf(),
        message,
    };
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(io(error)),
    };
    // Sockets from a process of another user could be someone else's to read.
    let offered_by = peer(&stream).map_err(io)?.uid();
    if offered_by != nix::unistd::geteuid().as_raw() && offered_by != 0 {
        return Err(protocol(format!(
            "offered by a process of user {offered_by}, not ours"
        )));
    }
    stream.set_read_timeout(Some(STEP_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(STEP_TIMEOUT)).map_err(io)?;
    stream.write_all(HELLO).map_err(io)?;
    let (text, fds) = receive(&stream).map_err(io)?;
    let inherited = parse_offer(&text, fds).map_err(protocol)?;
    stream.set_read_timeout(None).map_err(io)?;
    stream.set_write_timeout(None).map_err(io)?;
    Ok(Some((inherited, stream)))
}

/// One message and the descriptors attached to it.
fn receive_message(stream: &UnixStream, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; CHUNK]);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel has just installed these descriptors in our table
            // for this message; nothing else in the process knows them, so each
            // gets exactly one owner here.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if message.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(std::io::Error::other("descriptors were cut off"));
    }
    Ok((message.bytes, fds))
}

/// Reads the offer: its text and every descriptor it describes.
fn receive(stream: &UnixStream) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut first = vec![0u8; MAX_TEXT + 4];
    let (read, mut fds) = receive_message(stream, &mut first)?;
    if read < 4 {
        return Err(std::io::Error::other(
            "the running process closed the connection without offering sockets",
        ));
    }
    let length = u32::from_be_bytes([first[0], first[1], first[2], first[3]]) as usize;
    if length > MAX_TEXT {
        return Err(std::io::Error::other(format!("an offer of {length} bytes")));
    }
    let mut text = first[4..read.min(4 + length)].to_vec();
    if text.len() < length {
        let mut rest = vec![0u8; length - text.len()];
        (&*stream).read_exact(&mut rest)?;
        text.extend_from_slice(&rest);
    }
    let text =
        String::from_utf8(text).map_err(|_| std::io::Error::other("an offer not in UTF-8"))?;
    // More than a message carries come in one-byte messages of their own.
    let described = text.lines().count().saturating_sub(1).min(MAX_DESCRIPTORS);
    while fds.len() < described {
        let mut byte = [0u8; 1];
        let (read, more) = receive_message(stream, &mut byte)?;
        if read == 0 || more.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} of {described} sockets received",
                fds.len()
            )));
        }
        fds.extend(more);
    }
    Ok((text, fds))
}

/// Pairs the offer's lines with the descriptors and checks each is the socket it
/// claims to be.
fn parse_offer(text: &str, fds: Vec<OwnedFd>) -> Result<Inherited, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("the running process speaks another handover protocol".into());
    }
    let entries: Vec<&str> = lines.collect();
    if entries.len() != fds.len() {
        return Err(format!(
            "{} sockets described, {} received",
            entries.len(),
            fds.len()
        ));
    }
    let mut inherited = Inherited::default();
    for (line, fd) in entries.into_iter().zip(fds) {
        let (role, addr) = line
            .split_once(' ')
            .and_then(|(role, addr)| Some((Role::parse(role)?, addr.parse::<SocketAddr>().ok()?)))
            .ok_or_else(|| format!("cannot read the offer line {line:?}"))?;
        check_socket(&fd, role, addr).map_err(|message| format!("{line}: {message}"))?;
        inherited.sockets.entry((role, addr)).or_default().push(fd);
    }
    Ok(inherited)
}

fn check_socket(fd: &OwnedFd, role: Role, configured: SocketAddr) -> Result<(), String> {
    let socket = socket2::SockRef::from(fd);
    let kind = socket.r#type().map_err(|e| format!("not a socket ({e})"))?;
    let expected = if role.datagram() {
        socket2::Type::DGRAM
    } else {
        socket2::Type::STREAM
    };
    if kind != expected {
        return Err("a socket of another type".into());
    }
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or("a socket without an IP address")?;
    let same_ip = if configured.ip().is_unspecified() {
        local.ip().is_unspecified()
    } else {
        local.ip() == configured.ip()
    };
    if !same_ip || (configured.port() != 0 && local.port() != configured.port()) {
        return Err(format!("bound to {local}"));
    }
    if !role.datagram() && !socket.is_listener().unwrap_or(false) {
        return Err("not a listening socket".into());
    }
    Ok(())
}

/// The offer this process makes to its successor, on `path`.
pub struct Offer {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    /// Where the listener is bound until [`Offer::publish`] moves it to `path`.
    staged: PathBuf,
    offered: Offered,
}

/// A successor that serves on our sockets: stop reading, drain, then drop this
/// (which tells it we are done).
pub struct Successor {
    _stream: tokio::net::UnixStream,
    pub pid: Option<i32>,
}

impl Offer {
    /// Listens beside `path` (at `PATH.new`, reachable by this user only); the
    /// offer is made on `path` itself by [`Offer::publish`], once this process
    /// serves, so that until then a running predecessor's offer stands.
    pub fn listen(path: &Path, offered: Offered) -> Result<Offer, HandoverError> {
        let io = |source| HandoverError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut staged = path.as_os_str().to_owned();
        staged.push(".new");
        let staged = PathBuf::from(staged);
        for file in [path, staged.as_path()] {
            match std::fs::symlink_metadata(file) {
                Ok(meta) if meta.file_type().is_socket() => {}
                Ok(_) => {
                    return Err(HandoverError::Protocol {
                        path: file.to_path_buf(),
                        message: "exists and is not a socket".into(),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io(error)),
            }
        }
        // A staged socket is a leftover: a process that published has renamed its own.
        match std::fs::remove_file(&staged) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(error)),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(&staged).map_err(io)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(Offer {
            listener,
            path: path.to_path_buf(),
            staged,
            offered,
        })
    }

    /// Makes the offer on `path`, replacing a predecessor's (or a stale) socket file.
    pub fn publish(&self) -> Result<(), HandoverError> {
        std::fs::rename(&self.staged, &self.path).map_err(|source| HandoverError::Io {
            path: self.path.clone(),
            source,
        })?;
        tracing::info!(path = %self.path.display(), "offering the sockets to a restarted process");
        Ok(())
    }

    /// Waits for a successor and hands it the sockets; returns once it says it
    /// serves on them. A successor that fails half-way is logged and the offer
    /// stands. Cancel safe: dropping the future closes the connection, which
    /// calls the handover off.
    pub async fn next_successor(&self) -> Successor {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(path = %self.path.display(), %error, "handover: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.hand_over(stream).await {
                Ok(successor) => return successor,
                Err(error) => {
                    tracing::warn!(path = %self.path.display(), %error, "handover abandoned; still serving")
                }
            }
        }
    }

    async fn hand_over(&self, stream: tokio::net::UnixStream) -> std::io::Result<Successor> {
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        let credentials = peer(&stream)?;
        let ours = nix::unistd::geteuid().as_raw();
        if credentials.uid() != ours && credentials.uid() != 0 {
            return Err(std::io::Error::other(format!(
                "refused a process of user {}",
                credentials.uid()
            )));
        }
        let text = self.offered.text();
        let fds: Vec<RawFd> = self
            .offered
            .sockets
            .iter()
            .map(|(_, _, fd)| fd.as_raw_fd())
            .collect();
        if fds.len() > MAX_DESCRIPTORS {
            return Err(std::io::Error::other(format!(
                "{} sockets are more than an offer carries",
                fds.len()
            )));
        }
        tracing::info!(
            pid = credentials.pid(),
            sockets = fds.len(),
            "handing the sockets over"
        );
        // Bounded steps, off the async threads; the long wait for "ready" is async
        // below, so a SIGTERM meanwhile can call the handover off.
        let stream = tokio::task::spawn_blocking(move || send_offer(stream, &text, &fds))
            .await
            .map_err(std::io::Error::other)??;
        stream.set_nonblocking(true)?;
        let mut stream = tokio::net::UnixStream::from_std(stream)?;
        // The successor may first wait for its Kubernetes caches to sync; we keep
        // serving meanwhile, however long that takes.
        let mut ready = [0u8; READY.len()];
        stream.read_exact(&mut ready).await?;
        if ready != READY {
            return Err(std::io::Error::other("the successor did not say ready"));
        }
        Ok(Successor {
            _stream: stream,
            pid: Some(credentials.pid()),
        })
    }
}

/// Step 2 of the exchange: the text and the descriptors, `CHUNK` to a message.
fn send_offer(mut stream: UnixStream, text: &str, fds: &[RawFd]) -> std::io::Result<UnixStream> {
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    stream.set_write_timeout(Some(STEP_TIMEOUT))?;
    let mut hello = [0u8; HELLO.len()];
    stream.read_exact(&mut hello)?;
    if hello != HELLO {
        return Err(std::io::Error::other("not a cluster-dns handover request"));
    }
    let length = u32::try_from(text.len()).map_err(std::io::Error::other)?;
    let mut payload = length.to_be_bytes().to_vec();
    payload.extend_from_slice(text.as_bytes());
    let mut chunks = fds.chunks(CHUNK);
    let first = chunks.next().unwrap_or(&[]);
    let sent = send_message(&stream, &payload, first)?;
    if sent < payload.len() {
        stream.write_all(&payload[sent..])?;
    }
    for chunk in chunks {
        send_message(&stream, b"+", chunk)?;
    }
    Ok(stream)
}

fn send_message(stream: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let rights = [ControlMessage::ScmRights(fds)];
    let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(bytes)],
        control,
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)
}

/// Resolves when a successor serves on our sockets; never without an offer.
pub async fn next_successor(offer: Option<&Offer>) -> Successor {
    match offer {
        Some(offer) => offer.next_successor().await,
        None => std::future::pending().await,
    }
}

/// A successor takes over only with a synced index: until then the predecessor
/// keeps answering from its own, however long the API server takes.
pub async fn wait_until_synced(snapshot: &crate::index::SharedSnapshot) {
    let started = tokio::time::Instant::now();
    let mut next_log = Duration::from_secs(10);
    while !snapshot.load().synced {
        if started.elapsed() >= next_log {
            tracing::info!(
                waited_seconds = started.elapsed().as_secs(),
                "waiting for the Kubernetes caches to sync before taking over"
            );
            next_log += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn peer(stream: &UnixStream) -> std::io::Result<UnixCredentials> {
    getsockopt(stream, sockopt::PeerCredentials).map_err(std::io::Error::from)
}

/// The sockets a running process offers on `--handover PATH`, if any.
pub async fn take_over(
    path: Option<PathBuf>,
) -> Result<(Inherited, Option<Predecessor>), HandoverError> {
    let Some(path) = path else {
        return Ok((Inherited::default(), None));
    };
    let asked = path.clone();
    let taken = tokio::task::spawn_blocking(move || inherit(&asked))
        .await
        .map_err(|e| HandoverError::Protocol {
            path: path.clone(),
            message: e.to_string(),
        })??;
    let Some((inherited, stream)) = taken else {
        return Ok((Inherited::default(), None));
    };
    let predecessor = Predecessor::new(stream, &path).map_err(|source| HandoverError::Io {
        path: path.clone(),
        source,
    })?;
    tracing::info!(sockets = ?inherited.names(), "took the listening sockets over from the running process");
    Ok((inherited, Some(predecessor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_text_names_every_socket_in_order() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut offered = Offered::default();
        let configured: SocketAddr = "127.0.0.1:0".parse().unwrap();
        offered.add(Role::Udp, configured, &udp);
        offered.add(Role::Health, configured, &tcp);
        assert_eq!(
            offered.text(),
            "cluster-dns sockets 1\nudp 127.0.0.1:0\nhealth 127.0.0.1:0\n"
        );
    }

    fn offer_of(role: Role, fd: OwnedFd) -> Result<Inherited, String> {
        parse_offer(
            &format!("{HEADER}\n{} 127.0.0.1:0\n", role.name()),
            vec![fd],
        )
    }

    #[test]
    fn a_socket_of_the_wrong_type_is_refused() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let error = offer_of(Role::Udp, OwnedFd::from(tcp)).err().unwrap();
        assert!(error.contains("another type"), "{error}");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(offer_of(Role::Udp, OwnedFd::from(udp)).is_ok());
    }

    #[test]
    fn a_count_mismatch_or_a_foreign_header_is_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = OwnedFd::from(udp);
        let error = parse_offer(&format!("{HEADER}\n"), vec![fd]).err().unwrap();
        assert!(error.contains("0 sockets described, 1 received"), "{error}");
        let error = parse_offer("something else\n", Vec::new()).err().unwrap();
        assert!(error.contains("another handover protocol"), "{error}");
    }

    #[test]
    fn a_file_is_not_a_socket() {
        let file = tempfile::tempfile().unwrap();
        let error = offer_of(Role::Tcp, OwnedFd::from(file)).err().unwrap();
        assert!(error.contains("not a socket"), "{error}");
    }

    #[tokio::test]
    async fn sockets_pass_between_two_ends_and_keep_their_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handover.sock");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let configured: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut offered = Offered::default();
        offered.add(Role::Udp, configured, &udp);
        let offer = Offer::listen(&path, offered).unwrap();
        // Staged beside the path until published.
        assert!(inherit(&path).unwrap().is_none());
        offer.publish().unwrap();
        // A datagram queued before the handover...
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"queued", addr).unwrap();
        drop(udp);
        let waiting = tokio::spawn(async move { offer.next_successor().await.pid });
        let path2 = path.clone();
        let (mut inherited, stream) =
            tokio::task::spawn_blocking(move || inherit(&path2).unwrap().unwrap())
                .await
                .unwrap();
        let sockets = inherited.take_udp(configured);
        assert_eq!(sockets.len(), 1);
        assert!(inherited.is_empty());
        // ...is read on the other side.
        let mut buf = [0u8; 16];
        sockets[0]
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let (n, _) = sockets[0].recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"queued");
        (&stream).write_all(READY).unwrap();
        let pid = waiting.await.unwrap();
        assert_eq!(pid, Some(std::process::id() as i32));
    }

    #[tokio::test]
    async fn more_sockets_than_one_message_carries_all_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handover.sock");
        let mut offered = Offered::default();
        let mut ports = Vec::new();
        for _ in 0..(CHUNK + 10) {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            ports.push(port);
            offered.add(Role::Udp, SocketAddr::from(([127, 0, 0, 1], port)), &udp);
        }
        let offer = Offer::listen(&path, offered).unwrap();
        offer.publish().unwrap();
        let _waiting = tokio::spawn(async move { offer.next_successor().await.pid });
        let path2 = path.clone();
        let (mut inherited, _stream) =
            tokio::task::spawn_blocking(move || inherit(&path2).unwrap().unwrap())
                .await
                .unwrap();
        for port in ports {
            let sockets = inherited.take_udp(SocketAddr::from(([127, 0, 0, 1], port)));
            assert_eq!(sockets.len(), 1, "port {port}");
            assert_eq!(sockets[0].local_addr().unwrap().port(), port);
        }
        assert!(inherited.is_empty());
    }

    #[test]
    fn a_socket_on_another_address_is_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let error = parse_offer(
            &format!("{HEADER}\nudp 127.0.0.2:{port}\n"),
            vec![OwnedFd::from(udp)],
        )
        .err()
        .unwrap();
        assert!(error.contains("bound to 127.0.0.1"), "{error}");
        // A TCP socket that does not listen is no listener.
        let stream_socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        stream_socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let error = offer_of(Role::Tcp, OwnedFd::from(stream_socket))
            .err()
            .unwrap();
        assert!(error.contains("not a listening socket"), "{error}");
    }

    #[test]
    fn nobody_at_the_path_means_nothing_to_inherit() {
        let dir = tempfile::tempdir().unwrap();
        assert!(inherit(&dir.path().join("none.sock")).unwrap().is_none());
        // A stale socket file left by a process that exited.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(inherit(&stale).unwrap().is_none());
    }
}
