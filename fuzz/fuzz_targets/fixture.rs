//! The fixed cluster the DNS fuzz targets answer from, built through the same
//! functions the server uses (manifest parser, index writer, zone config, handler),
//! and the property every reply must have.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use cluster_dns::answer::{PodsMode, ZoneConfig};
use cluster_dns::forward::{Forwarding, LoopProbe};
use cluster_dns::index::IndexWriter;
use cluster_dns::metrics::Metrics;
use cluster_dns::server::fast::Fast;
use cluster_dns::server::{DnsHandler, HandlerParts};
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::Name;

/// Services of every kind: ClusterIP (dual-stack, with ports), headless with
/// hostnames and without, empty, ExternalName in and out of the zone, and one
/// with more addresses than fit in 512 bytes.
pub fn cluster_yaml() -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
         spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, 'fd00::10'], ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
         metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}\n\
         ports: [{name: http, port: 8080}]\n\
         endpoints: [{addresses: [10.244.0.5]}]\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\nspec: {clusterIP: 10.96.0.11}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: nginx, namespace: default}\nspec: {clusterIP: None, ports: [{name: web, port: 80}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
         metadata: {name: nginx-a, namespace: default, labels: {kubernetes.io/service-name: nginx}}\n\
         ports: [{name: web, port: 80}]\n\
         endpoints: [{addresses: [10.244.1.10], hostname: web-0}, {addresses: [10.244.2.11], hostname: web-1},\n\
         {addresses: [10.244.3.12]}, {addresses: [10.244.3.13], hostname: web-1, conditions: {ready: false}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv6\n\
         metadata: {name: nginx-b, namespace: default, labels: {kubernetes.io/service-name: nginx}}\n\
         endpoints: [{addresses: ['fd00::12']}, {addresses: ['fd00::13'], hostname: web-0}]\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: lonely, namespace: default}\nspec: {clusterIP: None}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\n\
         spec: {type: ExternalName, externalName: example.com}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: alias, namespace: shop}\n\
         spec: {type: ExternalName, externalName: web.default.svc.cluster.local}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\nspec: {clusterIP: None}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
         metadata: {name: big-a, namespace: default, labels: {kubernetes.io/service-name: big}}\nendpoints:\n",
    );
    for i in 0..40 {
        let _ = writeln!(yaml, "- {{addresses: [10.245.0.{i}]}}");
    }
    yaml
}

/// Names of the cluster and around it, for structured targets to start from.
pub const NAMES: &[&str] = &[
    "web.default.svc.cluster.local.",
    "empty.default.svc.cluster.local.",
    "nginx.default.svc.cluster.local.",
    "web-0.nginx.default.svc.cluster.local.",
    "web-1.nginx.default.svc.cluster.local.",
    "10-244-3-12.nginx.default.svc.cluster.local.",
    "fd00--12.nginx.default.svc.cluster.local.",
    "10-244-0-5.web.default.svc.cluster.local.",
    "lonely.default.svc.cluster.local.",
    "ext.default.svc.cluster.local.",
    "alias.shop.svc.cluster.local.",
    "big.default.svc.cluster.local.",
    "_http._tcp.web.default.svc.cluster.local.",
    "_dns._udp.web.default.svc.cluster.local.",
    "_web._tcp.nginx.default.svc.cluster.local.",
    "missing.default.svc.cluster.local.",
    "default.svc.cluster.local.",
    "svc.cluster.local.",
    "cluster.local.",
    "dns-version.cluster.local.",
    "10-0-0-1.default.pod.cluster.local.",
    "10.0.96.10.in-addr.arpa.",
    "10.1.244.10.in-addr.arpa.",
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
    "in-addr.arpa.",
    "example.com.",
];

/// The handler every target query goes to (no forwarding: nothing leaves the process).
pub fn handler() -> &'static DnsHandler {
    static HANDLER: OnceLock<DnsHandler> = OnceLock::new();
    HANDLER.get_or_init(|| build(Arc::new(ArcSwap::from_pointee(None))))
}

/// The same cluster behind a handler that forwards (to a port nobody listens
/// on), and the handle through which a target swaps in the cache it filled.
#[allow(dead_code)]
pub fn forwarding_handler() -> &'static (DnsHandler, Arc<ArcSwap<Option<Forwarding>>>) {
    static HANDLER: OnceLock<(DnsHandler, Arc<ArcSwap<Option<Forwarding>>>)> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let forwarding = Arc::new(ArcSwap::from_pointee(None));
        (build(forwarding.clone()), forwarding)
    })
}

fn build(forwarding: Arc<ArcSwap<Option<Forwarding>>>) -> DnsHandler {
    let objects = cluster_dns::source::manifests::parse_file(
        std::path::Path::new("fuzz.yaml"),
        &cluster_yaml(),
    )
    .expect("the fuzz cluster parses");
    let snapshot = IndexWriter::from_objects(objects).snapshot();
    let zones = [Name::from_ascii("cluster.local.").expect("a name")];
    let zone = ZoneConfig::new(&zones, 5, PodsMode::Insecure);
    DnsHandler::new(HandlerParts {
        zone: Arc::new(ArcSwap::from_pointee(zone)),
        snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
        forwarding,
        metrics: Arc::new(Metrics::new()),
        server_label: "dns://:53".into(),
        loadbalance: false,
        loop_probe: Arc::new(LoopProbe::new()),
        in_flight: Arc::new(AtomicUsize::new(0)),
    })
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

pub const SRC: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5300);

/// What the UDP front end sends back for a datagram: the fast path, or the async
/// handler when the fast path passes it on.
pub fn udp_reply(packet: &[u8]) -> Option<Vec<u8>> {
    let handler = handler();
    let mut out = Vec::new();
    match handler.answer_fast(packet, SRC, &mut out) {
        Fast::Reply => Some(out),
        Fast::Drop => None,
        Fast::Slow => runtime().block_on(handler.answer_slow(packet.to_vec(), SRC)),
    }
}

/// Every UDP reply: decodes, is a response, echoes the ID and the question (the
/// decoded name, case kept), and fits the size the query allows.
pub fn check_udp_reply(query: &[u8], reply: &[u8]) {
    assert!(
        query.len() >= 12,
        "no reply to a datagram shorter than a header"
    );
    assert_eq!(query[2] & 0x80, 0, "a response was answered");
    let message = Message::from_vec(reply).expect("the reply decodes");
    assert_eq!(message.metadata.message_type, MessageType::Response);
    assert_eq!(reply[..2], query[..2], "the ID is echoed");
    let asked = Message::from_vec(query).ok();
    let limit = asked
        .as_ref()
        .and_then(|m| m.edns.as_ref())
        .map_or(512, |e| usize::from(e.max_payload().clamp(512, 1232)));
    assert!(
        reply.len() <= limit,
        "{} bytes over a limit of {limit}",
        reply.len()
    );
    if let Some(question) = message.queries.first() {
        let asked = asked.expect("a question is echoed only from a query that decodes");
        let original = asked.queries.first().expect("the query had a question");
        assert_eq!(message.queries.len(), 1);
        assert_eq!(
            question.name().to_ascii(),
            original.name().to_ascii(),
            "the name, case kept"
        );
        assert_eq!(question.query_type(), original.query_type());
        assert_eq!(question.query_class(), original.query_class());
    }
}
