//! The parser against SPEC §1.1, rule by rule, and against the reference
//! parser's own test cases. Every error test checks the exact message, the
//! 1-based line and the directive the error carries.

use super::{ParseError, parse};
use crate::sandboxfile::fixtures::{SPEC_EXAMPLE, strings};
use crate::sandboxfile::{Process, Sandboxfile, Service};
use std::collections::BTreeMap;

fn ok(src: &str) -> Sandboxfile {
    match parse(src) {
        Ok(file) => file,
        Err(e) => panic!("{src:?} should parse, got {e}"),
    }
}

/// Asserts that `src` fails on `line` of `directive` with exactly `message`.
#[track_caller]
fn fails(src: &str, line: usize, directive: &str, message: &str) {
    let want = ParseError { line, directive: directive.into(), message: message.into() };
    match parse(src) {
        Ok(file) => panic!("{src:?} should fail with {want}, parsed {file:?}"),
        Err(e) => {
            assert_eq!(e, want, "for {src:?}");
            assert_eq!(e.to_string(), format!("Line {line}: {message}"));
        }
    }
}

fn process(command: &str, port: Option<u16>, watch: Option<&str>) -> Process {
    Process { name: None, command: command.into(), port, watch: watch.map(Into::into) }
}

fn service(name: &str, command: &str, port: Option<u16>, watch: Option<&str>) -> Service {
    Service { name: name.into(), command: command.into(), port, watch: watch.map(Into::into) }
}

// ---------------------------------------------------------------------------
// The reference cases
// ---------------------------------------------------------------------------

#[test]
fn spec_example_parses_to_every_field() {
    let want = Sandboxfile {
        from: Some("host".into()),
        workdir: Some(".".into()),
        run_commands: strings(&["bun install"]),
        dev: Some(process("bun run dev", Some(3000), Some("src/**"))),
        services: vec![
            service("db", "postgres -D ./pgdata", Some(5432), None),
            service("worker", "bun run worker.ts", None, Some("src/worker/**")),
        ],
        tests: vec![process("bun test", None, None)],
        outputs: strings(&["src/", "package.json"]),
        logs: strings(&["logs/*"]),
        net: strings(&["api.example.com", "*.stripe.com"]),
        secrets: strings(&["STRIPE_API_KEY"]),
        infer: None,
        secret_hosts: None,
    };
    assert_eq!(ok(SPEC_EXAMPLE), want);
}

#[test]
fn reference_basic_file() {
    let src = "# Sandboxfile

FROM host
WORKDIR .

RUN bun install

DEV PORT=3000 WATCH=src/** bun run dev
SERVICE db PORT=5432 docker compose up postgres
SERVICE redis PORT=6379 redis-server
TEST bun test

OUTPUT src/
OUTPUT tests/
OUTPUT package.json

LOGS logs/*

NET api.example.com
NET *.test

SECRET STRIPE_API_KEY
";
    let file = ok(src);
    assert_eq!(file.from.as_deref(), Some("host"));
    assert_eq!(file.workdir.as_deref(), Some("."));
    assert_eq!(file.run_commands, strings(&["bun install"]));
    assert_eq!(file.dev, Some(process("bun run dev", Some(3000), Some("src/**"))));
    assert_eq!(
        file.services,
        vec![
            service("db", "docker compose up postgres", Some(5432), None),
            service("redis", "redis-server", Some(6379), None),
        ]
    );
    assert_eq!(file.tests, vec![process("bun test", None, None)]);
    assert_eq!(file.outputs, strings(&["src/", "tests/", "package.json"]));
    assert_eq!(file.logs, strings(&["logs/*"]));
    assert_eq!(file.net, strings(&["api.example.com", "*.test"]));
    assert_eq!(file.secrets, strings(&["STRIPE_API_KEY"]));
    assert_eq!(file.infer, None);
    assert_eq!(file.secret_hosts, None);
}

#[test]
fn infer_shorthand() {
    let file = ok("FROM host\nWORKDIR .\nINFER *\n");
    assert_eq!(
        file,
        Sandboxfile {
            from: Some("host".into()),
            workdir: Some(".".into()),
            infer: Some("*".into()),
            ..Default::default()
        }
    );
}

#[test]
fn multiple_run_commands_keep_their_order() {
    let src = "FROM host\nWORKDIR .\nRUN apt-get update\nRUN apt-get install -y nodejs\nRUN npm install\n";
    assert_eq!(ok(src).run_commands, strings(&["apt-get update", "apt-get install -y nodejs", "npm install"]));
}

#[test]
fn service_with_port_first_takes_the_first_word_as_its_name() {
    let file = ok("FROM host\nWORKDIR .\nSERVICE PORT=5432 docker compose up postgres\n");
    assert_eq!(file.services, vec![service("docker", "compose up postgres", Some(5432), None)]);
}

#[test]
fn service_with_only_options_is_missing_its_command() {
    fails("FROM host\nWORKDIR .\nSERVICE PORT=5432\n", 3, "SERVICE", "Missing command in process definition");
}

#[test]
fn services_with_watch() {
    let src = "FROM host
WORKDIR .
SERVICE api PORT=8080 WATCH=src/api/** node server.js
SERVICE worker WATCH=src/worker/** node worker.js
SERVICE db PORT=5432 docker-compose up -d postgres
";
    assert_eq!(
        ok(src).services,
        vec![
            service("api", "node server.js", Some(8080), Some("src/api/**")),
            service("worker", "node worker.js", None, Some("src/worker/**")),
            service("db", "docker-compose up -d postgres", Some(5432), None),
        ]
    );
}

#[test]
fn test_directives_with_and_without_options() {
    let src = "FROM host\nWORKDIR .\nTEST bun test --filter unit\nTEST PORT=3001 bun test --filter integration\n";
    assert_eq!(
        ok(src).tests,
        vec![process("bun test --filter unit", None, None), process("bun test --filter integration", Some(3001), None),]
    );
}

#[test]
fn dev_without_options() {
    assert_eq!(ok("FROM host\nWORKDIR .\nDEV bun run dev\n").dev, Some(process("bun run dev", None, None)));
}

#[test]
fn invalid_secret_name() {
    fails(
        "FROM host\nWORKDIR .\nSECRET invalid-secret-name\n",
        3,
        "SECRET",
        "SECRET name must be a valid environment variable name",
    );
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let src = "# This is a comment\nFROM host\n# Another comment\n\nWORKDIR .\n# More comments\n";
    let file = ok(src);
    assert_eq!(file.from.as_deref(), Some("host"));
    assert_eq!(file.workdir.as_deref(), Some("."));
}

#[test]
fn optional_fields_are_absent_when_unset() {
    let file = ok("RUN make\n");
    assert_eq!(file.from, None);
    assert_eq!(file.workdir, None);
    assert_eq!(file.dev, None);
    assert_eq!(file.infer, None);
    assert_eq!(file.secret_hosts, None);
    // In the JS shape they are missing keys, not nulls; lists are always there.
    let json = serde_json::to_value(&file).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "runCommands": ["make"], "services": [], "tests": [], "outputs": [],
            "logs": [], "net": [], "secrets": []
        })
    );
    // Optional process fields likewise.
    let json = serde_json::to_value(ok("DEV bun run dev\nSERVICE db postgres\n")).unwrap();
    assert_eq!(json["dev"], serde_json::json!({ "command": "bun run dev" }));
    assert_eq!(json["services"][0], serde_json::json!({ "name": "db", "command": "postgres" }));
}

#[test]
fn empty_and_comment_only_files_are_the_default() {
    for src in ["", "\n", "\n\n\n", "# only a comment", "  # indented\n\t#tabbed\r\n", " \t\r\n\r\n"] {
        assert_eq!(ok(src), Sandboxfile::default(), "{src:?}");
    }
}

// ---------------------------------------------------------------------------
// §1.1 rule 1: split on `\n`; lines trimmed of spaces, tabs and `\r`; empty
// lines and `#` lines skipped
// ---------------------------------------------------------------------------

#[test]
fn crlf_line_endings() {
    let src = SPEC_EXAMPLE.replace('\n', "\r\n");
    assert_eq!(ok(&src), ok(SPEC_EXAMPLE));
    // The `\r` is never part of a value.
    assert_eq!(ok("FROM host\r\nRUN a b\r\n").run_commands, strings(&["a b"]));
    // Line numbers count CRLF lines like LF lines.
    fails("FROM host\r\n\r\nBOGUS\r\n", 3, "BOGUS", "Unknown directive: BOGUS");
}

#[test]
fn a_lone_carriage_return_is_not_a_line_break() {
    // The text is split on `\n` only: `\r` inside a line is kept.
    let file = ok("FROM host\rWORKDIR .\n");
    assert_eq!(file.from.as_deref(), Some("host\rWORKDIR ."));
    assert_eq!(file.workdir, None);
}

#[test]
fn leading_and_trailing_whitespace_is_trimmed() {
    let src = "   FROM host   \n\t\tWORKDIR .\t\n \t RUN  bun install \t\r\n\tDEV   PORT=3000\t WATCH=src/**  bun run dev  \n";
    let file = ok(src);
    assert_eq!(file.from.as_deref(), Some("host"));
    assert_eq!(file.workdir.as_deref(), Some("."));
    assert_eq!(file.run_commands, strings(&["bun install"]));
    assert_eq!(file.dev, Some(process("bun run dev", Some(3000), Some("src/**"))));
}

#[test]
fn indented_comments_are_comments() {
    let file = ok("  # FROM nowhere\n\t# RUN nothing\r\n#RUN neither\nRUN make\n");
    assert_eq!(file.from, None);
    assert_eq!(file.run_commands, strings(&["make"]));
}

#[test]
fn a_hash_after_a_directive_is_part_of_the_argument() {
    // Only a line whose first character is `#` is a comment.
    assert_eq!(ok("RUN echo hi # not a comment\n").run_commands, strings(&["echo hi # not a comment"]));
    assert_eq!(ok("OUTPUT #weird\n").outputs, strings(&["#weird"]));
}

#[test]
fn line_numbers_are_one_based_and_count_every_line() {
    fails("BOGUS", 1, "BOGUS", "Unknown directive: BOGUS");
    fails("\n# comment\n\n  \nFROM host\nBOGUS x\n", 6, "BOGUS", "Unknown directive: BOGUS");
}

#[test]
fn the_first_error_is_reported() {
    fails("FROM host\nFROM\nBOGUS\n", 2, "FROM", "FROM requires an argument");
}

#[test]
fn last_line_without_newline() {
    assert_eq!(ok("FROM host\nRUN make").run_commands, strings(&["make"]));
}

#[test]
fn a_leading_byte_order_mark_is_dropped() {
    assert_eq!(ok("\u{feff}FROM host\n").from.as_deref(), Some("host"));
    fails("\u{feff}BOGUS x\n", 1, "BOGUS", "Unknown directive: BOGUS");
}

/// The reference trims with JavaScript's `String.prototype.trim`/`trimStart`,
/// which remove every ECMAScript white space and line terminator, not only
/// spaces, tabs and `\r`. A file it accepts must parse to the same result.
#[test]
fn javascript_white_space_is_trimmed_like_the_reference() {
    let spaces = [
        '\u{b}', '\u{c}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2005}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}',
        '\u{205f}', '\u{3000}', '\u{feff}',
    ];
    for c in spaces {
        let src = format!("{c}FROM host{c}\nRUN {c}make{c}\nDEV PORT=3000 {c}bun run dev\nSECRET KEY{c}\n");
        let file = ok(&src);
        assert_eq!(file.from.as_deref(), Some("host"), "{c:?}");
        assert_eq!(file.run_commands, strings(&["make"]), "{c:?}");
        assert_eq!(file.dev, Some(process("bun run dev", Some(3000), None)), "{c:?}");
        assert_eq!(file.secrets, strings(&["KEY"]), "{c:?}");
        // A line of nothing but such white space is empty.
        assert_eq!(ok(&format!("{c}\n{c}{c}")), Sandboxfile::default(), "{c:?}");
        // `RUN` followed only by white space has no argument.
        fails(&format!("RUN {c}"), 1, "RUN", "RUN requires a command argument");
        // Inside a value it is kept.
        assert_eq!(ok(&format!("RUN a{c}b")).run_commands, vec![format!("a{c}b")], "{c:?}");
    }
    // NEL (U+0085) is Unicode white space but not JavaScript white space.
    assert_eq!(ok("FROM host\u{85}\n").from.as_deref(), Some("host\u{85}"));
    fails("\u{85}FROM host\n", 1, "\u{85}FROM", "Unknown directive: \u{85}FROM");
}

// ---------------------------------------------------------------------------
// §1.1 rule 2: the directive is the text up to the first space or tab; the
// argument is the rest with leading blanks removed; upper-case, case-sensitive
// ---------------------------------------------------------------------------

#[test]
fn tabs_separate_like_spaces() {
    let src = "FROM\thost\nWORKDIR\t\t.\nRUN\tbun\tinstall\nDEV\tPORT=3000\tWATCH=src/**\tbun run dev\nSERVICE\tdb\tPORT=5432\tpostgres\nTEST\tPORT=3001\tbun test\nOUTPUT\tsrc/\nLOGS\tlogs/*\nNET\tapi.example.com\nSECRET\tKEY\nINFER\t*\n";
    let file = ok(src);
    assert_eq!(file.from.as_deref(), Some("host"));
    assert_eq!(file.workdir.as_deref(), Some("."));
    assert_eq!(file.run_commands, strings(&["bun\tinstall"]));
    assert_eq!(file.dev, Some(process("bun run dev", Some(3000), Some("src/**"))));
    assert_eq!(file.services, vec![service("db", "postgres", Some(5432), None)]);
    assert_eq!(file.tests, vec![process("bun test", Some(3001), None)]);
    assert_eq!(file.outputs, strings(&["src/"]));
    assert_eq!(file.logs, strings(&["logs/*"]));
    assert_eq!(file.net, strings(&["api.example.com"]));
    assert_eq!(file.secrets, strings(&["KEY"]));
    assert_eq!(file.infer.as_deref(), Some("*"));
}

#[test]
fn blanks_before_the_argument_are_removed_and_inner_blanks_kept() {
    assert_eq!(ok("RUN    echo   a \t b").run_commands, strings(&["echo   a \t b"]));
    assert_eq!(ok("FROM \t \t./rootfs").from.as_deref(), Some("./rootfs"));
    assert_eq!(ok("WORKDIR my project").workdir.as_deref(), Some("my project"));
}

#[test]
fn directives_are_case_sensitive() {
    fails("from host\n", 1, "from", "Unknown directive: from");
    fails("FROM host\nWorkdir .\n", 2, "Workdir", "Unknown directive: Workdir");
    fails("run make", 1, "run", "Unknown directive: run");
}

#[test]
fn unknown_directive() {
    fails("FROM host\nINVALID_DIRECTIVE foo\n", 2, "INVALID_DIRECTIVE", "Unknown directive: INVALID_DIRECTIVE");
    // A directive alone on its line.
    fails("EXPOSE", 1, "EXPOSE", "Unknown directive: EXPOSE");
    // The directive ends at the first blank only: `=` or `:` do not end it.
    fails("PORT=3000 bun", 1, "PORT=3000", "Unknown directive: PORT=3000");
    fails("FROM:host", 1, "FROM:host", "Unknown directive: FROM:host");
    // Non-ASCII is not cut in the middle of a character.
    fails("RÜN make", 1, "RÜN", "Unknown directive: RÜN");
}

// ---------------------------------------------------------------------------
// §1.1 rule 3: process options and commands
// ---------------------------------------------------------------------------

#[test]
fn options_come_in_any_order() {
    let a = ok("DEV PORT=3000 WATCH=src/** bun run dev").dev;
    let b = ok("DEV WATCH=src/** PORT=3000 bun run dev").dev;
    assert_eq!(a, Some(process("bun run dev", Some(3000), Some("src/**"))));
    assert_eq!(a, b);
    assert_eq!(ok("TEST WATCH=t/** PORT=9 bun test").tests, vec![process("bun test", Some(9), Some("t/**"))]);
}

#[test]
fn the_last_of_a_repeated_option_wins() {
    assert_eq!(ok("DEV PORT=1 PORT=2 WATCH=a WATCH=b run").dev, Some(process("run", Some(2), Some("b"))));
    assert_eq!(ok("SERVICE PORT=1 db PORT=2 run").services, vec![service("db", "run", Some(2), None)]);
}

#[test]
fn dev_and_test_commands_are_verbatim_from_the_first_non_option() {
    // Inner spacing and tabs are kept; later `PORT=`/`WATCH=` words belong to the command.
    assert_eq!(
        ok("DEV PORT=3000  bun  run\tdev PORT=4000 WATCH=x").dev,
        Some(process("bun  run\tdev PORT=4000 WATCH=x", Some(3000), None))
    );
    assert_eq!(ok("TEST bun test PORT=1").tests, vec![process("bun test PORT=1", None, None)]);
    // A single-word command.
    assert_eq!(ok("DEV make").dev, Some(process("make", None, None)));
}

#[test]
fn option_prefixes_are_case_sensitive_and_exact() {
    // `port=` and `PORT` without `=` are not options: they start the command.
    assert_eq!(ok("DEV port=3000 run").dev, Some(process("port=3000 run", None, None)));
    assert_eq!(ok("DEV PORT 3000").dev, Some(process("PORT 3000", None, None)));
    assert_eq!(ok("DEV WATCHX=a run").dev, Some(process("WATCHX=a run", None, None)));
}

#[test]
fn an_empty_watch_is_kept() {
    assert_eq!(ok("DEV WATCH= run").dev, Some(process("run", None, Some(""))));
}

#[test]
fn watch_takes_the_whole_token() {
    assert_eq!(ok("DEV WATCH=src/**/*.{ts,tsx} run").dev, Some(process("run", None, Some("src/**/*.{ts,tsx}"))));
    assert_eq!(ok("DEV WATCH=a=b run").dev, Some(process("run", None, Some("a=b"))));
}

#[test]
fn service_name_then_options_then_command() {
    assert_eq!(
        ok("SERVICE db PORT=5432 postgres -D ./pgdata").services,
        vec![service("db", "postgres -D ./pgdata", Some(5432), None)]
    );
    // Options on both sides of the name.
    assert_eq!(
        ok("SERVICE WATCH=w/** api PORT=8080 node  server.js").services,
        vec![service("api", "node  server.js", Some(8080), Some("w/**"))]
    );
    // Without options.
    assert_eq!(ok("SERVICE redis redis-server").services, vec![service("redis", "redis-server", None, None)]);
    // Options after the command's first word are part of the command.
    assert_eq!(ok("SERVICE db postgres PORT=5432").services, vec![service("db", "postgres PORT=5432", None, None)]);
}

#[test]
fn service_with_a_name_and_no_command() {
    fails("SERVICE db", 1, "SERVICE", "Missing command in process definition");
    fails("SERVICE db PORT=5432 WATCH=x", 1, "SERVICE", "Missing command in process definition");
    fails("SERVICE PORT=5432 WATCH=x", 1, "SERVICE", "Missing command in process definition");
}

#[test]
fn dev_and_test_with_only_options() {
    fails("DEV PORT=3000", 1, "DEV", "Missing command in process definition");
    fails("X\n", 1, "X", "Unknown directive: X");
    fails("RUN a\nTEST WATCH=src/** PORT=1", 2, "TEST", "Missing command in process definition");
}

#[test]
fn several_services_and_tests_in_order() {
    let file = ok("SERVICE a x\nTEST t1\nSERVICE b y\nTEST t2\nTEST t3\n");
    assert_eq!(file.services, vec![service("a", "x", None, None), service("b", "y", None, None)]);
    assert_eq!(file.tests, vec![process("t1", None, None), process("t2", None, None), process("t3", None, None)]);
}

// SERVICE requires a name — `SERVICE requires a name` (SPEC §1.1's table) is
// unreachable from text: the argument has its leading blanks removed, so the
// first token the process parser meets is never empty, and the first token
// that is not an option always becomes the name. A SERVICE with options only
// fails earlier with `Missing command in process definition` (tested above).
// The reference parser has the same dead branch; no test can produce it.

// ---------------------------------------------------------------------------
// PORT values
// ---------------------------------------------------------------------------

#[test]
fn valid_ports() {
    for (text, port) in [("1", 1), ("80", 80), ("3000", 3000), ("65535", 65535), ("03000", 3000), ("00001", 1)] {
        assert_eq!(ok(&format!("DEV PORT={text} run")).dev.unwrap().port, Some(port), "PORT={text}");
    }
}

#[test]
fn invalid_ports() {
    for text in [
        "",
        "abc",
        "3000abc",
        "0",
        "00",
        "65536",
        "70000",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "0x50",
        "99999999999999999999999",
        "٣",
        "３０００",
    ] {
        fails(&format!("DEV PORT={text} run"), 1, "DEV", &format!("Invalid PORT value: {text}"));
        fails(&format!("FROM host\nTEST PORT={text} run"), 2, "TEST", &format!("Invalid PORT value: {text}"));
        fails(&format!("\n\nSERVICE db PORT={text} run"), 3, "SERVICE", &format!("Invalid PORT value: {text}"));
    }
}

#[test]
fn an_invalid_port_is_reported_before_a_missing_command() {
    fails("DEV PORT=x", 1, "DEV", "Invalid PORT value: x");
    fails("SERVICE db PORT=0", 1, "SERVICE", "Invalid PORT value: 0");
}

// ---------------------------------------------------------------------------
// The error table of §1.1, message by message
// ---------------------------------------------------------------------------

#[test]
fn missing_arguments() {
    for (directive, message) in [
        ("FROM", "FROM requires an argument"),
        ("WORKDIR", "WORKDIR requires a path argument"),
        ("RUN", "RUN requires a command argument"),
        ("DEV", "DEV requires a command argument"),
        ("TEST", "TEST requires a command argument"),
        ("SERVICE", "SERVICE requires a name and command"),
        ("OUTPUT", "OUTPUT requires a path argument"),
        ("LOGS", "LOGS requires a path pattern argument"),
        ("NET", "NET requires a hostname argument"),
        ("SECRET", "SECRET requires an environment variable name"),
        ("INFER", "INFER requires a pattern argument"),
    ] {
        // Alone, with trailing blanks, and after other lines.
        fails(directive, 1, directive, message);
        fails(&format!("{directive} \t \r"), 1, directive, message);
        fails(&format!("# c\n\nRUN make\n  {directive}\t\n"), 4, directive, message);
    }
}

#[test]
fn duplicates() {
    fails("FROM host\nFROM ubuntu:22.04\n", 2, "FROM", "Duplicate FROM directive");
    fails("WORKDIR .\n\nWORKDIR app\n", 3, "WORKDIR", "Duplicate WORKDIR directive");
    fails("DEV a\nRUN b\nDEV a\n", 3, "DEV", "Duplicate DEV directive");
    fails("INFER *\nINFER *\n", 2, "INFER", "Duplicate INFER directive");
    // Even when the second line would be invalid in itself, it is a duplicate.
    fails("DEV a\nDEV PORT=x b\n", 2, "DEV", "Duplicate DEV directive");
}

#[test]
fn a_missing_argument_is_reported_before_a_duplicate() {
    fails("FROM host\nFROM\n", 2, "FROM", "FROM requires an argument");
    fails("WORKDIR .\nWORKDIR  \n", 2, "WORKDIR", "WORKDIR requires a path argument");
    fails("DEV run\nDEV\n", 2, "DEV", "DEV requires a command argument");
    fails("INFER *\nINFER\n", 2, "INFER", "INFER requires a pattern argument");
}

#[test]
fn repeatable_directives_are_not_duplicates() {
    let file = ok(
        "RUN a\nRUN a\nSERVICE s c\nSERVICE s c\nTEST t\nTEST t\nOUTPUT o\nOUTPUT o\nLOGS l\nLOGS l\nNET n\nNET n\nSECRET S\nSECRET S\n",
    );
    assert_eq!(file.run_commands.len(), 2);
    assert_eq!(file.services.len(), 2);
    assert_eq!(file.tests.len(), 2);
    assert_eq!(file.outputs.len(), 2);
    assert_eq!(file.logs.len(), 2);
    assert_eq!(file.net.len(), 2);
    assert_eq!(file.secrets, strings(&["S", "S"]));
}

#[test]
fn the_reference_form_of_every_directive() {
    let file = ok(
        "FROM ./rootfs\nWORKDIR /srv/app\nOUTPUT dist/**/*.js\nLOGS /var/log/*.log\nNET *.test:8443\nINFER package.json\n",
    );
    assert_eq!(file.from.as_deref(), Some("./rootfs"));
    assert_eq!(file.workdir.as_deref(), Some("/srv/app"));
    assert_eq!(file.outputs, strings(&["dist/**/*.js"]));
    assert_eq!(file.logs, strings(&["/var/log/*.log"]));
    assert_eq!(file.net, strings(&["*.test:8443"]));
    assert_eq!(file.infer.as_deref(), Some("package.json"));
}

// ---------------------------------------------------------------------------
// SECRET
// ---------------------------------------------------------------------------

#[test]
fn secret_names() {
    assert_eq!(
        ok("SECRET A\nSECRET _x9\nSECRET 9LIVES\nSECRET a_b_C").secrets,
        strings(&["A", "_x9", "9LIVES", "a_b_C"])
    );
    for bad in ["invalid-secret-name", "A.B", "$HOME", "KEY=value", "ÄPI_KEY", "A:B", "\"A\""] {
        fails(&format!("SECRET {bad}"), 1, "SECRET", "SECRET name must be a valid environment variable name");
    }
}

#[test]
fn secret_hosts_are_this_projects_extension() {
    let file = ok("SECRET STRIPE_API_KEY api.example.com\tpay.example.com  *.test\nSECRET PLAIN\n");
    assert_eq!(file.secrets, strings(&["STRIPE_API_KEY", "PLAIN"]));
    let mut want = BTreeMap::new();
    want.insert("STRIPE_API_KEY".to_string(), strings(&["api.example.com", "pay.example.com", "*.test"]));
    assert_eq!(file.secret_hosts, Some(want));
    assert_eq!(file.hosts_of_secret("STRIPE_API_KEY").unwrap().len(), 3);
    assert_eq!(file.hosts_of_secret("PLAIN"), None);
    // In JS, the key is `secretHosts`.
    let json = serde_json::to_value(&file).unwrap();
    assert_eq!(
        json["secretHosts"],
        serde_json::json!({ "STRIPE_API_KEY": ["api.example.com", "pay.example.com", "*.test"] })
    );
}

#[test]
fn secret_hosts_of_a_repeated_secret_are_merged() {
    let file = ok("SECRET K api.example.com\nSECRET K\nSECRET K *.test\n");
    assert_eq!(file.secrets, strings(&["K", "K", "K"]));
    assert_eq!(file.hosts_of_secret("K").unwrap(), strings(&["api.example.com", "*.test"]).as_slice());
}

#[test]
fn secret_without_hosts_has_no_secret_hosts() {
    assert_eq!(ok("SECRET A\nSECRET B \t").secret_hosts, None);
}

#[test]
fn secret_with_hosts_still_checks_its_name() {
    fails("SECRET bad-name api.example.com", 1, "SECRET", "SECRET name must be a valid environment variable name");
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

#[test]
fn non_ascii_text_is_never_cut_inside_a_character() {
    assert_eq!(ok("RUN échö 日本語\u{1F600}").run_commands, strings(&["échö 日本語\u{1F600}"]));
    assert_eq!(ok("DEV WATCH=ü/** ß").dev, Some(process("ß", None, Some("ü/**"))));
    fails("DEV PORT=é x", 1, "DEV", "Invalid PORT value: é");
    assert_eq!(ok("SERVICE 名前 コマンド").services, vec![service("名前", "コマンド", None, None)]);
}

#[test]
fn a_large_file() {
    let mut src = String::from("FROM host\n");
    for i in 0..10_000 {
        src.push_str(&format!("RUN echo {i}\nSERVICE s{i} PORT={} cmd {i}\n", 1 + i % 65535));
    }
    let file = ok(&src);
    assert_eq!(file.run_commands.len(), 10_000);
    assert_eq!(file.services[9_999], service("s9999", "cmd 9999", Some(10_000), None));
    src.push_str("BOGUS\n");
    fails(&src, 20_002, "BOGUS", "Unknown directive: BOGUS");
}
