//! What operators see: /health, /ready, /metrics, graceful shutdown and config reload.

mod common;
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/upstream.rs"]
mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn example() -> Server {
    let dir = example_dir();
    Server::start(&["--manifests", dir.to_str().unwrap()])
}

#[test]
fn health_ready_and_metrics() {
    let server = example();
    assert_eq!(
        server.http_get("health", "/health"),
        (200, "OK".to_string())
    );
    assert_eq!(server.http_get("ready", "/ready"), (200, "OK".to_string()));
    assert_eq!(server.http_get("health", "/nope").0, 404);
    server.udp("nginx.default.svc.cluster.local.", RecordType::A);
    server.udp("nope.default.svc.cluster.local.", RecordType::A);
    let (status, metrics) = server.http_get("metrics", "/metrics");
    assert_eq!(status, 200);
    for expected in [
        "coredns_dns_requests_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",proto=\"udp\",family=\"1\",type=\"A\"} 2",
        "coredns_dns_responses_total{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",rcode=\"NXDOMAIN\",plugin=\"\"} 1",
        "coredns_dns_request_duration_seconds_bucket{",
        "coredns_build_info{version=",
        "coredns_panics_total 0",
        "cluster_dns_kubernetes_synced 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[test]
fn silent_http_clients_are_cut_off_and_probes_still_answer() {
    use std::io::Read;
    let server = example();
    let addr = server.http_addr("health");
    // Clients that connect and never send a request (slowloris).
    let mut silent: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connects"))
        .collect();
    assert_eq!(
        server.http_get("health", "/health"),
        (200, "OK".to_string()),
        "a probe gets through while they wait"
    );
    let started = Instant::now();
    let mut first = silent.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buffer = [0u8; 512];
    // The server gives up on the missing headers: EOF or a 408, never a hang.
    let read = first.read(&mut buffer);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "closed after the header timeout, not left open: {read:?} after {:?}",
        started.elapsed()
    );
    match read {
        Ok(0) => {}
        Ok(n) => assert!(
            String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buffer[..n])
        ),
        Err(error) => assert!(
            error.kind() == std::io::ErrorKind::ConnectionReset,
            "{error}"
        ),
    }
}

#[test]
fn not_ready_until_synced() {
    let api = fake_apiserver::FakeApiServer::start();
    api.stop();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let server = Server::start(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let (status, body) = server.http_get("ready", "/ready");
    assert_eq!(status, 503);
    assert!(body.contains("not synced"), "{body}");
    assert_eq!(
        server.http_get("health", "/health").0,
        200,
        "alive all the same"
    );
    api.apply(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}));
    api.restart();
    assert!(eventually(Duration::from_secs(30), || server
        .http_get("ready", "/ready")
        .0
        == 200));
}

#[test]
fn sigterm_lameduck_loses_no_query() {
    let dir = example_dir();
    let mut server = Server::start(&["--manifests", dir.to_str().unwrap(), "--lameduck", "2"]);
    let ready = server.http_addr("ready");
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    // Clients querying all along, as during a rolling update.
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, lost, answered) = (stop.clone(), lost.clone(), answered.clone());
            std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let msg = message(
                        "web-0.nginx.default.svc.cluster.local.",
                        RecordType::A,
                        None,
                    );
                    socket.send_to(&msg.to_vec().unwrap(), addr).unwrap();
                    let mut buf = [0u8; 512];
                    match socket.recv_from(&mut buf) {
                        Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                        Err(_) => lost.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.pid().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let signalled = Instant::now();
    // Not ready at once...
    assert!(eventually(Duration::from_millis(500), || http_get(
        &ready, "/ready"
    )
    .0 == 503));
    // ...but answering throughout the lameduck period.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "measured inside the lameduck"
    );
    assert_eq!(lost.load(Ordering::Relaxed), 0, "no query lost");
    assert!(answered.load(Ordering::Relaxed) > 100);
    let status = server.terminate().expect("exits after the lameduck");
    assert!(status.success(), "{status:?}");
    assert!(
        server
            .log()
            .contains("still answering during the lameduck period")
    );
}

#[test]
fn config_reload_applies_good_files_and_keeps_the_old_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster-dns.toml");
    let manifests = example_dir();
    std::fs::write(&config, format!("manifests = {:?}\nttl = 5\n", manifests)).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let ttl = || {
        server
            .udp("web-0.nginx.default.svc.cluster.local.", RecordType::A)
            .answers[0]
            .ttl
    };
    assert_eq!(ttl(), 5);
    // ConfigMap-style: write elsewhere, then rename over the file.
    let replace = |text: String| {
        let tmp = dir.path().join("new.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    replace(format!("manifests = {:?}\nttl = 42\n", manifests));
    assert!(
        eventually(Duration::from_secs(10), || ttl() == 42),
        "reloaded"
    );
    replace(format!("manifests = {:?}\nttl = 7\nbogus = 1\n", manifests));
    assert!(
        server.wait_for_log("keeping the running configuration", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    assert!(server.log().contains("unknown field `bogus`"));
    assert_eq!(ttl(), 42, "the old configuration stays");
    assert_eq!(
        server
            .udp("nope.default.svc.cluster.local.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

/// Forwards `www.example.` through upstreams named by a resolv.conf of the test's
/// own, then points the resolv.conf at another upstream: the new one answers.
fn resolv_conf_change_takes_effect(with_config: bool) {
    let old = upstream::Upstream::start();
    old.set(
        "www.example.",
        upstream::Behaviour::Addresses(vec![[192, 0, 2, 1]], 60),
    );
    let new = upstream::Upstream::start();
    new.set(
        "www.example.",
        upstream::Behaviour::Addresses(vec![[192, 0, 2, 2]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "resolv.conf",
        &format!("nameserver {}\n", old.addr),
    );
    let resolv = dir.path().join("resolv.conf");
    let config = dir.path().join("cluster-dns.toml");
    std::fs::write(&config, "ttl = 5\n").unwrap();
    let manifests = example_dir();
    let mut args = vec![
        "--manifests",
        manifests.to_str().unwrap(),
        "--resolv-conf",
        resolv.to_str().unwrap(),
        // Every query goes upstream, so the answer says which upstream is in use.
        "--cache-ttl",
        "0",
    ];
    if with_config {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    let server = Server::start(&args);
    let answer = || rdata(&server.udp("www.example.", RecordType::A));
    assert_eq!(answer(), vec!["192.0.2.1"]);
    write(
        dir.path(),
        "resolv.conf",
        &format!("# rewritten\nnameserver {}\n", new.addr),
    );
    assert!(
        eventually(Duration::from_secs(15), || answer() == vec!["192.0.2.2"]),
        "still {:?}; log:\n{}",
        answer(),
        server.log()
    );
    assert!(
        server.log().contains("new upstreams in use"),
        "{}",
        server.log()
    );
}

#[test]
fn a_changed_resolv_conf_takes_effect_without_a_config_file() {
    resolv_conf_change_takes_effect(false);
}

#[test]
fn a_changed_resolv_conf_takes_effect_with_a_config_file() {
    resolv_conf_change_takes_effect(true);
}

/// A UDP query from a client socket of the server address's family.
fn udp_from_family(
    addr: std::net::SocketAddr,
    msg: &hickory_proto::op::Message,
) -> hickory_proto::op::Message {
    let client = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = std::net::UdpSocket::bind(client).expect("client socket");
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    socket.send_to(&msg.to_vec().unwrap(), addr).expect("send");
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).expect("an answer");
    hickory_proto::op::Message::from_vec(&buf[..len]).expect("a DNS message")
}

#[test]
fn answers_on_ipv4_and_ipv6_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("skipped: this machine has no IPv6 loopback (::1)");
        return;
    }
    let dir = example_dir();
    // The harness adds --listen 127.0.0.1:0 first.
    let server = Server::start(&["--manifests", dir.to_str().unwrap(), "--listen", "[::1]:0"]);
    // The harness learns the address before the line reaches its copy of the log.
    assert!(server.wait_for_log("listening on", Duration::from_secs(5)));
    let log = server.log();
    let bound: Vec<std::net::SocketAddr> = log
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(" (udp").next())
        .map(|addrs| {
            addrs
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(bound.len(), 2, "{log}");
    assert!(bound[0].is_ipv4() && bound[1].is_ipv6(), "{bound:?}");
    for addr in bound {
        let msg = message(
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
            None,
        );
        assert_eq!(
            rdata(&udp_from_family(addr, &msg)),
            vec!["10.244.1.10"],
            "udp {addr}"
        );
        assert_eq!(
            rdata(&query_tcp(addr, &msg)),
            vec!["10.244.1.10"],
            "tcp {addr}"
        );
    }
}

/// The soft and hard "Max open files" of a running process.
fn open_files_limits(pid: u32) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|n| n.parse::<u64>().ok());
    Some((numbers.next()??, numbers.next()??))
}

#[test]
fn the_descriptor_soft_limit_is_raised_to_the_hard_limit() {
    let hard = open_files_limits(std::process::id()).map(|(_, hard)| hard);
    if hard.is_none_or(|hard| hard <= 256) {
        println!("skipped: the hard open-files limit ({hard:?}) leaves nothing to raise");
        return;
    }
    let dir = example_dir();
    // Started with a low soft limit, as a shell or init system may leave it.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\"", BIN, "serve"])
        .args([
            "--manifests",
            dir.to_str().unwrap(),
            "--upstream",
            DEAD_UPSTREAM,
        ])
        .args(["--listen", "127.0.0.1:0", "--lameduck", "0"])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--ready-listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "cluster_dns=debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh starts cluster-dns");
    let stderr = child.stderr.take().expect("piped");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut log = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(20)) {
        let started = line.contains("listening on");
        log.push(line);
        if started {
            break;
        }
    }
    let limits = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    let (soft, hard) = limits.expect("the server's limits");
    assert_eq!(soft, hard, "soft limit raised; log:\n{log}");
    assert!(log.contains("open descriptor limit"), "{log}");
}
