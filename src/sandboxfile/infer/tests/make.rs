use super::*;

const MAKEFILE: &str = "\
CC := gcc
FLAGS = -O2 -Wall
VERSION ::= 1
OUT ?= bin: x
.PHONY: all build test dev
# build: commented out

all: build

build: deps ; @echo inline
\t$(CC) $(FLAGS) -o app main.c

test check:
\t./run-tests

dev:
\t./app --port 8081

%.o: %.c
\t$(CC) -c $<

define RECIPE
serve:
\techo not a target
endef
";

#[test]
fn makefile_alone_fills_every_role() {
    let f = Fixture::new();
    f.file("Makefile", MAKEFILE).dir("src").dir("include");
    let mut expected = base();
    expected.run_commands = strings(&["make build"]);
    expected.dev = Some(process("make dev", Some(8081)));
    expected.tests = vec![process("make test", None)];
    expected.outputs = strings(&["Makefile", "src/", "include/"]);
    assert_eq!(f.infer(), expected);
}

#[test]
fn fallback_target_names() {
    let f = Fixture::new();
    f.file("makefile", "all:\n\tcc x.c\ncheck:\n\t./t\nserve:\n\tpython3 -m http.server -p x\nrun:\n\t./a\n");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["make all"]));
    assert_eq!(tests_of(&file), ["make check"]);
    assert_eq!(file.dev, Some(process("make run", None)));
    assert_eq!(file.outputs, strings(&["makefile"]));
}

#[test]
fn roles_taken_by_an_ecosystem_are_kept() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"test":"vitest"}}"#).file("Makefile", MAKEFILE).dir("src");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["make build"]), "package.json has no build script");
    assert_eq!(tests_of(&file), ["bun run test"]);
    assert_eq!(file.dev, Some(process("make dev", Some(8081))));
    assert_eq!(file.outputs, strings(&["package.json", "src/", "Makefile"]));

    let f = Fixture::new();
    f.file("Cargo.toml", "[package]\nname = \"x\"\n").file("Makefile", MAKEFILE);
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["cargo build"]));
    assert_eq!(tests_of(&file), ["cargo test"]);
    assert_eq!(file.dev, Some(process("make dev", Some(8081))));
}

#[test]
fn gnumakefile_is_preferred() {
    let f = Fixture::new();
    f.file("GNUmakefile", "test:\n\tx\n").file("Makefile", "build:\n\tx\n");
    let file = f.infer();
    assert_eq!(tests_of(&file), ["make test"]);
    assert!(file.run_commands.is_empty());
}

#[test]
fn makefile_without_known_targets() {
    let f = Fixture::new();
    f.file("Makefile", "deploy:\n\t./deploy.sh\n\n\n");
    let mut expected = base();
    expected.outputs = strings(&["Makefile"]);
    assert_eq!(f.infer(), expected);
}
