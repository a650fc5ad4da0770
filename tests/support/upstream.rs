//! A scriptable upstream DNS server on 127.0.0.1 (UDP and TCP, same port) for
//! forwarding tests: it answers from a table, can be slow or silent, truncates
//! big answers over UDP, and records what it was asked. It can also lie: send
//! forged or broken replies before the real one, or inject records.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How the upstream treats a name.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// These A records, with this TTL.
    Addresses(Vec<[u8; 4]>, u32),
    /// NXDOMAIN with a SOA (record TTL, minimum).
    NxDomain(u32, u32),
    /// Answer after a delay.
    Slow(Duration, Box<Behaviour>),
    /// Never answer.
    Silent,
    /// These answer, authority and additional records, as they are (the
    /// owners need not be the question: records an attacker injects).
    Records(Vec<Record>, Vec<Record>, Vec<Record>),
    /// Send these forged or broken messages first, then the real reply.
    LieFirst(Vec<Lie>, Box<Behaviour>),
}

/// A message sent before the real reply; each carries the address 6.6.6.6
/// for the question's name, so that accepting it shows in the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// Another message ID.
    WrongId,
    /// Another name in the question.
    WrongName,
    /// Another type in the question.
    WrongType,
    /// Another class in the question (CH).
    WrongClass,
    /// Right ID and question, but sent from another port (a spoofer).
    OtherPort,
    /// The forged reply cut short: it does not parse.
    Cut,
    /// Bytes that are no DNS message at all.
    Garbage,
    /// A query, not a response, with the right ID and question.
    NotResponse,
}

/// The address lies carry.
pub const LIE: [u8; 4] = [6, 6, 6, 6];

/// One message to send back.
struct Out {
    bytes: Vec<u8>,
    /// Sent from a socket of its own instead of the server's port.
    other_port: bool,
}

/// What the upstream saw in one query.
#[derive(Clone, Debug)]
pub struct Seen {
    pub name: String,
    pub tcp: bool,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub dnssec_ok: bool,
    pub has_edns: bool,
}

pub struct Upstream {
    pub addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Behaviour>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start() -> Self {
        // The UDP port's TCP twin may be taken (by a client's ephemeral port):
        // then try another pair.
        let (udp, addr, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let addr = udp.local_addr().ok()?;
                let tcp = TcpListener::bind(addr).ok()?;
                Some((udp, addr, tcp))
            })
            .expect("bind upstream UDP and TCP on one port");
        let upstream = Upstream {
            addr,
            table: Arc::new(Mutex::new(HashMap::new())),
            seen: Arc::new(Mutex::new(Vec::new())),
            silent: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (table, seen, silent, stop) = upstream.shared();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                let request = buf[..len].to_vec();
                let udp = udp.try_clone().unwrap();
                let (table, seen, silent) = (table.clone(), seen.clone(), silent.clone());
                std::thread::spawn(move || {
                    for out in respond(&request, false, &table, &seen, &silent) {
                        if out.other_port {
                            if let Ok(spoofer) = UdpSocket::bind("127.0.0.1:0") {
                                let _ = spoofer.send_to(&out.bytes, from);
                            }
                        } else {
                            let _ = udp.send_to(&out.bytes, from);
                        }
                    }
                });
            }
        });
        let (table, seen, silent, stop) = upstream.shared();
        tcp.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let (table, seen, silent) = (table.clone(), seen.clone(), silent.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut len = [0u8; 2];
                    while stream.read_exact(&mut len).is_ok() {
                        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut body).is_err() {
                            return;
                        }
                        // Over TCP there is no other port to spoof from.
                        for out in respond(&body, true, &table, &seen, &silent)
                            .into_iter()
                            .filter(|out| !out.other_port)
                        {
                            let mut framed = (out.bytes.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&out.bytes);
                            if stream.write_all(&framed).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        upstream
    }

    /// An upstream that speaks only DNS over TLS (RFC 7858), with a fresh
    /// self-signed certificate for `dns.test.example` and 127.0.0.1; returns it
    /// and the certificate in PEM, to trust as the CA.
    pub fn start_tls() -> (Self, String) {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind the TLS upstream");
        let upstream = Upstream {
            addr: tcp.local_addr().unwrap(),
            table: Arc::new(Mutex::new(HashMap::new())),
            seen: Arc::new(Mutex::new(Vec::new())),
            silent: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let certified =
            rcgen::generate_simple_self_signed(vec!["dns.test.example".into(), "127.0.0.1".into()])
                .expect("a self-signed certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("the server's certificate");
        let config = Arc::new(config);
        let (table, seen, silent, stop) = upstream.shared();
        tcp.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(session) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let (table, seen, silent) = (table.clone(), seen.clone(), silent.clone());
                std::thread::spawn(move || {
                    let mut stream = rustls::StreamOwned::new(session, stream);
                    let mut len = [0u8; 2];
                    while stream.read_exact(&mut len).is_ok() {
                        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut body).is_err() {
                            return;
                        }
                        for out in respond(&body, true, &table, &seen, &silent)
                            .into_iter()
                            .filter(|out| !out.other_port)
                        {
                            let mut framed = (out.bytes.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&out.bytes);
                            if stream
                                .write_all(&framed)
                                .and_then(|()| stream.flush())
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (upstream, certified.cert.pem())
    }

    #[allow(clippy::type_complexity)]
    fn shared(
        &self,
    ) -> (
        Arc<Mutex<HashMap<String, Behaviour>>>,
        Arc<Mutex<Vec<Seen>>>,
        Arc<AtomicBool>,
        Arc<AtomicBool>,
    ) {
        (
            self.table.clone(),
            self.seen.clone(),
            self.silent.clone(),
            self.stop.clone(),
        )
    }

    /// How to answer `name` (lower case, fully qualified).
    pub fn set(&self, name: &str, behaviour: Behaviour) {
        self.table
            .lock()
            .unwrap()
            .insert(name.to_ascii_lowercase(), behaviour);
    }

    /// Stop answering anything (a dead resolver).
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.seen().iter().filter(|s| s.name == name).count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(
    bytes: &[u8],
    tcp: bool,
    table: &Mutex<HashMap<String, Behaviour>>,
    seen: &Mutex<Vec<Seen>>,
    silent: &AtomicBool,
) -> Vec<Out> {
    let Ok(request) = Message::from_vec(bytes) else {
        return Vec::new();
    };
    let Some(query) = request.queries.first().cloned() else {
        return Vec::new();
    };
    let name = query.name().to_ascii().to_ascii_lowercase();
    seen.lock().unwrap().push(Seen {
        name: name.clone(),
        tcp,
        recursion_desired: request.metadata.recursion_desired,
        checking_disabled: request.metadata.checking_disabled,
        dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        has_edns: request.edns.is_some(),
    });
    if silent.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let mut behaviour = table
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or(Behaviour::NxDomain(60, 60));
    let mut out = Vec::new();
    loop {
        match behaviour {
            Behaviour::Slow(delay, inner) => {
                std::thread::sleep(delay);
                behaviour = *inner;
            }
            Behaviour::LieFirst(lies, inner) => {
                out.extend(lies.iter().map(|lie| lie_reply(*lie, &request, &query)));
                behaviour = *inner;
            }
            _ => break,
        }
    }
    if let Some(bytes) = reply(behaviour, &request, &query, tcp) {
        out.push(Out {
            bytes,
            other_port: false,
        });
    }
    out
}

fn reply(behaviour: Behaviour, request: &Message, query: &Query, tcp: bool) -> Option<Vec<u8>> {
    let mut reply = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(query.clone());
    match behaviour {
        Behaviour::Addresses(addresses, ttl) => {
            for a in addresses {
                reply.add_answer(Record::from_rdata(
                    query.name().clone(),
                    ttl,
                    RData::A(A::new(a[0], a[1], a[2], a[3])),
                ));
            }
        }
        Behaviour::NxDomain(ttl, minimum) => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            let zone = Name::from_ascii("example.").unwrap();
            let soa = SOA::new(zone.clone(), zone.clone(), 1, 60, 60, 60, minimum);
            reply.add_authority(Record::from_rdata(zone, ttl, RData::SOA(soa)));
        }
        Behaviour::Records(answers, authorities, additionals) => {
            reply.answers = answers;
            reply.authorities = authorities;
            reply.additionals = additionals;
        }
        Behaviour::Silent | Behaviour::Slow(..) | Behaviour::LieFirst(..) => return None,
    }
    let bytes = reply.to_vec().ok()?;
    if !tcp && bytes.len() > 512 {
        // Too big for plain UDP: truncate, as real servers do.
        let mut truncated = Message::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        truncated.metadata.truncation = true;
        truncated.metadata.recursion_available = true;
        truncated.add_query(query.clone());
        return truncated.to_vec().ok();
    }
    Some(bytes)
}

/// A forged reply: the question's name at [`LIE`], bent as `lie` says.
fn lie_reply(lie: Lie, request: &Message, query: &Query) -> Out {
    let mut forged = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    forged.metadata.recursion_available = true;
    let mut asked = query.clone();
    match lie {
        Lie::WrongId => forged.metadata.id = request.metadata.id.wrapping_add(1),
        Lie::WrongName => asked.name = Name::from_ascii("other.example.").unwrap(),
        Lie::WrongType => {
            asked.query_type = if query.query_type() == RecordType::AAAA {
                RecordType::A
            } else {
                RecordType::AAAA
            };
        }
        Lie::WrongClass => asked.query_class = DNSClass::CH,
        Lie::NotResponse => forged.metadata.message_type = MessageType::Query,
        Lie::OtherPort | Lie::Cut | Lie::Garbage => {}
    }
    forged.add_query(asked);
    forged.add_answer(Record::from_rdata(
        query.name().clone(),
        300,
        RData::A(A::new(LIE[0], LIE[1], LIE[2], LIE[3])),
    ));
    let mut bytes = forged.to_vec().unwrap();
    match lie {
        Lie::Cut => bytes.truncate(bytes.len() - 3),
        Lie::Garbage => {
            // The right ID, then noise.
            bytes.truncate(2);
            bytes.extend_from_slice(&[0xff; 40]);
        }
        _ => {}
    }
    Out {
        bytes,
        other_port: lie == Lie::OtherPort,
    }
}
