//! Manifests on disk: reloads, broken files, config errors and the zone dump.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const RELOAD_WAIT: Duration = Duration::from_secs(10);

fn headless(name: &str, ips: &[&str]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{clusterIP: None}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nendpoints:\n"
    );
    for ip in ips {
        yaml.push_str(&format!("- addresses: [\"{ip}\"]\n"));
    }
    yaml
}

/// A server over `dir`, polling it every 100 ms.
fn fast_reloading(dir: &Path) -> Server {
    let config = dir.join("cluster-dns.toml");
    std::fs::write(
        &config,
        format!(
            "manifests = {:?}\nmanifests_poll_interval_ms = 100\n",
            dir.join("m")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("m")).unwrap();
    Server::start(&["--config", config.to_str().unwrap()])
}

fn addresses(server: &Server, name: &str) -> Vec<String> {
    rdata(&server.udp(name, RecordType::A))
}

#[test]
fn added_changed_and_removed_files_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    write(&m, "web.yaml", &headless("web", &["10.1.0.1"]));
    let server = fast_reloading(dir.path());
    let web = "web.default.svc.cluster.local.";
    assert_eq!(addresses(&server, web), vec!["10.1.0.1"]);

    // Scale up: a file changes.
    write(&m, "web.yaml", &headless("web", &["10.1.0.1", "10.1.0.2"]));
    assert!(
        eventually(RELOAD_WAIT, || addresses(&server, web).len() == 2),
        "scale up seen"
    );

    // A new file in a subdirectory.
    write(&m, "sub/api.yml", &headless("api", &["10.2.0.1"]));
    assert!(eventually(RELOAD_WAIT, || addresses(
        &server,
        "api.default.svc.cluster.local."
    ) == ["10.2.0.1"]));

    // Removal: the service goes, NXDOMAIN follows.
    std::fs::remove_file(m.join("web.yaml")).unwrap();
    assert!(eventually(RELOAD_WAIT, || {
        server.udp(web, RecordType::A).metadata.response_code == ResponseCode::NXDomain
    }));
    assert_eq!(
        addresses(&server, "api.default.svc.cluster.local."),
        vec!["10.2.0.1"]
    );
}

#[test]
fn a_broken_manifest_is_reported_once_and_the_last_good_records_stay() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    write(&m, "web.yaml", &headless("web", &["10.1.0.1"]));
    let server = fast_reloading(dir.path());
    let web = "web.default.svc.cluster.local.";

    // The second document of a new file is broken; the whole change is held back.
    write(
        &m,
        "broken.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: eighty}]}\n",
    );
    write(&m, "web.yaml", &headless("web", &["10.1.0.9"]));
    assert!(
        server.wait_for_log("broken.yaml: document 2 (line 4): Service:", RELOAD_WAIT),
        "{}",
        server.log()
    );
    assert!(server.log().contains("keeping the last good records"));
    assert_eq!(
        addresses(&server, web),
        vec!["10.1.0.1"],
        "last good records are served"
    );
    // Many polls later, and after an unrelated edit, it has not been logged again.
    let reported = server.log().matches("broken.yaml: document 2").count();
    write(&m, "other.yaml", &headless("other", &["10.3.0.1"]));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        server.log().matches("broken.yaml: document 2").count(),
        reported,
        "reported once, not on every poll or reload"
    );
    assert_eq!(addresses(&server, web), vec!["10.1.0.1"]);

    // Fixing it applies everything.
    std::fs::remove_file(m.join("broken.yaml")).unwrap();
    assert!(eventually(RELOAD_WAIT, || addresses(&server, web) == ["10.1.0.9"]));
}

#[test]
fn a_broken_manifest_at_start_stops_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: [\n",
    );
    let out = run_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--manifests",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml: document 1 (line 1):"),
        "{stderr}"
    );
}

#[test]
fn config_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "ttl = 5\nlisten_on = [\"127.0.0.1:53\"]\n").unwrap();
    let out = run_binary(&["serve", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("config file {}", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `listen_on`"), "{stderr}");

    std::fs::write(&config, "ttl = 99999\n").unwrap();
    let stderr = String::from_utf8_lossy(
        &run_binary(&["serve", "--config", config.to_str().unwrap()]).stderr,
    )
    .to_string();
    assert!(
        stderr.contains("key `ttl`: 99999 is above the maximum of 3600 seconds"),
        "{stderr}"
    );

    // Neither manifests nor a kubeconfig, and not in a pod: say how to proceed.
    let out = run_binary(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not running in a cluster"), "{stderr}");
    assert!(
        stderr.contains("--kubeconfig FILE or --manifests DIR"),
        "{stderr}"
    );
    let missing = dir.path().join("absent-kubeconfig");
    let out = run_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("kubeconfig {}", missing.display())),
        "{stderr}"
    );
}

#[test]
fn the_shipped_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = Server::start(&[
        "--config",
        root.join("config/cluster-dns.toml").to_str().unwrap(),
        "--manifests",
        example_dir().to_str().unwrap(),
    ]);
    assert_eq!(
        rdata(&server.udp("web-2.nginx.default.svc.cluster.local.", RecordType::A)),
        vec!["10.244.3.12"]
    );
}

#[test]
fn zone_dump_lists_what_queries_get() {
    let out = run_binary(&["zone", "--manifests", example_dir().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "; zone cluster.local.");
    assert!(
        lines[1].starts_with(
            "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "
        )
    );
    for expected in [
        "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.10",
        "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 33 80 web-2.nginx.default.svc.cluster.local.",
        "myweb-svc.default.svc.cluster.local. 5 IN AAAA fd00:10:96::13fb",
        "db.shop.svc.cluster.local. 5 IN CNAME db.example.com.",
        "dns-version.cluster.local. 28800 IN TXT \"1.1.0\"",
        "251.19.96.10.in-addr.arpa. 5 IN PTR myweb-svc.default.svc.cluster.local.",
        "10-244-1-10.default.pod.cluster.local. 5 IN A 10.244.1.10",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
    }
    // Each zone's records stay in that zone, sorted after SOA and NS.
    let v6 = lines.iter().position(|l| *l == "; zone ip6.arpa.").unwrap();
    assert!(
        lines[v6..]
            .iter()
            .all(|l| !l.contains("in-addr.arpa. 5 IN PTR"))
    );
    let body: Vec<&str> = lines[3..]
        .iter()
        .take_while(|l| !l.starts_with(';'))
        .copied()
        .collect();
    let mut sorted = body.clone();
    sorted.sort();
    assert_eq!(body, sorted);
}

#[test]
fn the_deploy_configmap_holds_a_valid_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/configmap.yaml")).unwrap();
    let configmap: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    let toml = configmap["data"]["cluster-dns.toml"]
        .as_str()
        .expect("the config key");
    let path = Path::new("deploy/configmap.yaml");
    let file = cluster_dns::config::Options::from_toml(path, toml).expect("valid TOML and keys");
    let settings = cluster_dns::config::Settings::resolve(Some((path, file)), Default::default())
        .expect("valid values");
    assert_eq!(settings.ttl, 30);
    assert_eq!(
        settings.listen,
        vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()],
        "both families, for dual-stack clusters"
    );
    assert_eq!(settings.cache.success_ttl, 30);
    assert_eq!(settings.lameduck, Duration::from_secs(5));
    assert!(
        settings.manifests.is_none(),
        "in a cluster it watches the API"
    );
}

/// Reading and indexing thousands of objects in a debug build on a busy machine.
const BIG_WAIT: Duration = Duration::from_secs(120);

/// One Service as `kubectl get svc -A -o yaml` lists it: about 64 YAML nodes, so
/// 3,906 of them used to exhaust the YAML parser's default node budget.
fn listed_service(i: usize) -> String {
    format!(
        "- apiVersion: v1\n  kind: Service\n  metadata:\n    annotations:\n      \
         kubectl.kubernetes.io/last-applied-configuration: |\n        {{\"kind\":\"Service\"}}\n    \
         creationTimestamp: \"2026-11-30T10:00:00Z\"\n    labels:\n      app: svc-{i}\n      team: payments\n    \
         name: svc-{i}\n    namespace: ns-{ns}\n    resourceVersion: \"{i}\"\n    uid: 0b7c-{i}\n  spec:\n    \
         clusterIP: {ip}\n    clusterIPs:\n    - {ip}\n    internalTrafficPolicy: Cluster\n    ipFamilies:\n    \
         - IPv4\n    ipFamilyPolicy: SingleStack\n    ports:\n    - name: http\n      port: 80\n      \
         protocol: TCP\n      targetPort: 8080\n    selector:\n      app: svc-{i}\n    sessionAffinity: None\n    \
         type: ClusterIP\n  status:\n    loadBalancer: {{}}\n",
        ns = i % 50,
        ip = listed_ip(i),
    )
}

fn listed_ip(i: usize) -> String {
    format!("10.96.{}.{}", i / 250, i % 250 + 1)
}

#[test]
fn lists_of_5000_services_in_yaml_and_json_are_served_whole() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    write(&m, "web.yaml", &headless("web", &["10.1.0.1"]));
    let server = fast_reloading(dir.path());
    let count = 5_000;
    let last = count - 1;

    // What `kubectl get svc -A -o yaml > all.yaml` writes.
    let mut yaml =
        String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for i in 0..count {
        yaml.push_str(&listed_service(i));
    }
    write(&m, "all.yaml", &yaml);
    let name = format!("svc-{last}.ns-{}.svc.cluster.local.", last % 50);
    assert!(
        eventually(BIG_WAIT, || addresses(&server, &name) == [listed_ip(last)]),
        "the last of {count} Services answers; log:\n{}",
        server.log()
    );
    // Read from the server's stderr by another thread: it may trail the answer.
    assert!(
        server.wait_for_log(&format!("objects={}", count + 2), BIG_WAIT),
        "every object loaded:\n{}",
        server.log()
    );

    // The same with `-o json`, next to it under other names.
    let items: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("json-{i}"), "namespace": "j",
                             "labels": {"app": format!("json-{i}")}},
                "spec": {"clusterIP": format!("10.97.{}.{}", i / 250, i % 250 + 1),
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            })
        })
        .collect();
    let json = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    write(&m, "all.json", &json.to_string());
    let name = format!("json-{last}.j.svc.cluster.local.");
    assert!(
        eventually(BIG_WAIT, || addresses(&server, &name) == ["10.97.19.250"]),
        "the last JSON Service answers; log:\n{}",
        server.log()
    );
    // Read from the server's stderr by another thread: it may trail the answer.
    let objects = format!("objects={}", 2 * count + 2);
    assert!(server.wait_for_log(&objects, BIG_WAIT), "{}", server.log());
    assert_eq!(
        addresses(&server, "svc-0.ns-0.svc.cluster.local."),
        ["10.96.0.1"]
    );
}

#[test]
fn a_fifo_among_the_manifests_blocks_neither_start_nor_reloads_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    write(&m, "web.yaml", &headless("web", &["10.1.0.1"]));
    let fifo = m.join("pipe.yaml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());

    // Start-up used to block for ever reading the FIFO, before listening.
    let mut server = fast_reloading(dir.path());
    let web = "web.default.svc.cluster.local.";
    assert_eq!(addresses(&server, web), ["10.1.0.1"]);
    let skipped = format!("{}: not a regular file (a FIFO); skipped", fifo.display());
    assert!(server.log().contains(&skipped), "{}", server.log());

    // A reload used to block for ever too, ignoring every later edit.
    write(&m, "web.yaml", &headless("web", &["10.1.0.2"]));
    assert!(
        eventually(RELOAD_WAIT, || addresses(&server, web) == ["10.1.0.2"]),
        "the edit is served; log:\n{}",
        server.log()
    );
    write(&m, "web.yaml", &headless("web", &["10.1.0.3"]));
    assert!(eventually(RELOAD_WAIT, || addresses(&server, web) == ["10.1.0.3"]));
    assert_eq!(
        server.log().matches(&skipped).count(),
        1,
        "told once, not at every reload:\n{}",
        server.log()
    );

    // And SIGTERM stops it.
    let status = server.terminate().expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.log());
}

#[test]
fn dropped_objects_ignored_values_and_duplicates_are_told_once_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    let long = "a".repeat(300);
    write(
        &m,
        "a.yaml",
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: good}}\nspec: {{clusterIP: 10.96.0.1}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: {long}}}\nspec: {{clusterIP: 10.96.0.2}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: badip}}\nspec: {{clusterIP: 300.1.1.1}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: twice}}\nspec: {{clusterIP: 10.96.0.4}}\n---\n{}",
            headless("hl", &["10.1.0.1", "10.1.0.999"])
        ),
    );
    write(
        &m,
        "z.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: twice}\nspec: {clusterIP: 10.96.0.5}\n",
    );
    let server = fast_reloading(dir.path());
    let a = m.join("a.yaml");
    let z = m.join("z.yaml");
    let expected = [
        format!(
            "{}: document 2 (line 5): Service default/{long}: name is 300 characters long, \
             above the 63 of a DNS label; not served",
            a.display()
        ),
        format!(
            "{}: document 3 (line 10): Service default/badip: spec.clusterIP(s) \"300.1.1.1\" \
             is not an IP address; ignored",
            a.display()
        ),
        format!(
            "{}: document 6 (line 25): EndpointSlice default/hl-1: endpoints[1].addresses \
             \"10.1.0.999\" is not an IP address; ignored",
            a.display()
        ),
        format!(
            "{}: Service default/twice is also defined in {}; this copy is served \
             (the last file in path order wins)",
            z.display(),
            a.display()
        ),
    ];
    let log = server.log();
    for line in &expected {
        assert!(
            log.lines()
                .any(|l| l.contains(" WARN ") && l.contains(line.as_str())),
            "missing warning {line:?} in\n{log}"
        );
    }
    // The valid objects of the same file are served; the later duplicate wins.
    assert_eq!(
        addresses(&server, "good.default.svc.cluster.local."),
        ["10.96.0.1"]
    );
    assert_eq!(
        addresses(&server, "hl.default.svc.cluster.local."),
        ["10.1.0.1"]
    );
    assert_eq!(
        addresses(&server, "twice.default.svc.cluster.local."),
        ["10.96.0.5"]
    );
    let badip = server.udp("badip.default.svc.cluster.local.", RecordType::A);
    assert_eq!(badip.metadata.response_code, ResponseCode::NoError);
    assert!(badip.answers.is_empty(), "no address to give");

    // An unrelated edit reloads everything, but the warnings are not repeated.
    write(&m, "other.yaml", &headless("other", &["10.3.0.1"]));
    assert!(eventually(RELOAD_WAIT, || addresses(
        &server,
        "other.default.svc.cluster.local."
    ) == ["10.3.0.1"]));
    let log = server.log();
    for line in &expected {
        assert_eq!(
            log.matches(line.as_str()).count(),
            1,
            "{line:?} once in\n{log}"
        );
    }
}
