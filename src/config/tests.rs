use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use hickory_proto::rr::Name;
use serde::Deserialize as _;

use super::*;
use crate::answer::PodsMode;
use crate::cli::{Cli, Command};

const PATH: &str = "/etc/cluster-dns/cluster-dns.toml";

fn from_file(text: &str) -> Result<Settings, ConfigError> {
    let path = Path::new(PATH);
    let file = Options::from_toml(path, text)?;
    Settings::resolve(Some((path, file)), Options::default())
}

/// The options of `cluster-dns serve ARGS`, parsed as the binary parses them.
fn flags(args: &[&str]) -> Options {
    let argv = ["cluster-dns", "serve"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Serve(common),
        }) => common.options,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// A value for every key, none of them its default: as a TOML value, and as the
/// values of its flag (given once each). Paths are absolute, so that a file's are
/// the same as a flag's.
const EVERY_KEY: &[(&str, &str, &[&str])] = &[
    (
        "zones",
        r#"["example.org", "cluster.local"]"#,
        &["example.org", "cluster.local"],
    ),
    (
        "listen",
        r#"["127.0.0.2:53", ":5300"]"#,
        &["127.0.0.2:53", ":5300"],
    ),
    ("ttl", "30", &["30"]),
    ("pods", r#""verified""#, &["verified"]),
    ("ignore_empty_service", "true", &["true"]),
    (
        "fallthrough",
        r#"["example.org", "cluster.local"]"#,
        &["example.org", "cluster.local"],
    ),
    ("manifests", r#""/srv/manifests""#, &["/srv/manifests"]),
    ("manifests_poll_interval_ms", "250", &["250"]),
    ("kubeconfig", r#""/etc/kubeconfig""#, &["/etc/kubeconfig"]),
    (
        "api_server",
        r#""http://127.0.0.1:8001""#,
        &["http://127.0.0.1:8001"],
    ),
    ("context", r#""staging""#, &["staging"]),
    (
        "namespaces",
        r#"["kube-system", "Apps"]"#,
        &["kube-system", "Apps"],
    ),
    ("namespace_labels", r#""dns=on""#, &["dns=on"]),
    ("labels", r#""app=web""#, &["app=web"]),
    ("endpoint_pod_names", "true", &["true"]),
    ("endpoints", "false", &["false"]),
    ("streaming_lists", r#""never""#, &["never"]),
    ("metrics_listen", r#"":9154""#, &[":9154"]),
    ("health_listen", r#""127.0.0.1:8081""#, &["127.0.0.1:8081"]),
    ("ready_listen", r#""[::1]:8182""#, &["[::1]:8182"]),
    (
        "upstream",
        r#"["10.0.0.2", "[::1]:5300"]"#,
        &["10.0.0.2", "[::1]:5300"],
    ),
    (
        "resolv_conf",
        r#""/run/resolv.conf""#,
        &["/run/resolv.conf"],
    ),
    ("forward_timeout_ms", "500", &["500"]),
    ("max_concurrent", "20", &["20"]),
    ("forward_policy", r#""sequential""#, &["sequential"]),
    ("forward_max_fails", "0", &["0"]),
    ("forward_health_check_ms", "250", &["250"]),
    (
        "forward_health_check_domain",
        r#""example.org""#,
        &["example.org"],
    ),
    ("forward_health_check_recursion", "false", &["false"]),
    ("forward_force_tcp", "true", &["true"]),
    ("forward_from", r#""example.org""#, &["example.org"]),
    (
        "forward_except",
        r#"["corp.example", "lan"]"#,
        &["corp.example", "lan"],
    ),
    (
        "forward_tls_servername",
        r#""dns.quad9.net""#,
        &["dns.quad9.net"],
    ),
    (
        "forward_tls_ca",
        r#""/etc/ssl/ca.pem""#,
        &["/etc/ssl/ca.pem"],
    ),
    (
        "forward_tls_cert",
        r#""/etc/ssl/client.pem""#,
        &["/etc/ssl/client.pem"],
    ),
    (
        "forward_tls_key",
        r#""/etc/ssl/client.key""#,
        &["/etc/ssl/client.key"],
    ),
    ("cache_ttl", "60", &["60"]),
    ("cache_size", "100", &["100"]),
    ("cache_denial_ttl", "5", &["5"]),
    ("cache_serve_stale", "3600", &["3600"]),
    ("cache_serve_stale_verify", "true", &["true"]),
    ("cache_prefetch", "10", &["10"]),
    ("cache_prefetch_window", "30", &["30"]),
    ("cache_prefetch_percent", "20", &["20"]),
    (
        "cache_zones",
        r#"["example.org", "lan"]"#,
        &["example.org", "lan"],
    ),
    ("cache_disable_success", r#"["lan"]"#, &["lan"]),
    (
        "cache_disable_denial",
        r#"["corp.example"]"#,
        &["corp.example"],
    ),
    ("lameduck", "10", &["10"]),
    ("loadbalance", "false", &["false"]),
    ("tcp_max_connections", "50", &["50"]),
    ("tcp_max_queries", "128", &["128"]),
    (
        "handover",
        r#""/run/cluster-dns.sock""#,
        &["/run/cluster-dns.sock"],
    ),
    (
        "stub_domains",
        r#"["consul=10.150.0.1,10.150.0.2:5353"]"#,
        &["consul=10.150.0.1,10.150.0.2:5353"],
    ),
    (
        "hosts_file",
        r#""/etc/coredns/NodeHosts""#,
        &["/etc/coredns/NodeHosts"],
    ),
    (
        "hosts",
        r#"["10.0.0.5 server-1", "fd00::6 agent-1 agent-1.lan"]"#,
        &["10.0.0.5 server-1", "fd00::6 agent-1 agent-1.lan"],
    ),
    ("hosts_ttl", "60", &["60"]),
    ("hosts_fallthrough", "false", &["false"]),
    ("hosts_reverse", "false", &["false"]),
    (
        "hosts_zones",
        r#"["example.org", "lan"]"#,
        &["example.org", "lan"],
    ),
    ("hosts_fallthrough_zones", r#"["lan"]"#, &["lan"]),
    ("type_rcodes", r#"["AAAA=NOERROR"]"#, &["AAAA=NOERROR"]),
    (
        "templates",
        "[{ class = \"IN\", type = \"A\", zones = [\"example.\"], match = [\"^ip-(.*)[.]example[.]$\"], answer = [\"{{ .Name }} 60 IN A 10.0.0.1\"], fallthrough = [] }]",
        &[
            r#"IN A example. { match ^ip-(.*)[.]example[.]$; answer "{{ .Name }} 60 IN A 10.0.0.1"; fallthrough }"#,
        ],
    ),
    (
        "rewrites",
        r#"["name exact a.example. web.default.svc.cluster.local."]"#,
        &["name exact a.example. web.default.svc.cluster.local."],
    ),
    (
        "query_logs",
        r#"[{ names = ["example.org."], format = "{combined}", classes = ["denial", "error"] }]"#,
        &["example.org. {combined} { class denial error }"],
    ),
    (
        "external_zones",
        r#"["external.example"]"#,
        &["external.example"],
    ),
    ("external_apex", r#""ns""#, &["ns"]),
    ("external_ttl", "30", &["30"]),
    ("external_headless", "true", &["true"]),
    ("any", "true", &["true"]),
    ("whoami", "true", &["true"]),
    ("minimal", "true", &["true"]),
    ("bufsize", "4096", &["4096"]),
    (
        "corefile",
        concat!(
            "\"",
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corefiles/kubeadm.Corefile\""
        ),
        &[concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corefiles/kubeadm.Corefile"
        )],
    ),
];

/// Keys no flag can give: a list of tables (README: Configuration).
const NO_FLAG: &[&str] = &["blocks"];

/// The command-line arguments giving `key` its `values`.
fn flag_args(key: &str, values: &[&'static str]) -> Vec<String> {
    let flag = flag_of(key).unwrap_or_else(|| panic!("no flag for `{key}`"));
    values
        .iter()
        .flat_map(|value| [format!("--{flag}"), value.to_string()])
        .collect()
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// The keys serde accepts, from the list its derive hands to `deserialize_struct`.
fn serde_keys() -> Vec<&'static str> {
    use serde::de::{Error as _, Visitor};
    struct Keys(Vec<&'static str>);
    impl<'de> serde::Deserializer<'de> for &mut Keys {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("only a struct's keys are read"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.to_vec();
            Err(Self::Error::custom("keys read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut keys = Keys(Vec::new());
    let _ = Options::deserialize(&mut keys);
    keys.0
}

#[test]
fn every_key_has_a_flag_and_every_flag_is_a_key() {
    let command = <Options as clap::Args>::augment_args(clap::Command::new("x"));
    let flag_ids: Vec<&str> = command
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .collect();
    // Keys without a flag, each with its reason in its doc comment and README.
    let with_flags: Vec<&str> = serde_keys()
        .into_iter()
        .filter(|key| !NO_FLAG.contains(key))
        .collect();
    assert_eq!(flag_ids, with_flags, "the clap ids are the TOML keys");
    let sampled: Vec<&str> = EVERY_KEY.iter().map(|(key, _, _)| *key).collect();
    assert_eq!(sampled, flag_ids, "EVERY_KEY covers every key, in order");
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str();
        assert!(arg.get_long().is_some(), "`{key}` has a long flag");
        let (_, toml, _) = EVERY_KEY[sampled.iter().position(|k| *k == key).unwrap()];
        let line = format!("{key} = {toml}\n");
        if let Err(error) = Options::from_toml(Path::new(PATH), &line) {
            panic!("{line}: {error}");
        }
    }
    assert_eq!(flag_of("zones").as_deref(), Some("zone"));
    assert_eq!(flag_of("namespaces").as_deref(), Some("namespace"));
    assert_eq!(flag_of("cache_size").as_deref(), Some("cache-size"));
}

#[test]
fn a_file_setting_every_key_equals_the_same_flags() {
    let text: String = EVERY_KEY
        .iter()
        .map(|(key, toml, _)| format!("{key} = {toml}\n"))
        .collect();
    let path = Path::new(PATH);
    let file = Options::from_toml(path, &text).unwrap();
    let argv: Vec<String> = EVERY_KEY
        .iter()
        .flat_map(|(key, _, values)| flag_args(key, values))
        .collect();
    let given = flags(&args(&argv));
    assert_eq!(file, given);
    let from_file = Settings::resolve(Some((path, file)), Options::default()).unwrap();
    let from_flags = Settings::resolve(None, given).unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{from_flags:?}"));
}

#[test]
fn each_key_reaches_the_settings_and_is_named_as_the_flags() {
    let defaults = format!("{:?}", Settings::resolve(None, Options::default()).unwrap());
    for (key, _, values) in EVERY_KEY {
        let given = flags(&args(&flag_args(key, values)));
        let (_, from_flags) = given.clone().or_file(Options::default());
        assert_eq!(from_flags, [*key]);
        let settings = format!("{:?}", Settings::resolve(None, given).unwrap());
        assert_ne!(settings, defaults, "`{key}` changes nothing");
    }
}

#[test]
fn the_readme_table_gives_every_flag() {
    let readme = include_str!("../../README.md");
    for (key, _, _) in EVERY_KEY {
        let flag = flag_of(key).unwrap();
        let row = format!("| `{key}` | `--{flag}");
        // The flag, then the end of the code span or the flag's value (`--loadbalance BOOL`).
        let found = readme.lines().any(|line| {
            line.strip_prefix(&row)
                .is_some_and(|rest| rest.starts_with(['`', ' ']))
        });
        assert!(found, "README's configuration table has no row {row}`");
    }
}

#[test]
fn defaults() {
    let s = Settings::resolve(None, Options::default()).unwrap();
    assert_eq!(s.zones, vec![Name::from_ascii("cluster.local.").unwrap()]);
    assert_eq!(s.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(s.ttl, 5);
    assert_eq!(s.pods, PodsMode::Insecure);
    assert_eq!(s.manifests, None);
    assert_eq!(s.cache.size, DEFAULT_CACHE_SIZE);
    assert!(s.loadbalance);
}

#[test]
fn unknown_keys_are_refused_with_the_file_and_key() {
    let err = from_file("ttl = 5\nzone = [\"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("config file /etc/cluster-dns/cluster-dns.toml:"),
        "{err}"
    );
    assert!(err.contains("unknown field `zone`"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    let err = from_file("ttl = 4000\n").unwrap_err().to_string();
    assert_eq!(
        err,
        "config file /etc/cluster-dns/cluster-dns.toml: key `ttl`: 4000 is above the maximum of 3600 seconds"
    );
    let err = from_file("pods = \"sometimes\"\n").unwrap_err().to_string();
    assert!(err.contains("unknown variant `sometimes`"), "{err}");
    let err = from_file("listen = [\"localhost:53\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `listen`"), "{err}");
    let err = from_file("zones = [\".\"]\n").unwrap_err().to_string();
    assert!(err.contains("key `zones`"), "{err}");
    let err = from_file("zones = [\"cluster.local\", \"in-addr.arpa\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a reverse zone"), "{err}");
    let err = from_file("cache_size = 0\n").unwrap_err().to_string();
    assert_eq!(
        err,
        "config file /etc/cluster-dns/cluster-dns.toml: key `cache_size`: must be at least 1 (set cache_ttl = 0 to turn the cache off)"
    );
}

#[test]
fn flags_override_the_file_and_name_themselves() {
    let path = Path::new("c.toml");
    let file = Options::from_toml(
        path,
        "ttl = 30\nlisten = [\"127.0.0.1:53\"]\nmanifests = \"m\"\n",
    )
    .unwrap();
    let flags = Options {
        ttl: Some(7),
        ..Options::default()
    };
    let s = Settings::resolve(Some((path, file)), flags).unwrap();
    assert_eq!(s.ttl, 7);
    assert_eq!(s.listen, vec!["127.0.0.1:53".parse().unwrap()]);
    assert_eq!(s.manifests, Some(PathBuf::from("m")));
    let err = Settings::resolve(
        None,
        Options {
            ttl: Some(9999),
            ..Options::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("flag --ttl: key `ttl`"), "{err}");
}

#[test]
fn flags_override_keys_once_only_in_the_file() {
    let path = Path::new("/etc/c.toml");
    let file = Options::from_toml(
        path,
        "cache_size = 5\nforward_timeout_ms = 100\nloadbalance = true\n\
         namespaces = [\"a\"]\nmanifests_poll_interval_ms = 20\n",
    )
    .unwrap();
    let given = flags(&[
        "--cache-size",
        "7",
        "--forward-timeout-ms",
        "300",
        "--loadbalance",
        "false",
        "--namespace",
        "b",
        "--namespace",
        "c",
    ]);
    let s = Settings::resolve(Some((path, file)), given).unwrap();
    assert_eq!(s.cache.size, 7);
    assert_eq!(s.forward_timeout, std::time::Duration::from_millis(300));
    assert!(!s.loadbalance);
    assert_eq!(s.kube.namespaces, ["b", "c"]);
    assert_eq!(
        s.manifests_poll_interval,
        std::time::Duration::from_millis(20),
        "a key no flag gave stays the file's"
    );
}

#[test]
fn errors_from_the_new_flags_name_the_flag() {
    let path = Path::new(PATH);
    let file = Options::from_toml(path, "cache_size = 5\nnamespaces = [\"a\"]\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cache-size", "0"],
            "flag --cache-size: key `cache_size`: must be at least 1 (set cache_ttl = 0 to turn the cache off)",
        ),
        (
            &["--namespace", "kube_system"],
            "flag --namespace: key `namespaces`: \"kube_system\" is not a namespace name",
        ),
        (
            &["--forward-timeout-ms", "5"],
            "flag --forward-timeout-ms: key `forward_timeout_ms`: 5 is outside 50..=30000",
        ),
        (
            &["--manifests-poll-interval-ms", "1"],
            "flag --manifests-poll-interval-ms: key `manifests_poll_interval_ms`: 1 is outside 10..=3600000",
        ),
        (
            &["--max-concurrent", "0"],
            "flag --max-concurrent: key `max_concurrent`: must be at least 1",
        ),
        (
            &["--labels", " "],
            "flag --labels: key `labels`: the selector is empty",
        ),
    ];
    for (argv, expected) in cases {
        let given = flags(argv);
        let err = Settings::resolve(None, given.clone()).unwrap_err();
        assert_eq!(err.to_string(), *expected);
        // With a file too: the flag's value is the one refused, and named.
        let err = Settings::resolve(Some((path, file.clone())), given).unwrap_err();
        assert_eq!(err.to_string(), *expected);
    }
}

#[test]
fn bad_flag_values_are_refused_by_the_parser() {
    for argv in [
        ["--loadbalance", "yes"],
        ["--streaming-lists", "sometimes"],
        ["--cache-size", "-1"],
    ] {
        let argv = ["cluster-dns", "serve"].iter().chain(&argv);
        assert!(Cli::try_parse_from(argv).is_err());
    }
}

#[test]
fn relative_paths_in_the_file_are_relative_to_it() {
    let path = Path::new("/etc/cluster-dns/c.toml");
    let file = Options::from_toml(
        path,
        "manifests = \"m\"\nkubeconfig = \"k\"\nhandover = \"/run/h\"\nresolv_conf = \"r\"\n",
    )
    .unwrap();
    let given = Options {
        kubeconfig: Some("flag-k".into()),
        ..Options::default()
    };
    let s = Settings::resolve(Some((path, file)), given).unwrap();
    assert_eq!(s.manifests, Some(PathBuf::from("/etc/cluster-dns/m")));
    assert_eq!(
        s.kube.kubeconfig,
        Some(PathBuf::from("flag-k")),
        "a flag's path is as given"
    );
    assert_eq!(s.handover, Some(PathBuf::from("/run/h")));
    assert_eq!(
        s.upstreams,
        Upstreams::ResolvConf(PathBuf::from("/etc/cluster-dns/r"))
    );
}

#[test]
fn a_port_alone_listens_on_both_families() {
    let both: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()];
    assert_eq!(from_file("listen = [\":53\"]\n").unwrap().listen, both);
    let flags = Options {
        listen: Some(vec![":53".into(), "0.0.0.0:53".into(), ".:53".into()]),
        ..Options::default()
    };
    assert_eq!(Settings::resolve(None, flags).unwrap().listen, both);
}

/// `[[blocks]]`: a server block's own keys resolve as the root's do, keys a
/// block cannot hold and blocks over the cluster zones are refused naming the
/// block, and the answer configuration picks a name's block by longest zone.
#[test]
fn blocks_resolve_into_their_own_configuration() {
    let text = "[[blocks]]\nzones = [\"example.org\"]\nupstream = [\"127.0.0.1:5301\"]\n\
                forward_force_tcp = true\nrewrites = [\"name suffix .example.org .svc.cluster.local\"]\nwhoami = true\n\
                [[blocks]]\nzones = [\"deep.example.org\"]\nresolv_conf = \"r\"\n";
    let s = from_file(text).unwrap();
    assert_eq!(s.blocks.len(), 2);
    assert!(s.blocks[0].forward.force_tcp);
    assert!(s.blocks[0].plugins.whoami && !s.plugins.whoami);
    assert_eq!(
        s.blocks[1].upstreams,
        Upstreams::ResolvConf("/etc/cluster-dns/r".into())
    );
    let zone = s.zone_config();
    let name = |n: &str| Name::from_ascii(n).unwrap();
    let block = zone.block_for(&name("www.example.org."));
    assert_eq!(block.route, Some(name("example.org.")));
    assert!(block.whoami && !block.rewrites.is_empty());
    assert_eq!(
        zone.block_for(&name("a.deep.example.org.")).route,
        Some(name("deep.example.org.")),
        "the longest zone"
    );
    assert_eq!(zone.block_for(&name("www.example.com.")).route, None);

    for (text, wanted) in [
        (
            "[[blocks]]\nzones = [\"example.org\"]\nttl = 30\n",
            "`ttl` cannot be set in a block",
        ),
        (
            "[[blocks]]\nzones = [\"svc.cluster.local\"]\n",
            "overlaps a cluster zone",
        ),
        (
            "[[blocks]]\nzones = [\"local\"]\n",
            "overlaps a cluster zone",
        ),
        (
            "[[blocks]]\nupstream = [\"127.0.0.1\"]\n",
            "at least one zone",
        ),
        ("[[blocks]]\nzones = [\"arpa\"]\n", "reverse zones"),
        (
            "[[blocks]]\nzones = [\"10.in-addr.arpa\"]\n",
            "reverse zones",
        ),
        (
            "stub_domains = [\"a.example.org=10.0.0.1\"]\n[[blocks]]\nzones = [\"example.org\"]\n",
            "a stub domain",
        ),
        (
            "[[blocks]]\nzones = [\"example.org\"]\n[[blocks]]\nzones = [\"Example.ORG\"]\n",
            "a second block",
        ),
        (
            "[[blocks]]\nzones = [\"example.org\"]\nupstream = [\"nope\"]\n",
            "key `upstream`",
        ),
    ] {
        let error = from_file(text).unwrap_err().to_string();
        assert!(
            error.contains("key `blocks`") && error.contains(wanted),
            "{text}: {error}"
        );
    }
}
