use super::*;

const FULL: &str = r#"{
  "name": "app",
  "scripts": { "dev": "vite --port 5173", "start": "node server.js", "test": "bun test", "build": "vite build" },
  "dependencies": { "hono": "^4" },
  "devDependencies": { "vite": "^5" }
}"#;

#[test]
fn reference_project() {
    let f = Fixture::new();
    f.file("package.json", FULL).dir("src").dir("lib").dir("logs").file("bun.lockb", "");
    f.file(".env", "STRIPE_API_KEY=sk_live_value\nDATABASE_URL=postgres://x\nGH_TOKEN=ghp_value\n");
    let mut expected = base();
    expected.run_commands = strings(&["bun install", "bun run build"]);
    expected.dev = Some(process("bun run dev", Some(5173)));
    expected.tests = vec![process("bun run test", None)];
    expected.outputs = strings(&["package.json", "src/", "lib/", "bun.lockb"]);
    expected.logs = strings(&["logs/*"]);
    expected.secrets = strings(&["STRIPE_API_KEY", "GH_TOKEN"]);
    assert_eq!(f.infer(), expected);
}

#[test]
fn start_when_there_is_no_dev_script() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"start":"node server.js"}}"#);
    let file = f.infer();
    assert_eq!(file.dev, Some(process("bun run start", None)));
    assert!(file.run_commands.is_empty(), "no dependencies, no install");
    assert!(file.tests.is_empty());
    assert_eq!(file.outputs, strings(&["package.json"]));
}

#[test]
fn only_dev_dependencies_still_install() {
    let f = Fixture::new();
    f.file("package.json", r#"{"devDependencies":{"typescript":"5"}}"#);
    assert_eq!(f.infer().run_commands, strings(&["bun install"]));
}

#[test]
fn empty_dependency_objects_do_not_install() {
    let f = Fixture::new();
    f.file("package.json", r#"{"dependencies":{},"devDependencies":{},"scripts":{"build":"tsc"}}"#);
    assert_eq!(f.infer().run_commands, strings(&["bun run build"]));
}

#[test]
fn workspaces_install_and_are_outputs() {
    let f = Fixture::new();
    f.file("package.json", r#"{"workspaces":["packages/*","apps/web","../outside","!packages/skip"]}"#);
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["bun install"]));
    assert_eq!(file.outputs, strings(&["package.json", "packages/", "apps/web/"]));
}

#[test]
fn manager_from_each_lockfile() {
    let cases = [
        ("package-lock.json", "npm ci", "npm run test"),
        ("npm-shrinkwrap.json", "npm ci", "npm run test"),
        ("pnpm-lock.yaml", "pnpm install --frozen-lockfile", "pnpm run test"),
        ("yarn.lock", "yarn install --frozen-lockfile", "yarn run test"),
        ("bun.lock", "bun install", "bun run test"),
        ("bun.lockb", "bun install", "bun run test"),
    ];
    for (lock, install, test) in cases {
        let f = Fixture::new();
        f.file("package.json", r#"{"dependencies":{"a":"1"},"scripts":{"test":"x"}}"#).file(lock, "");
        let file = f.infer();
        assert_eq!(file.run_commands, strings(&[install]), "{lock}");
        assert_eq!(tests_of(&file), [test], "{lock}");
        assert_eq!(file.outputs, strings(&["package.json", lock]), "{lock}");
    }
}

#[test]
fn package_manager_field_wins_over_lockfiles() {
    let f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"pnpm@9.1.0+sha512.abc","dependencies":{"a":"1"}}"#);
    f.file("package-lock.json", "{}").file("pnpm-lock.yaml", "");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["pnpm install --frozen-lockfile"]));
    assert_eq!(file.outputs, strings(&["package.json", "pnpm-lock.yaml"]));
}

#[test]
fn package_manager_without_its_lockfile_installs_unfrozen() {
    for (pm, install) in [("npm@10.2.0", "npm install"), ("pnpm@9", "pnpm install"), ("yarn@1.22.19", "yarn install")] {
        let f = Fixture::new();
        f.file("package.json", &format!(r#"{{"packageManager":"{pm}","dependencies":{{"a":"1"}}}}"#));
        assert_eq!(f.infer().run_commands, strings(&[install]), "{pm}");
    }
}

#[test]
fn yarn_berry_is_immutable() {
    let f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"yarn@4.1.0","dependencies":{"a":"1"}}"#).file("yarn.lock", "");
    assert_eq!(f.infer().run_commands, strings(&["yarn install --immutable"]));

    let f = Fixture::new();
    f.file("package.json", r#"{"dependencies":{"a":"1"}}"#);
    f.file("yarn.lock", "# This file is generated\n\n__metadata:\n  version: 8\n");
    assert_eq!(f.infer().run_commands, strings(&["yarn install --immutable"]));
}

#[test]
fn unknown_package_manager_falls_back_to_lockfile() {
    let f = Fixture::new();
    f.file("package.json", r#"{"packageManager":"deno@2","dependencies":{"a":"1"}}"#).file("yarn.lock", "");
    assert_eq!(f.infer().run_commands, strings(&["yarn install --frozen-lockfile"]));
}

#[test]
fn port_from_the_dev_script() {
    let cases = [
        ("vite --port 3000", Some(3000)),
        ("vite --port=4000 --host", Some(4000)),
        ("next dev -p 3001", Some(3001)),
        ("PORT=8080 node server.js", Some(8080)),
        ("cross-env PORT=9000 nodemon", Some(9000)),
        ("next dev", None),
        ("tsc -p tsconfig.json && node .", None),
        ("vite --port 70000", None),
        ("vite --port 0", None),
        ("PORT=$PORT node x", None),
        ("vite --port", None),
    ];
    for (script, port) in cases {
        let f = Fixture::new();
        f.file("package.json", &serde_json::json!({ "scripts": { "dev": script } }).to_string());
        assert_eq!(f.infer().dev, Some(process("bun run dev", port)), "{script}");
    }
}

#[test]
fn port_from_start_when_it_is_the_dev_process() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"start":"serve -p 5000"}}"#).file("package-lock.json", "{}");
    assert_eq!(f.infer().dev, Some(process("npm run start", Some(5000))));
}

#[test]
fn npm_placeholder_test_script_is_not_a_test() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#);
    assert!(f.infer().tests.is_empty());
}

#[test]
fn non_string_and_empty_scripts_are_ignored() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"dev":42,"start":"  ","test":["x"],"build":null}}"#);
    let file = f.infer();
    assert_eq!(file.dev, None);
    assert!(file.tests.is_empty() && file.run_commands.is_empty());
}

#[test]
fn malformed_package_json_keeps_outputs_and_says_why() {
    for text in ["{ not json", "[1,2]", "", "\u{0}\u{1}"] {
        let f = Fixture::new();
        f.file("package.json", text).dir("src").file("bun.lock", "");
        let inference = f.inference();
        let mut expected = base();
        expected.outputs = strings(&["package.json", "src/", "bun.lock"]);
        assert_eq!(inference.file, expected, "{text:?}");
        assert!(inference.notes.iter().any(|n| n.starts_with("package.json: ")), "{:?}", inference.notes);
    }
}

#[test]
fn a_directory_named_package_json_is_not_a_project() {
    let f = Fixture::new();
    f.dir("package.json");
    assert_eq!(f.infer(), base());
}

#[test]
fn src_as_a_file_is_not_an_output_directory() {
    let f = Fixture::new();
    f.file("package.json", "{}").file("src", "not a dir");
    assert_eq!(f.infer().outputs, strings(&["package.json"]));
}
