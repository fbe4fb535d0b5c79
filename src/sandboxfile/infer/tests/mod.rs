//! Inference tests: each builds a small project in a temporary directory and
//! a hand-made [`Env`] (its own temporary home, chosen variables, a fake npm),
//! so that nothing depends on the machine running them.

mod cargo;
mod compose;
mod general;
mod go;
mod make;
mod node;
mod python;
mod registry;

use super::{Env, Inference, infer_with};
use crate::sandboxfile::{Process, Sandboxfile, Service, format, parse, validate};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A project directory and a home directory, both temporary.
struct Fixture {
    _root: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
    env: Env,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("project");
        let home = root.path().join("home");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&home).unwrap();
        let env = Env::isolated(Some(home.clone()));
        Fixture { _root: root, dir, home, env }
    }

    /// Writes a project file, creating its directories.
    fn file(&self, rel: &str, text: &str) -> &Self {
        write(&self.dir.join(rel), text);
        self
    }

    fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.dir.join(rel)).unwrap();
        self
    }

    /// Writes a file under the home directory.
    fn home_file(&self, rel: &str, text: &str) -> &Self {
        write(&self.home.join(rel), text);
        self
    }

    fn var(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.vars.insert(name.into(), value.into());
        self
    }

    /// npm answers `registry` to `npm config get registry`; the directories
    /// it was asked in are recorded.
    fn npm_answers(&mut self, registry: Option<&str>) -> Arc<Mutex<Vec<PathBuf>>> {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let answer = registry.map(str::to_string);
        self.env.npm_registry = Box::new(move |dir: &Path| {
            log.lock().unwrap().push(dir.to_path_buf());
            answer.clone()
        });
        asked
    }

    fn inference(&self) -> Inference {
        let inference = infer_with(&self.dir, &self.env).expect("infer");
        assert_round_trip(&inference.file);
        inference
    }

    fn infer(&self) -> Sandboxfile {
        self.inference().file
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Every inferred file formats, parses back to itself, and validates without
/// errors.
fn assert_round_trip(file: &Sandboxfile) {
    let text = format(file).unwrap_or_else(|e| panic!("format failed: {e}\n{file:#?}"));
    let back = parse(&text).unwrap_or_else(|e| panic!("parse failed: {e}\n{text}"));
    assert_eq!(&back, file, "round trip changed the file:\n{text}");
    let report = validate(file);
    assert!(report.errors.is_empty(), "validation errors {:?} in\n{text}", report.errors);
}

/// The head every inferred file has.
fn base() -> Sandboxfile {
    Sandboxfile { from: Some("host".into()), workdir: Some(".".into()), ..Sandboxfile::default() }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn process(command: &str, port: Option<u16>) -> Process {
    Process { command: command.into(), port, ..Process::default() }
}

fn tests_of(file: &Sandboxfile) -> Vec<&str> {
    file.tests.iter().map(|t| t.command.as_str()).collect()
}

fn service<'f>(file: &'f Sandboxfile, name: &str) -> &'f Service {
    file.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}: {file:#?}"))
}
