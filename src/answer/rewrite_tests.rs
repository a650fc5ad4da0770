//! Cases ported from CoreDNS `plugin/rewrite`: `name_test.go` (N), `rewrite_test.go`
//! (R), `reverter_test.go` (V), `setup_test.go` (S) and `partial_test.go` (P).
//! CoreDNS's harness answers the rewritten question with `A 10.0.0.1` owned by
//! it; `answered` does the same and reverts it.

use super::*;
use hickory_proto::rr::rdata::{A, CNAME, MX, NS, SOA, SRV};

fn rules(rules: &[&str]) -> Result<Rewrites, String> {
    let words: Vec<Vec<&str>> = rules
        .iter()
        .map(|r| r.split_whitespace().collect())
        .collect();
    Rewrites::parse(&words)
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// The name passed on (`F` in the tables); the query's own when nothing matched.
fn forwarded(rule_set: &[&str], query: &str) -> String {
    let rewrites = rules(rule_set).unwrap();
    match rewrites.rewrite(&name(query)) {
        Some(rewritten) => rewritten.name.expect("a valid name").to_ascii(),
        None => query.to_string(),
    }
}

/// The owner of the answer to the rewritten question, reverted (`A`).
fn answered(rule_set: &[&str], query: &str) -> String {
    let rewrites = rules(rule_set).unwrap();
    let Some(rewritten) = rewrites.rewrite(&name(query)) else {
        return query.to_string();
    };
    let owner = rewritten.name.clone().expect("a valid name");
    let mut records = [Record::from_rdata(owner, 60, RData::A(A::new(10, 0, 0, 1)))];
    rewritten.revert(&mut records);
    records[0].name.to_ascii()
}

fn error(rule_set: &[&str]) -> String {
    rules(rule_set).expect_err("refused")
}

#[test]
fn request_names_by_match_type() {
    // N 2-4, 61-63 (P): prefix, suffix and substring are string operations, case-insensitive.
    let cases: &[(&str, &str, &str)] = &[
        (
            "stop name prefix foo bar",
            "foo.example.com.",
            "bar.example.com.",
        ),
        (
            "name prefix foo. bar.",
            "foo.example.com.",
            "bar.example.com.",
        ),
        (
            "name suffix com org",
            "foo.example.com.",
            "foo.example.org.",
        ),
        (
            "name suffix .com .org",
            "foo.example.com.",
            "foo.example.org.",
        ),
        (
            "stop name prefix API- SVC-",
            "api-prod.example.",
            "svc-prod.example.",
        ),
        (
            "stop name substring -API- -SVC-",
            "my-api-prod.example.",
            "my-svc-prod.example.",
        ),
        (
            "name prefix API. SVC-",
            "api.prod.example.",
            "svc-prod.example.",
        ),
        (
            "name substring API. SVC-",
            "my.api.prod.example.",
            "my.svc-prod.example.",
        ),
        (
            "name prefix API. SVC.",
            "api.prod.example.",
            "svc.prod.example.",
        ),
        (
            "name substring API. SVC.",
            "my.api.prod.example.",
            "my.svc.prod.example.",
        ),
        (
            "name exact API.PROD.EXAMPLE SVC.PROD.EXAMPLE",
            "api.prod.example.",
            "svc.prod.example.",
        ),
        (
            "name suffix PROD.EXAMPLE STAGING.EXAMPLE",
            "api.prod.example.",
            "api.staging.example.",
        ),
        // Matching is on the lower-cased name.
        (
            "name exact a.example.org b.example.org",
            "A.Example.ORG.",
            "b.example.org.",
        ),
        // N 5-7: no match leaves the name alone.
        ("name prefix foo bar", "coredns.foo.", "coredns.foo."),
        ("name suffix com org", "com.coredns.", "com.coredns."),
        ("name substring service svc", "com.coredns.", "com.coredns."),
        // `name X Y` is always exact: `name exact foo` rewrites `exact.` (N 21).
        ("name exact foo", "exact.", "foo."),
        (
            "name srv1.coredns.rocks srv2.coredns.rocks",
            "srv1.coredns.rocks.",
            "srv2.coredns.rocks.",
        ),
        // Regex: unanchored, the whole name becomes TO with its groups.
        (
            "name regex (.*).coredns.rocks {1}.coredns.maps",
            "foo.coredns.rocks.",
            "foo.coredns.maps.",
        ),
        (
            "name regex srv1.coredns.rocks 10",
            "srv1.coredns.rocks.",
            "10.",
        ),
    ];
    for (rule, query, expected) in cases {
        assert_eq!(forwarded(&[rule], query), *expected, "{rule} / {query}");
    }
}

#[test]
fn rules_run_in_order_until_a_stop_rule_matches() {
    // R 48-50 (TestRewrite): the first matching stop rule ends the rules; a
    // matching continue rule hands its name to the next.
    let set = [
        "name from.nl. to.nl.",
        r"name regex (core)\.(dns)\.(rocks)\.(nl) {2}.{1}.{3}.{4} answer name (dns)\.(core)\.(rocks)\.(nl) {2}.{1}.{3}.{4}",
        "name exact from.exact.nl. to.nl.",
        "name prefix prefix to",
        "name suffix .suffix. .nl.",
        "name substring from.substring to",
        r"name regex (f.*m)\.regex\.(nl) to.{2}",
        r"continue name regex consul\.(rocks) core.dns.{1}",
        "stop name core.dns.rocks to.nl.",
    ];
    for (query, expected) in [
        ("from.nl.", "to.nl."),
        ("from.exact.nl.", "to.nl."),
        ("prefix.nl.", "to.nl."),
        ("to.suffix.", "to.nl."),
        ("from.substring.nl.", "to.nl."),
        ("from.regex.nl.", "to.nl."),
        ("consul.rocks.", "to.nl."),
        ("core.dns.rocks.nl.", "dns.core.rocks.nl."),
        ("a.nl.", "a.nl."),
    ] {
        assert_eq!(forwarded(&set, query), expected, "{query}");
    }
}

#[test]
fn answers_are_rewritten_back_as_coredns_does() {
    let cases: &[(&str, &str, &str)] = &[
        // N 8-10, 20: without `answer`, prefix/suffix/regex answers keep the rewritten name.
        (
            "name prefix foo bar",
            "foo.example.com.",
            "bar.example.com.",
        ),
        (
            "name suffix com org",
            "foo.example.com.",
            "foo.example.org.",
        ),
        (
            "name suffix .ingress.coredns.rocks nginx.coredns.rocks",
            "coredns.ingress.coredns.rocks.",
            "corednsnginx.coredns.rocks.",
        ),
        (
            "name regex (.*).coredns.rocks {1}.coredns.maps",
            "foo.coredns.rocks.",
            "foo.coredns.maps.",
        ),
        // N 11-14, 18: `answer auto` maps them back.
        (
            "name prefix foo bar answer auto",
            "foo.example.com.",
            "foo.example.com.",
        ),
        (
            "name prefix foo. bar. answer auto",
            "foo.example.com.",
            "foo.example.com.",
        ),
        (
            "name suffix com org answer auto",
            "foo.example.com.",
            "foo.example.com.",
        ),
        (
            "name suffix .com .org answer auto",
            "foo.example.com.",
            "foo.example.com.",
        ),
        (
            "name suffix .ingress.coredns.rocks nginx.coredns.rocks answer auto",
            "coredns.ingress.coredns.rocks.",
            "coredns.ingress.coredns.rocks.",
        ),
        (
            "name regex (.*).coredns.rocks {1}.coredns.maps answer auto",
            "foo.coredns.rocks.",
            "foo.coredns.rocks.",
        ),
        // N 15-17: exact rules are always mapped back.
        (
            "name exact coredns.rocks service.consul answer auto",
            "coredns.rocks.",
            "coredns.rocks.",
        ),
        (
            "name exact coredns.rocks. service.consul.",
            "coredns.rocks.",
            "coredns.rocks.",
        ),
        (
            "name exact coredns.rocks service.consul",
            "coredns.rocks.",
            "coredns.rocks.",
        ),
        (
            "name exact coredns.org. service.consul.",
            "coredns.rocks.",
            "coredns.rocks.",
        ),
        // N 19: an explicit name rule on top of auto... is refused with auto; alone it applies.
        (
            r"name regex (.*).coredns.rocks {1}.coredns.maps answer name (.*).coredns.maps {1}.coredns.works",
            "foo.coredns.rocks.",
            "foo.coredns.works.",
        ),
        // R 47: the default policy with each match type.
        (
            "stop name prefix prefix to answer auto",
            "prefix.nl.",
            "prefix.nl.",
        ),
        ("stop name exact from.nl to.nl", "from.nl.", "from.nl."),
        // Auto maps back to the lower-cased name, as CoreDNS does.
        (
            "name exact Coredns.Rocks service.consul",
            "CoreDNS.rocks.",
            "coredns.rocks.",
        ),
    ];
    for (rule, query, expected) in cases {
        assert_eq!(answered(&[rule], query), *expected, "{rule} / {query}");
    }
}

#[test]
fn auto_remaps_names_below_the_rewritten_one_on_a_label_boundary() {
    // N 37-38 (remap string rewriter).
    let remap = Rewriter::Remap {
        value: false,
        rewritten: "example.org.".into(),
        original: "example.com.".into(),
    };
    for (input, expected) in [
        ("example.org.", Some("example.com.")),
        ("sub.example.org.", Some("sub.example.com.")),
        ("a.b.example.org.", Some("a.b.example.com.")),
        ("notexample.org.", None),
        ("example.net.", None),
        ("org.", None),
    ] {
        assert_eq!(remap.rewrite(input).as_deref(), expected, "{input}");
    }
}

/// V 52-55: `answer name` and `answer value` (or auto) rewrite owners and the
/// names in SRV, CNAME, NS, MX and SOA data; chained continue rules unwind.
#[test]
fn values_in_records_are_rewritten_back() {
    let sets: [&[&str]; 3] = [
        &[
            r"stop name regex (.*)\.domain\.uk {1}.cluster.local answer name (.*)\.cluster\.local {1}.domain.uk answer value (.*)\.cluster\.local {1}.domain.uk",
        ],
        &[
            r"stop name suffix .domain.uk .cluster.local answer auto answer value (.*)\.cluster\.local {1}.domain.uk",
        ],
        &[
            "continue name suffix .domain.uk .domain.us answer auto",
            "stop name suffix .domain.us .cluster.local answer auto",
        ],
    ];
    for set in sets {
        let rewrites = rules(set).unwrap();
        let rewritten = rewrites.rewrite(&name("my.domain.uk.")).expect("matches");
        let asked = rewritten.name.clone().unwrap();
        assert_eq!(asked.to_ascii(), "my.cluster.local.", "{set:?}");
        let owner = || asked.clone();
        let mut records = vec![
            Record::from_rdata(
                owner(),
                5,
                RData::SRV(SRV::new(0, 100, 443, name("srv1.my.cluster.local."))),
            ),
            Record::from_rdata(
                owner(),
                5,
                RData::CNAME(CNAME(name("cname.cluster.local."))),
            ),
            Record::from_rdata(owner(), 5, RData::NS(NS(name("ns1.cluster.local.")))),
            Record::from_rdata(
                owner(),
                5,
                RData::MX(MX::new(10, name("mx1.cluster.local."))),
            ),
            Record::from_rdata(
                owner(),
                5,
                RData::SOA(SOA::new(
                    name("ns1.cluster.local."),
                    name("admin.cluster.local."),
                    1,
                    2,
                    3,
                    4,
                    5,
                )),
            ),
            Record::from_rdata(
                name("srv1.my.cluster.local."),
                5,
                RData::A(A::new(10, 0, 0, 1)),
            ),
        ];
        rewritten.revert(&mut records);
        let shown: Vec<String> = records
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            shown,
            vec![
                "my.domain.uk. 0 100 443 srv1.my.domain.uk.",
                "my.domain.uk. cname.domain.uk.",
                "my.domain.uk. ns1.domain.uk.",
                "my.domain.uk. 10 mx1.domain.uk.",
                "my.domain.uk. ns1.domain.uk. admin.cluster.local. 1 2 3 4 5",
                "srv1.my.domain.uk. 10.0.0.1",
            ],
            "{set:?}"
        );
    }
}

#[test]
fn an_invalid_name_after_the_rewrite_is_no_name() {
    // N 1: `example..org.` is not a name: SERVFAIL.
    let rewrites = rules(&["stop name example.org. example..org."]).unwrap();
    let rewritten = rewrites.rewrite(&name("example.org.")).expect("matches");
    assert!(rewritten.name.is_none());
}

#[test]
fn setup_accepts_what_coredns_accepts() {
    // N 21-23, 25, 29-30, 32, 34-35; R 40-41, 43, 45; S 57.
    for rule in [
        "name exact srv3.coredns.rocks srv4.coredns.rocks",
        "name suffix coredns.rocks coredns.rocks.",
        "name regex srv1.coredns.rocks 10",
        "name regex (.*).coredns.rocks 10",
        "name regex (.*).coredns.rocks {1}.coredns.rocks",
        "name regex staging.mydomain.com aws-loadbalancer-id.us-east-1.elb.amazonaws.com",
        "name suffix A B answer auto",
        "name regex A B answer auto",
        "name regex A B answer name coredns.rock staging.mydomain.com",
        r"name regex A B answer name (.*).coredns.rock {1}.staging.mydomain.com name (.*).coredns.rock {1}.staging.mydomain.com",
        r"name regex A B answer name (.*).coredns.rock {1}.staging.mydomain.com answer name (.*).coredns.rock {1}.staging.mydomain.com",
        r"name regex A B answer name (.*).coredns.rock {1}.s.com value (.*).coredns.rock {1}.s.com",
        r"name suffix S. T. answer value (.*).coredns.rock {1}.s.com answer value (.*).coredns.rock {1}.s.com",
        r"name suffix S. T. answer value (.*).c.rock {1}.s.com name (.*).c.rock {1}.s.com",
        "name a.com b.com",
        "stop name a.com b.com",
        "continue name a.com b.com",
        "name prefix a.com b.com",
        "name substring a.com b.com",
        r"name regex ([a])\.com new-{1}.com",
        r"name regex (dns)\.(core)\.(rocks) {2}.{1}.{3} answer name (core)\.(dns)\.(rocks) {2}.{1}.{3}",
        r"name substring fcore.dns.rocks dns.fcore.rocks answer name (fcore)\.(dns)\.(rocks) {2}.{1}.{3}",
        "stop name regex foo bar answer name bar foo",
        "STOP NAME a.com b.com",
    ] {
        assert!(rules(&[rule]).is_ok(), "{rule}: {:?}", rules(&[rule]).err());
    }
}

#[test]
fn setup_refuses_what_coredns_refuses_with_its_messages() {
    let long = format!("name regex {} replacement", "a".repeat(10_001));
    let cases: Vec<(&str, &str)> = vec![
        // R 39, S 56
        ("", "no rule type specified for rewrite"),
        ("foo", "invalid rule type \"foo\""),
        ("name", "too few arguments for a name rule"),
        ("name a.com", "too few arguments for a name rule"),
        (
            "name a.com b.com c.com",
            "name rule supports only exact, prefix, suffix, substring, and regex",
        ),
        ("stop", "stop rule must begin with a rule type"),
        ("continue", "continue rule must begin with a rule type"),
        (
            "unknown-action name a.com b.com",
            "invalid rule type \"unknown-action\"",
        ),
        (
            "answer name a b",
            "response rewrites must begin with a name rule",
        ),
        // R 42, S 60
        (
            r"name regex ([a]\.com new-{1}.com",
            "invalid regex matching pattern",
        ),
        (
            "stop name regex [bad[ bar answer name bar foo",
            "invalid regex matching pattern",
        ),
        // N 24, 31
        (
            "name regex (.*).coredns.rocks {1}.{2}.coredns.rocks",
            "uses more subexpressions",
        ),
        (
            "name regex A B answer name (.*).coredns.rock {1}.{2}.staging.mydomain.com",
            "name answer rule for regex rule: the rewrite regex pattern",
        ),
        // N 26-28, 33-35; R 43-45
        (
            "name suffix A B answer",
            "invalid arguments for suffix rule",
        ),
        (
            "name suffix A B answer name",
            "name answer rule for suffix rule: 2 arguments required",
        ),
        (
            "name regex A B answer name",
            "name answer rule for regex rule: 2 arguments required",
        ),
        (
            "name suffix A B answer other",
            "invalid type \"other\" for answer rule for suffix rule",
        ),
        (
            "name regex A B answer name X Y name (.*).coredns.rock",
            "name answer rule for regex rule: 2 arguments required",
        ),
        (
            "name regex A B answer name X Y value X",
            "value answer rule for regex rule: 2 arguments required",
        ),
        (
            r"name regex (dns)\.(core)\.(rocks) {2}.{1}.{3} answer name (core)\.(dns)\.(rocks) {2}.{1}.{3} too.long way.too.long",
            "invalid type \"too.long\"",
        ),
        (
            r"name regex (dns)\.(core)\.(rocks) {2}.{1}.{3} NoAnswer name (core)\.(dns)\.(rocks) {2}.{1}.{3}",
            "exceeded the number of arguments",
        ),
        (
            r"name regex (dns)\.(core)\.(rocks) {2}.{1}.{3} answer ttl (core)\.(dns)\.(rocks) {2}.{1}.{3}",
            "invalid type \"ttl\"",
        ),
        (
            "name substring a.com b.com c.com",
            "invalid arguments for substring rule",
        ),
        ("name regex A B answer auto name X Y", "cannot be combined"),
        (
            "name regex A B answer auto answer",
            "type missing for answer rule for regex rule",
        ),
        // Rule types CoreDNS has and this version does not.
        (
            "type ANY HINFO",
            "rewrite rule type type is not supported (supported: name)",
        ),
        (
            "stop edns0 local set 0xffee abc",
            "rewrite rule type edns0 is not supported",
        ),
    ];
    for (rule, expected) in cases {
        let message = error(&[rule]);
        assert!(message.contains(expected), "{rule}: {message}");
    }
    // N 36
    assert!(error(&[&long]).contains("too long"));
}
