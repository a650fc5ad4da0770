//! CoreDNS's `rewrite name` rules (`plugin/rewrite`: `name.go`, `reverter.go`):
//! the question's name is rewritten before anything answers it, and the
//! answer's names are rewritten back on the way out. Pure: parsed once from the
//! rule's words, applied per query.
//!
//! Differences from CoreDNS: the question section always shows the name as
//! asked (CoreDNS leaves it rewritten after a lone `continue` rule with no
//! `answer` option); rule types other than `name` are refused; an `exact` TO
//! need not compile as a regex.

use hickory_proto::rr::{Name, RData, Record};
use regex::Regex;

/// CoreDNS's limit on a pattern's length (`maxRegexpLen`).
const MAX_PATTERN: usize = 10_000;
/// The rule types CoreDNS knows besides `name`; refused by name here.
const OTHER_TYPES: &[&str] = &["class", "type", "edns0", "ttl", "cname", "rcode"];

/// The rules of every `rewrite` directive, in Corefile order.
#[derive(Debug, Default)]
pub struct Rewrites {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    /// `stop` (the default) ends the rules at this one when it matches.
    stop: bool,
    matcher: Matcher,
    /// `answer auto` (always on for `exact`).
    auto: bool,
    /// `answer name`/`answer value` rules, in order.
    answer: Vec<Rewriter>,
}

#[derive(Debug)]
enum Matcher {
    Exact { from: String, to: String },
    Prefix { from: String, to: String },
    Suffix { from: String, to: String },
    Substring { from: String, to: String },
    Regex { pattern: Regex, to: String },
}

/// One rewrite of names in the response.
#[derive(Debug, Clone)]
enum Rewriter {
    /// `answer name|value REGEX TO`: the whole name becomes TO, `{n}` filled in.
    Regex {
        value: bool,
        pattern: Regex,
        to: String,
    },
    /// `answer auto`: the rewritten name (and names under it) back to the original.
    Remap {
        value: bool,
        rewritten: String,
        original: String,
    },
    /// `answer auto` of a `suffix` rule: the suffix TO back to FROM.
    Suffix {
        value: bool,
        to: String,
        from: String,
    },
}

/// A question rewritten by the rules.
#[derive(Debug)]
pub struct Rewritten {
    /// The name to answer; `None` when the rules made an invalid name (SERVFAIL,
    /// as CoreDNS's `invalid name after rewrite`).
    pub name: Option<Name>,
    revert: Vec<Rewriter>,
}

impl Rewrites {
    /// Parses each rule from its words (a `rewrite` directive's arguments, its
    /// block flattened: `stop name suffix .a. .b. answer auto`). Errors are
    /// CoreDNS's messages.
    pub fn parse<S: AsRef<str>>(rules: &[Vec<S>]) -> Result<Rewrites, String> {
        let rules = rules
            .iter()
            .map(|words| {
                let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
                Rule::parse(&words)
            })
            .collect::<Result<_, _>>()?;
        Ok(Rewrites { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The question's name after the rules, or `None` when no rule matched.
    pub fn rewrite(&self, qname: &Name) -> Option<Rewritten> {
        if self.rules.is_empty() {
            return None;
        }
        let mut name = qname.to_lowercase().to_ascii();
        let mut revert = Vec::new();
        let mut matched = false;
        for rule in &self.rules {
            let Some(new) = rule.matcher.apply(&name) else {
                continue;
            };
            matched = true;
            revert.extend(rule.response_rules(&name, &new));
            name = new;
            if rule.stop {
                break;
            }
        }
        matched.then(|| Rewritten {
            name: Name::from_ascii(&name).ok().filter(Name::is_fqdn),
            revert,
        })
    }
}

impl Rewritten {
    /// [`Self::revert`] for every section of an answer.
    pub fn revert_answer(&self, answer: &mut super::Answer) {
        self.revert(&mut answer.answers);
        self.revert(&mut answer.authority);
        self.revert(&mut answer.additionals);
    }

    /// Rewrites the names of every record back, the last rule's rewriters first
    /// (so chained `continue` rules unwind).
    pub fn revert(&self, records: &mut [Record]) {
        if self.revert.is_empty() {
            return;
        }
        for record in records {
            for rewriter in self.revert.iter().rev() {
                rewriter.apply(record);
            }
        }
    }
}

impl Rule {
    fn parse(words: &[&str]) -> Result<Rule, String> {
        let Some(first) = words.first() else {
            return Err("no rule type specified for rewrite".into());
        };
        let (stop, rest) = match first.to_ascii_lowercase().as_str() {
            "stop" => (true, &words[1..]),
            "continue" => (false, &words[1..]),
            _ => (true, words),
        };
        let Some(kind) = rest.first() else {
            return Err(format!(
                "{} rule must begin with a rule type",
                first.to_ascii_lowercase()
            ));
        };
        match kind.to_ascii_lowercase().as_str() {
            "name" => {}
            "answer" => return Err("response rewrites must begin with a name rule".into()),
            other if OTHER_TYPES.contains(&other) => {
                return Err(format!(
                    "rewrite rule type {other} is not supported (supported: name)"
                ));
            }
            other => return Err(format!("invalid rule type {other:?}")),
        }
        // `name FROM TO` is an exact rule; the match type is read only before three words.
        let (kind, from, to, options) = match &rest[1..] {
            [from, to] => ("exact".to_string(), *from, *to, &[][..]),
            [kind, from, to, options @ ..] => (kind.to_ascii_lowercase(), *from, *to, options),
            _ => return Err("too few arguments for a name rule".into()),
        };
        let matcher = match kind.as_str() {
            "exact" => Matcher::Exact {
                from: normalize(from),
                to: normalize(to),
            },
            "prefix" => Matcher::Prefix {
                from: from.to_ascii_lowercase(),
                to: to.to_ascii_lowercase(),
            },
            "suffix" => Matcher::Suffix {
                from: normalize(from),
                to: normalize(to),
            },
            "substring" => Matcher::Substring {
                from: from.to_ascii_lowercase(),
                to: to.to_ascii_lowercase(),
            },
            "regex" => Matcher::Regex {
                pattern: pattern(from, to)?,
                to: normalize(to),
            },
            other => {
                return Err(format!(
                    "name rule supports only exact, prefix, suffix, substring, and regex name matching, received: {other}"
                ));
            }
        };
        let (auto, answer) = if options.is_empty() {
            (false, Vec::new())
        } else {
            answer_rules(&kind, options)?
        };
        Ok(Rule {
            stop,
            auto: auto || kind == "exact",
            matcher,
            answer,
        })
    }

    /// The response rewriters of this rule having turned `before` into `after`.
    fn response_rules(&self, before: &str, after: &str) -> Vec<Rewriter> {
        let mut rules = Vec::new();
        if self.auto {
            for value in [false, true] {
                rules.push(match &self.matcher {
                    Matcher::Suffix { from, to } => Rewriter::Suffix {
                        value,
                        to: to.clone(),
                        from: from.clone(),
                    },
                    _ => Rewriter::Remap {
                        value,
                        rewritten: after.to_string(),
                        original: before.to_string(),
                    },
                });
            }
        }
        rules.extend(self.answer.iter().cloned());
        rules
    }
}

/// `answer auto`, `answer name FROM TO`, `answer value FROM TO`, with the
/// `answer` keyword optional after the first (CoreDNS `parseAnswerRules`).
fn answer_rules(kind: &str, words: &[&str]) -> Result<(bool, Vec<Rewriter>), String> {
    if words.len() < 2 {
        return Err(format!("invalid arguments for {kind} rule"));
    }
    if words[0] != "answer" {
        return Err(format!(
            "exceeded the number of arguments for a non-answer rule argument for {kind} rule"
        ));
    }
    let (mut auto, mut rules, mut named) = (false, Vec::new(), false);
    let mut i = 0;
    while i < words.len() {
        if words[i] == "answer" {
            i += 1;
            if i == words.len() {
                return Err(format!("type missing for answer rule for {kind} rule"));
            }
        }
        match words[i] {
            "auto" => {
                auto = true;
                i += 1;
            }
            which @ ("name" | "value") => {
                let (Some(from), Some(to)) = (words.get(i + 1), words.get(i + 2)) else {
                    return Err(format!(
                        "{which} answer rule for {kind} rule: 2 arguments required"
                    ));
                };
                let pattern = pattern(from, to)
                    .map_err(|e| format!("{which} answer rule for {kind} rule: {e}"))?;
                named |= which == "name";
                rules.push(Rewriter::Regex {
                    value: which == "value",
                    pattern,
                    to: normalize(to),
                });
                i += 3;
            }
            other => {
                return Err(format!(
                    "invalid type {other:?} for answer rule for {kind} rule"
                ));
            }
        }
    }
    if auto && named {
        return Err(
            "auto name answer rule cannot be combined with explicit name answer rules".into(),
        );
    }
    Ok((auto, rules))
}

/// A regex FROM checked as CoreDNS checks it: its length, its syntax, and that
/// TO uses no more `{n}` groups than it has.
fn pattern(from: &str, to: &str) -> Result<Regex, String> {
    if from.len() > MAX_PATTERN {
        return Err(format!(
            "regex pattern too long: {} > {MAX_PATTERN}",
            from.len()
        ));
    }
    let pattern =
        Regex::new(from).map_err(|_| format!("invalid regex matching pattern: {from}"))?;
    let used = (0..=100)
        .filter(|n| to.contains(&format!("{{{n}}}")))
        .count();
    if used > pattern.captures_len() - 1 {
        return Err(format!(
            "the rewrite regex pattern ({to}) uses more subexpressions than its corresponding matching regex pattern ({from})"
        ));
    }
    Ok(pattern)
}

/// Lower case and fully qualified (CoreDNS `plugin.Name(x).Normalize()`).
fn normalize(name: &str) -> String {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

/// `to` with `{0}`, `{1}`... replaced by the groups of `pattern`'s match in
/// `name`; `None` when it does not match.
fn substitute(pattern: &Regex, to: &str, name: &str) -> Option<String> {
    let groups = pattern.captures(name)?;
    let mut out = to.to_string();
    for (n, group) in groups.iter().enumerate() {
        out = out.replace(&format!("{{{n}}}"), group.map_or("", |m| m.as_str()));
    }
    Some(out)
}

impl Matcher {
    /// The rewritten name (lower case, as `name` is), or `None` for no match.
    fn apply(&self, name: &str) -> Option<String> {
        match self {
            Matcher::Exact { from, to } => (name == from).then(|| to.clone()),
            Matcher::Prefix { from, to } => name
                .strip_prefix(from.as_str())
                .map(|rest| format!("{to}{rest}")),
            Matcher::Suffix { from, to } => name
                .strip_suffix(from.as_str())
                .map(|rest| format!("{rest}{to}")),
            Matcher::Substring { from, to } => (!from.is_empty() && name.contains(from.as_str()))
                .then(|| name.replace(from.as_str(), to)),
            Matcher::Regex { pattern, to } => substitute(pattern, to, name),
        }
    }
}

impl Rewriter {
    fn value(&self) -> bool {
        match self {
            Rewriter::Regex { value, .. }
            | Rewriter::Remap { value, .. }
            | Rewriter::Suffix { value, .. } => *value,
        }
    }

    /// The rewritten text of one name, or `None` to leave it.
    fn rewrite(&self, name: &str) -> Option<String> {
        match self {
            Rewriter::Regex { pattern, to, .. } => substitute(pattern, to, name),
            Rewriter::Remap {
                rewritten,
                original,
                ..
            } => {
                let lower = name.to_ascii_lowercase();
                if lower == *rewritten {
                    return Some(original.clone());
                }
                // A name under the rewritten one, on a label boundary.
                let head = lower.strip_suffix(rewritten.as_str())?;
                head.ends_with('.').then(|| format!("{head}{original}"))
            }
            Rewriter::Suffix { to, from, .. } => {
                let lower = name.to_ascii_lowercase();
                lower
                    .strip_suffix(to.as_str())
                    .map(|head| format!("{head}{from}"))
            }
        }
    }

    fn rewrite_name(&self, name: &mut Name) {
        let text = name.to_ascii();
        if let Some(new) = self.rewrite(&text)
            && new != text
            && let Ok(parsed) = Name::from_ascii(&new)
            && parsed.is_fqdn()
        {
            *name = parsed;
        }
    }

    /// The record's owner (a name rewriter) or the name in its data (a value
    /// rewriter: CNAME, NS, PTR, MX, SRV targets and the SOA's MNAME, as CoreDNS).
    fn apply(&self, record: &mut Record) {
        if !self.value() {
            self.rewrite_name(&mut record.name);
            return;
        }
        match &mut record.data {
            RData::CNAME(name) => self.rewrite_name(&mut name.0),
            RData::NS(name) => self.rewrite_name(&mut name.0),
            RData::PTR(name) => self.rewrite_name(&mut name.0),
            RData::MX(mx) => self.rewrite_name(&mut mx.exchange),
            RData::SRV(srv) => self.rewrite_name(&mut srv.target),
            RData::SOA(soa) => self.rewrite_name(&mut soa.mname),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
