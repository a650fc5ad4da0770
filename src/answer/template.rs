//! CoreDNS's `template` plugin (`plugin/template`): answers made from a
//! question that matches a zone, a class, a type and a regex, written as Go
//! templates of zone-file records. Pure: compiled once from [`TemplateSpec`]s,
//! applied per query.
//!
//! The Go template language is served in the part CoreDNS documents: the fields
//! `.Name`, `.Zone`, `.Class`, `.Type`, `.Remote`, `.Regex`, `.Match`, `.Group`
//! (and `.Group.NAME`), `.Meta "KEY"` (always empty: there is no `metadata`
//! plugin), the functions `index` and `parseInt`, string and number literals,
//! and the `{{-`/`-}}` trim markers. Anything else is refused when the template
//! is compiled, where CoreDNS would accept it and fail per query.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::Answer;

/// CoreDNS's limit on a regex's length (`maxRegexpLen`).
const MAX_PATTERN: usize = 10_000;
/// `dns.NewRR`'s TTL when the record gives none.
const DEFAULT_TTL: u32 = 3600;

/// One `template CLASS TYPE [ZONES...] { ... }`, as written (the key
/// `templates`): what [`Templates::compile`] checks and compiles.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub class: String,
    #[serde(rename = "type")]
    pub qtype: String,
    /// The zones it answers in; none means the root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Regexes on the lower-case, fully qualified name; none means `.*`.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authority: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Zones where a name no regex matches goes on to the next plugin
    /// (empty: every zone); absent: such a name gets SERVFAIL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallthrough: Option<Vec<String>>,
}

/// The compiled templates, in Corefile order.
#[derive(Debug, Default)]
pub struct Templates {
    list: Vec<Template>,
}

#[derive(Debug)]
struct Template {
    /// `None`: ANY.
    class: Option<DNSClass>,
    qtype: Option<RecordType>,
    class_text: String,
    type_text: String,
    zones: Vec<Name>,
    regexes: Vec<Regex>,
    sections: [Vec<Text>; 3],
    rcode: ResponseCode,
    /// `None`: no fallthrough; empty: every name.
    fallthrough: Option<Vec<Name>>,
}

/// A template string: literal text and actions.
#[derive(Debug)]
struct Text {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Literal(String),
    Action(Expr),
}

#[derive(Debug, Clone)]
enum Expr {
    Field(Field),
    Str(String),
    Int(i64),
    Index(Vec<Expr>),
    ParseInt(Vec<Expr>),
    Meta,
}

#[derive(Debug, Clone)]
enum Field {
    Name,
    Zone,
    Class,
    Type,
    Remote,
    Regex,
    Match,
    Group,
    GroupKey(String),
}

/// What a template's action evaluates to.
enum Value {
    Str(String),
    Int(u64),
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

/// What one query's templates make of it.
struct Data<'a> {
    name: &'a str,
    zone: String,
    class: &'a str,
    qtype: String,
    remote: String,
    regex: &'a str,
    matches: Vec<String>,
    groups: Vec<(String, String)>,
}

impl Templates {
    /// Compiles `specs`; errors are CoreDNS's messages (without `plugin/template: `).
    pub fn compile(specs: &[TemplateSpec]) -> Result<Templates, String> {
        let list = specs
            .iter()
            .map(Template::compile)
            .collect::<Result<_, _>>()?;
        Ok(Templates { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The answer of the first template that matches, or `None` for the next
    /// plugin (no template's zone, class and type match, or the ones that do
    /// fall through).
    pub fn answer(
        &self,
        qname: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        remote: IpAddr,
    ) -> Option<Answer> {
        if self.list.is_empty() {
            return None;
        }
        let lower = qname.to_lowercase();
        let name = lower.to_ascii();
        for template in &self.list {
            let Some(zone) = template.zone_of(&lower) else {
                continue;
            };
            if !template.matches_class_and_type(qclass, qtype) {
                continue;
            }
            let found = template
                .regexes
                .iter()
                .find_map(|regex| regex.captures(&name).map(|groups| (regex, groups)));
            let Some((regex, groups)) = found else {
                if template.falls_through(&lower) {
                    continue;
                }
                return Some(Answer::code(ResponseCode::ServFail));
            };
            if template.rcode == ResponseCode::ServFail {
                return Some(Answer::code(ResponseCode::ServFail));
            }
            let data = Data {
                name: &name,
                zone: zone.to_ascii(),
                class: if qclass == DNSClass::ANY {
                    &template.class_text
                } else {
                    class_text(qclass)
                },
                qtype: if qtype == RecordType::ANY {
                    template.type_text.clone()
                } else {
                    qtype.to_string()
                },
                remote: remote.to_string(),
                regex: regex.as_str(),
                matches: (0..groups.len())
                    .map(|i| groups.get(i).map_or("", |m| m.as_str()).to_string())
                    .collect(),
                groups: group_map(regex, &groups),
            };
            return Some(template.render(&data).unwrap_or_else(|error| {
                tracing::debug!(%error, name, "template failed");
                Answer::code(ResponseCode::ServFail)
            }));
        }
        None
    }
}

fn class_text(class: DNSClass) -> &'static str {
    match class {
        DNSClass::IN => "IN",
        DNSClass::CH => "CH",
        DNSClass::HS => "HS",
        DNSClass::NONE => "NONE",
        DNSClass::ANY => "ANY",
        _ => "CLASS",
    }
}

/// `.Group`: every group by number, then the named ones (CoreDNS's order).
fn group_map(regex: &Regex, groups: &regex::Captures<'_>) -> Vec<(String, String)> {
    let text = |i: usize| groups.get(i).map_or("", |m| m.as_str()).to_string();
    let mut map: Vec<(String, String)> = (0..groups.len())
        .map(|i| (i.to_string(), text(i)))
        .collect();
    for (i, name) in regex.capture_names().enumerate() {
        if let Some(name) = name {
            map.push((name.to_string(), text(i)));
        }
    }
    map
}

impl Template {
    fn compile(spec: &TemplateSpec) -> Result<Template, String> {
        let (class, class_text) = match spec.class.as_str() {
            "ANY" => (None, "ANY"),
            "IN" => (Some(DNSClass::IN), "IN"),
            "CH" => (Some(DNSClass::CH), "CH"),
            "HS" => (Some(DNSClass::HS), "HS"),
            "NONE" => (Some(DNSClass::NONE), "NONE"),
            other => return Err(format!("invalid query class {other}")),
        };
        let qtype = match spec.qtype.as_str() {
            "ANY" => None,
            text => match text.parse::<RecordType>() {
                Ok(t)
                    if text == text.to_ascii_uppercase()
                        && !matches!(t, RecordType::Unknown(_)) =>
                {
                    Some(t)
                }
                _ => return Err(format!("invalid RR class {text}")),
            },
        };
        let zones = names(&spec.zones)?;
        let zones = if zones.is_empty() {
            vec![Name::root()]
        } else {
            zones
        };
        let mut regexes = Vec::new();
        for pattern in &spec.matches {
            if pattern.len() > MAX_PATTERN {
                return Err(format!(
                    "regex pattern too long: {} > {MAX_PATTERN}",
                    pattern.len()
                ));
            }
            regexes.push(
                Regex::new(pattern)
                    .map_err(|e| format!("could not parse regex: {pattern}, {e}"))?,
            );
        }
        if regexes.is_empty() {
            regexes.push(Regex::new(".*").map_err(|e| e.to_string())?);
        }
        let texts = |list: &[String], section: &str| -> Result<Vec<Text>, String> {
            list.iter()
                .map(|t| {
                    Text::parse(t).map_err(|e| {
                        format!("could not compile template: {t}, template: {section}: {e}")
                    })
                })
                .collect()
        };
        let rcode = match spec.rcode.as_deref() {
            None => ResponseCode::NoError,
            Some(text) => rcode(text).ok_or_else(|| format!("unknown rcode {text}"))?,
        };
        Ok(Template {
            class,
            qtype,
            class_text: class_text.to_string(),
            type_text: spec.qtype.clone(),
            zones,
            regexes,
            sections: [
                texts(&spec.answer, "answer")?,
                texts(&spec.additional, "additional")?,
                texts(&spec.authority, "authority")?,
            ],
            rcode,
            fallthrough: spec.fallthrough.as_deref().map(names).transpose()?,
        })
    }

    fn zone_of(&self, name: &Name) -> Option<&Name> {
        self.zones
            .iter()
            .filter(|zone| zone.zone_of(name))
            .max_by_key(|zone| zone.num_labels())
    }

    fn matches_class_and_type(&self, qclass: DNSClass, qtype: RecordType) -> bool {
        let class = self.class.is_none_or(|c| c == qclass) || qclass == DNSClass::ANY;
        let qtype_ok = self.qtype.is_none_or(|t| t == qtype) || qtype == RecordType::ANY;
        class && qtype_ok
    }

    fn falls_through(&self, name: &Name) -> bool {
        self.fallthrough
            .as_ref()
            .is_some_and(|zones| zones.is_empty() || zones.iter().any(|zone| zone.zone_of(name)))
    }

    /// The answer: every section's records, rendered and read as zone-file records.
    fn render(&self, data: &Data<'_>) -> Result<Answer, String> {
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (texts, records) in self.sections.iter().zip(sections.iter_mut()) {
            for text in texts {
                records.push(record(&text.render(data)?)?);
            }
        }
        let [answers, additionals, authority] = sections;
        Ok(Answer {
            authoritative: true,
            answers,
            additionals,
            authority,
            ..Answer::code(self.rcode)
        })
    }
}

fn names(list: &[String]) -> Result<Vec<Name>, String> {
    list.iter()
        .map(|text| {
            let mut name =
                Name::from_ascii(text).map_err(|e| format!("invalid zone {text}: {e}"))?;
            name.set_fqdn(true);
            Ok(name.to_lowercase())
        })
        .collect()
}

/// An rcode by its name in miekg/dns (`dns.StringToRcode`).
pub fn rcode(text: &str) -> Option<ResponseCode> {
    Some(match text {
        "NOERROR" => ResponseCode::NoError,
        "FORMERR" => ResponseCode::FormErr,
        "SERVFAIL" => ResponseCode::ServFail,
        "NXDOMAIN" => ResponseCode::NXDomain,
        "NOTIMP" => ResponseCode::NotImp,
        "REFUSED" => ResponseCode::Refused,
        "YXDOMAIN" => ResponseCode::YXDomain,
        "YXRRSET" => ResponseCode::YXRRSet,
        "NXRRSET" => ResponseCode::NXRRSet,
        "NOTAUTH" => ResponseCode::NotAuth,
        "NOTZONE" => ResponseCode::NotZone,
        "BADSIG" | "BADVERS" => ResponseCode::BADVERS,
        "BADKEY" => ResponseCode::BADKEY,
        "BADTIME" => ResponseCode::BADTIME,
        "BADMODE" => ResponseCode::BADMODE,
        "BADNAME" => ResponseCode::BADNAME,
        "BADALG" => ResponseCode::BADALG,
        "BADTRUNC" => ResponseCode::BADTRUNC,
        "BADCOOKIE" => ResponseCode::BADCOOKIE,
        _ => return None,
    })
}

/// One record in zone-file syntax, as `dns.NewRR` reads it: names relative to
/// the root, TTL 3600 and class IN when not given.
fn record(text: &str) -> Result<Record, String> {
    if text.trim().is_empty() {
        return Err("the template made no record".into());
    }
    let zone = format!("$ORIGIN .\n$TTL {DEFAULT_TTL}\n{text}\n");
    let parser = hickory_proto::serialize::txt::Parser::new(zone, None, Some(Name::root()));
    let (_, sets) = parser.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let mut records = sets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    match (records.next(), records.next()) {
        (Some(record), None) => Ok(record),
        _ => Err(format!("{text:?} is not one record")),
    }
}

impl Text {
    fn parse(text: &str) -> Result<Text, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let mut literal = rest[..open].to_string();
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or("unclosed action")?;
            let mut inner = &after[..close];
            if let Some(trimmed) = inner.strip_prefix("- ") {
                literal.truncate(literal.trim_end().len());
                inner = trimmed;
            }
            let mut trim_after = false;
            if let Some(trimmed) = inner.strip_suffix(" -") {
                trim_after = true;
                inner = trimmed;
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(literal));
            }
            parts.push(Part::Action(expression(inner)?));
            rest = &after[close + 2..];
            if trim_after {
                rest = rest.trim_start();
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Text { parts })
    }

    fn render(&self, data: &Data<'_>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Action(expr) => out.push_str(&eval(expr, data)?.to_text()),
            }
        }
        Ok(out)
    }
}

/// The words of an action: bare words, and Go's "quoted" and `raw` strings.
fn words(action: &str) -> Result<Vec<(String, bool)>, String> {
    let mut words = Vec::new();
    let mut chars = action.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '`' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string".into()),
                    Some(end) if end == c => break,
                    Some('\\') if c == '"' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some(other) => word.push(other),
                        None => return Err("unterminated quoted string".into()),
                    },
                    Some(other) => word.push(other),
                }
            }
            words.push((word, true));
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        words.push((word, false));
    }
    Ok(words)
}

const SUPPORTED: &str = "supported: .Name, .Zone, .Class, .Type, .Remote, .Regex, .Match, .Group, .Group.NAME, .Meta \"KEY\", index, parseInt, string and number literals";

/// One action: a field, a literal, or `index`/`parseInt`/`.Meta` with arguments.
fn expression(action: &str) -> Result<Expr, String> {
    let words = words(action)?;
    let Some(((head, quoted), args)) = words.split_first() else {
        return Err("missing value for command".into());
    };
    let args = args
        .iter()
        .map(|(word, quoted)| operand(word, *quoted))
        .collect::<Result<Vec<_>, _>>()?;
    if *quoted {
        return only(Expr::Str(head.clone()), &args);
    }
    match head.as_str() {
        "index" => Ok(Expr::Index(args)),
        "parseInt" => Ok(Expr::ParseInt(args)),
        ".Meta" => Ok(Expr::Meta),
        word if word.starts_with('.') || word.parse::<i64>().is_ok() => {
            only(operand(word, false)?, &args)
        }
        word if word.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            Err(format!("function {word:?} not defined"))
        }
        word => Err(format!("{word:?} is not supported ({SUPPORTED})")),
    }
}

fn only(expr: Expr, args: &[Expr]) -> Result<Expr, String> {
    if args.is_empty() {
        Ok(expr)
    } else {
        Err(format!(
            "pipelines and arguments to a value are not supported ({SUPPORTED})"
        ))
    }
}

fn operand(word: &str, quoted: bool) -> Result<Expr, String> {
    if quoted {
        return Ok(Expr::Str(word.to_string()));
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Expr::Int(n));
    }
    let field = match word {
        ".Name" => Field::Name,
        ".Zone" => Field::Zone,
        ".Class" => Field::Class,
        ".Type" => Field::Type,
        ".Remote" => Field::Remote,
        ".Regex" => Field::Regex,
        ".Match" => Field::Match,
        ".Group" => Field::Group,
        other => match other.strip_prefix(".Group.") {
            Some(key) if !key.is_empty() && !key.contains('.') => Field::GroupKey(key.to_string()),
            _ => return Err(format!("{other} is not supported ({SUPPORTED})")),
        },
    };
    Ok(Expr::Field(field))
}

impl Value {
    fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::List(items) => format!("[{}]", items.join(" ")),
            Value::Map(items) => {
                let mut sorted: Vec<String> =
                    items.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                sorted.sort();
                format!("map[{}]", sorted.join(" "))
            }
        }
    }
}

fn eval(expr: &Expr, data: &Data<'_>) -> Result<Value, String> {
    Ok(match expr {
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Int(n) => Value::Str(n.to_string()),
        Expr::Meta => Value::Str(String::new()),
        Expr::Field(field) => match field {
            Field::Name => Value::Str(data.name.to_string()),
            Field::Zone => Value::Str(data.zone.clone()),
            Field::Class => Value::Str(data.class.to_string()),
            Field::Type => Value::Str(data.qtype.clone()),
            Field::Remote => Value::Str(data.remote.clone()),
            Field::Regex => Value::Str(data.regex.to_string()),
            Field::Match => Value::List(data.matches.clone()),
            Field::Group => Value::Map(data.groups.clone()),
            // Go prints a missing map key as `<no value>`.
            Field::GroupKey(key) => {
                Value::Str(group(data, key).unwrap_or("<no value>").to_string())
            }
        },
        Expr::Index(args) => {
            let [target, key] = &args[..] else {
                return Err("index: wrong number of args".into());
            };
            match (eval(target, data)?, key) {
                (Value::List(items), Expr::Int(i)) => {
                    let item = usize::try_from(*i).ok().and_then(|i| items.get(i));
                    Value::Str(
                        item.ok_or(format!("error calling index: index out of range: {i}"))?
                            .clone(),
                    )
                }
                // A missing key is the zero value, as Go's `index` gives it.
                (Value::Map(_), Expr::Str(key)) => {
                    Value::Str(group(data, key).unwrap_or("").to_string())
                }
                _ => return Err("error calling index: cannot index that".into()),
            }
        }
        Expr::ParseInt(args) => {
            let [text, base, bits] = &args[..] else {
                return Err("parseInt: wrong number of args".into());
            };
            let text = eval(text, data)?.to_text();
            let (Expr::Int(base), Expr::Int(bits)) = (base, bits) else {
                return Err("parseInt: base and bit size are numbers".into());
            };
            let (base, digits) = go_base(*base, &text)?;
            let value = u64::from_str_radix(&digits, base).map_err(|_| {
                format!(
                    "error calling parseInt: strconv.ParseUint: parsing {text:?}: invalid syntax"
                )
            })?;
            // Go's bit size 0 is 64.
            let bits = match u32::try_from(*bits).unwrap_or(64) {
                0 => 64,
                n => n.min(64),
            };
            if bits < 64 && value >> bits != 0 {
                return Err(format!(
                    "error calling parseInt: strconv.ParseUint: parsing {text:?}: value out of range"
                ));
            }
            Value::Int(value)
        }
    })
}

/// `strconv.ParseUint`'s base: 2 to 36, or 0 for the prefix's (`0x`, `0o` or
/// `0`, `0b`; else decimal). The digits to read in it.
fn go_base(base: i64, text: &str) -> Result<(u32, String), String> {
    if base != 0 {
        let base = u32::try_from(base)
            .ok()
            .filter(|b| (2..=36).contains(b))
            .ok_or("parseInt: invalid base")?;
        return Ok((base, text.to_string()));
    }
    let lower = text.to_ascii_lowercase();
    for (prefix, base) in [("0x", 16), ("0b", 2), ("0o", 8)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return Ok((base, rest.to_string()));
        }
    }
    match lower.strip_prefix('0') {
        Some(rest) if !rest.is_empty() => Ok((8, rest.to_string())),
        _ => Ok((10, lower)),
    }
}

fn group<'a>(data: &'a Data<'_>, key: &str) -> Option<&'a str> {
    // Named groups come after the numbered ones and win, as in CoreDNS's map.
    data.groups
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
