//! The live path: the real binary against a fake API server, through kube-rs over HTTP.

mod common;
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::time::Duration;

use common::*;
use fake_apiserver::FakeApiServer;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn headless(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
           "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}})
}

fn cluster_ip(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
           "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]}})
}

/// An EndpointSlice of `service` with (hostname, ip, ready) endpoints.
fn slice(name: &str, service: &str, endpoints: &[(&str, &str, bool)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(host, ip, ready)| {
            json!({"addresses": [ip], "hostname": host, "conditions": {"ready": ready}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": "default",
                        "labels": {"kubernetes.io/service-name": service, "app": service}},
           "addressType": "IPv4", "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
           "endpoints": endpoints})
}

fn web_cluster(api: &FakeApiServer) {
    api.apply(namespace("default"));
    api.apply(headless("nginx"));
    api.apply(slice(
        "nginx-1",
        "nginx",
        &[
            ("web-0", "10.244.1.10", true),
            ("web-1", "10.244.2.11", true),
            ("web-2", "10.244.3.12", true),
        ],
    ));
}

fn start(api: &FakeApiServer, dir: &tempfile::TempDir, extra: &[&str]) -> Server {
    let kubeconfig = api.write_kubeconfig(dir.path());
    let mut args = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn addrs(server: &Server, name: &str) -> Vec<String> {
    let mut v = rdata(&server.udp(name, RecordType::A));
    v.sort();
    v
}

fn rcode(server: &Server, name: &str) -> ResponseCode {
    server.udp(name, RecordType::A).metadata.response_code
}

fn wait_synced(server: &Server) {
    assert!(
        server.wait_for_log("synced with the API server", WAIT),
        "{}",
        server.log()
    );
}

const NGINX: &str = "nginx.default.svc.cluster.local.";

#[test]
fn objects_created_modified_and_deleted_are_answered() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    assert_eq!(
        addrs(&server, NGINX),
        vec!["10.244.1.10", "10.244.2.11", "10.244.3.12"]
    );
    assert_eq!(
        addrs(&server, "web-1.nginx.default.svc.cluster.local."),
        vec!["10.244.2.11"]
    );

    // Create a service.
    api.apply(cluster_ip("api", "10.96.0.50"));
    assert!(eventually(WAIT, || addrs(
        &server,
        "api.default.svc.cluster.local."
    ) == ["10.96.0.50"]));
    // Modify it (a new ClusterIP).
    api.apply(cluster_ip("api", "10.96.0.51"));
    assert!(eventually(WAIT, || addrs(
        &server,
        "api.default.svc.cluster.local."
    ) == ["10.96.0.51"]));
    // A pod restarts with a new IP.
    api.apply(slice(
        "nginx-1",
        "nginx",
        &[
            ("web-0", "10.244.1.99", true),
            ("web-1", "10.244.2.11", true),
            ("web-2", "10.244.3.12", true),
        ],
    ));
    assert!(eventually(WAIT, || addrs(
        &server,
        "web-0.nginx.default.svc.cluster.local."
    ) == ["10.244.1.99"]));
    // Delete the service: NXDOMAIN.
    assert!(api.delete("Service", "default", "api"));
    assert!(eventually(WAIT, || rcode(
        &server,
        "api.default.svc.cluster.local."
    ) == ResponseCode::NXDomain));
    assert!(server.log().contains("watching the Kubernetes API"));
}

#[test]
fn statefulset_scale_up_and_down_and_readiness() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    let web = |i: usize| format!("web-{i}.nginx.default.svc.cluster.local.");

    // Scale 3 -> 5: web-3 and web-4 appear.
    let five: Vec<(String, String)> = (0..5)
        .map(|i| (format!("web-{i}"), format!("10.244.{}.{}", i + 1, 10 + i)))
        .collect();
    let eps: Vec<(&str, &str, bool)> = five
        .iter()
        .map(|(h, ip)| (h.as_str(), ip.as_str(), true))
        .collect();
    api.apply(slice("nginx-1", "nginx", &eps));
    assert!(eventually(WAIT, || addrs(&server, &web(4)) == ["10.244.5.14"]));
    assert_eq!(addrs(&server, NGINX).len(), 5);
    let srv = server.udp(
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(srv.answers.len(), 5);

    // web-2 turns not ready: it disappears.
    let mut not_ready = eps.clone();
    not_ready[2].2 = false;
    api.apply(slice("nginx-1", "nginx", &not_ready));
    assert!(eventually(WAIT, || rcode(&server, &web(2)) == ResponseCode::NXDomain));
    assert_eq!(addrs(&server, NGINX).len(), 4);

    // Scale 5 -> 2.
    api.apply(slice("nginx-1", "nginx", &eps[..2]));
    assert!(eventually(WAIT, || addrs(&server, NGINX).len() == 2));
    assert_eq!(rcode(&server, &web(4)), ResponseCode::NXDomain);
    assert_eq!(rcode(&server, &web(3)), ResponseCode::NXDomain);

    // Scale to 0: a headless service without ready endpoints is NXDOMAIN.
    api.apply(slice("nginx-1", "nginx", &[]));
    assert!(eventually(WAIT, || rcode(&server, NGINX) == ResponseCode::NXDomain));
}

#[test]
fn a_slice_split_in_two_keeps_every_endpoint() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    api.apply(slice(
        "nginx-2",
        "nginx",
        &[
            ("web-2", "10.244.3.12", true),
            ("web-3", "10.244.4.13", true),
        ],
    ));
    api.apply(slice(
        "nginx-1",
        "nginx",
        &[
            ("web-0", "10.244.1.10", true),
            ("web-1", "10.244.2.11", true),
        ],
    ));
    assert!(eventually(WAIT, || addrs(&server, NGINX).len() == 4));
    assert_eq!(
        addrs(&server, NGINX),
        vec!["10.244.1.10", "10.244.2.11", "10.244.3.12", "10.244.4.13"]
    );
    assert!(api.delete("EndpointSlice", "default", "nginx-2"));
    assert!(eventually(WAIT, || addrs(&server, NGINX).len() == 2));
}

#[test]
fn servfail_before_sync_then_answers() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    // EndpointSlices cannot be listed yet: the server must not claim names are absent.
    api.fail_next("EndpointSlice", 500, 2);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    assert_eq!(
        rcode(&server, "missing.default.svc.cluster.local."),
        ResponseCode::ServFail
    );
    wait_synced(&server);
    assert_eq!(
        rcode(&server, "missing.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    assert_eq!(addrs(&server, NGINX).len(), 3);
    assert!(
        server.log().contains("retrying with backoff"),
        "{}",
        server.log()
    );
}

#[test]
fn api_server_down_at_start_then_up() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    api.stop();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    assert_eq!(rcode(&server, NGINX), ResponseCode::ServFail);
    assert!(server.wait_for_log("retrying with backoff", WAIT));
    api.restart();
    wait_synced(&server);
    assert_eq!(addrs(&server, NGINX).len(), 3);
}

#[test]
fn api_server_restart_mid_run_keeps_answers_flowing() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    api.stop();
    // While it is down, every query is still answered from the last known records.
    for _ in 0..20 {
        assert_eq!(addrs(&server, NGINX).len(), 3);
        assert_eq!(
            rcode(&server, "nope.default.svc.cluster.local."),
            ResponseCode::NXDomain
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // It comes back having lost its history (like a restart with a new watch cache),
    // and the cluster changed meanwhile: a re-list must bring the change in.
    api.apply(slice("nginx-1", "nginx", &[("web-0", "10.244.1.10", true)]));
    api.apply(cluster_ip("late", "10.96.0.77"));
    api.compact();
    api.restart();
    assert!(eventually(WAIT, || addrs(&server, NGINX).len() == 1));
    assert!(eventually(WAIT, || addrs(
        &server,
        "late.default.svc.cluster.local."
    ) == ["10.96.0.77"]));
    assert!(
        server.log().contains("cannot watch") || server.log().contains("cannot list"),
        "{}",
        server.log()
    );
}

#[test]
fn gone_during_a_watch_relists_without_a_gap() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    api.apply(cluster_ip("keep", "10.96.0.60"));
    api.apply(cluster_ip("drop", "10.96.0.61"));
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    // A deletion the watch will never see as an event: only the re-list can find it.
    api.expire_watches();
    {
        // Remove "drop" silently: delete then compact so no DELETED event survives.
        assert!(api.delete("Service", "default", "drop"));
        api.compact();
    }
    let deadline = std::time::Instant::now() + WAIT;
    let mut swept = false;
    while std::time::Instant::now() < deadline {
        // Throughout, the unchanged names keep answering.
        assert_eq!(
            addrs(&server, "keep.default.svc.cluster.local."),
            vec!["10.96.0.60"]
        );
        assert_eq!(addrs(&server, NGINX).len(), 3);
        if rcode(&server, "drop.default.svc.cluster.local.") == ResponseCode::NXDomain {
            swept = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        swept,
        "the re-list removed the service deleted meanwhile\n{}",
        server.log()
    );
}

#[test]
fn closed_watch_streams_resume() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    api.close_watches();
    std::thread::sleep(Duration::from_millis(200));
    api.apply(cluster_ip("after", "10.96.0.70"));
    assert!(eventually(WAIT, || addrs(
        &server,
        "after.default.svc.cluster.local."
    ) == ["10.96.0.70"]));
}

#[test]
fn permission_denied_is_named() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    api.forbid("EndpointSlice", true);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    assert!(
        server.wait_for_log("permission denied on endpointslices.discovery.k8s.io", WAIT),
        "{}",
        server.log()
    );
    assert_eq!(
        rcode(&server, "missing.default.svc.cluster.local."),
        ResponseCode::ServFail
    );
    api.forbid("EndpointSlice", false);
    wait_synced(&server);
    assert_eq!(
        server.log().matches("permission denied").count(),
        1,
        "logged once"
    );
}

#[test]
fn streaming_lists_and_the_list_watch_fallback() {
    for streaming in [true, false] {
        let api = FakeApiServer::start();
        web_cluster(&api);
        api.set_streaming_lists(streaming);
        let dir = tempfile::tempdir().unwrap();
        let server = start(&api, &dir, &[]);
        wait_synced(&server);
        assert_eq!(addrs(&server, NGINX).len(), 3);
        let requests = api.requests();
        assert!(
            requests
                .iter()
                .any(|r| r.contains("sendInitialEvents=true")),
            "{requests:?}"
        );
        let listed = requests
            .iter()
            .any(|r| r.contains("endpointslices?") && !r.contains("watch="));
        assert_eq!(
            listed, !streaming,
            "a plain list only when streaming is refused: {requests:?}"
        );
        if !streaming {
            assert!(server.log().contains("falling back to list+watch"));
        }
        api.apply(cluster_ip("x", "10.96.0.90"));
        assert!(eventually(WAIT, || addrs(
            &server,
            "x.default.svc.cluster.local."
        ) == ["10.96.0.90"]));
    }
}

#[test]
fn old_api_servers_get_list_watch_with_pagination() {
    let api = FakeApiServer::start();
    api.set_minor_version(30);
    api.apply(namespace("default"));
    for i in 0..1200 {
        api.apply(cluster_ip(
            &format!("svc-{i}"),
            &format!("10.96.{}.{}", i / 250, i % 250 + 1),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    assert_eq!(
        addrs(&server, "svc-1199.default.svc.cluster.local."),
        vec!["10.96.4.200"]
    );
    let requests = api.requests();
    assert!(!requests.iter().any(|r| r.contains("sendInitialEvents")));
    assert!(
        requests
            .iter()
            .any(|r| r.contains("services?") && r.contains("continue=")),
        "paged"
    );
}

#[test]
fn namespace_and_label_filters() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    api.apply(namespace("other"));
    let mut other = cluster_ip("hidden", "10.96.1.1");
    other["metadata"]["namespace"] = json!("other");
    api.apply(other);
    api.apply(cluster_ip("unlabelled", "10.96.1.2"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "namespaces = [\"default\"]\nlabels = \"app\"\n").unwrap();
    let mut unlabelled = cluster_ip("unlabelled", "10.96.1.2");
    unlabelled["metadata"]["labels"] = json!({});
    api.apply(unlabelled);
    let server = start(&api, &dir, &["--config", config.to_str().unwrap()]);
    wait_synced(&server);
    assert_eq!(addrs(&server, NGINX).len(), 3);
    assert_eq!(
        rcode(&server, "hidden.other.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    assert_eq!(
        rcode(&server, "unlabelled.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    // The hidden service's PTR is not ours either: it falls through to the upstream.
    let ptr = server.udp("1.1.96.10.in-addr.arpa.", RecordType::PTR);
    assert!(ptr.answers.is_empty());
    assert!(!ptr.metadata.authoritative);
}

#[test]
fn odd_but_legal_objects_are_handled() {
    let api = FakeApiServer::start();
    api.apply(namespace("default"));
    // A slice for a service not seen yet, a slice without the service-name label,
    // a service without ports, and an address of the wrong family.
    api.apply(slice("early-1", "early", &[("e-0", "10.244.9.1", true)]));
    let mut unlabelled = slice("orphan-1", "orphan", &[("o-0", "10.244.9.2", true)]);
    unlabelled["metadata"]["labels"] = json!({});
    api.apply(unlabelled);
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "bare", "namespace": "default"}, "spec": {"clusterIP": "10.96.2.2"}}));
    let mut wrong_family = slice("mixed-1", "bare", &[("m-0", "fd00::1", true)]);
    wrong_family["addressType"] = json!("IPv4");
    api.apply(wrong_family);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    assert_eq!(
        addrs(&server, "bare.default.svc.cluster.local."),
        vec!["10.96.2.2"]
    );
    api.apply(headless("early"));
    assert!(eventually(WAIT, || addrs(
        &server,
        "e-0.early.default.svc.cluster.local."
    ) == ["10.244.9.1"]));
    assert_eq!(
        rcode(&server, "orphan.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
}

#[test]
fn pods_are_watched_in_verified_mode() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    api.apply(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"podIP": "10.244.1.10", "podIPs": [{"ip": "10.244.1.10"}]}}));
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &["--pods", "verified"]);
    wait_synced(&server);
    assert_eq!(
        addrs(&server, "10-244-1-10.default.pod.cluster.local."),
        vec!["10.244.1.10"]
    );
    assert_eq!(
        rcode(&server, "10-244-1-11.default.pod.cluster.local."),
        ResponseCode::NXDomain
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods"))
    );
    api.delete("Pod", "default", "web-0");
    assert!(eventually(WAIT, || rcode(
        &server,
        "10-244-1-10.default.pod.cluster.local."
    ) == ResponseCode::NXDomain));
}

#[test]
fn pods_are_not_watched_otherwise() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    assert!(
        !api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods"))
    );
}

#[test]
fn freshness_is_exposed_as_metrics() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&api, &dir, &[]);
    wait_synced(&server);
    let mut with_trigger = slice("nginx-1", "nginx", &[("web-0", "10.244.1.10", true)]);
    let trigger = jiff::Timestamp::now().to_string();
    with_trigger["metadata"]["annotations"] =
        json!({"endpoints.kubernetes.io/last-change-trigger-time": trigger});
    api.apply(with_trigger);
    assert!(eventually(WAIT, || addrs(&server, NGINX).len() == 1));
    let (status, body) = server.http_get("metrics", "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("coredns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"} 1"), "{body}");
    assert!(
        body.contains("cluster_dns_event_to_answer_seconds_count"),
        "{body}"
    );
    assert!(body.contains("cluster_dns_kubernetes_synced 1"), "{body}");
}

/// The successor tests' API: web-0 at 10.9.0.10 (the manifests say 10.244.1.10),
/// with EndpointSlices forbidden until the test lifts it, so a successor cannot
/// sync meanwhile.
fn successor_cluster() -> (FakeApiServer, tempfile::TempDir) {
    let api = FakeApiServer::start();
    api.apply(namespace("default"));
    api.apply(headless("nginx"));
    api.apply(slice("nginx-1", "nginx", &[("web-0", "10.9.0.10", true)]));
    api.forbid("EndpointSlice", true);
    (api, tempfile::tempdir().unwrap())
}

#[test]
fn a_successor_takes_the_sockets_over_only_once_synced() {
    // The running process answers from manifests (web-0 is 10.244.1.10); its
    // successor from the API, where web-0 is 10.9.0.10, so each answer tells
    // which process gave it.
    let (api, dir) = successor_cluster();
    let handover = dir.path().join("handover.sock");
    let handover = handover.to_str().unwrap();
    let example = example_dir();
    let mut first = Server::start(&[
        "--manifests",
        example.to_str().unwrap(),
        "--handover",
        handover,
    ]);
    const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";
    assert_eq!(addrs(&first, WEB0), ["10.244.1.10"]);
    assert!(first.wait_for_log("offering the sockets", WAIT));

    let kubeconfig = api.write_kubeconfig(dir.path());
    let successor_args = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--handover",
        handover,
    ];
    // A successor stopped while it waits for the sync calls the handover off.
    let mut quitter = Server::start_successor(&successor_args, first.addr);
    assert!(
        quitter.wait_for_log("permission denied on endpointslices", WAIT),
        "{}",
        quitter.log()
    );
    let status = quitter.terminate().expect("stops on SIGTERM");
    assert!(status.success());
    assert!(quitter.log().contains("stopped before taking over"));
    assert!(first.wait_for_log("handover abandoned; still serving", WAIT));
    assert_eq!(addrs(&first, WEB0), ["10.244.1.10"]);

    let second = Server::start_successor(&successor_args, first.addr);
    // Not synced: the first keeps answering, no SERVFAIL in between.
    assert!(
        second.wait_for_log("permission denied on endpointslices", WAIT),
        "{}",
        second.log()
    );
    for _ in 0..20 {
        assert_eq!(addrs(&first, WEB0), ["10.244.1.10"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(first.is_running());
    assert!(!first.log().contains("handed over"));

    api.forbid("EndpointSlice", false);
    assert!(
        first.wait_for_log("handed over; idle until SIGTERM", WAIT),
        "{}",
        first.log()
    );
    let status = first.terminate().expect("the idle first process stops");
    assert!(status.success(), "{status:?}");
    assert!(second.log().contains("synced with the API server"));
    assert_eq!(addrs(&second, WEB0), ["10.9.0.10"]);
}

#[test]
fn a_successor_whose_predecessor_dies_while_it_syncs_serves_at_once() {
    let (api, dir) = successor_cluster();
    let handover = dir.path().join("handover.sock");
    let handover = handover.to_str().unwrap();
    let example = example_dir();
    let first = Server::start(&[
        "--manifests",
        example.to_str().unwrap(),
        "--handover",
        handover,
    ]);
    assert!(first.wait_for_log("offering the sockets", WAIT));
    let kubeconfig = api.write_kubeconfig(dir.path());
    let second = Server::start_successor(
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--handover",
            handover,
        ],
        first.addr,
    );
    assert!(second.wait_for_log("permission denied on endpointslices", WAIT));
    std::process::Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status()
        .unwrap();
    // Nobody else reads the sockets now: the successor serves unsynced (SERVFAIL
    // rather than a wrong NXDOMAIN), then the names once synced.
    assert!(
        second.wait_for_log("the previous process stopped before this one synced", WAIT),
        "{}",
        second.log()
    );
    const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";
    assert_eq!(rcode(&second, WEB0), ResponseCode::ServFail);
    api.forbid("EndpointSlice", false);
    wait_synced(&second);
    assert_eq!(addrs(&second, WEB0), ["10.9.0.10"]);
}

/// CoreDNS `endpoint_pod_names`: an endpoint without a hostname is named after
/// its Pod; `noendpoints`: no EndpointSlice is read, yet the index syncs and
/// ClusterIP Services answer.
#[test]
fn endpoint_pod_names_and_noendpoints() {
    let api = FakeApiServer::start();
    api.apply(namespace("default"));
    api.apply(headless("db"));
    api.apply(cluster_ip("front", "10.96.0.40"));
    api.apply(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "db-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.21"], "conditions": {"ready": true},
             "targetRef": {"kind": "Pod", "name": "db-7f9c-x2x", "namespace": "default"}},
            {"addresses": ["10.244.1.22"], "hostname": "primary", "conditions": {"ready": true},
             "targetRef": {"kind": "Pod", "name": "db-7f9c-abc", "namespace": "default"}}
        ]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let named = start(&api, &dir, &["--endpoint-pod-names", "true"]);
    wait_synced(&named);
    assert_eq!(
        addrs(&named, "db-7f9c-x2x.db.default.svc.cluster.local."),
        ["10.244.1.21"]
    );
    assert_eq!(
        addrs(&named, "primary.db.default.svc.cluster.local."),
        ["10.244.1.22"],
        "a hostname wins"
    );
    assert_eq!(
        rcode(&named, "10-244-1-21.db.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    let ptr = named.tcp("21.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdata(&ptr), ["db-7f9c-x2x.db.default.svc.cluster.local."]);
    let plain = start(&api, &dir, &[]);
    wait_synced(&plain);
    assert_eq!(
        addrs(&plain, "10-244-1-21.db.default.svc.cluster.local."),
        ["10.244.1.21"]
    );

    let none = start(&api, &dir, &["--endpoints", "false"]);
    wait_synced(&none);
    assert_eq!(
        addrs(&none, "front.default.svc.cluster.local."),
        ["10.96.0.40"]
    );
    assert_eq!(
        rcode(&none, "db.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    assert_eq!(
        rcode(&none, "primary.db.default.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    let srv = none.udp(
        "_http._tcp.front.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srv.answers.len(),
        1,
        "a ClusterIP Service's SRV needs no endpoint"
    );
}

/// CoreDNS's `kubernetes { endpoint URL }` (from a Corefile) and `--api-server`:
/// the API server reached at that URL without credentials (no kubeconfig, no
/// service account), as behind `kubectl proxy`.
#[test]
fn the_api_server_at_an_endpoint_url() {
    let api = FakeApiServer::start();
    web_cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:53 {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        endpoint {}\n    }}\n    forward . 127.0.0.1:9\n}}\n",
            api.url()
        ),
    )
    .unwrap();
    let server = Server::start(&["--corefile", corefile.to_str().unwrap()]);
    wait_synced(&server);
    assert_eq!(
        addrs(&server, NGINX),
        vec!["10.244.1.10", "10.244.2.11", "10.244.3.12"]
    );
    let by_flag = Server::start(&["--api-server", &api.url()]);
    wait_synced(&by_flag);
    assert_eq!(
        addrs(&by_flag, "web-2.nginx.default.svc.cluster.local."),
        vec!["10.244.3.12"]
    );
    // Not a URL: refused at start, naming the Corefile's line.
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local {\n        endpoint localhost:8080\n    }\n}\n",
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["corefile", "check", corefile.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Corefile:3: endpoint: \"localhost:8080\""),
        "{stderr}"
    );
}

/// CoreDNS's `namespace_labels` (from a Corefile): only namespaces whose labels
/// match are served; a namespace relabelled into or out of the selection comes
/// or goes while the server runs (the watch sees it enter or leave).
#[test]
fn namespace_labels_serve_the_selected_namespaces() {
    let api = FakeApiServer::start();
    let labelled = |name: &str, on: bool| {
        let labels = if on { json!({"dns": "on"}) } else { json!({}) };
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": labels}})
    };
    api.apply(labelled("team", true));
    api.apply(labelled("other", false));
    for (namespace, ip) in [("team", "10.96.2.1"), ("other", "10.96.2.2")] {
        let mut service = cluster_ip("api", ip);
        service["metadata"]["namespace"] = json!(namespace);
        api.apply(service);
    }
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:53 {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        endpoint {}\n        namespace_labels dns=on\n    }}\n    forward . 127.0.0.1:9\n}}\n",
            api.url()
        ),
    )
    .unwrap();
    let server = Server::start(&["--corefile", corefile.to_str().unwrap()]);
    wait_synced(&server);
    assert_eq!(addrs(&server, "api.team.svc.cluster.local."), ["10.96.2.1"]);
    assert_eq!(
        rcode(&server, "api.other.svc.cluster.local."),
        ResponseCode::NXDomain
    );
    let ptr = server.tcp("2.2.96.10.in-addr.arpa.", RecordType::PTR);
    assert!(ptr.answers.is_empty(), "{ptr:?}");
    assert_eq!(
        server
            .udp("other.svc.cluster.local.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain,
        "an unselected namespace does not exist"
    );

    api.apply(labelled("other", true));
    assert!(eventually(WAIT, || addrs(
        &server,
        "api.other.svc.cluster.local."
    ) == ["10.96.2.2"]));
    api.apply(labelled("team", false));
    assert!(eventually(WAIT, || rcode(
        &server,
        "api.team.svc.cluster.local."
    ) == ResponseCode::NXDomain));
    assert_eq!(
        addrs(&server, "api.other.svc.cluster.local."),
        ["10.96.2.2"]
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces?")
                && r.contains("labelSelector=dns%3Don")),
        "the selector is the API server's to apply: {:?}",
        api.requests()
    );
}
