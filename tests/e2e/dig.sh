#!/usr/bin/env bash
# End-to-end: run the built cluster-dns on examples/statefulset and check what `dig` prints.
# Usage: tests/e2e/dig.sh [path/to/cluster-dns]   (default: builds and uses target/debug)
set -uo pipefail
cd "$(dirname "$0")/../.."

command -v dig >/dev/null || { echo "dig not found: apt-get install -y dnsutils" >&2; exit 2; }
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet --locked || exit 2
  bin=target/debug/cluster-dns
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts the server on a free loopback port; sets $port. Args: log file, extra flags...
start() {
  local log=$1; shift
  "$bin" serve --listen 127.0.0.1:0 --health-listen 127.0.0.1:0 --ready-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --lameduck 0 "$@" 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "server did not start:" >&2; cat "$log" >&2; exit 1
}

passed=0; failed=0
check() { # name, expected, actual
  if [ "$2" == "$3" ]; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); printf 'FAIL %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3"
  fi
}
q() { dig @127.0.0.1 -p "$port" +time=2 +tries=2 "$@"; }

# B: a second cluster-dns serving the example as zone example.test, the upstream of A.
# Its own upstream is a closed loopback port: nothing leaves the machine.
start "$work/upstream.log" --manifests examples/statefulset --zone example.test --upstream 127.0.0.1:9
upstream_port=$port
# A: the server under test, on the example, forwarding to B.
start "$work/example.log" --manifests examples/statefulset --upstream "127.0.0.1:$upstream_port"

check "headless service lists every pod" \
  "$(printf '10.244.1.10\n10.244.2.11\n10.244.3.12')" "$(q +short nginx.default.svc.cluster.local | sort)"
check "pod name under the headless service" "10.244.1.10" "$(q +short web-0.nginx.default.svc.cluster.local)"
check "mixed case" "10.244.2.11" "$(q +short WEB-1.Nginx.default.svc.Cluster.Local)"
check "ClusterIP service" "10.96.19.251" "$(q +short myweb-svc.default.svc.cluster.local)"
check "dual-stack AAAA" "fd00:10:96::13fb" "$(q +short AAAA myweb-svc.default.svc.cluster.local)"
check "SRV for the named port" \
  "$(printf '0 33 80 web-0.nginx.default.svc.cluster.local.\n0 33 80 web-1.nginx.default.svc.cluster.local.\n0 33 80 web-2.nginx.default.svc.cluster.local.')" \
  "$(q +short SRV _web._tcp.nginx.default.svc.cluster.local)"
check "plain SRV (nslookup -type=srv)" \
  "$(printf '0 33 80 web-0.nginx.default.svc.cluster.local.\n0 33 80 web-1.nginx.default.svc.cluster.local.\n0 33 80 web-2.nginx.default.svc.cluster.local.')" \
  "$(q +short SRV nginx.default.svc.cluster.local)"
check "PTR of a ClusterIP" "myweb-svc.default.svc.cluster.local." "$(q +short -x 10.96.19.251)"
check "PTR of a pod" "web-2.nginx.default.svc.cluster.local." "$(q +short -x 10.244.3.12)"
check "PTR of an IPv6 ClusterIP" "myweb-svc.default.svc.cluster.local." "$(q +short -x fd00:10:96::13fb)"
check "ExternalName CNAME" "db.example.com." "$(q +short db.shop.svc.cluster.local)"
check "in-cluster ExternalName is followed" \
  "$(printf 'myweb-svc.default.svc.cluster.local.\n10.96.19.251')" "$(q +short frontend.shop.svc.cluster.local)"
check "dns-version TXT" '"1.1.0"' "$(q +short TXT dns-version.cluster.local)"
check "pod A record" "10.244.2.11" "$(q +short 10-244-2-11.default.pod.cluster.local)"
check "NXDOMAIN status" "NXDOMAIN" "$(q nope.default.svc.cluster.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "NXDOMAIN carries the SOA" "cluster.local." \
  "$(q nope.default.svc.cluster.local | awk '/AUTHORITY SECTION/{getline; print $1}')"
check "NODATA status" "NOERROR" "$(q AAAA nginx.default.svc.cluster.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "authoritative answer" "yes" "$(q nginx.default.svc.cluster.local | grep -q 'flags: qr aa' && echo yes)"
check "other zones are forwarded" "10.244.1.10" "$(q +short web-0.nginx.default.svc.example.test)"
check "forwarded answers are not authoritative" "yes" \
  "$(q web-0.nginx.default.svc.example.test | grep -q 'flags: qr rd ra;' && echo yes)"
check "the upstream's NXDOMAIN passes through" "NXDOMAIN" \
  "$(q nope.default.svc.example.test | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "search-path expansion answered here, NXDOMAIN" "NXDOMAIN" \
  "$(q example.com.default.svc.cluster.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "TCP" "10.244.1.10" "$(q +tcp +short web-0.nginx.default.svc.cluster.local)"

# A headless service with 100 pods: UDP truncates, dig retries over TCP and gets all of them.
mkdir -p "$work/big"
{
  printf 'apiVersion: v1\nkind: Service\nmetadata: {name: big}\nspec: {clusterIP: None}\n---\n'
  printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: big-1, labels: {kubernetes.io/service-name: big}}\naddressType: IPv4\nendpoints:\n'
  for i in $(seq 1 100); do printf -- '- addresses: ["10.250.0.%d"]\n' "$i"; done
} >"$work/big/big.yaml"
start "$work/big.log" --manifests "$work/big" --upstream 127.0.0.1:9
out=$(q big.default.svc.cluster.local)
check "truncated UDP answer is retried over TCP" "yes" "$(grep -q 'Truncated, retrying in TCP mode' <<<"$out" && echo yes)"
check "all 100 endpoints arrive" "100" "$(grep -c '^big.default.svc.cluster.local.' <<<"$out")"

# A Corefile with a stub domain: example.test goes to B, everything else to a
# closed loopback port.
cat >"$work/Corefile" <<COREFILE
.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    hosts $work/hosts {
        10.9.8.6 inline.example
        fallthrough
    }
    template IN AAAA . {
        rcode NOERROR
    }
    template IN A example {
        match ^ip-(?P<a>[0-9]+)-(?P<b>[0-9]+)-(?P<c>[0-9]+)-(?P<d>[0-9]+)[.]example[.]\$
        answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough
    }
    rewrite stop {
        name regex (.*)\.corp\.example\. {1}.default.svc.cluster.local.
        answer name (.*)\.default\.svc\.cluster\.local\. {1}.corp.example.
    }
    rewrite name suffix .internal. .svc.cluster.local. answer auto
    forward . 127.0.0.1:9
    cache 30
    loadbalance
}
example.test:53 {
    errors
    forward . 127.0.0.1:$upstream_port
}
COREFILE
printf '10.9.8.7 legacy.example legacy\n' >"$work/hosts"
check "corefile check accepts it" "0" "$("$bin" corefile check "$work/Corefile" >/dev/null 2>&1; echo $?)"
start "$work/corefile.log" --corefile "$work/Corefile" --manifests examples/statefulset
check "Corefile: the kubernetes plugin's ttl 30" "30" \
  "$(q +noall +answer web-0.nginx.default.svc.cluster.local | awk '{print $2}')"
check "Corefile: the stub domain is asked" "10.244.1.10" "$(q +short web-0.nginx.default.svc.example.test)"
check "Corefile: other names go to the default upstream (closed: SERVFAIL)" "SERVFAIL" \
  "$(q example.org | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"
check "Corefile: hosts file entry" "10.9.8.7" "$(q +short legacy.example)"
check "Corefile: hosts inline entry" "10.9.8.6" "$(q +short inline.example)"
check "Corefile: template answers AAAA with NOERROR and no records" "NOERROR 0" \
  "$(q AAAA web-0.nginx.default.svc.cluster.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p; s/.*ANSWER: \([0-9]*\),.*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
check "Corefile: a template answers from the question's name" "ip-192-0-2-44.example. 60 IN A 192.0.2.44" \
  "$(q +noall +answer ip-192-0-2-44.example | tr -s ' \t' ' ')"
check "Corefile: rewrite regex, the answer under the asked name" "web-1.nginx.corp.example. 30 IN A 10.244.2.11" \
  "$(q +noall +answer web-1.nginx.corp.example | tr -s ' \t' ' ')"
check "Corefile: rewrite suffix with answer auto, SRV targets too" \
  "$(printf '0 33 80 web-0.nginx.default.internal.\n0 33 80 web-1.nginx.default.internal.\n0 33 80 web-2.nginx.default.internal.')" \
  "$(q +short SRV nginx.default.internal)"
check "Corefile: the question stays as asked" "yes" \
  "$(q web-1.nginx.CORP.example | grep -q '^;web-1.nginx.CORP.example.' && echo yes)"
printf '.:53 {\n    kubernetes cluster.local\n    etcd skydns.local\n    forward . 127.0.0.1:9\n}\n' >"$work/Bad"
check "Corefile: an unsupported plugin is refused with its line" \
  "$work/Bad:3: plugin etcd is not supported" \
  "$("$bin" corefile check "$work/Bad" 2>&1 | cut -d'(' -f1 | sed 's/ $//')"

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
