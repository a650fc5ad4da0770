use super::*;
use crate::cluster::{EndpointInfo, Kind, ObjectRef};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn port(name: Option<&str>, number: u16) -> PortInfo {
    PortInfo {
        name: name.map(Into::into),
        protocol: "tcp".into(),
        port: number,
    }
}

fn service(ns: &str, name: &str, kind: ServiceKind) -> ServiceInfo {
    ServiceInfo {
        namespace: ns.into(),
        name: name.into(),
        kind,
        ports: vec![port(Some("http"), 80)],
        external: Vec::new(),
    }
}

fn slice(
    ns: &str,
    name: &str,
    svc: Option<&str>,
    eps: &[(&str, Option<&str>)],
) -> EndpointSliceInfo {
    EndpointSliceInfo {
        namespace: ns.into(),
        name: name.into(),
        service: svc.map(Into::into),
        endpoints: eps
            .iter()
            .map(|(addr, host)| EndpointInfo {
                hostname: host.map(Into::into),
                ip: ip(addr),
                pod: None,
            })
            .collect(),
        ports: vec![port(Some("http"), 8080)].into(),
    }
}

#[test]
fn slices_of_a_service_merge_in_name_order_without_duplicates() {
    let mut w = IndexWriter::new();
    w.upsert_service(service("ns", "web", ServiceKind::Headless));
    w.upsert_slice(slice(
        "ns",
        "web-b",
        Some("web"),
        &[("fd00::2", Some("web-1"))],
    ));
    w.upsert_slice(slice(
        "ns",
        "web-a",
        Some("web"),
        &[("10.0.0.1", Some("web-0")), ("10.0.0.2", None)],
    ));
    w.upsert_slice(slice(
        "ns",
        "web-c",
        Some("web"),
        &[("10.0.0.1", Some("web-0"))],
    ));
    let snap = w.snapshot();
    let records = snap.service("web.ns").expect("service indexed");
    let got: Vec<(String, IpAddr)> = records
        .endpoints
        .iter()
        .map(|e| (e.label().into_owned(), e.ip))
        .collect();
    assert_eq!(
        got,
        vec![
            ("web-0".to_string(), ip("10.0.0.1")),
            ("10-0-0-2".to_string(), ip("10.0.0.2")),
            ("web-1".to_string(), ip("fd00::2"))
        ]
    );
    assert_eq!(records.endpoints[0].ports[0].port, 8080);
}

#[test]
fn a_slice_seen_before_its_service_is_used_when_the_service_arrives() {
    let mut w = IndexWriter::new();
    w.upsert_slice(slice("ns", "s1", Some("web"), &[("10.0.0.1", None)]));
    assert!(w.snapshot().service("web.ns").is_none());
    assert!(
        w.snapshot().namespace_exists("ns"),
        "a slice implies its namespace"
    );
    w.upsert_service(service("ns", "web", ServiceKind::Headless));
    assert_eq!(w.snapshot().service("web.ns").unwrap().endpoints.len(), 1);
}

#[test]
fn relabelled_and_removed_slices_move_their_endpoints() {
    let mut w = IndexWriter::new();
    w.upsert_service(service("ns", "a", ServiceKind::Headless));
    w.upsert_service(service("ns", "b", ServiceKind::Headless));
    w.upsert_slice(slice("ns", "s", Some("a"), &[("10.0.0.1", None)]));
    assert_eq!(
        w.snapshot().ptr_targets(&ip("10.0.0.1"))[0].relative(ip("10.0.0.1")),
        "10-0-0-1.a.ns"
    );
    w.upsert_slice(slice("ns", "s", Some("b"), &[("10.0.0.1", None)]));
    let snap = w.snapshot();
    assert!(snap.service("a.ns").unwrap().endpoints.is_empty());
    assert_eq!(snap.service("b.ns").unwrap().endpoints.len(), 1);
    assert_eq!(snap.ptr_targets(&ip("10.0.0.1")).len(), 1);
    assert_eq!(
        snap.ptr_targets(&ip("10.0.0.1"))[0].relative(ip("10.0.0.1")),
        "10-0-0-1.b.ns"
    );
    w.remove_slice("ns", "s");
    let snap = w.snapshot();
    assert!(snap.service("b.ns").unwrap().endpoints.is_empty());
    assert!(snap.ptr_targets(&ip("10.0.0.1")).is_empty());
}

#[test]
fn ptr_owners_list_cluster_ips_first_and_follow_removal() {
    let mut w = IndexWriter::new();
    w.upsert_service(service("ns", "z-headless", ServiceKind::Headless));
    w.upsert_slice(slice("ns", "h", Some("z-headless"), &[("10.0.0.9", None)]));
    w.upsert_service(service(
        "ns",
        "a-cluster",
        ServiceKind::ClusterIp(vec![ip("10.0.0.9")]),
    ));
    let snap = w.snapshot();
    let owners = snap.ptr_targets(&ip("10.0.0.9"));
    assert_eq!(owners.len(), 2);
    assert!(!owners[0].is_endpoint, "the ClusterIP owner comes first");
    w.remove_service("ns", "a-cluster");
    let snap = w.snapshot();
    assert_eq!(snap.ptr_targets(&ip("10.0.0.9")).len(), 1);
    assert!(snap.ptr_targets(&ip("10.0.0.9"))[0].is_endpoint);
}

#[test]
fn namespaces_exist_while_declared_or_populated() {
    let mut w = IndexWriter::new();
    w.upsert_namespace("empty".into());
    w.upsert_service(service("busy", "web", ServiceKind::ClusterIp(vec![])));
    let snap = w.snapshot();
    assert!(snap.namespace_exists("empty"));
    assert!(snap.namespace_exists("busy"));
    w.remove_service("busy", "web");
    w.remove_namespace("empty");
    let snap = w.snapshot();
    assert!(!snap.namespace_exists("busy"));
    assert!(!snap.namespace_exists("empty"));
}

#[test]
fn pods_are_indexed_by_address_and_namespace() {
    let mut w = IndexWriter::new();
    let pod = PodInfo {
        namespace: "ns".into(),
        name: "p".into(),
        ips: vec![ip("10.1.0.5")],
    };
    w.upsert_pod(pod.clone());
    assert!(w.snapshot().pod_exists("ns", &ip("10.1.0.5")));
    assert!(!w.snapshot().pod_exists("other", &ip("10.1.0.5")));
    w.upsert_pod(PodInfo {
        ips: vec![ip("10.1.0.6")],
        ..pod
    });
    assert!(
        !w.snapshot().pod_exists("ns", &ip("10.1.0.5")),
        "a pod's old address goes"
    );
    w.remove_pod("ns", "p");
    assert!(!w.snapshot().pod_exists("ns", &ip("10.1.0.6")));
}

#[test]
fn published_snapshots_do_not_change_and_serials_grow() {
    let mut w = IndexWriter::new();
    w.upsert_service(service(
        "ns",
        "web",
        ServiceKind::ClusterIp(vec![ip("10.96.0.1")]),
    ));
    let before = w.snapshot();
    w.remove_service("ns", "web");
    let after = w.snapshot();
    assert!(
        before.service("web.ns").is_some(),
        "readers keep what they loaded"
    );
    assert!(after.service("web.ns").is_none());
    assert!(after.serial > before.serial);
    let same = w.snapshot();
    assert_eq!(same.serial, after.serial, "no change, no new serial");
}

#[test]
fn a_relist_keeps_serving_and_sweeps_what_it_did_not_bring_back() {
    let mut w = IndexWriter::awaiting([Kind::Service, Kind::EndpointSlice]);
    w.begin_relist(Kind::Service);
    w.apply(ClusterObject::Service(service(
        "ns",
        "a",
        ServiceKind::Headless,
    )));
    w.apply(ClusterObject::Service(service(
        "ns",
        "b",
        ServiceKind::Headless,
    )));
    w.finish_relist(Kind::Service);
    assert!(!w.snapshot().synced, "slices are not listed yet");
    w.begin_relist(Kind::EndpointSlice);
    w.apply(ClusterObject::EndpointSlice(slice(
        "ns",
        "s",
        Some("a"),
        &[("10.0.0.1", None)],
    )));
    w.finish_relist(Kind::EndpointSlice);
    assert!(w.snapshot().synced);

    // Reconnect: only `a` comes back. Until the list completes, both are served.
    w.begin_relist(Kind::Service);
    w.apply(ClusterObject::Service(service(
        "ns",
        "a",
        ServiceKind::Headless,
    )));
    let during = w.snapshot();
    assert!(during.service("a.ns").is_some() && during.service("b.ns").is_some());
    assert_eq!(during.service("a.ns").unwrap().endpoints.len(), 1);
    w.finish_relist(Kind::Service);
    let after = w.snapshot();
    assert!(after.service("a.ns").is_some());
    assert!(after.service("b.ns").is_none(), "swept");
    assert!(after.synced, "stays synced through later relists");

    // A slice relist that comes back empty removes the endpoints.
    w.begin_relist(Kind::EndpointSlice);
    w.finish_relist(Kind::EndpointSlice);
    assert!(w.snapshot().service("a.ns").unwrap().endpoints.is_empty());
}

#[test]
fn deletes_by_reference() {
    let mut w = IndexWriter::new();
    w.apply(ClusterObject::Namespace("team".into()));
    w.apply(ClusterObject::Service(service(
        "team",
        "a",
        ServiceKind::Headless,
    )));
    w.delete(&ObjectRef {
        kind: Kind::Service,
        namespace: "team".into(),
        name: "a".into(),
    });
    assert!(w.snapshot().service("a.team").is_none());
    assert!(w.snapshot().namespace_exists("team"));
    w.delete(&ObjectRef {
        kind: Kind::Namespace,
        namespace: "team".into(),
        name: "team".into(),
    });
    assert!(!w.snapshot().namespace_exists("team"));
}

#[test]
fn endpoints_are_found_by_hostname_or_by_canonical_dashed_address() {
    let mut w = IndexWriter::new();
    w.upsert_service(service("ns", "web", ServiceKind::Headless));
    w.upsert_slice(slice(
        "ns",
        "web-a",
        Some("web"),
        &[
            ("10.0.0.3", Some("web-1")),
            ("10.0.0.1", Some("web-0")),
            ("10.0.0.2", None),
            ("fd00::2", None),
            ("10.0.0.4", Some("web-1")),
            ("::ffff:10.0.0.7", None),
            ("10.0.0.8", Some("10-0-0-8")),
            ("10.0.0.8", None),
        ],
    ));
    let snap = w.snapshot();
    let records = snap.service("web.ns").expect("indexed");
    let found = |label: &str| -> Vec<IpAddr> {
        records
            .endpoints_named(label.as_bytes())
            .map(|e| e.ip)
            .collect()
    };
    assert_eq!(found("web-0"), vec![ip("10.0.0.1")]);
    assert_eq!(found("WEB-0"), vec![ip("10.0.0.1")], "any case");
    assert_eq!(found("web-1"), vec![ip("10.0.0.3"), ip("10.0.0.4")]);
    assert_eq!(found("10-0-0-2"), vec![ip("10.0.0.2")]);
    assert_eq!(found("fd00--2"), vec![ip("fd00::2")]);
    assert_eq!(found("--ffff-10-0-0-7"), vec![ip("::ffff:10.0.0.7")]);
    assert_eq!(
        found("10-0-0-8"),
        vec![ip("10.0.0.8")],
        "a hostname spelling its own address is one endpoint, not two"
    );
    assert!(
        found("10-0-0-1").is_empty(),
        "a named endpoint answers to its name only"
    );
    assert!(found("010-0-0-2").is_empty(), "one spelling per address");
    assert!(found("fd00-0-0-0-0-0-0-2").is_empty());
    assert!(found("web-2").is_empty());
    assert!(found(&"x".repeat(70)).is_empty());
}

/// `namespace_labels`: only namespaces applied as objects (those the selector
/// picks) are served; their services, PTRs and pods come and go with them, and
/// nothing of the rest is lost meanwhile.
#[test]
fn the_namespace_gate_serves_selected_namespaces_only() {
    let mut w = IndexWriter::new().with_namespace_gate();
    let cluster_ip = || ServiceKind::ClusterIp(vec![ip("10.96.0.9")]);
    w.upsert_service(service("team", "api", cluster_ip()));
    w.upsert_slice(slice("team", "api-1", Some("api"), &[("10.244.0.9", None)]));
    w.upsert_pod(PodInfo {
        namespace: "team".into(),
        name: "api-0".into(),
        ips: vec![ip("10.244.0.9")],
    });
    let hidden = w.snapshot();
    assert!(hidden.service("api.team").is_none());
    assert!(!hidden.namespace_exists("team"), "not selected: not there");
    assert!(hidden.ptr_targets(&ip("10.96.0.9")).is_empty());
    assert!(!hidden.pod_exists("team", &ip("10.244.0.9")));

    w.apply(ClusterObject::Namespace("team".into()));
    let shown = w.snapshot();
    assert_eq!(
        &*shown.service("api.team").unwrap().addresses,
        [ip("10.96.0.9")]
    );
    assert!(shown.namespace_exists("team"));
    assert_eq!(shown.ptr_targets(&ip("10.96.0.9")).len(), 1);
    assert!(shown.pod_exists("team", &ip("10.244.0.9")));
    // A pod replaced while shown, then the namespace leaves the selection.
    w.upsert_pod(PodInfo {
        namespace: "team".into(),
        name: "api-0".into(),
        ips: vec![ip("10.244.0.10")],
    });
    w.remove_namespace("team");
    let gone = w.snapshot();
    assert!(gone.service("api.team").is_none());
    assert!(!gone.namespace_exists("team"));
    assert!(gone.ptr_targets(&ip("10.96.0.9")).is_empty());
    assert!(!gone.pod_exists("team", &ip("10.244.0.10")));
    assert_eq!(gone.pod_entries().count(), 0);
    // Changes while hidden are kept for when it comes back.
    w.remove_pod("team", "api-0");
    w.upsert_service(service("team", "web", cluster_ip()));
    w.apply(ClusterObject::Namespace("team".into()));
    let back = w.snapshot();
    assert!(back.service("web.team").is_some() && back.service("api.team").is_some());
    assert_eq!(back.pod_entries().count(), 0);

    // Without the gate a namespace exists while anything lives in it.
    let mut open = IndexWriter::new();
    open.upsert_service(service("team", "api", cluster_ip()));
    assert!(open.snapshot().namespace_exists("team"));
}
