//! CoreDNS's `log` plugin: which answered queries are logged, and the line each
//! becomes (CoreDNS's placeholders, its Common Log Format by default). Pure:
//! the server writes the lines.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

/// CoreDNS's `{common}`.
pub const COMMON_LOG_FORMAT: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}";
/// `minDuration` with no value (CoreDNS's `DefaultMinDuration`).
pub const DEFAULT_MIN_DURATION_MS: u64 = 100;

/// One `log [NAMES...] [FORMAT] { class ...; minDuration ... }` as written (the
/// key `query_logs`): what [`QueryLog::compile`] checks.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLogSpec {
    /// The zones whose names are logged; none means the root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The line's format: placeholders, `{common}` or `{combined}`; none is `{common}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `all`, `success`, `denial`, `error`; none means `all`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Also log answers that took longer than this, whatever their class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_ms: Option<u64>,
}

/// The classes of responses (CoreDNS's `response.Class`), as bits.
const ALL: u8 = 1;
const SUCCESS: u8 = 2;
const DENIAL: u8 = 4;
const ERROR: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Name,
    Class,
    Proto,
    Remote,
    Local,
    Size,
    Port,
    Duration,
    Rcode,
    Rsize,
    Rflags,
    Id,
    Opcode,
    Do,
    Bufsize,
    /// `{/LABEL}`: no `metadata` plugin here, so always CoreDNS's empty value.
    Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug)]
struct Rule {
    scope: Name,
    format: Vec<Piece>,
    classes: u8,
    min_duration: Option<Duration>,
}

/// The compiled rules, in order: a query is logged by the first rule whose
/// zone holds its name, or not at all.
#[derive(Debug, Default)]
pub struct QueryLog {
    rules: Vec<Rule>,
}

/// What one answered query was: the request and the reply as sent, with their
/// sizes, the client, the transport and how long the answer took.
pub struct Exchange<'a> {
    pub request: &'a Message,
    pub request_len: usize,
    pub reply: &'a Message,
    pub reply_len: usize,
    pub remote: SocketAddr,
    pub tcp: bool,
    pub took: Duration,
}

impl QueryLog {
    pub fn compile(specs: &[QueryLogSpec]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for spec in specs {
            let format = parse_format(spec.format.as_deref().unwrap_or("{common}"));
            let mut classes = 0;
            for class in &spec.classes {
                classes |= match class.as_str() {
                    "all" => ALL,
                    "success" => SUCCESS,
                    "denial" => DENIAL,
                    "error" => ERROR,
                    other => {
                        return Err(format!(
                            "invalid class {other:?} (all, success, denial, error)"
                        ));
                    }
                };
            }
            if classes == 0 {
                classes = ALL;
            }
            let min_duration = spec.min_duration_ms.map(Duration::from_millis);
            let names = if spec.names.is_empty() {
                vec![".".to_string()]
            } else {
                spec.names.clone()
            };
            for name in names {
                let scope = crate::config::parse_domain(&name)?;
                rules.push(Rule {
                    scope,
                    format: format.clone(),
                    classes,
                    min_duration,
                });
            }
        }
        Ok(QueryLog { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The line to log for `exchange`, if any: the first rule whose zone holds
    /// the name decides (CoreDNS's `log`), by the reply's class or its duration.
    pub fn line(&self, exchange: &Exchange<'_>) -> Option<String> {
        let name = exchange.request.queries.first().map(|q| q.name())?;
        let rule = self.rules.iter().find(|r| r.scope.zone_of(name))?;
        let class = classify(exchange.request, exchange.reply);
        let slow = rule.min_duration.is_some_and(|min| exchange.took > min);
        (rule.classes & (ALL | class) != 0 || slow).then(|| render(&rule.format, exchange))
    }
}

/// `{common}`, `{combined}`, or placeholders and text. Unknown placeholders
/// stay as written, as in CoreDNS's replacer.
fn parse_format(format: &str) -> Vec<Piece> {
    let format = match format {
        "{common}" => COMMON_LOG_FORMAT.to_string(),
        "{combined}" => format!("{COMMON_LOG_FORMAT} \"{{>opcode}}\""),
        other => other.to_string(),
    };
    let mut pieces = Vec::new();
    let mut rest = format.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|at| open + at) else {
            break;
        };
        let label = &rest[open..=close];
        let field = match label {
            "{type}" => Some(Field::Type),
            "{name}" => Some(Field::Name),
            "{class}" => Some(Field::Class),
            "{proto}" => Some(Field::Proto),
            "{remote}" => Some(Field::Remote),
            "{local}" => Some(Field::Local),
            "{size}" => Some(Field::Size),
            "{port}" => Some(Field::Port),
            "{duration}" => Some(Field::Duration),
            "{rcode}" => Some(Field::Rcode),
            "{rsize}" => Some(Field::Rsize),
            _ if label.starts_with("{/") => Some(Field::Metadata),
            // Header placeholders are case-insensitive.
            _ => match label.to_ascii_lowercase().as_str() {
                "{>rflags}" => Some(Field::Rflags),
                "{>id}" => Some(Field::Id),
                "{>opcode}" => Some(Field::Opcode),
                "{>do}" => Some(Field::Do),
                "{>bufsize}" => Some(Field::Bufsize),
                _ => None,
            },
        };
        match field {
            Some(field) => {
                push_text(&mut pieces, &rest[..open]);
                pieces.push(Piece::Field(field));
            }
            None => push_text(&mut pieces, &rest[..=close]),
        }
        rest = &rest[close + 1..];
    }
    push_text(&mut pieces, rest);
    pieces
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Piece::Text(last)) = pieces.last_mut() {
        last.push_str(text);
    } else {
        pieces.push(Piece::Text(text.to_string()));
    }
}

/// CoreDNS's `response.Typify` then `Classify`: success, denial (NXDOMAIN or
/// NODATA) or error; zone transfers and NOTIFY are of no class but `all`.
fn classify(request: &Message, reply: &Message) -> u8 {
    let transfer = request
        .queries
        .first()
        .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR));
    if transfer || matches!(reply.metadata.op_code, OpCode::Notify | OpCode::Update) {
        return ALL;
    }
    let rcode = reply.metadata.response_code;
    let has = |t: RecordType| reply.authorities.iter().any(|r| r.record_type() == t);
    match rcode {
        ResponseCode::NoError if !reply.answers.is_empty() => SUCCESS,
        ResponseCode::NoError if has(RecordType::SOA) => DENIAL,
        ResponseCode::NXDomain => DENIAL,
        ResponseCode::NoError => SUCCESS,
        _ => ERROR,
    }
}

fn render(format: &[Piece], e: &Exchange<'_>) -> String {
    let mut line = String::with_capacity(160);
    for piece in format {
        match piece {
            Piece::Text(text) => line.push_str(text),
            Piece::Field(field) => line.push_str(&value(*field, e)),
        }
    }
    line
}

fn value(field: Field, e: &Exchange<'_>) -> String {
    let query = e.request.queries.first();
    match field {
        Field::Type => query.map_or_else(|| "-".into(), |q| type_name(q.query_type())),
        Field::Name => query.map_or_else(|| "-".into(), |q| q.name().to_lowercase().to_string()),
        Field::Class => query.map_or_else(|| "-".into(), |q| class_name(q.query_class())),
        Field::Proto => if e.tcp { "tcp" } else { "udp" }.into(),
        Field::Remote => bracketed(e.remote.ip()),
        // The address a datagram was sent to is not kept (no IP_PKTINFO).
        Field::Local | Field::Metadata => "-".into(),
        Field::Size => e.request_len.to_string(),
        Field::Port => e.remote.port().to_string(),
        Field::Duration => go_seconds(e.took),
        Field::Rcode => rcode_name(e.reply.metadata.response_code),
        Field::Rsize => e.reply_len.to_string(),
        Field::Rflags => flags(e.reply),
        Field::Id => e.request.metadata.id.to_string(),
        Field::Opcode => u8::from(e.request.metadata.op_code).to_string(),
        Field::Do => e
            .request
            .edns
            .as_ref()
            .is_some_and(|edns| edns.flags().dnssec_ok)
            .to_string(),
        Field::Bufsize => buffer_size(e).to_string(),
    }
}

/// CoreDNS's `request.Size`: 64 KiB over TCP, else the advertised EDNS size
/// (at least 512), else 512.
fn buffer_size(e: &Exchange<'_>) -> u16 {
    if e.tcp {
        return u16::MAX;
    }
    e.request
        .edns
        .as_ref()
        .map_or(512, |edns| edns.max_payload().max(512))
}

/// As miekg/dns names types: `TYPE65280` for one it does not know.
fn type_name(qtype: RecordType) -> String {
    match qtype {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        known => known.to_string(),
    }
}

fn class_name(class: hickory_proto::rr::DNSClass) -> String {
    use hickory_proto::rr::DNSClass;
    match class {
        DNSClass::IN | DNSClass::CH | DNSClass::HS | DNSClass::NONE | DNSClass::ANY => {
            class.to_string()
        }
        other => format!("CLASS{}", u16::from(other)),
    }
}

fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The set header flags, as CoreDNS lists them: `qr,aa,tc,rd,ra,z,ad,cd`.
fn flags(reply: &Message) -> String {
    let m = &reply.metadata;
    let set = [
        (m.message_type == MessageType::Response, "qr"),
        (m.authoritative, "aa"),
        (m.truncation, "tc"),
        (m.recursion_desired, "rd"),
        (m.recursion_available, "ra"),
        (m.authentic_data, "ad"),
        (m.checking_disabled, "cd"),
    ];
    let names: Vec<&str> = set.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
    names.join(",")
}

/// The rcode's name as miekg/dns spells it, else its number.
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::BADVERS => "BADSIG".into(),
        other => u16::from(other).to_string(),
    }
}

/// Seconds as Go's `strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"`:
/// the shortest decimal that reads back as the same float.
fn go_seconds(took: Duration) -> String {
    format!("{}s", took.as_secs_f64())
}

#[cfg(test)]
#[path = "querylog_tests.rs"]
mod tests;
