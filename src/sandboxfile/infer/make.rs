//! Makefiles: their targets fill the roles (build, test, dev) no ecosystem
//! took.

use super::project::Project;
use super::{Found, Process, Taken, port_in};

/// The names GNU make looks for, in its order.
const NAMES: &[&str] = &["GNUmakefile", "makefile", "Makefile"];
const BUILD: &[&str] = &["build", "all"];
const TEST: &[&str] = &["test", "check"];
const DEV: &[&str] = &["dev", "run", "serve"];

/// `alone`: no other ecosystem was found, so the usual source directories are
/// the Makefile's to name as OUTPUT.
pub fn infer(project: &Project, taken: Taken, alone: bool) -> Option<Found> {
    let name = project.first_file(NAMES)?;
    let rules = rules(&project.read(name)?);
    let target = |wanted: &[&'static str]| wanted.iter().copied().find(|w| rules.iter().any(|(t, _)| t == w));
    let mut found = Found::default();
    if let (false, Some(t)) = (taken.build, target(BUILD)) {
        found.build.push(format!("make {t}"));
    }
    if let (false, Some(t)) = (taken.test, target(TEST)) {
        found.tests.push(format!("make {t}"));
    }
    if let (false, Some(t)) = (taken.dev, target(DEV)) {
        let recipe = rules.iter().filter(|(name, _)| name == t).map(|(_, r)| r.as_str());
        let port = recipe.map(port_in).find(Option::is_some).flatten();
        found.dev = Some(Process { command: format!("make {t}"), port, ..Process::default() });
    }
    found.outputs.push(name.into());
    if alone {
        let dirs = ["src", "include", "lib", "tests", "test"].into_iter().filter(|d| project.is_dir(d));
        found.outputs.extend(dirs.map(|d| format!("{d}/")));
    }
    Some(found)
}

/// Each explicit target with its recipe text. Variable assignments, special
/// targets (`.PHONY`), pattern rules and `define` blocks are not targets.
fn rules(text: &str) -> Vec<(String, String)> {
    let mut rules: Vec<(String, String)> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut in_define = false;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if in_define {
            in_define = first != "endef";
            continue;
        }
        if line.starts_with('\t') {
            for &i in &current {
                rules[i].1.push_str(line.trim());
                rules[i].1.push('\n');
            }
            continue;
        }
        if matches!(first, "define" | "override" | "export") && line.contains("define") {
            in_define = first == "define" || line.split_whitespace().nth(1) == Some("define");
            continue;
        }
        let line = line.split('#').next().unwrap_or_default();
        if line.trim().is_empty() {
            continue;
        }
        current.clear();
        let Some(at) = line.find(':') else { continue };
        let (names, after) = (&line[..at], &line[at..]);
        if names.contains(['=', '$', '%']) || after.starts_with(":=") || after.starts_with("::=") {
            continue;
        }
        for target in names.split_whitespace().filter(|t| !t.starts_with('.')) {
            current.push(rules.len());
            // An inline recipe: `target: deps ; command`.
            let inline = after.split_once(';').map(|(_, r)| format!("{}\n", r.trim())).unwrap_or_default();
            rules.push((target.to_string(), inline));
        }
    }
    rules
}
