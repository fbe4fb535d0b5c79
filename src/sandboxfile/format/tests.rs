//! `format` against `parse`: `parse(format(x)) == x` for every value `format`
//! accepts, a refusal naming the field for every value it cannot write, and
//! `parse(format(parse(s))) == parse(s)` for any text `s` that parses.

use super::{FormatError, format};
use crate::sandboxfile::fixtures::{SPEC_EXAMPLE, strings};
use crate::sandboxfile::parse::is_js_space;
use crate::sandboxfile::{Process, Sandboxfile, Service, parse};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[track_caller]
fn round_trips(file: &Sandboxfile) -> String {
    let text = match format(file) {
        Ok(text) => text,
        Err(e) => panic!("{file:?} should format, got {e}"),
    };
    assert_eq!(parse(&text).as_ref(), Ok(file), "formatted as {text:?}");
    // Formatting is canonical: a second pass writes the same text.
    assert_eq!(format(&parse(&text).unwrap()).as_deref(), Ok(text.as_str()));
    text
}

#[track_caller]
fn refuses(file: &Sandboxfile, field: &str) -> FormatError {
    match format(file) {
        Ok(text) => panic!("format should refuse {field}, wrote {text:?}"),
        Err(e) => {
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
            assert!(!e.reason.is_empty());
            e
        }
    }
}

fn process(command: &str) -> Process {
    Process { name: None, command: command.into(), port: None, watch: None }
}

fn service(name: &str, command: &str) -> Service {
    Service { name: name.into(), command: command.into(), port: None, watch: None }
}

// ---------------------------------------------------------------------------
// Hand-written round trips
// ---------------------------------------------------------------------------

#[test]
fn the_spec_example() {
    let text = round_trips(&parse(SPEC_EXAMPLE).unwrap());
    assert_eq!(
        text,
        "FROM host
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
NET *.stripe.com

SECRET STRIPE_API_KEY
"
    );
}

#[test]
fn the_empty_file() {
    assert_eq!(round_trips(&Sandboxfile::default()), "");
}

#[test]
fn infer_shorthand() {
    let file = parse("FROM host\nWORKDIR .\nINFER *\n").unwrap();
    assert_eq!(round_trips(&file), "FROM host\nWORKDIR .\nINFER *\n");
}

#[test]
fn every_field() {
    let mut hosts = BTreeMap::new();
    hosts.insert("STRIPE_API_KEY".to_string(), strings(&["api.example.com", "*.test"]));
    let file = Sandboxfile {
        from: Some("./rootfs dir".into()),
        workdir: Some("/srv/my app".into()),
        run_commands: strings(&["bun install", "echo 'a  b'\t# not a comment", "RUN twice"]),
        dev: Some(Process {
            name: None,
            command: "bun run dev".into(),
            port: Some(3000),
            watch: Some("src/**".into()),
        }),
        services: vec![
            Service { name: "db".into(), command: "postgres -D ./pgdata".into(), port: Some(5432), watch: None },
            Service { name: "worker".into(), command: "bun worker.ts".into(), port: None, watch: Some("w/**".into()) },
            Service {
                name: "both".into(),
                command: "x PORT=1 WATCH=y".into(),
                port: Some(65535),
                watch: Some("".into()),
            },
        ],
        tests: vec![
            process("bun test --filter unit"),
            Process { name: None, command: "bun test --filter integration".into(), port: Some(3001), watch: None },
            Process { name: None, command: "t".into(), port: None, watch: Some("t/**".into()) },
        ],
        outputs: strings(&["src/", "package.json", "dir with space/"]),
        logs: strings(&["logs/*"]),
        net: strings(&["api.example.com", "*.test:8443"]),
        secrets: strings(&["STRIPE_API_KEY", "PLAIN"]),
        infer: Some("*".into()),
        secret_hosts: Some(hosts),
    };
    round_trips(&file);
}

#[test]
fn a_service_whose_port_came_first() {
    round_trips(&parse("SERVICE PORT=5432 docker compose up postgres").unwrap());
}

#[test]
fn repeated_secrets_with_hosts() {
    // Hosts from several lines of one secret go on its first line.
    let file = parse("SECRET K api.example.com\nSECRET K\nSECRET J\nSECRET K *.test\n").unwrap();
    let text = round_trips(&file);
    assert_eq!(text, "SECRET K api.example.com *.test\nSECRET K\nSECRET J\nSECRET K\n");
}

#[test]
fn white_space_and_unicode_inside_values() {
    let file = Sandboxfile {
        run_commands: strings(&["a\u{a0}b", "tab\there", "cr\rinside", "日本語 ü \u{1F600}", "a\u{3000}\u{feff}b"]),
        dev: Some(process("run  \t spaced")),
        services: vec![
            // A name may end in white space that is not a blank: the parser keeps it.
            service("n\r", "c"),
            service("n\u{a0}", "c"),
            service("名前", "コマンド"),
        ],
        ..Default::default()
    };
    round_trips(&file);
}

#[test]
fn an_empty_watch() {
    round_trips(&Sandboxfile {
        dev: Some(Process { watch: Some(String::new()), ..process("run") }),
        ..Default::default()
    });
}

// ---------------------------------------------------------------------------
// What format refuses, with the field named
// ---------------------------------------------------------------------------

#[test]
fn refuses_a_newline() {
    refuses(&Sandboxfile { dev: Some(process("a\nb")), ..Default::default() }, "dev.command");
    refuses(&Sandboxfile { run_commands: strings(&["ok", "a\nRUN b"]), ..Default::default() }, "runCommands[1]");
    refuses(&Sandboxfile { services: vec![service("db", "x\ny")], ..Default::default() }, "services[0].command");
    refuses(&Sandboxfile { tests: vec![process("t"), process("x\r\n")], ..Default::default() }, "tests[1].command");
    refuses(&Sandboxfile { from: Some("host\nRUN rm -rf /".into()), ..Default::default() }, "from");
    refuses(&Sandboxfile { net: strings(&["a\nb"]), ..Default::default() }, "net[0]");
    refuses(&Sandboxfile { services: vec![service("d\nb", "x")], ..Default::default() }, "services[0].name");
    let watch = Process { watch: Some("a\nb".into()), ..process("x") };
    refuses(&Sandboxfile { dev: Some(watch), ..Default::default() }, "dev.watch");
}

#[test]
fn refuses_names_the_file_cannot_hold() {
    let named = Process { name: Some("unit".into()), ..process("bun test") };
    refuses(&Sandboxfile { tests: vec![process("a"), named.clone()], ..Default::default() }, "tests[1].name");
    refuses(&Sandboxfile { dev: Some(named), ..Default::default() }, "dev.name");
}

#[test]
fn refuses_a_command_that_starts_with_an_option() {
    refuses(&Sandboxfile { dev: Some(process("PORT=3000 x")), ..Default::default() }, "dev.command");
    refuses(&Sandboxfile { tests: vec![process("WATCH=src")], ..Default::default() }, "tests[0].command");
    refuses(&Sandboxfile { services: vec![service("db", "PORT=1\tx")], ..Default::default() }, "services[0].command");
    // ...and a service name that does.
    refuses(&Sandboxfile { services: vec![service("PORT=1", "x")], ..Default::default() }, "services[0].name");
    refuses(&Sandboxfile { services: vec![service("WATCH=a", "x")], ..Default::default() }, "services[0].name");
}

#[test]
fn refuses_leading_or_trailing_white_space() {
    refuses(&Sandboxfile { from: Some(" host".into()), ..Default::default() }, "from");
    refuses(&Sandboxfile { workdir: Some(".\t".into()), ..Default::default() }, "workdir");
    refuses(&Sandboxfile { infer: Some("*\r".into()), ..Default::default() }, "infer");
    refuses(&Sandboxfile { outputs: strings(&["src/", "\tdist/"]), ..Default::default() }, "outputs[1]");
    refuses(&Sandboxfile { logs: strings(&["logs/* "]), ..Default::default() }, "logs[0]");
    refuses(&Sandboxfile { run_commands: strings(&["\u{a0}make"]), ..Default::default() }, "runCommands[0]");
    refuses(&Sandboxfile { run_commands: strings(&["make\u{3000}"]), ..Default::default() }, "runCommands[0]");
    refuses(&Sandboxfile { dev: Some(process(" bun run dev")), ..Default::default() }, "dev.command");
    refuses(&Sandboxfile { services: vec![service(" db", "x")], ..Default::default() }, "services[0].name");
    refuses(&Sandboxfile { services: vec![service("\u{feff}db", "x")], ..Default::default() }, "services[0].name");
}

#[test]
fn refuses_empty_values() {
    refuses(&Sandboxfile { from: Some(String::new()), ..Default::default() }, "from");
    refuses(&Sandboxfile { run_commands: strings(&[""]), ..Default::default() }, "runCommands[0]");
    refuses(&Sandboxfile { tests: vec![process("")], ..Default::default() }, "tests[0].command");
    refuses(&Sandboxfile { services: vec![service("", "x")], ..Default::default() }, "services[0].name");
    refuses(&Sandboxfile { net: strings(&[""]), ..Default::default() }, "net[0]");
}

#[test]
fn refuses_blanks_inside_a_token() {
    refuses(&Sandboxfile { services: vec![service("my db", "x")], ..Default::default() }, "services[0].name");
    refuses(&Sandboxfile { services: vec![service("my\tdb", "x")], ..Default::default() }, "services[0].name");
    let watch = Process { watch: Some("src/**/*.ts lib/**".into()), ..process("x") };
    refuses(&Sandboxfile { tests: vec![watch], ..Default::default() }, "tests[0].watch");
}

#[test]
fn refuses_port_zero() {
    let dev = Process { port: Some(0), ..process("x") };
    refuses(&Sandboxfile { dev: Some(dev), ..Default::default() }, "dev.port");
    let db = Service { port: Some(0), ..service("db", "x") };
    refuses(&Sandboxfile { services: vec![db], ..Default::default() }, "services[0].port");
}

#[test]
fn refuses_bad_secrets() {
    refuses(&Sandboxfile { secrets: strings(&["OK", "not-a-name"]), ..Default::default() }, "secrets[1]");
    refuses(&Sandboxfile { secrets: strings(&[""]), ..Default::default() }, "secrets[0]");
    let hosts = |name: &str, hosts: &[&str]| Some(BTreeMap::from([(name.to_string(), strings(hosts))]));
    // A key that is not a secret.
    refuses(
        &Sandboxfile {
            secrets: strings(&["K"]),
            secret_hosts: hosts("OTHER", &["api.example.com"]),
            ..Default::default()
        },
        "secretHosts.OTHER",
    );
    // An empty list of hosts.
    refuses(
        &Sandboxfile { secrets: strings(&["K"]), secret_hosts: hosts("K", &[]), ..Default::default() },
        "secretHosts.K",
    );
    // Hosts that would not come back as one word each.
    for bad in ["", "api.example.com *.test", "a\tb", "a\nb", "\u{a0}api.example.com", "api\u{3000}example"] {
        refuses(
            &Sandboxfile {
                secrets: strings(&["K"]),
                secret_hosts: hosts("K", &["ok.test", bad]),
                ..Default::default()
            },
            "secretHosts.K[1]",
        );
    }
    // A map with no secret in it cannot be written either: the parser only
    // makes `secretHosts` when a line names hosts.
    refuses(
        &Sandboxfile { secrets: strings(&["K"]), secret_hosts: Some(BTreeMap::new()), ..Default::default() },
        "secretHosts",
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Pieces that make up the generated text: every directive (and near misses),
/// every separator the parser treats specially, option prefixes, comment
/// marks, JavaScript white space that is not a blank, and other unicode.
const ATOMS: &[&str] = &[
    "FROM",
    "WORKDIR",
    "RUN",
    "DEV",
    "SERVICE",
    "TEST",
    "OUTPUT",
    "LOGS",
    "NET",
    "SECRET",
    "INFER",
    "from",
    "RUNX",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "#",
    "=",
    "PORT=",
    "WATCH=",
    "PORT=3000",
    "PORT=1",
    "PORT=0",
    "PORT=65536",
    "PORT=80x",
    "WATCH=src/**",
    "a",
    "b",
    "db",
    "KEY",
    "_",
    "-",
    "*",
    ".",
    "/",
    "api.example.com",
    "*.test",
    "1",
    "9",
    "é",
    "日本",
    "\u{1F600}",
    "\u{a0}",
    "\u{3000}",
    "\u{2028}",
    "\u{feff}",
    "\u{85}",
    "\u{b}",
    "\u{c}",
    "\u{200b}",
];

const DIRECTIVES: &[&str] =
    &["FROM", "WORKDIR", "RUN", "DEV", "SERVICE", "TEST", "OUTPUT", "LOGS", "NET", "SECRET", "INFER"];

fn atoms(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), 0..max).prop_map(|parts| parts.concat())
}

/// Text made of lines that mostly start with a directive, so that a good share
/// of it parses; the rest of each line is random atoms.
fn sandboxfile_text() -> impl Strategy<Value = String> {
    let line = (
        prop::sample::select(&["", "", " ", "\t", "\u{a0}"][..]),
        prop::sample::select(DIRECTIVES),
        prop::sample::select(&[" ", " ", "\t", "  ", " \u{a0}"][..]),
        atoms(8),
        prop::sample::select(&["\n", "\n", "\r\n", ""][..]),
    )
        .prop_map(|(indent, directive, sep, rest, end)| format!("{indent}{directive}{sep}{rest}{end}"));
    let line = prop_oneof![4 => line, 1 => atoms(10)];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.concat())
}

/// Any string, from the same alphabet (mostly invalid Sandboxfiles).
fn any_text() -> impl Strategy<Value = String> {
    atoms(40)
}

fn is_option(word: &str) -> bool {
    word.starts_with("PORT=") || word.starts_with("WATCH=")
}

/// A single-line argument: what the parser can produce for FROM, RUN, OUTPUT...
fn arg() -> impl Strategy<Value = String> {
    let tame = "[a-zA-Z0-9_./*-]{1,10}( [a-zA-Z0-9_./*=-]{1,8}){0,3}";
    prop_oneof![tame, atoms(8)].prop_map(|s| match s.replace('\n', "").trim_matches(is_js_space) {
        "" => "x".to_string(),
        s => s.to_string(),
    })
}

fn command() -> impl Strategy<Value = String> {
    arg().prop_map(|s| if is_option(s.split([' ', '\t']).next().unwrap_or_default()) { format!("cmd {s}") } else { s })
}

/// A word without blanks; may be empty (a WATCH= glob may be).
fn word() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_./*{},=-]{0,10}", atoms(4)].prop_map(|s| s.replace([' ', '\t', '\n'], ""))
}

fn name() -> impl Strategy<Value = String> {
    word().prop_map(|s| if s.is_empty() || s.starts_with(is_js_space) || is_option(&s) { format!("n{s}") } else { s })
}

fn port() -> impl Strategy<Value = Option<u16>> {
    prop::option::of(1..=65535u16)
}

fn any_process() -> impl Strategy<Value = Process> {
    (command(), port(), prop::option::of(word())).prop_map(|(command, port, watch)| Process {
        name: None,
        command,
        port,
        watch,
    })
}

fn any_service() -> impl Strategy<Value = Service> {
    (name(), command(), port(), prop::option::of(word())).prop_map(|(name, command, port, watch)| Service {
        name,
        command,
        port,
        watch,
    })
}

fn env_name() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z_]{1,3}", "[A-Za-z0-9_]{1,12}"]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9.*:-]{1,15}", atoms(3)].prop_map(|s| match s.replace(is_js_space, "") {
        s if s.is_empty() => "h".to_string(),
        s => s,
    })
}

/// A Sandboxfile's fields as the strategies below generate them.
type Parts = (
    (Option<String>, Option<String>, Option<String>),
    Vec<String>,
    Option<Process>,
    Vec<Service>,
    Vec<Process>,
    (Vec<String>, Vec<String>, Vec<String>),
    (Vec<String>, Option<BTreeMap<String, Vec<String>>>),
);

fn assemble(parts: Parts) -> Sandboxfile {
    let ((from, workdir, infer), run_commands, dev, services, tests, (outputs, logs, net), (secrets, secret_hosts)) =
        parts;
    Sandboxfile { from, workdir, run_commands, dev, services, tests, outputs, logs, net, secrets, infer, secret_hosts }
}

/// A Sandboxfile that the file format can express.
fn valid_sandboxfile() -> impl Strategy<Value = Sandboxfile> {
    let list = |s: BoxedStrategy<String>| prop::collection::vec(s, 0..4);
    let secrets = prop::collection::vec(env_name(), 0..5).prop_flat_map(|secrets| {
        let scoped = if secrets.is_empty() {
            Just(None).boxed()
        } else {
            let keys = prop::sample::subsequence(secrets.clone(), 0..=secrets.len());
            (keys, prop::collection::vec(prop::collection::vec(host(), 1..4), secrets.len()))
                .prop_map(|(keys, hosts)| {
                    let map: BTreeMap<_, _> = keys.into_iter().zip(hosts).collect();
                    (!map.is_empty()).then_some(map)
                })
                .boxed()
        };
        (Just(secrets), scoped)
    });
    (
        (prop::option::of(arg()), prop::option::of(arg()), prop::option::of(arg())),
        list(command().boxed()),
        prop::option::of(any_process()),
        prop::collection::vec(any_service(), 0..4),
        prop::collection::vec(any_process(), 0..4),
        (list(arg().boxed()), list(arg().boxed()), list(arg().boxed())),
        secrets,
    )
        .prop_map(assemble)
}

/// Any Sandboxfile value at all, as JS could hand it to `formatSandboxfile`:
/// names on DEV/TEST, port 0, stray white space, secretHosts that name
/// nothing, empty lists of hosts...
fn wild_sandboxfile() -> impl Strategy<Value = Sandboxfile> {
    let s = || prop_oneof![2 => arg(), 1 => atoms(5)];
    let opt = || prop::option::of(s());
    let wild_port = || prop::option::of(prop_oneof![Just(0u16), 1..=65535u16]);
    let wild_process = || {
        (prop::option::of(s()), s(), wild_port(), prop::option::of(s()))
            .prop_map(|(name, command, port, watch)| Process { name, command, port, watch })
    };
    let wild_service = (s(), s(), wild_port(), prop::option::of(s()))
        .prop_map(|(name, command, port, watch)| Service { name, command, port, watch });
    let list = || prop::collection::vec(s(), 0..3);
    let hosts = prop::option::of(prop::collection::btree_map(
        prop_oneof![env_name(), s()],
        prop::collection::vec(s(), 0..3),
        0..3,
    ));
    (
        (opt(), opt(), opt()),
        list(),
        prop::option::of(wild_process()),
        prop::collection::vec(wild_service, 0..3),
        prop::collection::vec(wild_process(), 0..3),
        (list(), list(), list()),
        (prop::collection::vec(prop_oneof![env_name(), s()], 0..3), hosts),
    )
        .prop_map(assemble)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Every value the file format can express is written and read back unchanged.
    #[test]
    fn valid_sandboxfiles_round_trip(file in valid_sandboxfile()) {
        let text = format(&file);
        prop_assert!(text.is_ok(), "{:?} refused: {}", file, text.unwrap_err());
        let text = text.unwrap();
        prop_assert_eq!(parse(&text), Ok(file), "formatted as {:?}", text);
    }

    /// format never writes text that reads back as something else: it either
    /// refuses (naming a field) or round-trips.
    #[test]
    fn format_round_trips_or_refuses(file in wild_sandboxfile()) {
        match format(&file) {
            Ok(text) => prop_assert_eq!(parse(&text), Ok(file), "formatted as {:?}", text),
            Err(e) => prop_assert!(!e.field.is_empty() && !e.reason.is_empty()),
        }
    }

    /// Whatever text parses, its value can be formatted, and the formatted
    /// text parses to the same value.
    #[test]
    fn parsed_text_formats_and_reparses(src in sandboxfile_text()) {
        if let Ok(file) = parse(&src) {
            let text = format(&file);
            prop_assert!(text.is_ok(), "{:?} parsed to {:?}, which format refuses: {}", src, file, text.unwrap_err());
            let text = text.unwrap();
            prop_assert_eq!(parse(&text), Ok(file), "formatted as {:?}", text);
        }
    }

    #[test]
    fn any_parsed_string_formats_and_reparses(src in any_text()) {
        if let Ok(file) = parse(&src) {
            let text = format(&file);
            prop_assert!(text.is_ok(), "{:?} parsed to {:?}, which format refuses: {}", src, file, text.unwrap_err());
            let text = text.unwrap();
            prop_assert_eq!(parse(&text), Ok(file), "formatted as {:?}", text);
        }
    }
}

/// The text generator must actually produce files that parse, or the
/// properties above prove little.
#[test]
fn generated_text_often_parses() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = sandboxfile_text();
    let (mut parsed, mut nonempty) = (0, 0);
    for _ in 0..2000 {
        let src = strategy.new_tree(&mut runner).unwrap().current();
        if let Ok(file) = parse(&src) {
            parsed += 1;
            nonempty += (file != Sandboxfile::default()) as usize;
        }
    }
    assert!(parsed > 200 && nonempty > 100, "only {parsed} of 2000 generated texts parsed ({nonempty} non-empty)");
}
