//! YAML loading with limits (yaml-rust2: pure safe Rust, maintained, and its
//! ordered maps keep compose services in file order).
//!
//! yaml-rust2 copies the node for every alias and drops trees recursively, so
//! a hostile file (nested aliases: "billion laughs"; thousands of nested
//! brackets) could exhaust memory or the stack. The event stream is checked
//! first: too deep, or too many nodes once aliases are expanded, and the file
//! is skipped.

use super::project::Project;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlLoader};

const MAX_DEPTH: usize = 64;
const MAX_NODES: u64 = 100_000;

/// The first document of `text`, or None (with a note) when it is not YAML or
/// exceeds the limits.
pub fn load(project: &Project, label: &str, text: &str) -> Option<Yaml> {
    if let Err(why) = check(text) {
        project.note(label, format!("{why}, skipped"));
        return None;
    }
    match YamlLoader::load_from_str(text) {
        Ok(docs) => docs.into_iter().next(),
        Err(e) => {
            project.note(label, format!("not valid YAML, skipped: {e}"));
            None
        }
    }
}

/// Walks the events counting depth and the size of the tree aliases would
/// build.
fn check(text: &str) -> Result<(), String> {
    let mut parser = Parser::new_from_str(text);
    // Per open collection: its anchor id and its node count so far.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, u64> = Default::default();
    let mut total: u64 = 0;
    loop {
        let (event, _) = parser.next_token().map_err(|e| format!("not valid YAML: {e}"))?;
        let closed = match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                }
                open.push((anchor, 1));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some((anchor, size)) => Some((anchor, size)),
                None => continue,
            },
            Event::Scalar(_, _, anchor, _) => Some((anchor, 1)),
            Event::Alias(id) => Some((0, anchors.get(&id).copied().unwrap_or(1))),
            _ => None,
        };
        let Some((anchor, size)) = closed else { continue };
        if anchor > 0 {
            anchors.insert(anchor, size);
        }
        match open.last_mut() {
            Some((_, parent)) => *parent = parent.saturating_add(size),
            None => total = total.saturating_add(size),
        }
        if open.iter().map(|(_, s)| *s).fold(total, u64::saturating_add) > MAX_NODES {
            return Err(format!("more than {MAX_NODES} nodes once aliases are expanded"));
        }
    }
}
