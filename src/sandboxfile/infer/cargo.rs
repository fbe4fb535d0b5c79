//! Cargo projects (`Cargo.toml`).

use super::project::{Project, toml_get};
use super::{Found, cargo_registry, push_unique, workspace_dir};

pub fn infer(project: &Project) -> Option<Found> {
    if !project.is_file("Cargo.toml") {
        return None;
    }
    let manifest = project.read_toml("Cargo.toml");
    let mut found = Found { build: vec!["cargo build".into()], tests: vec!["cargo test".into()], ..Found::default() };
    found.outputs.push("Cargo.toml".into());
    for file in ["Cargo.lock", "build.rs"] {
        if project.is_file(file) {
            found.outputs.push(file.into());
        }
    }
    for dir in ["src", "tests", "benches", "examples"] {
        if project.is_dir(dir) {
            found.outputs.push(format!("{dir}/"));
        }
    }
    let members = manifest.as_ref().and_then(|m| toml_get(m, &["workspace", "members"])?.as_array());
    for member in members.into_iter().flatten().filter_map(toml::Value::as_str) {
        if let Some(dir) = workspace_dir(member) {
            push_unique(&mut found.outputs, dir);
        }
    }
    found.net = cargo_registry::hosts(project, manifest.as_ref());
    Some(found)
}
