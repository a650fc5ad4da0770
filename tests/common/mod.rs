//! Test harness: runs the real `cluster-dns` binary on a loopback port and
//! talks DNS to it over UDP and TCP with hickory-proto messages.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

pub const BIN: &str = env!("CARGO_BIN_EXE_cluster-dns");
const START_TIMEOUT: Duration = Duration::from_secs(20);
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Lines the server wrote to standard output (the query log).
    out: Arc<Mutex<Vec<String>>>,
}

/// An upstream nobody listens on: forwarding to it fails at once, and nothing
/// ever leaves the machine.
pub const DEAD_UPSTREAM: &str = "127.0.0.1:9";

/// Ephemeral loopback ports (DNS, health, ready, metrics), a dead upstream unless
/// the arguments name one, and no lameduck unless they set it; then `args`.
fn with_defaults<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = vec![
        "--listen",
        "127.0.0.1:0",
        "--health-listen",
        "127.0.0.1:0",
        "--ready-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    if !args.contains(&"--upstream") && !args.contains(&"--resolv-conf") {
        all.extend(["--upstream", DEAD_UPSTREAM]);
    }
    if !args.contains(&"--lameduck") {
        all.extend(["--lameduck", "0"]);
    }
    all.extend_from_slice(args);
    all
}

impl Server {
    /// Starts `cluster-dns serve` on ephemeral loopback ports (DNS, health, ready,
    /// metrics) with these extra arguments. Without an `--upstream` among them, the
    /// upstream is [`DEAD_UPSTREAM`], so no test forwards to the machine's resolver.
    pub fn start(args: &[&str]) -> Server {
        Self::spawn(&with_defaults(args), None, None)
    }

    /// Starts `cluster-dns serve` with exactly these arguments.
    pub fn start_raw(args: &[&str]) -> Server {
        Self::spawn(args, None, None)
    }

    /// As [`Server::start`], with the `RUST_LOG` filter given.
    pub fn start_logging(args: &[&str], filter: &str) -> Server {
        Self::spawn(&with_defaults(args), Some(filter), None)
    }

    /// As [`Server::start`] for a process that takes its sockets over from the one
    /// serving `addr` (`--handover`): returns once it has received them, which may
    /// be before it serves on them.
    pub fn start_successor(args: &[&str], addr: SocketAddr) -> Server {
        Self::spawn(&with_defaults(args), None, Some(addr))
    }

    fn spawn(args: &[&str], filter: Option<&str>, successor_of: Option<SocketAddr>) -> Server {
        let mut command = Command::new(BIN);
        command.env_remove("RUST_LOG");
        if let Some(filter) = filter {
            command.env("RUST_LOG", filter);
        }
        let mut child = command
            .arg("serve")
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cluster-dns starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let out = Arc::new(Mutex::new(Vec::new()));
        let out_sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out_sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) =
                    successor_of.filter(|_| line.contains("took the listening sockets over"))
                {
                    let _ = tx.send(addr);
                } else if let Some(addr) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start listening; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child,
            addr,
            log,
            out,
        }
    }

    /// The address an HTTP endpoint (`health`, `ready`, `metrics`) was logged on.
    pub fn http_addr(&self, what: &str) -> String {
        let needle = format!("{what} on http://");
        assert!(
            self.wait_for_log(&needle, Duration::from_secs(10)),
            "{}",
            self.log()
        );
        let log = self.log();
        log.split(&needle)
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("an address")
            .to_string()
    }

    /// GET `path` on the endpoint `what`: (status code, body).
    pub fn http_get(&self, what: &str, path: &str) -> (u16, String) {
        http_get(&self.http_addr(what), path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until the log has a line containing `needle`.
    /// What the server wrote to standard output so far, line by line.
    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn udp(&self, name: &str, qtype: RecordType) -> Message {
        query_udp(self.addr, &message(name, qtype, Some(1232)))
    }

    pub fn tcp(&self, name: &str, qtype: RecordType) -> Message {
        query_tcp(self.addr, &message(name, qtype, None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query for `name`/`qtype`, with an EDNS OPT advertising `payload` if given.
pub fn message(name: &str, qtype: RecordType, payload: Option<u16>) -> Message {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        qtype,
    ));
    if let Some(payload) = payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        msg.set_edns(edns);
    }
    msg
}

fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    (nanos % 65_521) as u16
}

/// Sends raw bytes over UDP; the reply's bytes, or `None` on timeout.
pub fn udp_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket.send_to(bytes, addr).expect("send");
    let mut buf = vec![0u8; 65_535];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => {
            buf.truncate(len);
            Some(buf)
        }
        Err(_) => None,
    }
}

pub fn query_udp_raw(addr: SocketAddr, msg: &Message) -> Vec<u8> {
    let bytes = msg.to_vec().expect("encode query");
    // One retry: UDP on a loaded CI machine may drop a datagram.
    for _ in 0..2 {
        if let Some(reply) = udp_raw(addr, &bytes, IO_TIMEOUT) {
            return reply;
        }
    }
    panic!("no UDP answer from {addr}");
}

pub fn query_udp(addr: SocketAddr, msg: &Message) -> Message {
    let reply = Message::from_vec(&query_udp_raw(addr, msg)).expect("decodable reply");
    assert_eq!(reply.metadata.id, msg.metadata.id, "reply id matches");
    reply
}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("TCP connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

pub fn tcp_send(stream: &mut TcpStream, msg: &Message) {
    let bytes = msg.to_vec().expect("encode query");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).expect("TCP write");
}

pub fn tcp_receive(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("TCP length");
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).expect("TCP body");
    Message::from_vec(&body).expect("decodable reply")
}

pub fn query_tcp(addr: SocketAddr, msg: &Message) -> Message {
    let mut stream = tcp_connect(addr);
    tcp_send(&mut stream, msg);
    let reply = tcp_receive(&mut stream);
    assert_eq!(reply.metadata.id, msg.metadata.id, "reply id matches");
    reply
}

/// The answer section as `data` strings, in order.
pub fn rdata(msg: &Message) -> Vec<String> {
    msg.answers.iter().map(|r| r.data.to_string()).collect()
}

pub fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    let parent = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(parent).unwrap();
    // Write then rename, so the poller never reads half a file.
    let file_name = path.file_name().unwrap().to_string_lossy();
    let tmp = parent.join(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The example cluster shipped in `examples/statefulset`.
pub fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/statefulset")
}

/// A plain HTTP/1.1 GET: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("HTTP connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// The sorted answer data (for answers whose order rotates).
pub fn sorted_rdata(msg: &Message) -> Vec<String> {
    let mut v = rdata(msg);
    v.sort();
    v
}

/// `cluster-dns ARGS...` to completion, without the caller's log filter or
/// Kubernetes environment.
pub fn run_binary(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("binary runs")
}
