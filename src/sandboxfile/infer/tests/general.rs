//! Errors, secrets, logs, ordering across ecosystems, and hostile input.

use super::*;

#[test]
fn empty_directory() {
    let f = Fixture::new();
    let inference = f.inference();
    assert_eq!(inference.file, base());
    assert!(inference.notes.is_empty());
}

#[test]
fn missing_directory_or_file_is_an_error() {
    let f = Fixture::new();
    let err = infer_with(&f.dir.join("nope"), &f.env).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no such directory");
    f.file("plain", "x");
    let err = infer_with(&f.dir.join("plain"), &f.env).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotADirectory);
    assert_eq!(err.to_string(), "not a directory");
    assert!(crate::sandboxfile::infer::infer(&f.dir.join("nope")).is_err());
}

#[test]
fn real_environment_entry_point() {
    // No package.json: nothing asks npm, so this does not depend on the machine.
    let f = Fixture::new();
    f.file("Cargo.toml", "[package]\nname = \"x\"\n");
    let file = crate::sandboxfile::infer::infer(&f.dir).unwrap();
    assert_eq!(file.run_commands, strings(&["cargo build"]));
    assert_round_trip(&file);
}

#[test]
fn secrets_from_dotenv_files() {
    let f = Fixture::new();
    f.file(
        ".env",
        "# API_KEY=commented\n\nexport GITHUB_TOKEN=ghp_secretvalue\nexport\tDB_PASSWORD = hunter2\n\
         STRIPE_API_KEY=\"sk_live_abc\"\nNOT_SENSITIVE=1\nbad-name_KEY=x\nNO_EQUALS_TOKEN\n export  SPACED_SECRET=y\n\
         lower_key=z\nAWS_SECRET=a=b=c\r\n_KEY=v\n",
    );
    f.file(".env.local", "GITHUB_TOKEN=again\nLOCAL_SECRET=s\n");
    f.file(".env.example", "OPENAI_API_KEY=\n");
    let file = f.infer();
    assert_eq!(
        file.secrets,
        strings(&[
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "STRIPE_API_KEY",
            "SPACED_SECRET",
            "AWS_SECRET",
            "_KEY",
            "LOCAL_SECRET",
            "OPENAI_API_KEY"
        ])
    );
    let text = format(&file).unwrap();
    for value in ["ghp_secretvalue", "hunter2", "sk_live_abc", "again", "a=b=c"] {
        assert!(!text.contains(value), "value {value} leaked:\n{text}");
    }
}

#[test]
fn logs_directory() {
    let f = Fixture::new();
    f.dir("logs");
    assert_eq!(f.infer().logs, strings(&["logs/*"]));
    let f = Fixture::new();
    f.file("logs", "a file");
    assert!(f.infer().logs.is_empty());
}

#[test]
fn several_ecosystems_in_a_fixed_order() {
    let mut f = Fixture::new();
    f.file(
        "package.json",
        r#"{"scripts":{"build":"napi build","test":"bun test","dev":"bun --watch x --port 3000"},"devDependencies":{"@napi-rs/cli":"3"}}"#,
    );
    f.file("package-lock.json", "{}").file(".npmrc", "registry=https://npm.example.test/\n");
    f.file("Cargo.toml", "[package]\nname = \"x\"\n").dir("src");
    f.file("requirements.txt", "pytest\n").file("go.mod", "module m\n");
    f.file("Makefile", "build:\n\tx\ntest:\n\tx\n");
    f.file("compose.yaml", "services:\n  cache:\n    image: redis\n");
    f.var("GOPROXY", "https://npm.example.test,https://go.example.test");
    f.var("PIP_INDEX_URL", "https://pypi.example.test/simple/");
    let mut expected = base();
    expected.run_commands = strings(&[
        "npm ci",
        "python3 -m pip install -r requirements.txt",
        "go mod download",
        "npm run build",
        "cargo build",
    ]);
    expected.dev = Some(process("npm run dev", Some(3000)));
    expected.tests =
        ["npm run test", "cargo test", "python3 -m pytest", "go test ./..."].map(|c| process(c, None)).to_vec();
    expected.services = vec![Service {
        name: "cache".into(),
        command: "redis-server --port 6379 --save \"\"".into(),
        port: Some(6379),
        watch: None,
    }];
    expected.outputs =
        strings(&["package.json", "src/", "package-lock.json", "Cargo.toml", "requirements.txt", "go.mod", "Makefile"]);
    expected.net = strings(&["npm.example.test", "pypi.example.test", "go.example.test"]);
    assert_eq!(f.infer(), expected);
    assert_eq!(f.infer(), expected, "the same again");
}

#[test]
fn odd_names_are_not_outputs() {
    let f = Fixture::new();
    f.file("go.mod", "module m\n");
    for name in ["with space", "star*", "new\nline", "[x]", " lead"] {
        f.file(&format!("{name}/a.go"), "").file(&format!("{name}.go"), "");
    }
    f.file("ok/a.go", "");
    assert_eq!(f.infer().outputs, strings(&["go.mod", "ok/"]));
}

#[cfg(unix)]
#[test]
fn special_files_do_not_hang_or_fail() {
    let f = Fixture::new();
    let fifo = f.dir.join("package.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo here; nothing to check
    }
    std::os::unix::fs::symlink("/dev/zero", f.dir.join("Cargo.toml")).unwrap();
    std::os::unix::fs::symlink("loop", f.dir.join("loop")).unwrap();
    let file = f.infer();
    assert_eq!(file, base());
}

#[test]
fn large_files_are_skipped_with_a_note() {
    let f = Fixture::new();
    f.file("package.json", &format!("{{\"x\":\"{}\"}}", "a".repeat(5 << 20)));
    let inference = f.inference();
    assert!(inference.notes.iter().any(|n| n.contains("4 MiB")), "{:?}", inference.notes);
}

#[test]
fn garbage_in_every_file_never_fails() {
    let names = [
        "package.json",
        "bun.lock",
        "yarn.lock",
        ".npmrc",
        "bunfig.toml",
        ".yarnrc.yml",
        "Cargo.toml",
        ".cargo/config.toml",
        "pyproject.toml",
        "requirements.txt",
        "setup.cfg",
        "uv.toml",
        "go.mod",
        "Makefile",
        "compose.yaml",
        ".env",
    ];
    let garbage = [
        "\u{0}\u{ff}\u{feff}[[[{{{",
        "=\n=\n:\n\t\t",
        "a = [1, \n",
        "services:\n  - &a *a\n",
        "\"\\u{d800}\"",
        "[install]\nregistry = 5\n[install.scopes]\nx = [1]\n",
        "workspaces = 3",
        "{\"scripts\": 1}",
        "[source.crates-io]\nreplace-with = 3\n",
        "-i\n--index-url\n",
        "define\n",
        "\t\n\tdefine x",
    ];
    for text in garbage {
        let mut f = Fixture::new();
        f.npm_answers(Some("garbage"));
        f.var("GOPROXY", text).var("PIP_INDEX_URL", text).var("npm_config_registry", text);
        for name in names {
            f.file(name, text);
        }
        f.home_file(".npmrc", text).home_file(".cargo/config.toml", text).home_file(".config/pip/pip.conf", text);
        f.infer();
        let mut f = Fixture::new();
        f.file("package.json", r#"{"dependencies":{"a":"1"}}"#).file(".npmrc", text).file("bunfig.toml", text);
        f.npm_answers(Some(text));
        f.infer();
    }
}
