//! Connection limits: DNS over TCP (cap, eviction, per-connection query cap,
//! pipelining, the descriptor limit) and the HTTP probe ports.

mod common;
#[path = "support/upstream.rs"]
mod upstream;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use upstream::{Behaviour, Upstream};

const NAME: &str = "myweb-svc.default.svc.cluster.local.";

fn example(extra: &[&str]) -> Server {
    let dir = example_dir();
    let mut args = vec!["--manifests", dir.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Connects, asks for NAME over TCP and checks the answer; keeps the connection.
fn connect_and_ask(addr: SocketAddr) -> TcpStream {
    let mut stream = tcp_connect(addr);
    ask(&mut stream);
    stream
}

fn ask(stream: &mut TcpStream) {
    let query = message(NAME, RecordType::A, None);
    tcp_send(stream, &query);
    let reply = tcp_receive(stream);
    assert_eq!(reply.metadata.id, query.metadata.id);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&reply), vec!["10.96.19.251"]);
}

fn udp_answers(server: &Server) {
    let reply = server.udp(NAME, RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.96.19.251"], "UDP still answers");
}

/// The server closed this connection: EOF or a reset, not a read timeout.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(usize::MAX, |dir| dir.count())
}

/// Regression: TCP connections were not capped. At the cap, the oldest idle
/// connection makes room for the new one; busy clients keep their connection.
#[test]
fn tcp_connections_are_capped_and_the_oldest_idle_one_gives_way() {
    let server = example(&["--tcp-max-connections", "20"]);
    let baseline = open_descriptors(server.pid());
    let mut held: Vec<TcpStream> = Vec::new();
    for i in 0..50 {
        held.push(connect_and_ask(server.addr));
        if i % 10 == 0 {
            udp_answers(&server);
        }
    }
    // The 30 oldest were evicted as the newer ones came in.
    for (i, stream) in held.iter_mut().take(30).enumerate() {
        assert!(closed_by_server(stream), "connection {i} should be closed");
    }
    assert!(
        eventually(Duration::from_secs(5), || open_descriptors(server.pid())
            <= baseline + 20),
        "{} descriptors open, baseline {baseline}",
        open_descriptors(server.pid())
    );
    // At the cap, a fresh connection is still answered (the oldest idle one goes).
    drop(connect_and_ask(server.addr));
    udp_answers(&server);
    for stream in held.iter_mut().skip(31) {
        ask(stream);
    }
    held.clear();
    drop(connect_and_ask(server.addr));
    udp_answers(&server);
}

/// Pipelined queries on one connection are all answered, each with its own ID.
#[test]
fn pipelined_tcp_queries_are_answered_with_their_ids() {
    let server = example(&[]);
    let mut stream = tcp_connect(server.addr);
    let names = [
        NAME,
        "nope.default.svc.cluster.local.",
        "web-0.nginx.default.svc.cluster.local.",
        "myweb-svc.default.svc.cluster.local.",
    ];
    let mut batch = Vec::new();
    let mut sent = Vec::new();
    for i in 0..12u16 {
        let mut query = message(names[usize::from(i) % names.len()], RecordType::A, None);
        query.metadata.id = 1000 + i;
        let bytes = query.to_vec().expect("encodes");
        batch.extend_from_slice(&u16::try_from(bytes.len()).expect("small").to_be_bytes());
        batch.extend_from_slice(&bytes);
        sent.push((query.metadata.id, names[usize::from(i) % names.len()]));
    }
    stream.write_all(&batch).expect("one write, twelve queries");
    let mut got: Vec<(u16, ResponseCode)> = (0..12)
        .map(|_| tcp_receive(&mut stream))
        .map(|r| (r.metadata.id, r.metadata.response_code))
        .collect();
    got.sort_unstable_by_key(|(id, _)| *id);
    for ((id, name), (got_id, rcode)) in sent.iter().zip(&got) {
        assert_eq!(id, got_id);
        let expected = if name.starts_with("nope") {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        assert_eq!(*rcode, expected, "{name}");
    }
}

/// After `--tcp-max-queries` answers the server closes the connection, so
/// clients reconnect (and spread over the pods behind a Service).
#[test]
fn a_connection_is_closed_after_its_query_cap() {
    let server = example(&["--tcp-max-queries", "3"]);
    let mut stream = tcp_connect(server.addr);
    for _ in 0..3 {
        ask(&mut stream);
    }
    let query = message(NAME, RecordType::A, None);
    // The server may already have closed: the write may fail or the query go unread.
    let bytes = query.to_vec().expect("encodes");
    let mut framed = u16::try_from(bytes.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&bytes);
    let _ = stream.write_all(&framed);
    assert!(closed_by_server(&mut stream), "closed after three queries");
    drop(connect_and_ask(server.addr));
}

/// A server started under `ulimit -n LIMIT` (soft and hard).
struct Limited {
    child: Child,
    addr: SocketAddr,
    health: String,
}

impl Limited {
    fn start(limit: u32) -> Limited {
        let dir = example_dir();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .args(["serve", "--manifests", dir.to_str().expect("utf-8 path")])
            .args(["--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"])
            .args([
                "--ready-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(["--upstream", DEAD_UPSTREAM, "--lameduck", "0"])
            .env_remove("RUST_LOG")
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cluster-dns starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                if let Ok(mut log) = sink.lock() {
                    log.push(line);
                }
            }
        });
        let (mut addr, mut health) = (None, None);
        while addr.is_none() || health.is_none() {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{:?}",
                    log.lock().map(|l| l.join("\n"))
                );
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.split("health on http://").nth(1) {
                health = rest.split('/').next().map(str::to_string);
            }
        }
        Limited {
            child,
            addr: addr.expect("an address"),
            health: health.expect("a health address"),
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression: with more TCP connections held than descriptors, accept failed
/// with EMFILE in a tight loop and nothing new got through (TCP, /health,
/// forwarding). The cap stays under the limit; new clients are still served.
#[test]
fn held_connections_beyond_the_descriptor_limit_do_not_lock_clients_out() {
    let server = Limited::start(128);
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(stream) = TcpStream::connect_timeout(&server.addr, IO_TIMEOUT) {
            held.push(stream);
        }
    }
    drop(connect_and_ask(server.addr));
    assert_eq!(http_get(&server.health, "/health"), (200, "OK".to_string()));
    let reply = query_udp(server.addr, &message(NAME, RecordType::A, Some(1232)));
    assert_eq!(rdata(&reply), vec!["10.96.19.251"]);
    let pid = server.child.id();
    assert!(open_descriptors(pid) < 128, "{}", open_descriptors(pid));
}

/// Sends a keep-alive GET and reads the reply's first bytes.
fn keep_alive_get(addr: &str, path: &str) -> Option<(TcpStream, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").ok()?;
    let mut buffer = [0u8; 1024];
    let n = stream.read(&mut buffer).ok()?;
    Some((stream, String::from_utf8_lossy(&buffer[..n]).into_owned()))
}

/// Regression: keep-alive probe clients held every HTTP slot and fresh health
/// checks were refused. Probe answers close the connection now.
#[test]
fn keep_alive_probe_clients_do_not_starve_fresh_health_checks() {
    let server = example(&[]);
    let health = server.http_addr("health");
    let mut held = Vec::new();
    for _ in 0..256 {
        let (stream, reply) = keep_alive_get(&health, "/health").expect("answered");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        held.push(stream);
    }
    assert_eq!(http_get(&health, "/health"), (200, "OK".to_string()));
    let (_, reply) = keep_alive_get(&health, "/health").expect("answered");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
}

/// Regression: as many silent connections as there are slots locked probes out
/// until the header timeout; now the oldest makes room.
#[test]
fn silent_connections_at_the_cap_give_way_to_a_health_check() {
    let server = example(&[]);
    let health = server.http_addr("health");
    let held: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&health).ok())
        .collect();
    assert_eq!(held.len(), 300);
    assert_eq!(http_get(&health, "/health"), (200, "OK".to_string()));
    let ready = server.http_addr("ready");
    assert_eq!(http_get(&ready, "/ready"), (200, "OK".to_string()));
    let mut oldest = held.into_iter().next().expect("one");
    assert!(
        closed_by_server(&mut oldest),
        "the oldest silent one was closed"
    );
}

fn with_upstream(up: &Upstream) -> Server {
    let upstream = up.addr.to_string();
    example(&["--upstream", upstream.as_str()])
}

fn send_framed(stream: &mut TcpStream, query: &hickory_proto::op::Message) {
    let bytes = query.to_vec().expect("encodes");
    let mut framed = u16::try_from(bytes.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).expect("TCP write");
}

/// A slow forwarded query does not hold up the cluster answers pipelined after
/// it on the same connection: they come back first, each with its own ID.
#[test]
fn pipelined_answers_come_back_as_they_are_ready() {
    let up = Upstream::start();
    up.set(
        "slow.example.",
        Behaviour::Slow(
            Duration::from_millis(1500),
            Box::new(Behaviour::Addresses(vec![[192, 0, 2, 1]], 60)),
        ),
    );
    let server = with_upstream(&up);
    let mut stream = tcp_connect(server.addr);
    let slow = message("slow.example.", RecordType::A, None);
    let fast = message(NAME, RecordType::A, None);
    let mut fast_b = message(NAME, RecordType::AAAA, None);
    fast_b.metadata.id = fast.metadata.id.wrapping_add(1);
    send_framed(&mut stream, &slow);
    send_framed(&mut stream, &fast);
    send_framed(&mut stream, &fast_b);
    let replies: Vec<_> = (0..3).map(|_| tcp_receive(&mut stream)).collect();
    let ids: Vec<u16> = replies.iter().map(|r| r.metadata.id).collect();
    assert_eq!(ids[2], slow.metadata.id, "the slow answer last: {ids:?}");
    let mut fast_ids = ids[..2].to_vec();
    fast_ids.sort_unstable();
    let mut expected = vec![fast.metadata.id, fast_b.metadata.id];
    expected.sort_unstable();
    assert_eq!(fast_ids, expected);
    assert_eq!(rdata(&replies[2]), vec!["192.0.2.1"]);
}

/// SIGTERM: a TCP query already in flight is still answered, then the
/// connection is closed and the server exits.
#[test]
fn shutdown_answers_tcp_queries_in_flight() {
    let up = Upstream::start();
    up.set(
        "slow.example.",
        Behaviour::Slow(
            Duration::from_millis(1000),
            Box::new(Behaviour::Addresses(vec![[192, 0, 2, 2]], 60)),
        ),
    );
    let mut server = with_upstream(&up);
    let mut idle = connect_and_ask(server.addr);
    let mut stream = tcp_connect(server.addr);
    let slow = message("slow.example.", RecordType::A, None);
    send_framed(&mut stream, &slow);
    assert!(eventually(Duration::from_secs(5), || up
        .count("slow.example.")
        > 0));
    let status = server.terminate().expect("the server exits");
    assert!(status.success(), "{status:?}");
    let reply = tcp_receive(&mut stream);
    assert_eq!(reply.metadata.id, slow.metadata.id);
    assert_eq!(rdata(&reply), vec!["192.0.2.2"]);
    assert!(closed_by_server(&mut stream));
    assert!(closed_by_server(&mut idle));
}
