//! `bench/freshness`: how fast API changes become answers, at cluster scale.
//!
//! Starts the fake API server (tests/support) with N services and M endpoints,
//! runs the release `cluster-dns` against it over loopback, and reports:
//! initial sync time, resident memory after sync, and event-to-answer latency
//! (from the API server emitting an EndpointSlice change to a DNS query returning
//! it) under a steady stream of EndpointSlice updates.

#[path = "../tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;

struct Options {
    services: usize,
    endpoints: usize,
    rate: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut o = Options {
        services: 10_000,
        endpoints: 100_000,
        rate: 500,
        seconds: 10,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match (args[i].as_str(), value) {
            ("--services", Some(v)) => o.services = v.max(1),
            ("--endpoints", Some(v)) => o.endpoints = v,
            ("--rate", Some(v)) => o.rate = v.max(1),
            ("--seconds", Some(v)) => o.seconds = v as u64,
            ("--bench", _) => {
                i += 1;
                continue;
            }
            (other, _) => {
                eprintln!(
                    "usage: bench/freshness [--services N] [--endpoints M] [--rate PER_SECOND] [--seconds S] ({other}?)"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

const NAMESPACES: usize = 20;

fn ip(base: u8, index: usize) -> String {
    format!(
        "10.{}.{}.{}",
        base as usize + index / 65536,
        (index / 256) % 256,
        index % 256
    )
}

fn service(i: usize) -> serde_json::Value {
    let headless = i.is_multiple_of(10);
    let cluster_ip = if headless {
        "None".to_string()
    } else {
        ip(96, i)
    };
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % NAMESPACES)},
        "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80}]}})
}

fn slice(i: usize, per_service: usize, first_ip: &dyn Fn(usize) -> String) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = (0..per_service)
        .map(|k| {
            let address = if k == 0 { first_ip(i) } else { ip(128, i * per_service + k) };
            json!({"addresses": [address], "hostname": format!("ep-{k}"), "conditions": {"ready": true}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}-abcde"), "namespace": format!("ns-{}", i % NAMESPACES),
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints})
}

fn query(socket: &UdpSocket, server: SocketAddr, name: &Name, id: u16) -> Option<Vec<String>> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name.clone(), RecordType::A));
    socket.send_to(&msg.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let (len, _) = socket.recv_from(&mut buf).ok()?;
        let reply = Message::from_vec(&buf[..len]).ok()?;
        if reply.metadata.id != id {
            continue;
        }
        return Some(
            reply
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect(),
        );
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let o = options();
    let per_service = (o.endpoints / o.services).max(1);
    eprintln!(
        "freshness: {} services, {} endpoints ({} per service), {} EndpointSlice updates/s for {} s",
        o.services,
        o.services * per_service,
        per_service,
        o.rate,
        o.seconds
    );

    let api = FakeApiServer::start();
    let populate = Instant::now();
    for n in 0..NAMESPACES {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}));
    }
    let initial_ip = |i: usize| ip(128, i * per_service);
    for i in 0..o.services {
        api.apply(service(i));
        api.apply(slice(i, per_service, &initial_ip));
    }
    eprintln!(
        "fake API server populated in {:.1} s",
        populate.elapsed().as_secs_f64()
    );

    let dir = std::env::temp_dir().join(format!("cluster-dns-freshness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = api.write_kubeconfig(&dir);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cluster-dns"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
            "--ready-listen",
            "127.0.0.1:0",
            // Loopback only: nothing this benchmark starts talks to the outside.
            "--upstream",
            "127.0.0.1:9",
            "--lameduck",
            "0",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cluster-dns");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut server: Option<SocketAddr> = None;
    let mut metrics_addr: Option<String> = None;
    let mut sync_time: Option<Duration> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sync_time.is_none() && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(addr) = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
        {
            server = Some(addr);
        }
        if let Some(addr) = line
            .split("metrics on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
        {
            metrics_addr = Some(addr.to_string());
        }
        if line.contains("synced with the API server") {
            sync_time = Some(started.elapsed());
        }
    }
    let (Some(server), Some(sync_time)) = (server, sync_time) else {
        let _ = child.kill();
        panic!("cluster-dns did not sync within 120 s");
    };
    std::thread::spawn(move || for _ in lines {});

    // Sanity: the last service answers.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let last = o.services - 1;
    let last_name = Name::from_ascii(format!(
        "ep-0.svc-{last}.ns-{}.svc.cluster.local.",
        last % NAMESPACES
    ))
    .unwrap();
    let answer = query(&socket, server, &last_name, 1).unwrap_or_default();
    assert_eq!(
        answer,
        vec![initial_ip(last)],
        "the last endpoint answers after sync"
    );
    std::thread::sleep(Duration::from_secs(1));
    let rss_after_sync = rss_kib(pid).unwrap_or(0);

    // Churn: `rate` updates a second; each changes endpoint ep-0 of one service to a
    // fresh address. Probers time every update from emission to answer.
    let (samples_tx, samples_rx) = mpsc::channel::<(Name, String, Instant)>();
    let samples_rx = std::sync::Arc::new(std::sync::Mutex::new(samples_rx));
    let (latency_tx, latency_rx) = mpsc::channel::<Option<(f64, f64)>>();
    let mut probers = Vec::new();
    for p in 0..2u16 {
        let rx = samples_rx.clone();
        let tx = latency_tx.clone();
        probers.push(std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("prober socket");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut id = p.wrapping_mul(10_000);
            loop {
                let next = rx.lock().unwrap().recv();
                let Ok((name, want, emitted)) = next else {
                    return;
                };
                let give_up = emitted + Duration::from_secs(2);
                let mut seen = None;
                while Instant::now() < give_up {
                    id = id.wrapping_add(1);
                    let asked = Instant::now();
                    if query(&socket, server, &name, id).is_some_and(|a| a == [want.clone()]) {
                        seen = Some((
                            emitted.elapsed().as_secs_f64(),
                            asked.elapsed().as_secs_f64(),
                        ));
                        break;
                    }
                    // Poll every 0.25 ms: fine enough to time, light enough not to load the server.
                    std::thread::sleep(Duration::from_micros(250));
                }
                let _ = tx.send(seen);
            }
        }));
    }
    drop(latency_tx);
    let interval = Duration::from_secs_f64(1.0 / o.rate as f64);
    let total = o.rate * o.seconds as usize;
    let churn_start = Instant::now();
    let mut rss_peak = rss_after_sync;
    for u in 0..total {
        let due = churn_start + interval * u as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let i = (u * 7919) % o.services;
        let fresh = ip(200, u);
        let fresh_clone = fresh.clone();
        api.apply(slice(i, per_service, &move |_| fresh_clone.clone()));
        let emitted = Instant::now();
        let name = Name::from_ascii(format!(
            "ep-0.svc-{i}.ns-{}.svc.cluster.local.",
            i % NAMESPACES
        ))
        .unwrap();
        // Every 4th update is timed, so that probing does not load the 2-core machine.
        if u % 4 == 0 {
            let _ = samples_tx.send((name, fresh, emitted));
        }
        if u % o.rate == 0 {
            rss_peak = rss_peak.max(rss_kib(pid).unwrap_or(0));
        }
    }
    let churn_elapsed = churn_start.elapsed();
    drop(samples_tx);
    for prober in probers {
        let _ = prober.join();
    }
    let mut latencies: Vec<f64> = Vec::new();
    let mut round_trips: Vec<f64> = Vec::new();
    let mut missed = 0;
    for sample in latency_rx {
        match sample {
            Some((latency, round_trip)) => {
                latencies.push(latency);
                round_trips.push(round_trip);
            }
            None => missed += 1,
        }
    }
    round_trips.sort_by(|a, b| a.total_cmp(b));
    latencies.sort_by(|a, b| a.total_cmp(b));
    let internal = metrics_addr
        .as_deref()
        .map(|addr| {
            histogram_quantiles(
                &http_get(addr, "/metrics"),
                "cluster_dns_event_to_answer_seconds",
            )
        })
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let p50 = percentile(&latencies, 50.0) * 1000.0;
    let p99 = percentile(&latencies, 99.0) * 1000.0;
    let achieved = total as f64 / churn_elapsed.as_secs_f64();
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!();
    println!("| measure (shared 2-core machine, loopback) | value | target | |");
    println!("|---|---|---|---|");
    println!(
        "| cluster | {} services, {} endpoints | | |",
        o.services,
        o.services * per_service
    );
    println!(
        "| initial sync (process start to synced) | {:.2} s | < 5 s | {} |",
        sync_time.as_secs_f64(),
        verdict(sync_time < Duration::from_secs(5))
    );
    println!(
        "| resident memory after sync | {:.1} MB | < 200 MB | {} |",
        rss_after_sync as f64 / 1024.0,
        verdict(rss_after_sync < 200 * 1024)
    );
    println!(
        "| resident memory peak under churn | {:.1} MB | | |",
        rss_peak as f64 / 1024.0
    );
    println!(
        "| EndpointSlice updates applied | {total} at {achieved:.0}/s | {}/s | |",
        o.rate
    );
    println!(
        "| event-to-answer p50 | {p50:.2} ms ({} samples, {missed} not seen in 2 s) | | |",
        latencies.len()
    );
    println!(
        "| event-to-answer p99 | {p99:.2} ms | < 10 ms | {} |",
        verdict(p99 < 10.0 && missed == 0)
    );
    println!(
        "| of which the answering DNS query's round trip | p50 {:.2} ms, p99 {:.2} ms | | |",
        percentile(&round_trips, 50.0) * 1000.0,
        percentile(&round_trips, 99.0) * 1000.0
    );
    if let [(q50, b50), (q99, b99)] = internal.as_slice() {
        println!(
            "| inside cluster-dns (event received to snapshot swap, histogram buckets) | p{q50}: <= {:.2} ms, p{q99}: <= {:.2} ms | | |",
            b50 * 1000.0,
            b99 * 1000.0
        );
    }
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

/// Upper bucket bounds holding the 50th and 99th percentiles of a histogram.
fn histogram_quantiles(text: &str, name: &str) -> Vec<(u32, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let Some(&(_, total)) = buckets.last() else {
        return Vec::new();
    };
    [50u32, 99]
        .iter()
        .filter_map(|&q| {
            let want = total * f64::from(q) / 100.0;
            buckets
                .iter()
                .find(|(_, c)| *c >= want)
                .map(|(le, _)| (q, *le))
        })
        .collect()
}
