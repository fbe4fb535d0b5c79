use super::*;

const MANIFEST: &str = "[package]\nname = \"app\"\nversion = \"0.1.0\"\n";

#[test]
fn cargo_project() {
    let f = Fixture::new();
    f.file("Cargo.toml", MANIFEST).file("Cargo.lock", "").file("src/main.rs", "fn main() {}").dir("tests");
    let mut expected = base();
    expected.run_commands = strings(&["cargo build"]);
    expected.tests = vec![process("cargo test", None)];
    expected.outputs = strings(&["Cargo.toml", "Cargo.lock", "src/", "tests/"]);
    assert_eq!(f.infer(), expected);
}

#[test]
fn optional_parts_only_when_present() {
    let f = Fixture::new();
    f.file("Cargo.toml", MANIFEST).file("build.rs", "").dir("benches").dir("examples");
    assert_eq!(f.infer().outputs, strings(&["Cargo.toml", "build.rs", "benches/", "examples/"]));
}

#[test]
fn workspace_members_are_outputs() {
    let f = Fixture::new();
    f.file("Cargo.toml", "[workspace]\nmembers = [\"crates/*\", \"tools/gen\", \".\", \"../x\", 3]\n");
    assert_eq!(f.infer().outputs, strings(&["Cargo.toml", "crates/", "tools/gen/"]));
}

#[test]
fn malformed_manifest_still_builds_and_notes() {
    let f = Fixture::new();
    f.file("Cargo.toml", "[package\nname = ").dir("src");
    let inference = f.inference();
    assert_eq!(inference.file.run_commands, strings(&["cargo build"]));
    assert_eq!(inference.file.outputs, strings(&["Cargo.toml", "src/"]));
    assert!(inference.notes.iter().any(|n| n.contains("Cargo.toml")), "{:?}", inference.notes);
}

#[test]
fn default_registry_is_never_named() {
    let f = Fixture::new();
    f.file("Cargo.toml", &format!("{MANIFEST}[dependencies]\nserde = \"1\"\n"));
    assert!(f.infer().net.is_empty());
}

#[test]
fn replace_with_chain_across_project_ancestor_and_cargo_home() {
    let mut f = Fixture::new();
    f.file("Cargo.toml", MANIFEST);
    // project → ancestor (the fixture root) → CARGO_HOME
    f.file(".cargo/config.toml", "[source.crates-io]\nreplace-with = \"mirror\"\n");
    write(&f.dir.parent().unwrap().join(".cargo/config.toml"), "[source.mirror]\nreplace-with = \"corp\"\n");
    let cargo_home = f.home.join("cargo-home");
    write(
        &cargo_home.join("config.toml"),
        "[source.corp]\nregistry = \"sparse+https://registry.example.com:8443/index/\"\n",
    );
    f.var("CARGO_HOME", cargo_home.to_str().unwrap());
    assert_eq!(f.infer().net, strings(&["registry.example.com:8443"]));
}

#[test]
fn nearer_configuration_wins() {
    let f = Fixture::new();
    f.file("Cargo.toml", MANIFEST);
    f.file(
        ".cargo/config",
        "[source.crates-io]\nreplace-with = \"near\"\n[source.near]\nregistry = \"https://near.example.test/index\"\n",
    );
    f.file(".cargo/config.toml", "[source.crates-io]\nreplace-with = \"ignored\"\n");
    f.home_file(
        ".cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"far\"\n[source.far]\nregistry = \"https://far.example.test/\"\n",
    );
    assert_eq!(f.infer().net, strings(&["near.example.test"]));
}

#[test]
fn replace_with_a_named_registry() {
    let mut f = Fixture::new();
    f.file("Cargo.toml", MANIFEST);
    f.home_file(
        ".cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"corp\"\n[registries.corp]\nindex = \"sparse+https://cargo.example.test/\"\n",
    );
    assert_eq!(f.infer().net, strings(&["cargo.example.test"]));
    f.var("CARGO_REGISTRIES_CORP_INDEX", "sparse+https://env.example.test/");
    assert_eq!(f.infer().net, strings(&["env.example.test"]));
}

#[test]
fn replace_with_cycle_or_local_source_gives_nothing() {
    let f = Fixture::new();
    f.file("Cargo.toml", MANIFEST);
    f.file(
        ".cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"a\"\n[source.a]\nreplace-with = \"crates-io\"\n",
    );
    assert!(f.infer().net.is_empty());
    f.file(".cargo/config.toml", "[source.crates-io]\nreplace-with = \"v\"\n[source.v]\ndirectory = \"vendor\"\n");
    assert!(f.infer().net.is_empty());
}

#[test]
fn registries_and_git_hosts_named_by_dependencies() {
    let f = Fixture::new();
    f.file(
        "Cargo.toml",
        &format!(
            "{MANIFEST}[dependencies]\nserde = \"1\"\nprivate = {{ version = \"1\", registry = \"corp\" }}\n\
             [target.'cfg(unix)'.dev-dependencies]\nforked = {{ git = \"https://git.example.test/forked.git\" }}\n\
             [patch.crates-io]\npatched = {{ git = \"ssh://git@ssh.example.test/p.git\" }}\n\
             [build-dependencies]\nother = {{ registry = \"unknown\" }}\n"
        ),
    );
    f.file(".cargo/config.toml", "[registries.corp]\nindex = \"https://cargo.example.test/index\"\n[registries.unused]\nindex = \"https://unused.example.test/\"\n");
    assert_eq!(f.infer().net, strings(&["cargo.example.test", "git.example.test"]));
}

#[test]
fn malformed_config_is_skipped() {
    let f = Fixture::new();
    f.file("Cargo.toml", MANIFEST).file(".cargo/config.toml", "[source\n");
    let inference = f.inference();
    assert!(inference.file.net.is_empty());
    assert!(inference.notes.iter().any(|n| n.contains("config.toml")), "{:?}", inference.notes);
}
