//! Every Corefile example in the READMEs of CoreDNS's plugins that cluster-dns
//! has (`tests/corefiles/readme/<plugin>-<n>.Corefile`, each naming its README,
//! example and source on its first lines) goes through `cluster-dns corefile
//! check`: the grammar always reads it, and it is served or refused as README's
//! "Corefile" table says. No server is started.
//!
//! A row is `Refused` when README refuses the example (most examples are a
//! plugin alone, with no `kubernetes`: README's Corefile section says the root
//! block needs it); a comment names the rule when the message names an earlier
//! check.

use std::path::Path;
use std::process::Command;

enum Expect {
    /// Exit status 0.
    Served,
    /// Exit status 1 and `FILE:LINE: ...` with this in the message.
    Refused(&'static str),
}
use Expect::*;

/// What `src/corefile/parse.rs` reports when the grammar fails (the lexer has
/// no errors of its own): never for a README example.
const GRAMMAR_ERRORS: &[&str] = &[
    "unexpected '}' because no matching opening brace",
    "unexpected end of file",
    "expected another address but had '{'",
    "a server block needs an address",
    "redeclaration of previously declared snippet",
    ": expected '{'",
    ": missing '}'",
    "import: expected a file, glob or snippet",
    "import takes only one argument",
    "maximum import depth",
    "could not import",
    "file to import not found",
    "is a directory",
    "not a file pattern",
    "a pattern may only contain one wildcard",
    "only the * wildcard is supported",
    "cannot read",
];

/// The rule for the examples without a root block `.` whose blocks README
/// refuses anyway: a block for another zone is a stub domain (`forward . ADDR`,
/// and `errors`, `cache`, `log`, `loop`, `reload`); a cluster zone's own block
/// is refused.
const NO_ROOT: &str = "no server block for the root zone";
/// README: the root block needs `kubernetes` (cluster-dns serves a cluster zone).
const NO_KUBERNETES: &str = "has no `kubernetes`";
const ERRATIC: &str = "plugin erratic is not supported";
const EDNS0: &str = "rewrite rule type edns0 is not supported";
const DNS_ONLY: &str = "only plain DNS (dns://) is served";

#[rustfmt::skip]
const EXPECTED: &[(&str, Expect)] = &[
    ("any-1.Corefile", Refused(NO_ROOT)), // `whoami`, `any` in another zone's block
    ("bind-1.Corefile", Refused(NO_KUBERNETES)),
    ("bind-2.Corefile", Refused(NO_KUBERNETES)),
    ("bind-3.Corefile", Refused(NO_KUBERNETES)), // two `bind` lines add up
    ("bind-4.Corefile", Refused("interface names are not supported")),
    ("bind-5.Corefile", Refused("bind option except is not supported")),
    ("bind-6.Corefile", Refused(NO_ROOT)), // `bind` in another zone's block
    ("bufsize-1.Corefile", Refused(NO_KUBERNETES)),
    ("bufsize-2.Corefile", Refused("plugin file is not supported")),
    ("cache-1.Corefile", Refused(NO_KUBERNETES)),
    ("cache-2.Corefile", Refused(NO_KUBERNETES)),
    ("cache-3.Corefile", Refused(NO_ROOT)), // another zone's block without `forward`
    ("debug-1.Corefile", Refused(NO_KUBERNETES)),
    ("errors-1.Corefile", Refused(NO_ROOT)), // `whoami` in another zone's block
    ("errors-2.Corefile", Refused("errors option consolidate is not supported")),
    ("forward-1.Corefile", Refused(NO_ROOT)), // a stub domain needs a root block
    ("forward-2.Corefile", Refused("plugin forward is given twice")),
    ("forward-3.Corefile", Refused(NO_KUBERNETES)),
    ("forward-4.Corefile", Refused(NO_KUBERNETES)),
    ("forward-5.Corefile", Refused(NO_KUBERNETES)),
    ("forward-6.Corefile", Refused(NO_KUBERNETES)),
    ("forward-7.Corefile", Refused(NO_KUBERNETES)),
    ("forward-8.Corefile", Refused("https:// upstreams are not supported")),
    ("forward-9.Corefile", Refused(NO_KUBERNETES)),
    ("forward-10.Corefile", Refused(NO_KUBERNETES)),
    ("forward-11.Corefile", Refused("a second server block for the root zone")), // other ports
    ("forward-12.Corefile", Refused("forward option next is not supported")),
    ("forward-13.Corefile", Refused("forward option failover is not supported")),
    ("forward-14.Corefile", Refused("is not an upstream")), // a host name
    ("health-1.Corefile", Refused(NO_ROOT)), // `whoami`, `erratic` in other zones' blocks
    ("health-2.Corefile", Refused(NO_KUBERNETES)),
    ("health-3.Corefile", Refused(NO_KUBERNETES)),
    ("hosts-1.Corefile", Refused(NO_KUBERNETES)),
    ("hosts-2.Corefile", Refused(NO_KUBERNETES)),
    ("hosts-3.Corefile", Refused(NO_KUBERNETES)),
    ("hosts-4.Corefile", Refused(NO_ROOT)), // `hosts`, `whoami` in another zone's block
    ("hosts-5.Corefile", Refused(NO_KUBERNETES)),
    ("k8s_external-1.Corefile", Served),
    ("k8s_external-2.Corefile", Refused("plugin transfer is not supported")),
    ("kubernetes-1.Corefile", Refused(NO_ROOT)), // a cluster zone's own block
    ("kubernetes-2.Corefile", Served),
    ("kubernetes-3.Corefile", Refused("kubernetes option tls is not supported")),
    ("kubernetes-4.Corefile", Refused("has no `kubernetes`")), // a cluster zone's own block
    ("kubernetes-5.Corefile", Refused(NO_ROOT)), // a cluster zone's own block, `autopath`
    ("loadbalance-1.Corefile", Refused(NO_KUBERNETES)),
    ("loadbalance-2.Corefile", Refused(NO_ROOT)), // `file`, `loadbalance weighted`
    ("loadbalance-3.Corefile", Refused(NO_ROOT)), // `file`, `limit_answers`
    ("log-1.Corefile", Refused(NO_KUBERNETES)),
    ("log-2.Corefile", Refused(NO_KUBERNETES)),
    ("log-3.Corefile", Refused(NO_KUBERNETES)),
    ("log-4.Corefile", Refused(NO_KUBERNETES)),
    ("log-5.Corefile", Refused(NO_KUBERNETES)),
    ("log-6.Corefile", Refused(NO_KUBERNETES)),
    ("log-7.Corefile", Refused(NO_KUBERNETES)),
    ("loop-1.Corefile", Refused(NO_KUBERNETES)),
    ("metrics-1.Corefile", Refused(NO_KUBERNETES)),
    ("metrics-2.Corefile", Refused(NO_KUBERNETES)),
    ("metrics-3.Corefile", Refused("prometheus option tls is not supported")),
    ("minimal-1.Corefile", Refused("minimal: expected 0 argument(s), got 1")), // as CoreDNS
    ("minimal-2.Corefile", Refused(NO_ROOT)), // `whoami`, `minimal` in another zone's block
    ("ready-1.Corefile", Refused(ERRATIC)),
    ("ready-2.Corefile", Refused(NO_KUBERNETES)),
    ("reload-1.Corefile", Refused(ERRATIC)),
    ("reload-2.Corefile", Refused(ERRATIC)),
    ("reload-3.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-1.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-2.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-3.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-4.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-5.Corefile", Refused(NO_KUBERNETES)),
    ("rewrite-6.Corefile", Refused("rewrite rule type ttl is not supported")),
    ("rewrite-7.Corefile", Refused(EDNS0)),
    ("rewrite-8.Corefile", Refused(EDNS0)),
    ("rewrite-9.Corefile", Refused(EDNS0)),
    ("rewrite-10.Corefile", Refused("plugin metadata is not supported")),
    ("rewrite-11.Corefile", Refused(EDNS0)),
    ("template-1.Corefile", Refused(NO_KUBERNETES)),
    ("template-2.Corefile", Refused(NO_ROOT)), // `template` in another zone's block
    ("template-3.Corefile", Refused("template option ederror is not supported")),
    ("template-4.Corefile", Refused(NO_KUBERNETES)),
    ("template-5.Corefile", Refused(NO_KUBERNETES)),
    ("template-6.Corefile", Refused(NO_KUBERNETES)),
    ("template-7.Corefile", Refused(NO_KUBERNETES)),
    ("template-8.Corefile", Refused(NO_KUBERNETES)),
    ("template-9.Corefile", Refused(NO_KUBERNETES)),
    ("template-10.Corefile", Refused(NO_KUBERNETES)),
    ("template-11.Corefile", Refused(NO_KUBERNETES)),
    ("timeouts-1.Corefile", Refused(DNS_ONLY)),
    ("timeouts-2.Corefile", Refused(DNS_ONLY)),
    ("timeouts-3.Corefile", Refused(DNS_ONLY)),
    ("timeouts-4.Corefile", Refused("timeouts option read is not supported")),
    ("timeouts-5.Corefile", Refused(NO_KUBERNETES)),
    ("whoami-1.Corefile", Refused(NO_KUBERNETES)),
];

#[test]
fn coredns_readme_corefiles_are_served_or_refused_as_readme_documents() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corefiles/readme");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no Corefile", dir.display());
    for (name, _) in EXPECTED {
        assert!(dir.join(name).is_file(), "{name}: a row without a file");
    }
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (_, expected) = EXPECTED
            .iter()
            .find(|(row, _)| *row == name)
            .unwrap_or_else(|| panic!("{name}: no row in EXPECTED"));
        let output = Command::new(env!("CARGO_BIN_EXE_cluster-dns"))
            .args(["corefile", "check"])
            .arg(path)
            .env_remove("KUBECONFIG")
            // template-2 and metrics-2 read `{$HOSTNAME}` and `{$PORT}`.
            .env("HOSTNAME", "ns1.engineering.coredns.io")
            .env("PORT", "9253")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let grammar = GRAMMAR_ERRORS.iter().find(|e| stderr.contains(**e));
        assert_eq!(grammar, None, "{name}: the grammar failed: {stderr}");
        let Refused(reason) = expected else {
            assert!(output.status.success(), "{name}: refused: {stderr}");
            continue;
        };
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        let (line, message) = stderr
            .strip_prefix(&format!("{}:", path.display()))
            .and_then(|rest| rest.split_once(": "))
            .unwrap_or_else(|| panic!("{name}: not `FILE:LINE: reason`: {stderr}"));
        let line: usize = line.parse().expect("a line number");
        let text = std::fs::read_to_string(path).unwrap();
        let at = line.checked_sub(1).and_then(|i| text.lines().nth(i));
        assert!(
            at.is_some_and(|at| !at.trim_start().starts_with('#')),
            "{name}: line {line} is not a Corefile line: {stderr}"
        );
        assert!(message.contains(reason), "{name}: {stderr}");
    }
}
