//! In-place restarts (`--handover PATH`): a new process takes the listening
//! sockets over from the running one and no query goes unanswered meanwhile.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const NAME: &str = "web-0.nginx.default.svc.cluster.local.";

/// Counts of a client that queries `addr` back to back, each query given 1 s.
#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    lost: AtomicUsize,
    wrong: AtomicUsize,
}

fn query_all_along(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut id: u16 = 0;
        while !stop.load(Ordering::Relaxed) {
            id = id.wrapping_add(1);
            let mut msg = message(NAME, RecordType::A, None);
            msg.metadata.id = id;
            socket.send_to(&msg.to_vec().unwrap(), addr).unwrap();
            let mut buf = [0u8; 512];
            // Skip late answers to earlier queries (there should be none).
            let reply = loop {
                match socket.recv_from(&mut buf) {
                    Ok((n, _)) => match Message::from_vec(&buf[..n]) {
                        Ok(reply) if reply.metadata.id == id => break Some(reply),
                        _ => continue,
                    },
                    Err(_) => break None,
                }
            };
            match reply {
                Some(reply)
                    if reply.metadata.response_code == ResponseCode::NoError
                        && rdata(&reply) == ["10.244.1.10"] =>
                {
                    tally.answered.fetch_add(1, Ordering::Relaxed)
                }
                Some(_) => tally.wrong.fetch_add(1, Ordering::Relaxed),
                None => tally.lost.fetch_add(1, Ordering::Relaxed),
            };
        }
    })
}

/// As [`query_all_along`] over TCP, a fresh connection for each query.
fn query_tcp_all_along(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let answer = (|| -> std::io::Result<Message> {
                let mut stream =
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
                stream.set_read_timeout(Some(Duration::from_secs(1)))?;
                let bytes = message(NAME, RecordType::A, None).to_vec().unwrap();
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                std::io::Write::write_all(&mut stream, &framed)?;
                let mut len = [0u8; 2];
                std::io::Read::read_exact(&mut stream, &mut len)?;
                let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
                std::io::Read::read_exact(&mut stream, &mut reply)?;
                Message::from_vec(&reply).map_err(std::io::Error::other)
            })();
            match answer {
                Ok(reply) if rdata(&reply) == ["10.244.1.10"] => {
                    tally.answered.fetch_add(1, Ordering::Relaxed)
                }
                Ok(_) => tally.wrong.fetch_add(1, Ordering::Relaxed),
                Err(_) => tally.lost.fetch_add(1, Ordering::Relaxed),
            };
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn a_new_process_takes_the_sockets_over_and_no_query_is_lost() {
    let example = example_dir();
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("handover.sock");
    let args = [
        "--manifests",
        example.to_str().unwrap(),
        "--handover",
        path.to_str().unwrap(),
    ];
    let mut first = Server::start(&args);
    assert!(first.wait_for_log("offering the sockets", Duration::from_secs(10)));
    let health = first.http_addr("health");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients: Vec<_> = (0..2)
        .map(|_| query_all_along(first.addr, stop.clone(), tally.clone()))
        .collect();
    clients.push(query_tcp_all_along(first.addr, stop.clone(), tally.clone()));
    std::thread::sleep(Duration::from_millis(300));

    // Started with the same arguments, the second takes over the first's
    // sockets, ephemeral ports included; the first stops serving and idles (a
    // supervisor must not restart it to take the sockets back) until SIGTERM.
    let mut second = Server::start(&args);
    assert!(second.wait_for_log("offering the sockets", Duration::from_secs(10)));
    assert_eq!(second.addr, first.addr);
    assert!(
        first.wait_for_log("handed over; idle until SIGTERM", Duration::from_secs(20)),
        "{}",
        first.log()
    );
    assert!(first.is_running());
    assert!(
        second.log().contains("took the listening sockets over"),
        "{}",
        second.log()
    );
    assert_eq!(second.http_addr("health"), health);
    assert_eq!(http_get(&health, "/health").0, 200);

    // And a third from the second: every process offers what it took.
    std::thread::sleep(Duration::from_millis(300));
    let third = Server::start(&args);
    assert_eq!(third.addr, first.addr);
    assert!(
        second.wait_for_log("handed over; idle until SIGTERM", Duration::from_secs(20)),
        "{}",
        second.log()
    );
    for idle in [&mut first, &mut second] {
        let status = idle.terminate().expect("an idle process stops on SIGTERM");
        assert!(status.success(), "{status:?}\n{}", idle.log());
        assert!(
            !idle.log().contains("lameduck period"),
            "no lameduck when idle"
        );
    }
    std::thread::sleep(Duration::from_millis(300));

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0, "queries lost");
    assert_eq!(tally.wrong.load(Ordering::Relaxed), 0, "wrong answers");
    assert!(tally.answered.load(Ordering::Relaxed) > 100);
    // TCP too, on the same address.
    let reply = query_tcp(third.addr, &message(NAME, RecordType::A, None));
    assert_eq!(rdata(&reply), ["10.244.1.10"]);
}

#[test]
fn a_stale_handover_socket_is_replaced_and_sigterm_still_uses_the_lameduck() {
    let example = example_dir();
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("handover.sock");
    // Left behind by a process that was killed.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let mut server = Server::start(&[
        "--manifests",
        example.to_str().unwrap(),
        "--handover",
        path.to_str().unwrap(),
    ]);
    assert_eq!(rdata(&server.udp(NAME, RecordType::A)), ["10.244.1.10"]);
    assert!(server.wait_for_log("offering the sockets", Duration::from_secs(10)));
    assert!(
        std::os::unix::net::UnixStream::connect(&path).is_ok(),
        "offered on the path"
    );
    let status = server.terminate().expect("exits on SIGTERM");
    assert!(status.success());
    assert!(
        server
            .log()
            .contains("still answering during the lameduck period")
    );
}

#[test]
fn a_handover_path_that_is_not_a_socket_is_refused_at_start() {
    let example = example_dir();
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("handover.sock");
    std::fs::write(&path, "not a socket").unwrap();
    let output = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--ready-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--upstream",
            DEAD_UPSTREAM,
            "--manifests",
            example.to_str().unwrap(),
        ])
        .args(["--handover", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "handover socket {}: exists and is not a socket",
            path.display()
        )),
        "{stderr}"
    );
}
