//! NET hosts of npm-family projects, and the URL rules shared by all.

use super::*;
use crate::sandboxfile::infer::url::{expand, host_of};

const DEPS: &str = r#"{"dependencies":{"a":"1"}}"#;

fn npm_project(lock: &str) -> Fixture {
    let f = Fixture::new();
    f.file("package.json", DEPS);
    if !lock.is_empty() {
        f.file(lock, "");
    }
    f
}

#[test]
fn host_of_urls() {
    let cases = [
        ("https://npm.example.test/", Some("npm.example.test")),
        ("https://NPM.Example.Test./path/", Some("npm.example.test")),
        ("http://registry.example.com:80/", Some("registry.example.com")),
        ("https://registry.example.com:443", Some("registry.example.com")),
        ("https://registry.example.com:8443/npm/", Some("registry.example.com:8443")),
        ("http://registry.example.com:8080", Some("registry.example.com:8080")),
        ("https://user:pa:ss@registry.example.com/x", Some("registry.example.com")),
        ("sparse+https://registry.example.com/index/", Some("registry.example.com")),
        ("registry+https://registry.example.com/git/index", Some("registry.example.com")),
        ("git+https://registry.example.com/repo.git", Some("registry.example.com")),
        ("\"https://pypi.example.test/simple\"", Some("pypi.example.test")),
        ("https://[::1]:4873/", Some("[::1]:4873")),
        ("https://[0:0::1]/", Some("[::1]")),
        ("https://[zz::1]/", None),
        ("http://192.0.2.10:8080/", Some("192.0.2.10:8080")),
        ("https://1.2.3/", None),
        ("https://registry.example.123/", None),
        ("https://under_score.example.test/", None),
        ("https://trailing-.example.test/", None),
        ("https://registry.example.com..", None),
        ("https://registry.example.com?x=1", Some("registry.example.com")),
        ("https://registry.example.com:0/", None),
        ("https://registry.example.com:99999/", None),
        ("https://registry.example.com:abc/", None),
        ("ftp://registry.example.com/", None),
        ("file:///srv/registry", None),
        ("registry.example.com", None),
        ("https://", None),
        ("https://bad host/", None),
        ("https://-bad.example.com/", None),
        ("https://a..example.com/", None),
        ("https://ex\u{e4}mple.com/", None),
        ("", None),
    ];
    for (url, host) in cases {
        assert_eq!(host_of(url).as_deref(), host, "{url}");
    }
}

#[test]
fn variables_in_configured_urls() {
    let mut f = Fixture::new();
    f.var("REG", "npm.example.test").var("EMPTY", "");
    assert_eq!(expand("https://${REG}/x", &f.env).as_deref(), Some("https://npm.example.test/x"));
    assert_eq!(expand("https://$REG/x", &f.env).as_deref(), Some("https://npm.example.test/x"));
    assert_eq!(expand("a$", &f.env).as_deref(), Some("a$"));
    assert_eq!(expand("https://${MISSING}/", &f.env), None);
    assert_eq!(expand("https://${REG", &f.env), None);
}

#[test]
fn project_npmrc_names_the_registry_and_scopes() {
    let mut f = npm_project("package-lock.json");
    let asked = f.npm_answers(Some("https://unused.example.test/"));
    f.file(
        ".npmrc",
        "# comment\n; other comment\nregistry = https://npm.example.test/\n\
         @corp:registry=https://registry.example.com:8443/\n\
         //npm.example.test/:_authToken=${NPM_TOKEN}\nalways-auth=true\n",
    );
    assert_eq!(f.infer().net, strings(&["npm.example.test", "registry.example.com:8443"]));
    assert!(asked.lock().unwrap().is_empty(), "npm is not asked when a file names the registry");
}

#[test]
fn npm_precedence_env_then_project_then_user() {
    let mut f = npm_project("package-lock.json");
    f.file(".npmrc", "registry=https://project.example.test/\n");
    f.home_file(".npmrc", "registry=https://user.example.test/\n@u:registry=https://scope.example.test/\n");
    assert_eq!(f.infer().net, strings(&["project.example.test", "scope.example.test"]));
    f.var("npm_config_registry", "https://env.example.test/");
    assert_eq!(f.infer().net, strings(&["env.example.test", "scope.example.test"]));

    let mut f = npm_project("");
    f.home_file(".npmrc", "registry=https://user.example.test/\n");
    f.var("NPM_CONFIG_REGISTRY", "https://upper.example.test");
    assert_eq!(f.infer().net, strings(&["upper.example.test"]));
}

#[test]
fn npm_userconfig_variable_moves_the_user_file() {
    let mut f = npm_project("package-lock.json");
    let other = f.home.join("elsewhere/npmrc");
    write(&other, "registry=https://moved.example.test/\n");
    f.home_file(".npmrc", "registry=https://user.example.test/\n");
    f.var("npm_config_userconfig", other.to_str().unwrap());
    assert_eq!(f.infer().net, strings(&["moved.example.test"]));
}

#[test]
fn npmrc_value_with_variable() {
    let mut f = npm_project("pnpm-lock.yaml");
    f.file(".npmrc", "registry=https://${REGISTRY_HOST}/\n");
    f.var("REGISTRY_HOST", "npm.example.test:4873");
    assert_eq!(f.infer().net, strings(&["npm.example.test:4873"]));
}

#[test]
fn unusable_configured_registry_falls_back_to_npm() {
    let mut f = npm_project("package-lock.json");
    f.file(".npmrc", "registry=${UNSET_VARIABLE}\n");
    f.npm_answers(Some("https://npm.example.test/"));
    assert_eq!(f.infer().net, strings(&["npm.example.test"]));
}

#[test]
fn npm_is_asked_in_the_project_when_nothing_is_configured() {
    let mut f = npm_project("yarn.lock");
    let asked = f.npm_answers(Some("https://npm.example.test/\n"));
    assert_eq!(f.infer().net, strings(&["npm.example.test"]));
    assert_eq!(*asked.lock().unwrap(), vec![f.dir.clone()]);
}

#[test]
fn npm_failing_means_no_net() {
    let mut f = npm_project("package-lock.json");
    f.npm_answers(None);
    assert!(f.infer().net.is_empty());
    f.npm_answers(Some("not a url"));
    assert!(f.infer().net.is_empty());
}

#[test]
fn no_install_no_registry_lookup() {
    let mut f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"dev":"node x"}}"#);
    let asked = f.npm_answers(Some("https://npm.example.test/"));
    assert!(f.infer().net.is_empty());
    assert!(asked.lock().unwrap().is_empty());
}

#[test]
fn bunfig_registry_string_table_and_scopes() {
    let f = npm_project("bun.lock");
    f.file(
        "bunfig.toml",
        "[install]\nregistry = { url = \"https://bun.example.test/\", token = \"$TOKEN\" }\n\
         [install.scopes]\ncorp = \"https://scope.example.test/\"\n\"@other\" = { url = \"https://other.example.test/\" }\n",
    );
    f.file(".npmrc", "registry=https://npmrc.example.test/\n@n:registry=https://n.example.test/\n");
    assert_eq!(
        f.infer().net,
        // bunfig's scopes in key order, then .npmrc's in file order
        strings(&["bun.example.test", "other.example.test", "scope.example.test", "n.example.test"])
    );

    let f = npm_project("");
    f.file("bunfig.toml", "[install]\nregistry = \"https://bun.example.test:8080/\"\n");
    assert_eq!(f.infer().net, strings(&["bun.example.test:8080"]));
}

#[test]
fn bun_precedence_project_home_env_npm() {
    let mut f = npm_project("bun.lockb");
    f.file(".npmrc", "registry=https://npmrc.example.test/\n");
    assert_eq!(f.infer().net, strings(&["npmrc.example.test"]), "npm's configuration as the last resort");
    f.var("BUN_CONFIG_REGISTRY", "https://env.example.test/");
    assert_eq!(f.infer().net, strings(&["env.example.test"]));
    f.home_file(".bunfig.toml", "[install]\nregistry = \"https://home.example.test/\"\n");
    assert_eq!(f.infer().net, strings(&["home.example.test"]));
    f.file("bunfig.toml", "[install]\nregistry = \"https://project.example.test/\"\n");
    assert_eq!(f.infer().net, strings(&["project.example.test"]));
}

#[test]
fn bun_without_configuration_asks_npm() {
    let mut f = npm_project("");
    f.file("bunfig.toml", "[test]\ncoverage = true\n");
    f.npm_answers(Some("https://npm.example.test/"));
    assert_eq!(f.infer().net, strings(&["npm.example.test"]));
}

#[test]
fn malformed_bunfig_is_skipped_with_a_note() {
    let mut f = npm_project("bun.lock");
    f.file("bunfig.toml", "[install\nregistry = ");
    f.npm_answers(Some("https://npm.example.test/"));
    let inference = f.inference();
    assert_eq!(inference.file.net, strings(&["npm.example.test"]));
    assert!(inference.notes.iter().any(|n| n.contains("bunfig.toml") && n.contains("TOML")), "{:?}", inference.notes);
}

#[test]
fn yarn_berry_reads_yarnrc_yml() {
    let mut f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"yarn@4.0.0","dependencies":{"a":"1"}}"#).file("yarn.lock", "");
    f.file(
        ".yarnrc.yml",
        "nodeLinker: node-modules\nnpmRegistryServer: \"https://yarn.example.test\"\n\
         npmScopes:\n  corp:\n    npmRegistryServer: https://corp.example.test:9000\n",
    );
    f.file(".npmrc", "registry=https://npmrc.example.test/\n");
    assert_eq!(f.infer().net, strings(&["yarn.example.test", "corp.example.test:9000"]));
    f.var("YARN_NPM_REGISTRY_SERVER", "https://env.example.test");
    assert_eq!(f.infer().net, strings(&["env.example.test", "corp.example.test:9000"]));
}

#[test]
fn yarn_berry_home_yarnrc_and_fallbacks() {
    let f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"yarn@3.6.0","dependencies":{"a":"1"}}"#);
    f.home_file(".yarnrc.yml", "npmRegistryServer: https://home.example.test\n");
    assert_eq!(f.infer().net, strings(&["home.example.test"]));

    let mut f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"yarn@3.6.0","dependencies":{"a":"1"}}"#);
    f.file(".yarnrc.yml", "npmRegistryServer: [unclosed\n");
    f.npm_answers(Some("https://npm.example.test/"));
    let inference = f.inference();
    assert_eq!(inference.file.net, strings(&["npm.example.test"]));
    assert!(inference.notes.iter().any(|n| n.contains(".yarnrc.yml")), "{:?}", inference.notes);
}

#[test]
fn yarn_classic_uses_npmrc() {
    let f = npm_project("yarn.lock");
    f.file(".npmrc", "registry=https://npmrc.example.test/\n");
    f.file(".yarnrc.yml", "npmRegistryServer: https://ignored.example.test\n");
    // A .yarnrc.yml makes it Yarn 2+, which reads it.
    assert_eq!(f.infer().net, strings(&["ignored.example.test"]));
    fs::remove_file(f.dir.join(".yarnrc.yml")).unwrap();
    assert_eq!(f.infer().net, strings(&["npmrc.example.test"]));
}
