use super::*;
use crate::sandboxfile::{Process, Service, parse};

/// A file that is clean: no error, no warning.
const CLEAN: &str = "\
FROM host
WORKDIR .
RUN bun install
DEV PORT=3000 WATCH=src/** bun run dev
SERVICE db PORT=5432 postgres -D ./pgdata
SERVICE worker WATCH=src/worker/** bun run worker.ts
TEST bun test
OUTPUT src/
OUTPUT package.json
LOGS logs/*
NET api.example.com
NET *.example.com
SECRET API_KEY api.example.com
";

fn file(src: &str) -> Sandboxfile {
    parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn clean() -> Sandboxfile {
    file(CLEAN)
}

/// The clean file plus `extra` lines.
fn with(extra: &str) -> Report {
    validate(&file(&format!("{CLEAN}{extra}\n")))
}

/// The clean file without the lines that start with any of `prefixes`.
fn without(prefixes: &[&str]) -> Report {
    let kept: Vec<&str> = CLEAN.lines().filter(|l| !prefixes.iter().any(|p| l.starts_with(p))).collect();
    validate(&file(&kept.join("\n")))
}

/// The only message, asserting there is exactly one.
#[track_caller]
fn only(messages: &[String]) -> &str {
    assert_eq!(messages.len(), 1, "expected one message, got {messages:#?}");
    &messages[0]
}

#[track_caller]
fn only_error(report: &Report) -> &str {
    assert!(report.warnings.is_empty(), "unexpected warnings {:#?}", report.warnings);
    only(&report.errors)
}

#[track_caller]
fn only_warning(report: &Report) -> &str {
    assert!(report.errors.is_empty(), "unexpected errors {:#?}", report.errors);
    only(&report.warnings)
}

#[test]
fn clean_file_has_nothing_to_report() {
    assert_eq!(validate(&clean()), Report::default());
}

#[test]
fn report_serialises_as_the_js_shape() {
    let json = serde_json::to_value(validate(&clean())).unwrap();
    assert_eq!(json, serde_json::json!({ "errors": [], "warnings": [] }));
}

// ---- FROM ----

#[test]
fn missing_from_warns() {
    assert_eq!(
        only_warning(&without(&["FROM"])),
        "No FROM line: the sandbox starts from the host's filesystem (copy-on-write), as with \"FROM host\""
    );
}

#[test]
fn from_paths_are_accepted() {
    for from in ["host", "/srv/rootfs", "./rootfs", "../rootfs", ".", ".."] {
        let mut f = clean();
        f.from = Some(from.into());
        assert_eq!(validate(&f), Report::default(), "FROM {from}");
    }
}

#[test]
fn from_image_reference_is_an_error() {
    for from in ["ubuntu:22.04", "debian", "HOST", "rootfs", "~/rootfs", "docker.example.com/app:1"] {
        let mut f = clean();
        f.from = Some(from.into());
        let r = validate(&f);
        let msg = only_error(&r);
        assert!(msg.starts_with(&format!("FROM \"{from}\" is not supported")), "{msg}");
        assert!(msg.contains("\"FROM host\""), "{msg}");
        assert!(msg.contains("\"./\""), "{msg}");
        assert!(msg.contains("image references are not supported"), "{msg}");
    }
}

// ---- WORKDIR, commands, OUTPUT, NET absent ----

#[test]
fn missing_workdir_warns() {
    let r = without(&["WORKDIR"]);
    assert!(only_warning(&r).starts_with("No WORKDIR line: the project root is the Sandboxfile's directory"));
    assert!(only_warning(&r).contains("\"WORKDIR .\""));
}

#[test]
fn no_commands_warns() {
    let r = without(&["RUN", "DEV", "SERVICE", "TEST"]);
    assert_eq!(
        only_warning(&r),
        "No RUN, DEV, SERVICE or TEST line: the sandbox runs nothing until a command is executed in it"
    );
    // Any one kind of command is enough.
    for keep in ["RUN", "DEV", "SERVICE", "TEST"] {
        let drop: Vec<&str> = ["RUN", "DEV", "SERVICE", "TEST"].into_iter().filter(|d| *d != keep).collect();
        assert_eq!(without(&drop), Report::default(), "with only {keep}");
    }
}

#[test]
fn no_output_warns() {
    let r = without(&["OUTPUT"]);
    assert!(only_warning(&r).starts_with("No OUTPUT line: nothing leaves the sandbox"), "{r:?}");
}

#[test]
fn no_net_warns_and_scoped_secret_hosts_become_errors() {
    let r = without(&["NET", "SECRET"]);
    assert_eq!(
        only_warning(&r),
        "No NET line: the sandbox has no network access; add e.g. \"NET api.example.com\" for each host it needs"
    );
}

#[test]
fn infer_star_silences_what_inference_fills_in() {
    let r = validate(&file("FROM host\nWORKDIR .\nINFER *\n"));
    assert_eq!(r, Report::default());
    // FROM and WORKDIR are not inferred.
    let r = validate(&file("INFER *\n"));
    assert_eq!(r.warnings.len(), 2, "{r:?}");
    assert!(r.warnings[0].starts_with("No FROM line"));
    assert!(r.warnings[1].starts_with("No WORKDIR line"));
}

// ---- INFER ----

#[test]
fn infer_other_than_star_is_an_error() {
    let r = with("INFER src");
    assert_eq!(
        only_error(&r),
        "INFER \"src\" is not supported; write \"INFER *\" to infer everything the file does not declare"
    );
}

// ---- NET ----

#[test]
fn net_star_warns() {
    assert_eq!(
        only_warning(&with("NET *")),
        "NET \"*\" allows every host; list the hosts the sandbox needs, e.g. \"NET api.example.com\""
    );
    assert!(only_warning(&with("NET *:443")).starts_with("NET \"*:443\" allows every host on port 443;"));
}

#[test]
fn net_to_the_hosts_own_loopback_is_a_warning() {
    for line in ["127.0.0.1", "127.0.0.1:8080", "127.1.2.3", "[::1]", "[::ffff:127.0.0.1]:80", "0.0.0.0"] {
        assert_eq!(
            only_warning(&with(&format!("NET {line}"))),
            format!(
                "NET \"{line}\" lets the sandbox reach services on the host's own loopback interface; to reach a local test server under a name, list the name and map it with network.resolve instead"
            )
        );
    }
    // Other addresses are as any other host: named on purpose.
    assert!(with("NET 192.0.2.10").warnings.is_empty());
}

#[test]
fn net_pattern_that_does_not_parse_is_an_error() {
    assert_eq!(
        only_error(&with("NET https://api.example.com/v1")),
        "NET \"https://api.example.com/v1\" is a URL; write just the host, e.g. \"api.example.com\""
    );
    assert_eq!(
        only_error(&with("NET api.example.com/v1")),
        "NET \"api.example.com/v1\" has a path; write just the host, e.g. \"api.example.com\""
    );
    assert!(only_error(&with("NET api.*.example.com")).starts_with("NET \"api.*.example.com\" has \"*\""));
    assert!(only_error(&with("NET api.example.com:0")).contains("invalid port \"0\""));
    assert!(only_error(&with("NET *.")).contains("no domain after \"*.\""));
    assert!(only_error(&with("NET api..example.com")).contains("empty label"));
    assert!(only_error(&with("NET a.example.com b.example.com")).contains("one host per NET line"));
    // Every bad line is reported, not just the first.
    assert_eq!(with("NET x/y\nNET *.\nNET ok.example.com").errors.len(), 2);
}

#[test]
fn public_suffix_wildcard_is_an_error() {
    assert_eq!(
        only_error(&with("NET *.com")),
        "NET \"*.com\" allows every host under the public suffix \"com\"; name the hosts you need, e.g. \"api.example.com\""
    );
    assert!(only_error(&with("NET *.co.uk")).contains("under the public suffix \"co.uk\""));
    assert!(only_error(&with("NET *.github.io:443")).contains("under the public suffix \"github.io\""));
    assert_eq!(with("NET *.test\nNET *.example.co.uk"), Report::default());
}

// ---- SECRET ----

#[test]
fn secret_without_hosts_warns_when_net_has_hosts() {
    let r = with("SECRET TOKEN");
    assert_eq!(
        only_warning(&r),
        "SECRET TOKEN names no hosts, so it may be sent to any NET host; scope it with \"SECRET TOKEN api.example.com\""
    );
    // Without NET there is nowhere to send it: nothing to scope.
    let r = validate(&file("FROM host\nWORKDIR .\nRUN true\nOUTPUT src/\nSECRET TOKEN\n"));
    assert_eq!(
        only_warning(&r),
        "No NET line: the sandbox has no network access; add e.g. \"NET api.example.com\" for each host it needs"
    );
}

#[test]
fn secret_suggestion_uses_an_exact_net_host() {
    let r = validate(&file(
        "FROM host\nWORKDIR .\nRUN true\nOUTPUT src/\nNET *.example.com\nNET registry.test:443\nSECRET TOKEN\n",
    ));
    assert!(only_warning(&r).ends_with("\"SECRET TOKEN registry.test:443\""), "{r:?}");
    let r = validate(&file("FROM host\nWORKDIR .\nRUN true\nOUTPUT src/\nNET *.example.com\nSECRET TOKEN\n"));
    assert!(only_warning(&r).ends_with("\"SECRET TOKEN api.example.com\""), "{r:?}");
}

#[test]
fn secret_declared_twice_warns_once() {
    let r = with("SECRET API_KEY\nSECRET API_KEY");
    assert_eq!(only_warning(&r), "SECRET API_KEY is declared more than once; declare it once, with all its hosts");
}

#[test]
fn secret_host_not_allowed_by_net_is_an_error() {
    let r = with("SECRET PAY_KEY pay.test");
    assert_eq!(
        only_error(&r),
        "SECRET PAY_KEY may be sent to \"pay.test\", but no NET line allows that host; add \"NET pay.test\""
    );
    // Covered by an exact line, a wildcard, or NET * (which itself warns).
    assert_eq!(with("SECRET PAY_KEY a.b.example.com"), Report::default());
    assert_eq!(with("SECRET PAY_KEY *.b.example.com API.EXAMPLE.COM. api.example.com:443"), Report::default());
    assert_eq!(with("NET *\nSECRET PAY_KEY pay.test").errors, Vec::<String>::new());
    // A wildcard NET line does not cover its bare domain; a port line covers only that port.
    assert!(only_error(&with("SECRET PAY_KEY example.com")).contains("\"NET example.com\""));
    let r = with("NET pay.test:443\nSECRET PAY_KEY pay.test");
    assert!(only_error(&r).contains("may be sent to \"pay.test\""));
    // Each host is checked.
    assert_eq!(with("SECRET PAY_KEY pay.test api.example.com other.test").errors.len(), 2);
}

#[test]
fn secret_host_that_does_not_parse_is_an_error() {
    let r = with("SECRET PAY_KEY https://api.example.com");
    assert_eq!(
        only_error(&r),
        "SECRET PAY_KEY host \"https://api.example.com\" is a URL; write just the host, e.g. \"api.example.com\""
    );
}

#[test]
fn secret_hosts_key_not_in_secrets_is_an_error() {
    let mut f = clean();
    f.secret_hosts.get_or_insert_with(Default::default).insert("GHOST".into(), vec!["api.example.com".into()]);
    assert_eq!(
        only_error(&validate(&f)),
        "secretHosts has hosts for \"GHOST\", which is not in secrets; add it to secrets or remove the entry"
    );
}

#[test]
fn secret_hosts_empty_list_is_an_error() {
    let mut f = clean();
    f.secret_hosts.get_or_insert_with(Default::default).insert("API_KEY".into(), vec![]);
    assert_eq!(
        only_error(&validate(&f)),
        "secretHosts lists no hosts for API_KEY; name the hosts it may be sent to, or remove the entry"
    );
}

#[test]
fn secret_name_that_is_not_an_env_name_is_an_error() {
    let mut f = clean();
    f.secrets = vec!["API-KEY".into()];
    f.secret_hosts = None;
    let r = validate(&f);
    assert_eq!(
        only(&r.errors),
        "SECRET \"API-KEY\" is not a valid environment variable name (letters, digits and \"_\" only)"
    );
}

// ---- processes ----

#[test]
fn service_named_like_a_program_warns() {
    let r = with("SERVICE PORT=5433 docker compose up");
    assert_eq!(
        only_warning(&r),
        "SERVICE docker looks like a program, but the first word after PORT= and WATCH= is the service's name, \
         so it runs \"compose up\"; write \"SERVICE NAME docker compose up\" to run \"docker compose up\""
    );
    for program in [
        "npm", "npx", "bun", "bunx", "node", "yarn", "pnpm", "python3", "cargo", "make", "sh", "sudo", "env",
        "./server",
    ] {
        let r = with(&format!("SERVICE {program} run it"));
        assert!(only_warning(&r).starts_with(&format!("SERVICE {program} looks like a program")), "{program}");
    }
    // A service may be named after the server it runs.
    assert_eq!(with("SERVICE redis redis-server"), Report::default());
}

#[test]
fn duplicate_process_names_are_errors() {
    assert_eq!(
        only_error(&with("SERVICE db PORT=5433 postgres")),
        "Two processes are named \"db\": SERVICE db and SERVICE db; give each process its own name"
    );
    assert_eq!(
        only_error(&with("SERVICE dev bun run other")),
        "Two processes are named \"dev\": DEV and SERVICE dev; give each process its own name"
    );
    // TESTs are test-0, test-1, ... in file order (0-based, as the reference runtime names them); services are checked before tests.
    assert_eq!(
        only_error(&with("SERVICE test-0 bun run x")),
        "Two processes are named \"test-0\": SERVICE test-0 and TEST test-0 (\"bun test\"); give each process its own name"
    );
    assert_eq!(with("SERVICE test-1 bun run x"), Report::default());
    // Names given through the API count too.
    let mut f = clean();
    f.tests.push(Process { name: Some("worker".into()), command: "bun test b".into(), ..Default::default() });
    assert_eq!(
        only_error(&validate(&f)),
        "Two processes are named \"worker\": SERVICE worker and TEST worker (\"bun test b\"); give each process its own name"
    );
    let mut f = clean();
    f.dev.as_mut().unwrap().name = Some("db".into());
    assert!(only_error(&validate(&f)).starts_with("Two processes are named \"db\": DEV db and SERVICE db;"));
}

#[test]
fn empty_names_are_errors() {
    let mut f = clean();
    f.services.push(Service { name: String::new(), command: "redis-server".into(), port: None, watch: None });
    assert_eq!(only_error(&validate(&f)), "SERVICE requires a name: the service running \"redis-server\" has none");
    let mut f = clean();
    f.dev.as_mut().unwrap().name = Some(" ".into());
    assert_eq!(only_error(&validate(&f)), "DEV name must not be empty (DEV running \"bun run dev\")");
    let mut f = clean();
    f.tests[0].name = Some(String::new());
    assert_eq!(only_error(&validate(&f)), "TEST name must not be empty (TEST running \"bun test\")");
}

#[test]
fn port_zero_is_an_error() {
    let mut f = clean();
    f.services[0].port = Some(0);
    assert_eq!(only_error(&validate(&f)), "SERVICE db has PORT=0; a process listens on a port from 1 to 65535");
    let mut f = clean();
    f.dev.as_mut().unwrap().port = Some(0);
    assert_eq!(only_error(&validate(&f)), "DEV has PORT=0; a process listens on a port from 1 to 65535");
}

#[test]
fn shared_port_is_an_error() {
    assert_eq!(
        only_error(&with("SERVICE web PORT=3000 bun run web")),
        "PORT=3000 is used by both DEV and SERVICE web; give each process its own port"
    );
    assert_eq!(
        only_error(&with("TEST PORT=5432 bun run e2e")),
        "PORT=5432 is used by both SERVICE db and TEST test-1 (\"bun run e2e\"); give each process its own port"
    );
}

#[test]
fn watch_on_test_warns() {
    assert_eq!(
        only_warning(&with("TEST WATCH=src/** bun test b")),
        "TEST test-1 (\"bun test b\") has WATCH=\"src/**\", which is ignored: tests are not restarted"
    );
}

#[test]
fn empty_watch_is_an_error() {
    assert_eq!(
        only_error(&with("SERVICE web WATCH= bun run web")),
        "SERVICE web has an empty WATCH=; give it a glob such as \"src/**\", or remove it"
    );
}

#[test]
fn bad_watch_globs_are_errors() {
    assert_eq!(
        only_error(&with("SERVICE web WATCH=/etc/** bun run web")),
        "SERVICE web WATCH=\"/etc/**\" is an absolute path; write it relative to WORKDIR, e.g. \"src/\""
    );
    assert_eq!(
        only_error(&with("SERVICE web WATCH=../other/** bun run web")),
        "SERVICE web WATCH=\"../other/**\" contains \"..\"; paths are relative to WORKDIR and stay inside it"
    );
    let r = with("SERVICE web WATCH=src/[a bun run web");
    assert!(only_error(&r).starts_with("SERVICE web WATCH=\"src/[a\" is not a valid glob: "), "{r:?}");
    let mut f = clean();
    f.dev.as_mut().unwrap().watch = Some("src/{a".into());
    assert!(only_error(&validate(&f)).starts_with("DEV WATCH=\"src/{a\" is not a valid glob: "));
}

// ---- OUTPUT and LOGS ----

#[test]
fn bad_output_and_logs_globs_are_errors() {
    assert_eq!(
        only_error(&with("OUTPUT /etc/passwd")),
        "OUTPUT \"/etc/passwd\" is an absolute path; write it relative to WORKDIR, e.g. \"src/\""
    );
    assert_eq!(
        only_error(&with("OUTPUT src/../../x")),
        "OUTPUT \"src/../../x\" contains \"..\"; paths are relative to WORKDIR and stay inside it"
    );
    assert_eq!(
        only_error(&with("LOGS ..")),
        "LOGS \"..\" contains \"..\"; paths are relative to WORKDIR and stay inside it"
    );
    let r = with("LOGS logs/[x");
    assert!(only_error(&r).starts_with("LOGS \"logs/[x\" is not a valid glob: unclosed character class"), "{r:?}");
    let mut f = clean();
    f.outputs.push(String::new());
    assert_eq!(only_error(&validate(&f)), "OUTPUT \"\" is empty; write a path relative to WORKDIR, e.g. \"src/\"");
    // Dots inside names are not "..", and a trailing "/" is the whole directory.
    assert_eq!(with("OUTPUT a..b/\nOUTPUT ./dist/\nLOGS **/*.log\nOUTPUT .config/x"), Report::default());
}

#[test]
fn every_problem_is_reported_together() {
    let r =
        validate(&file("FROM ubuntu:22.04\nINFER src\nNET *.com\nNET *\nSECRET K other.test\nSECRET K\nOUTPUT /x\n"));
    assert_eq!(r.errors.len(), 4, "{r:#?}");
    assert_eq!(r.warnings.len(), 4, "{r:#?}"); // WORKDIR, no commands, NET *, SECRET twice
}

#[test]
fn never_panics_on_odd_input() {
    let odd = ["", " ", "*", "..", "/", "[", "{", "ü", "\u{0}", "a\nb", "PORT=", ":", "*.", "[::1]"];
    for s in odd {
        let s = s.to_string();
        let f = Sandboxfile {
            from: Some(s.clone()),
            workdir: Some(s.clone()),
            run_commands: vec![s.clone()],
            dev: Some(Process { name: Some(s.clone()), command: s.clone(), port: Some(0), watch: Some(s.clone()) }),
            services: vec![Service { name: s.clone(), command: s.clone(), port: Some(0), watch: Some(s.clone()) }],
            tests: vec![Process { name: None, command: s.clone(), port: Some(1), watch: Some(s.clone()) }],
            outputs: vec![s.clone()],
            logs: vec![s.clone()],
            net: vec![s.clone()],
            secrets: vec![s.clone(), s.clone()],
            infer: Some(s.clone()),
            secret_hosts: Some([(s.clone(), vec![s.clone()])].into_iter().collect()),
        };
        let _ = validate(&f);
    }
}
