//! The DNS front end: a hickory-server [`RequestHandler`] over our own index,
//! and the UDP/TCP sockets it serves on.

pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::answer::{self, Answer, ZoneConfig};
use crate::index::SharedSnapshot;

/// Largest UDP reply we send, whatever the client offers (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// A TCP connection that sends nothing for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies queued per TCP connection.
const TCP_RESPONSE_QUEUE: usize = 32;

/// Answers queries from the current snapshot.
pub struct DnsHandler {
    zone: Arc<ZoneConfig>,
    snapshot: SharedSnapshot,
}

impl DnsHandler {
    pub fn new(zone: Arc<ZoneConfig>, snapshot: SharedSnapshot) -> Self {
        DnsHandler { zone, snapshot }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let response_edns = request.edns.as_ref().map(|client| {
            let mut edns = Edns::new();
            edns.set_max_payload(client.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            // RFC 3225: the DO bit is copied into the response.
            edns.set_dnssec_ok(client.flags().dnssec_ok);
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }

        let rcode_only = |code: ResponseCode| {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = code;
            metadata
        };
        let early = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        let result = match (early, request.queries.queries().first()) {
            (None, Some(query)) => {
                let qtype = query.query_type();
                let qname = query.original().name();
                let answer = if query.query_class() != DNSClass::IN
                    || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
                    || !qname.is_fqdn()
                {
                    // Zone transfers and other classes are not served.
                    Answer {
                        rcode: ResponseCode::Refused,
                        ..Answer::default()
                    }
                } else {
                    let snapshot = self.snapshot.load();
                    answer::answer(&self.zone, &snapshot, qname, qtype)
                };
                let mut metadata = rcode_only(answer.rcode);
                metadata.authoritative = answer.authoritative;
                let response = builder.build(
                    metadata,
                    answer.answers.iter(),
                    answer.authority.iter(),
                    std::iter::empty(),
                    answer.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            (code, _) => {
                let metadata = rcode_only(code.unwrap_or(ResponseCode::FormErr));
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
        };
        match result {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "could not send a response");
                let mut metadata = rcode_only(ResponseCode::ServFail);
                metadata.authoritative = false;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// A UDP socket and a TCP listener on the same address.
pub struct Listener {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // So that `[::]:53` and `0.0.0.0:53` can both be listened on.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Binds UDP and TCP on `addr`. With port 0, both get the same free port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
    if addr.port() != 0 {
        return Ok(Listener {
            udp: udp_socket(addr)?,
            tcp: tcp_listener(addr)?,
        });
    }
    let mut last_error = None;
    for _ in 0..20 {
        let udp = udp_socket(addr)?;
        let chosen = udp.local_addr()?;
        match tcp_listener(chosen) {
            Ok(tcp) => return Ok(Listener { udp, tcp }),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Starts serving on the listeners; the returned server runs until shut down.
pub fn start(handler: DnsHandler, listeners: Vec<Listener>) -> hickory_server::Server<DnsHandler> {
    let mut server = hickory_server::Server::new(handler);
    for listener in listeners {
        server.register_socket(listener.udp);
        server.register_listener(listener.tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_QUEUE);
    }
    server
}
