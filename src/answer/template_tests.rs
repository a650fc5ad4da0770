//! Cases ported from CoreDNS `plugin/template`: `template_test.go` (TestHandler,
//! TestMultiSection) and `setup_test.go` (TestSetupParse), each naming its case.

use super::*;

const IP10: &str = r"(^|[.])ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$";
const IP10_A: &str = "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}";

fn spec(class: &str, qtype: &str) -> TemplateSpec {
    TemplateSpec {
        class: class.into(),
        qtype: qtype.into(),
        ..TemplateSpec::default()
    }
}

/// TestHandler's templates: zone `.`, class and type ANY, `fallthrough`.
fn any(matches: &[&str]) -> TemplateSpec {
    TemplateSpec {
        matches: matches.iter().map(|m| m.to_string()).collect(),
        fallthrough: Some(Vec::new()),
        ..spec("ANY", "ANY")
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 240, 0, 1));

fn ask(specs: &[TemplateSpec], qname: &str, qtype: RecordType) -> Option<Answer> {
    Templates::compile(specs)
        .unwrap()
        .answer(&name(qname), qtype, DNSClass::IN, REMOTE)
}

fn shown(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

#[test]
fn handler_cases() {
    // RcodeServFail
    let t = TemplateSpec {
        rcode: Some("SERVFAIL".into()),
        ..any(&[".*"])
    };
    assert_eq!(
        ask(&[t], "test.invalid.", RecordType::A).unwrap().rcode,
        ResponseCode::ServFail
    );
    // ExampleDomainNameMismatch: falls through to the next plugin.
    let ip10 = TemplateSpec {
        answer: vec![IP10_A.into()],
        ..any(&[IP10])
    };
    assert!(ask(std::slice::from_ref(&ip10), "test.invalid.", RecordType::A).is_none());
    // BrokenTemplate
    let broken = TemplateSpec {
        answer: vec![r#"{{ .Name }} 60 IN TXT "{{ index .Match 2 }}""#.into()],
        ..any(&["[.]example[.]$"])
    };
    assert_eq!(
        ask(&[broken], "test.example.", RecordType::ANY)
            .unwrap()
            .rcode,
        ResponseCode::ServFail
    );
    // NonRRTemplate, NonRRAdditionalTemplate, NonRRAuthorityTemplate
    for section in 0..3 {
        let mut t = any(&["[.]example[.]$"]);
        [&mut t.answer, &mut t.additional, &mut t.authority][section].push("{{ .Name }}".into());
        assert_eq!(
            ask(&[t], "test.example.", RecordType::ANY).unwrap().rcode,
            ResponseCode::ServFail
        );
    }
    // ExampleIPMatch
    let remote = TemplateSpec {
        answer: vec!["{{ .Name }} 60 IN A {{ .Remote }}".into()],
        ..TemplateSpec {
            matches: vec![".*".into()],
            ..spec("IN", "A")
        }
    };
    let answer = ask(&[remote], "test.example.", RecordType::A).unwrap();
    assert_eq!(
        shown(&answer.answers),
        vec!["test.example. 60 A 10.240.0.1"]
    );
    assert!(answer.authoritative);
    // ExampleDomainMatch
    let answer = ask(
        std::slice::from_ref(&ip10),
        "ip-10-95-12-8.example.",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(answer.rcode, ResponseCode::NoError);
    assert_eq!(
        shown(&answer.answers),
        vec!["ip-10-95-12-8.example. 60 A 10.95.12.8"]
    );
    // ExampleDomainMatchHexIp
    let hex = TemplateSpec {
        answer: vec!["{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}.{{ parseInt .Group.d 16 8 }}".into()],
        ..any(&[r"^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]example[.]$"])
    };
    let answer = ask(&[hex], "ip0a5f0c09.example.", RecordType::A).unwrap();
    assert_eq!(
        shown(&answer.answers),
        vec!["ip0a5f0c09.example. 60 A 10.95.12.9"]
    );
    // BrokenParseIntTemplate
    let bad = TemplateSpec {
        answer: vec![r#"{{ .Name }} 60 IN TXT "{{ parseInt "gg" 16 8 }}""#.into()],
        ..any(&["[.]example[.]$"])
    };
    assert_eq!(
        ask(&[bad], "test.example.", RecordType::ANY).unwrap().rcode,
        ResponseCode::ServFail
    );
    // ExampleDomainMXMatch
    let mx = TemplateSpec {
        answer: vec!["{{ .Name }} 60 MX 10 {{ .Name }}".into()],
        additional: vec!["{{ .Name }} 60 IN A 10.{{.Group.b}}.{{.Group.c}}.{{.Group.d}}".into()],
        ..any(&[IP10])
    };
    let answer = ask(&[mx], "ip-10-95-12-8.example.", RecordType::MX).unwrap();
    assert_eq!(
        shown(&answer.answers),
        vec!["ip-10-95-12-8.example. 60 MX 10 ip-10-95-12-8.example."]
    );
    assert_eq!(
        shown(&answer.additionals),
        vec!["ip-10-95-12-8.example. 60 A 10.95.12.8"]
    );
    // ExampleDomainANSMatch (TTLs default to 3600)
    let ans = TemplateSpec {
        additional: vec!["ns0.example. IN A 203.0.113.8".into()],
        authority: vec!["example. IN NS ns0.example.com.".into()],
        ..ip10.clone()
    };
    let answer = ask(&[ans], "ip-10-95-12-8.example.", RecordType::A).unwrap();
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(
        shown(&answer.additionals),
        vec!["ns0.example. 3600 A 203.0.113.8"]
    );
    assert_eq!(
        shown(&answer.authority),
        vec!["example. 3600 NS ns0.example.com."]
    );
    // ExampleInvalidNXDOMAIN: the SOA in the answer section (sic)
    let nx = TemplateSpec {
        rcode: Some("NXDOMAIN".into()),
        answer: vec!["invalid. 60 {{ .Class }} SOA a.invalid. b.invalid. (1 60 60 60 60)".into()],
        ..any(&["[.]invalid[.]$"])
    };
    let answer = ask(&[nx], "test.invalid.", RecordType::MX).unwrap();
    assert_eq!(answer.rcode, ResponseCode::NXDomain);
    assert_eq!(
        shown(&answer.answers),
        vec!["invalid. 60 SOA a.invalid. b.invalid. 1 60 60 60 60"]
    );
    // CNAMEWithoutUpstream: the CNAME alone (the chase is the handler's).
    let cname = TemplateSpec {
        answer: vec!["example.net 60 IN CNAME target.example.com".into()],
        ..any(&["example[.]net[.]"])
    };
    let answer = ask(&[cname], "example.net.", RecordType::A).unwrap();
    assert_eq!(
        shown(&answer.answers),
        vec!["example.net. 60 CNAME target.example.com."]
    );
    // mdMissing: `.Meta` without the metadata plugin is empty.
    let md = TemplateSpec {
        answer: vec![r#"{{ .Meta "foofoo" }}{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"#.into()],
        ..any(&[IP10])
    };
    let answer = ask(&[md], "ip-10-95-12-8.example.", RecordType::A).unwrap();
    assert_eq!(answer.answers[0].name.to_ascii(), "ip-10-95-12-8.example.");
}

/// TestMultiSection: server block `test.`, several templates in order.
#[test]
fn multi_section_cases() {
    let test = |mut t: TemplateSpec| {
        if t.zones.is_empty() {
            t.zones = vec!["test.".into()];
        }
        t
    };
    let specs = vec![
        test(TemplateSpec {
            rcode: Some("REFUSED".into()),
            ..spec("IN", "A")
        }),
        test(TemplateSpec {
            matches: vec!["$^".into()],
            rcode: Some("SERVFAIL".into()),
            fallthrough: Some(Vec::new()),
            ..spec("IN", "TXT")
        }),
        TemplateSpec {
            zones: vec!["coredns.invalid".into()],
            answer: vec![r#"{{ .Name }} 60 CH TXT "test""#.into()],
            ..spec("CH", "TXT")
        },
        TemplateSpec {
            zones: vec!["example".into()],
            matches: vec![r"^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$".into()],
            answer: vec![IP10_A.into()],
            fallthrough: Some(Vec::new()),
            ..spec("IN", "A")
        },
        TemplateSpec {
            zones: vec!["example".into()],
            matches: vec![r"^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$".into()],
            answer: vec!["{{ .Name }} 60 IN MX 10 {{ .Name }}".into()],
            additional: vec![IP10_A.into()],
            ..spec("IN", "MX")
        },
    ];
    let templates = Templates::compile(&specs).unwrap();
    let ask = |qname: &str, qtype: RecordType, class: DNSClass| {
        templates.answer(&name(qname), qtype, class, REMOTE)
    };
    assert_eq!(
        ask("some.test.", RecordType::A, DNSClass::IN)
            .unwrap()
            .rcode,
        ResponseCode::Refused
    );
    assert!(
        ask("some.test.", RecordType::TXT, DNSClass::IN).is_none(),
        "falls through"
    );
    let answer = ask("coredns.invalid.", RecordType::TXT, DNSClass::CH).unwrap();
    assert_eq!(shown(&answer.answers), vec!["coredns.invalid. 60 TXT test"]);
    assert_eq!(
        ask("ip-10-11-12-13.example.", RecordType::A, DNSClass::IN)
            .unwrap()
            .answers
            .len(),
        1
    );
    let answer = ask("ip-10-11-12-13.example.", RecordType::MX, DNSClass::IN).unwrap();
    assert_eq!((answer.answers.len(), answer.additionals.len()), (1, 1));
    assert!(
        ask("something.example.", RecordType::A, DNSClass::IN).is_none(),
        "falls through"
    );
    assert_eq!(
        ask("something.example.", RecordType::MX, DNSClass::IN)
            .unwrap()
            .rcode,
        ResponseCode::ServFail,
        "no fallthrough: SERVFAIL (CoreDNS PR 5180)"
    );
    // Outside every template's zone: the next plugin.
    assert!(
        ask(
            "web.default.svc.cluster.local.",
            RecordType::A,
            DNSClass::IN
        )
        .is_none()
    );
}

#[test]
fn fields_and_functions() {
    let t = |answer: &str| TemplateSpec {
        zones: vec!["example.".into()],
        matches: vec![r"^(?P<host>[a-z]+)-(?P<n>[0-9]+)\.example\.$".into()],
        answer: vec![answer.into()],
        ..spec("IN", "ANY")
    };
    let text = |answer: &str, qtype| {
        let a = ask(&[t(answer)], "web-7.Example.", qtype).unwrap();
        assert_eq!(a.rcode, ResponseCode::NoError, "{answer}");
        a.answers[0].data.to_string()
    };
    let txt = |body: &str| format!(r#"{{{{ .Name }}}} 60 IN TXT "{body}""#);
    assert_eq!(
        text(
            &txt("{{ .Zone }} {{ .Class }} {{ .Type }}"),
            RecordType::TXT
        ),
        "example. IN TXT"
    );
    // A query of type ANY shows the template's type.
    assert_eq!(text(&txt("{{ .Type }}"), RecordType::ANY), "ANY");
    assert_eq!(
        text(
            &txt("{{ index .Match 1 }}/{{ index .Group \"n\" }}/{{ .Group.host }}"),
            RecordType::TXT
        ),
        "web/7/web"
    );
    assert_eq!(
        text(&txt("{{ .Group.nope }}"), RecordType::TXT),
        "<no value>"
    );
    assert_eq!(
        text(&txt("{{- .Name -}}"), RecordType::TXT),
        "web-7.example."
    );
    // Zone-file syntax reads `\.` in a TXT string as `.`, as `dns.NewRR` does.
    assert_eq!(
        text(&txt("{{ .Regex }}"), RecordType::TXT),
        "^(?P<host>[a-z]+)-(?P<n>[0-9]+).example.$"
    );
    assert_eq!(
        text(&txt(r#"{{ "lit" }}{{ 42 }}"#), RecordType::TXT),
        "lit42"
    );
    assert_eq!(
        text(&txt("{{ parseInt .Group.n 10 64 }}"), RecordType::TXT),
        "7"
    );
    // Go's base 0 (from the prefix) and bit size 0 (64).
    assert_eq!(
        text(
            &txt(r#"{{ parseInt "0x1f" 0 0 }}/{{ parseInt "017" 0 8 }}/{{ parseInt "300" 10 0 }}"#),
            RecordType::TXT
        ),
        "31/15/300"
    );
}

#[test]
fn setup_accepts_what_coredns_accepts() {
    let ok: Vec<TemplateSpec> = vec![
        TemplateSpec { rcode: Some("NXDOMAIN".into()), ..spec("ANY", "ANY") },
        TemplateSpec {
            answer: vec!["{{ parseInt }}".into()],
            additional: vec!["{{ parseInt }}".into()],
            authority: vec!["{{ parseInt }}".into()],
            ..spec("ANY", "ANY")
        },
        spec("ANY", "ANY"),
        TemplateSpec {
            zones: vec!["example.com".into()],
            matches: vec![r"[.](example[.]com[.]dc1[.]example[.]com[.])$".into()],
            rcode: Some("NXDOMAIN".into()),
            authority: vec!["{{ index .Match 1 }} 60 IN SOA ns.{{ index .Match 1 }} hostmaster.example.com (1 60 60 60 60)".into()],
            fallthrough: Some(vec!["example.com".into()]),
            ..spec("IN", "ANY")
        },
        TemplateSpec { zones: vec!["a.example.com".into(), "b.example.com".into()], rcode: Some("NXDOMAIN".into()), ..spec("ANY", "ANY") },
    ];
    Templates::compile(&ok).unwrap();
}

#[test]
fn setup_refuses_what_coredns_refuses() {
    let bad = |t: TemplateSpec, expected: &str| {
        let message = Templates::compile(&[t]).expect_err(expected);
        assert!(message.contains(expected), "{message}");
    };
    bad(spec("X", "ANY"), "invalid query class X");
    bad(spec("ANY", "X"), "invalid RR class X");
    bad(spec("ANY", "aaaa"), "invalid RR class aaaa");
    bad(
        TemplateSpec {
            rcode: Some("UNDEFINED".into()),
            ..spec("ANY", "ANY")
        },
        "unknown rcode UNDEFINED",
    );
    bad(
        TemplateSpec {
            rcode: Some("SUCCESS".into()),
            ..spec("ANY", "ANY")
        },
        "unknown rcode SUCCESS",
    );
    bad(
        TemplateSpec {
            answer: vec!["{{".into()],
            ..spec("ANY", "ANY")
        },
        "could not compile template: {{",
    );
    bad(
        TemplateSpec {
            additional: vec!["{{".into()],
            ..spec("ANY", "ANY")
        },
        "could not compile template",
    );
    bad(
        TemplateSpec {
            authority: vec!["{{".into()],
            ..spec("ANY", "ANY")
        },
        "could not compile template",
    );
    bad(
        TemplateSpec {
            answer: vec!["{{ notAFunction }}".into()],
            ..spec("ANY", "ANY")
        },
        "function \"notAFunction\" not defined",
    );
    bad(
        TemplateSpec {
            matches: vec!["(?P<x>".into()],
            ..spec("ANY", "ANY")
        },
        "could not parse regex",
    );
    bad(
        TemplateSpec {
            matches: vec!["a".repeat(10_001)],
            ..spec("ANY", "ANY")
        },
        "regex pattern too long",
    );
    // Beyond CoreDNS: what this version does not evaluate is refused at start.
    bad(
        TemplateSpec {
            answer: vec!["{{ .Message.Id }}".into()],
            ..spec("ANY", "ANY")
        },
        "is not supported",
    );
    bad(
        TemplateSpec {
            answer: vec!["{{ .Name | printf \"%s\" }}".into()],
            ..spec("ANY", "ANY")
        },
        "not supported",
    );
}
