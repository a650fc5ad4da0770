#![no_main]
//! A byte stream into the real DNS-over-TCP connection handler (over an
//! in-memory duplex, then EOF). Whatever comes in, the server must not panic,
//! must write only whole length-prefixed DNS responses (QR=1), and at most one
//! per frame it was sent.

use std::sync::{Arc, OnceLock};

use cluster_dns::server::{DnsHandler, tcp};
use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLUSTER: &str = "\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, 'fd00::10'], ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
endpoints: [{addresses: [10.244.0.5]}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: default}
spec: {clusterIP: None, ports: [{name: web, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {name: nginx-a, namespace: default, labels: {kubernetes.io/service-name: nginx}}
ports: [{name: web, port: 80, protocol: TCP}]
endpoints: [{addresses: [10.244.1.10], hostname: web-0}, {addresses: [10.244.2.11], hostname: web-1}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com}
";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    handler: Arc<DnsHandler>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let handler = tcp::handler_for_manifests(CLUSTER).expect("the fixed cluster parses");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Fixture {
            runtime,
            handler: Arc::new(handler),
        }
    })
}

/// Complete frames in `data`, as the server will see them.
fn frames_in(mut data: &[u8]) -> usize {
    let mut count = 0;
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        if data.len() < 2 + len {
            break;
        }
        count += 1;
        data = &data[2 + len..];
    }
    count
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let output = fixture.runtime.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 16);
        let served = tokio::spawn(tcp::serve_stream(server, fixture.handler.clone()));
        // Written from its own task: the server may stop reading (query cap)
        // while the client still has bytes to send.
        let input = data.to_vec();
        let (mut reader, mut writer) = tokio::io::split(client);
        let writing = tokio::spawn(async move {
            let _ = writer.write_all(&input).await;
            let _ = writer.shutdown().await;
        });
        let mut output = Vec::new();
        let _ = reader.read_to_end(&mut output).await;
        let _ = writing.await;
        served.await.expect("the connection task does not panic");
        output
    });
    let mut rest = &output[..];
    let mut replies = 0;
    while !rest.is_empty() {
        assert!(rest.len() >= 2, "a dangling length byte");
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert!(rest.len() >= 2 + len, "a cut-off frame");
        let message = Message::from_vec(&rest[2..2 + len]).expect("a reply parses");
        assert_eq!(message.metadata.message_type, MessageType::Response);
        replies += 1;
        rest = &rest[2 + len..];
    }
    assert!(replies <= frames_in(data), "{replies} replies");
});
