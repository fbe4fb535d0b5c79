use super::*;

fn policy(lines: &[&str]) -> NetPolicy {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    NetPolicy::new(&lines).expect("valid NET lines")
}

fn problem(line: &str) -> NetPatternProblem {
    NetPattern::parse(line).expect_err(line).problem
}

/// (NET lines, host, port, the line expected to allow it or None).
type Case = (&'static [&'static str], &'static str, Option<u16>, Option<&'static str>);

fn check(cases: &[Case]) {
    for &(lines, host, port, expected) in cases {
        let policy = policy(lines);
        let got = policy.allows(host, port);
        assert_eq!(got, expected, "NET {lines:?} host {host:?} port {port:?}");
    }
}

#[test]
fn exact_hosts() {
    check(&[
        (&["api.example.com"], "api.example.com", Some(443), Some("api.example.com")),
        (&["api.example.com"], "api.example.com", None, Some("api.example.com")),
        (&["api.example.com"], "example.com", Some(443), None),
        (&["api.example.com"], "x.api.example.com", Some(443), None),
        (&["api.example.com"], "api.example.com.evil.test", Some(443), None),
        (&["api.example.com"], "evilapi.example.com", Some(443), None),
        (&["api.example.com"], "api.example.co", Some(443), None),
        (&["localhost"], "localhost", Some(80), Some("localhost")),
        (&["my_service.test"], "my_service.test", None, Some("my_service.test")),
    ]);
}

#[test]
fn wildcards_match_at_a_label_boundary() {
    check(&[
        (&["*.example.com"], "a.example.com", None, Some("*.example.com")),
        (&["*.example.com"], "a.b.example.com", None, Some("*.example.com")),
        (&["*.example.com"], "x-1.example.com", Some(8080), Some("*.example.com")),
        (&["*.example.com"], "example.com", None, None),
        (&["*.example.com"], "evilexample.com", None, None),
        (&["*.example.com"], "a.evilexample.com", None, None),
        (&["*.example.com"], ".example.com", None, None),
        (&["*.example.com"], "example.com.evil.test", None, None),
        (&["*.example.com"], "a.example.co", None, None),
        (&["*.b.example.com"], "a.b.example.com", None, Some("*.b.example.com")),
        (&["*.b.example.com"], "b.example.com", None, None),
        (&["*.b.example.com"], "a.c.example.com", None, None),
        (&["*.test"], "api.test", None, Some("*.test")),
    ]);
}

#[test]
fn star_alone_allows_every_host_name_but_no_ip_literal() {
    check(&[
        (&["*"], "api.example.com", None, Some("*")),
        (&["*"], "localhost", Some(1), Some("*")),
        (&["*"], "127.0.0.1", Some(80), None),
        (&["*"], "[::1]", Some(80), None),
        (&["*"], "2130706433", Some(80), None),
        (&["*"], "0x7f000001", Some(80), None),
        (&["*"], "", None, None),
        (&["*"], "*", None, None),
        (&["*"], "a b", None, None),
        (&["*:443"], "api.example.com", Some(443), Some("*:443")),
        (&["*:443"], "api.example.com", Some(80), None),
        (&["*:443"], "api.example.com", None, None),
    ]);
}

#[test]
fn case_is_ignored_on_both_sides() {
    check(&[
        (&["API.Example.COM"], "api.example.com", None, Some("API.Example.COM")),
        (&["api.example.com"], "API.EXAMPLE.COM", None, Some("api.example.com")),
        (&["*.EXAMPLE.com"], "A.example.COM", None, Some("*.EXAMPLE.com")),
    ]);
}

#[test]
fn one_trailing_dot_is_ignored_on_both_sides() {
    check(&[
        (&["api.example.com."], "api.example.com", None, Some("api.example.com.")),
        (&["api.example.com"], "api.example.com.", None, Some("api.example.com")),
        (&["*.example.com."], "a.example.com.", None, Some("*.example.com.")),
        (&["api.example.com."], "api.example.com.:443", None, None),
        (&["api.example.com"], "api.example.com..", None, None),
        (&["api.example.com:443"], "api.example.com.", Some(443), Some("api.example.com:443")),
        (&["api.example.com.:443"], "api.example.com", Some(443), Some("api.example.com.:443")),
    ]);
}

#[test]
fn ports() {
    check(&[
        (&["api.example.com:443"], "api.example.com", Some(443), Some("api.example.com:443")),
        (&["api.example.com:443"], "api.example.com", Some(80), None),
        (&["api.example.com:443"], "api.example.com", None, None),
        (&["api.example.com"], "api.example.com", Some(1), Some("api.example.com")),
        (&["api.example.com"], "api.example.com", Some(65535), Some("api.example.com")),
        (&["*.example.com:8443"], "a.example.com", Some(8443), Some("*.example.com:8443")),
        (&["*.example.com:8443"], "a.example.com", Some(443), None),
        (&["api.example.com:1"], "api.example.com", Some(1), Some("api.example.com:1")),
        (&["api.example.com:65535"], "api.example.com", Some(65535), Some("api.example.com:65535")),
        (&["api.example.com:0443"], "api.example.com", Some(443), Some("api.example.com:0443")),
    ]);
}

#[test]
fn ip_literals() {
    check(&[
        (&["192.0.2.1"], "192.0.2.1", Some(80), Some("192.0.2.1")),
        (&["192.0.2.1"], "192.0.2.10", Some(80), None),
        (&["192.0.2.1:8080"], "192.0.2.1", Some(8080), Some("192.0.2.1:8080")),
        (&["192.0.2.1:8080"], "192.0.2.1", Some(80), None),
        (&["[::1]"], "::1", None, Some("[::1]")),
        (&["[::1]"], "[::1]", None, Some("[::1]")),
        (&["[::1]:443"], "[::1]", Some(443), Some("[::1]:443")),
        (&["[::1]:443"], "[::1]", Some(80), None),
        (&["[2001:db8::1]"], "2001:DB8:0:0:0:0:0:1", None, Some("[2001:db8::1]")),
        (&["[2001:DB8::1]"], "[2001:db8::1]", None, Some("[2001:DB8::1]")),
        (&["[::1]"], "::2", None, None),
        // An IPv4 address is not its IPv4-mapped IPv6 form: denied, never widened.
        (&["192.0.2.1"], "::ffff:192.0.2.1", None, None),
        // Non-canonical spellings of an address are not hosts.
        (&["192.0.2.1"], "192.0.2.01", None, None),
        (&["*.example.com"], "192.0.2.1", None, None),
    ]);
}

#[test]
fn first_matching_line_is_reported() {
    let p = policy(&["api.example.com:443", "*.example.com", "*"]);
    assert_eq!(p.allows("api.example.com", Some(443)), Some("api.example.com:443"));
    assert_eq!(p.allows("api.example.com", Some(80)), Some("*.example.com"));
    assert_eq!(p.allows("other.test", Some(80)), Some("*"));
    assert_eq!(p.allows("10.0.0.1", Some(80)), None);
}

#[test]
fn empty_policy_denies_everything() {
    let p = policy(&[]);
    assert!(p.is_empty());
    assert_eq!(p.allows("api.example.com", Some(443)), None);
    assert_eq!(p.allows("localhost", None), None);
    assert!(!policy(&["api.example.com"]).is_empty());
}

#[test]
fn new_reports_the_first_bad_line() {
    let lines = vec!["api.example.com".to_string(), "https://x.example.com".to_string(), "a b".to_string()];
    let err = NetPolicy::new(&lines).unwrap_err();
    assert_eq!(err.pattern, "https://x.example.com");
    assert_eq!(err.to_string(), "NET \"https://x.example.com\" is a URL; write just the host, e.g. \"x.example.com\"");
}

#[test]
fn malformed_patterns() {
    use NetPatternProblem as P;
    let long_label = format!("{}.example.com", "a".repeat(64));
    let long_name = format!("{}example.com", "abcdefghi.".repeat(25));
    let cases: Vec<(&str, P)> = vec![
        ("", P::Empty),
        ("api.example.com other.example.com", P::Blank),
        ("api.example.com\t", P::Blank),
        ("https://api.example.com", P::Url { host: "api.example.com".into() }),
        ("https://user:pw@api.example.com:8443/v1?q#f", P::Url { host: "api.example.com:8443".into() }),
        ("https://", P::Url { host: String::new() }),
        ("api.example.com/v1", P::Path { host: "api.example.com".into() }),
        ("api.example.com:443/", P::Path { host: "api.example.com:443".into() }),
        ("/v1", P::Path { host: String::new() }),
        (":443", P::NoHost { port: ":443".into() }),
        (":", P::NoHost { port: String::new() }),
        ("api.example.com:", P::BadPort { port: String::new() }),
        ("api.example.com:0", P::BadPort { port: "0".into() }),
        ("api.example.com:65536", P::BadPort { port: "65536".into() }),
        ("api.example.com:99999999999999999999", P::BadPort { port: "99999999999999999999".into() }),
        ("api.example.com:https", P::BadPort { port: "https".into() }),
        ("api.example.com:-1", P::BadPort { port: "-1".into() }),
        ("api.example.com:+443", P::BadPort { port: "+443".into() }),
        ("api.example.com:443:80", P::ExtraColon),
        ("::1", P::UnbracketedIpv6 { addr: "::1".into() }),
        ("2001:db8::1", P::UnbracketedIpv6 { addr: "2001:db8::1".into() }),
        ("[::1", P::BadIpv6),
        ("[::1]443", P::BadIpv6),
        ("[::1]:", P::BadPort { port: String::new() }),
        ("[::1]:0", P::BadPort { port: "0".into() }),
        ("[192.0.2.1]", P::BadIpv6),
        ("[fe80::1%eth0]", P::BadIpv6),
        ("[api.example.com]", P::BadIpv6),
        ("256.0.0.1", P::BadIpv4),
        ("192.0.2", P::BadIpv4),
        ("192.0.2.01", P::BadIpv4),
        ("0x7f000001", P::BadIpv4),
        ("*.0.2.1", P::WildcardOverIp),
        ("*.192.0.2.1", P::WildcardOverIp),
        ("*.", P::BareWildcard),
        ("*..", P::BareWildcard),
        ("*.:443", P::BareWildcard),
        ("**", P::MisplacedWildcard),
        ("**.example.com", P::MisplacedWildcard),
        ("*example.com", P::MisplacedWildcard),
        ("api.*.example.com", P::MisplacedWildcard),
        ("*.*.example.com", P::MisplacedWildcard),
        ("api.example.*", P::MisplacedWildcard),
        (".example.com", P::LeadingDot { rest: "example.com".into() }),
        ("..example.com", P::LeadingDot { rest: "example.com".into() }),
        ("api..example.com", P::EmptyLabel),
        ("api.example.com..", P::EmptyLabel),
        (".", P::EmptyLabel),
        ("api.exa$mple.com", P::BadChar { ch: '$' }),
        ("api@example.com", P::BadChar { ch: '@' }),
        ("api.example.com?x=1", P::BadChar { ch: '?' }),
        ("bücher.example", P::NonAscii { ch: 'ü' }),
        ("-api.example.com", P::Hyphen { label: "-api".into() }),
        ("api-.example.com", P::Hyphen { label: "api-".into() }),
        (long_label.as_str(), P::LabelTooLong),
        (long_name.as_str(), P::TooLong),
    ];
    for (line, expected) in cases {
        assert_eq!(problem(line), expected, "NET {line:?}");
    }
}

#[test]
fn accepted_patterns() {
    for line in [
        "api.example.com",
        "API.EXAMPLE.COM",
        "api.example.com.",
        "*.example.com",
        "*.example.com.:443",
        "*",
        "*:443",
        "localhost",
        "a",
        "xn--bcher-kva.example",
        "my_service.test",
        "a-b.example.com",
        "192.0.2.1",
        "192.0.2.1:443",
        "[::1]",
        "[2001:db8::1]:8443",
        "api.example.com:1",
        "api.example.com:65535",
    ] {
        assert!(NetPattern::parse(line).is_ok(), "NET {line:?}: {:?}", NetPattern::parse(line));
    }
    let max_label = format!("{}.example.com", "a".repeat(63));
    assert!(NetPattern::parse(&max_label).is_ok());
}

#[test]
fn error_messages_name_the_line_and_the_fix() {
    let msg = |line: &str| NetPattern::parse(line).unwrap_err().to_string();
    assert_eq!(
        msg("https://api.example.com/v1"),
        r#"NET "https://api.example.com/v1" is a URL; write just the host, e.g. "api.example.com""#
    );
    assert_eq!(
        msg("api.example.com/v1"),
        r#"NET "api.example.com/v1" has a path; write just the host, e.g. "api.example.com""#
    );
    assert_eq!(msg("/v1"), r#"NET "/v1" has a path; write just the host"#);
    assert_eq!(
        msg("api.example.com:0"),
        r#"NET "api.example.com:0" has an invalid port "0"; a port is a number from 1 to 65535"#
    );
    assert_eq!(msg("*."), r#"NET "*." has no domain after "*."; write e.g. "*.example.com""#);
    assert_eq!(
        msg("api.*.example.com"),
        r#"NET "api.*.example.com" has "*" where only a whole first label may be; write "*.example.com" for every subdomain, or "*" for every host"#
    );
    assert_eq!(
        msg(".example.com"),
        r#"NET ".example.com" starts with a dot; write "*.example.com" for its subdomains or "example.com" for the host itself"#
    );
    assert_eq!(msg("api..example.com"), r#"NET "api..example.com" has an empty label (two dots in a row)"#);
    assert_eq!(
        msg("::1"),
        r#"NET "::1" is an IPv6 address without brackets; write "[::1]", or "[::1]:443" with a port"#
    );
    assert_eq!(msg("a b"), r#"NET "a b" contains a blank; write one host per NET line"#);
    assert_eq!(msg(":443"), r#"NET ":443" has no host before the port; write e.g. "api.example.com:443""#);
    assert!(msg("api!.example.com").contains(r#"contains "!", which is not allowed in a host name"#));
    assert!(msg("bücher.example").contains(r#"ASCII "xn--" form"#));
}

#[test]
fn public_suffix_wildcards() {
    for pattern in ["*.com", "*.co.uk", "*.github.io", "*.COM", "*.com.", "*.com:443", "*.org"] {
        assert!(is_public_suffix_wildcard(pattern), "{pattern}");
    }
    for pattern in [
        "*.example.com",
        "*.example.co.uk",
        "*.a.github.io",
        "*.test",
        "*.localhost",
        "*",
        "com",
        "example.com",
        "192.0.2.1",
        "[::1]",
        "*.",
        "https://x",
        "",
    ] {
        assert!(!is_public_suffix_wildcard(pattern), "{pattern}");
    }
    let p = NetPattern::parse("*.CO.uk").unwrap();
    assert_eq!(p.public_suffix(), Some("co.uk"));
    assert_eq!(NetPattern::parse("*.example.com").unwrap().public_suffix(), None);
}

#[test]
fn covers() {
    let covers =
        |outer: &str, inner: &str| NetPattern::parse(outer).unwrap().covers(&NetPattern::parse(inner).unwrap());
    let yes = [
        ("api.example.com", "api.example.com"),
        ("API.example.com.", "api.example.com"),
        ("api.example.com", "api.example.com:443"),
        ("api.example.com:443", "api.example.com:443"),
        ("*.example.com", "api.example.com"),
        ("*.example.com", "a.b.example.com:443"),
        ("*.example.com", "*.example.com"),
        ("*.example.com", "*.b.example.com"),
        ("*", "api.example.com"),
        ("*", "*.example.com"),
        ("*", "*"),
        ("*:443", "api.example.com:443"),
        ("192.0.2.1", "192.0.2.1:443"),
        ("[::1]", "[0:0::1]"),
    ];
    let no = [
        ("api.example.com", "other.example.com"),
        ("api.example.com:443", "api.example.com"),
        ("api.example.com:443", "api.example.com:80"),
        ("api.example.com", "*.example.com"),
        ("*.example.com", "example.com"),
        ("*.example.com", "evilexample.com"),
        ("*.b.example.com", "*.example.com"),
        ("*.example.com", "*"),
        ("*", "192.0.2.1"),
        ("*", "[::1]"),
        ("*.example.com", "192.0.2.1"),
        ("*:443", "api.example.com"),
        ("192.0.2.1", "192.0.2.2"),
    ];
    for (outer, inner) in yes {
        assert!(covers(outer, inner), "{outer} should cover {inner}");
    }
    for (outer, inner) in no {
        assert!(!covers(outer, inner), "{outer} should not cover {inner}");
    }
    let p = policy(&["*.example.com:443", "*.example.com"]);
    assert_eq!(p.covering(&NetPattern::parse("api.example.com").unwrap()), Some("*.example.com"));
    assert_eq!(p.covering(&NetPattern::parse("example.com").unwrap()), None);
}

#[test]
fn host_parse_normalises() {
    assert_eq!(Host::parse("API.Example.com."), Some(Host::Name("api.example.com".into())));
    assert_eq!(Host::parse("192.0.2.1"), Some(Host::Ip("192.0.2.1".parse().unwrap())));
    assert_eq!(Host::parse("192.0.2.1."), Some(Host::Ip("192.0.2.1".parse().unwrap())));
    assert_eq!(Host::parse("[::1]"), Some(Host::Ip("::1".parse().unwrap())));
    assert_eq!(Host::parse("::1"), Some(Host::Ip("::1".parse().unwrap())));
    for bad in ["", ".", "a..b", "a b", "*.example.com", "[::1", "1.2.3", "api.example.com:443", "ü.example"] {
        assert_eq!(Host::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Host::parse("API.example.com").unwrap().to_string(), "api.example.com");
    assert_eq!(Host::parse("::1").unwrap().to_string(), "[::1]");
}

#[test]
fn accessors() {
    let p = NetPattern::parse("*:8443").unwrap();
    assert!(p.is_any());
    assert_eq!(p.port(), Some(8443));
    assert_eq!(p.as_str(), "*:8443");
    let policy: NetPolicy = [p.clone()].into_iter().collect();
    assert_eq!(policy.patterns(), &[p]);
}

/// No input may panic: every short string over an alphabet of the characters
/// the parser treats specially.
#[test]
fn never_panics_on_short_inputs() {
    let alphabet = ['a', '*', '.', ':', '[', ']', '/', '1', '-', 'ü', ' '];
    let mut inputs = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..4 {
        frontier = frontier.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
        inputs.extend(frontier.iter().cloned());
    }
    let p = policy(&["*", "*.a", "a", "[::1]"]);
    for s in &inputs {
        let _ = NetPattern::parse(s);
        let _ = is_public_suffix_wildcard(s);
        let _ = p.allows(s, Some(1));
        let _ = Host::parse(s);
    }
}
