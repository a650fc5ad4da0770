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

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("binary runs")
}

#[test]
fn a_broken_manifest_at_start_stops_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: [\n",
    );
    let out = run(&[
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
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("config file {}", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `listen_on`"), "{stderr}");

    std::fs::write(&config, "ttl = 99999\n").unwrap();
    let stderr =
        String::from_utf8_lossy(&run(&["serve", "--config", config.to_str().unwrap()]).stderr)
            .to_string();
    assert!(
        stderr.contains("key `ttl`: 99999 is above the maximum of 3600 seconds"),
        "{stderr}"
    );

    // Neither manifests nor a kubeconfig, and not in a pod: say how to proceed.
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not running in a cluster"), "{stderr}");
    assert!(
        stderr.contains("--kubeconfig FILE or --manifests DIR"),
        "{stderr}"
    );
    let missing = dir.path().join("absent-kubeconfig");
    let out = run(&[
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
    let out = run(&["zone", "--manifests", example_dir().to_str().unwrap()]);
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
    let file = cluster_dns::config::FileConfig::parse(path, toml).expect("valid TOML and keys");
    let settings = cluster_dns::config::Settings::resolve(Some((path, file)), Default::default())
        .expect("valid values");
    assert_eq!(settings.ttl, 30);
    assert_eq!(
        settings.listen,
        vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()],
        "both families, for dual-stack clusters"
    );
    assert_eq!(settings.cache_ttl, 30);
    assert_eq!(settings.lameduck, Duration::from_secs(5));
    assert!(
        settings.manifests.is_none(),
        "in a cluster it watches the API"
    );
}
