//! Python projects: `pyproject.toml`, `requirements.txt` or `setup.py`.

use super::project::{Project, toml_get};
use super::{Found, push_unique, python_registry};

/// Requirement files installed (in this order) and kept as OUTPUT.
pub const REQUIREMENTS: &[&str] = &[
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-test.txt",
    "dev-requirements.txt",
    "test-requirements.txt",
];

/// Extras installed with `pip install -e '.[…]'` when the project has them.
const TEST_EXTRAS: &[&str] = &["dev", "test", "tests", "testing"];

/// Directories never taken for packages.
const NOT_PACKAGES: &[&str] = &["node_modules", "venv", "build", "dist", "site-packages"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Uv,
    Poetry,
    Pip,
}

pub fn infer(project: &Project) -> Option<Found> {
    let requirements: Vec<&str> = REQUIREMENTS.iter().copied().filter(|r| project.is_file(r)).collect();
    let has_pyproject = project.is_file("pyproject.toml");
    if !has_pyproject && !project.is_file(REQUIREMENTS[0]) && !project.is_file("setup.py") {
        return None;
    }
    let pyproject = if has_pyproject { project.read_toml("pyproject.toml") } else { None };
    let tool = if project.is_file("uv.lock") {
        Tool::Uv
    } else if project.is_file("poetry.lock") {
        Tool::Poetry
    } else {
        Tool::Pip
    };

    let mut found = Found { install: install(project, tool, pyproject.as_ref(), &requirements), ..Found::default() };
    if !found.install.is_empty() {
        found.net = python_registry::hosts(project, pyproject.as_ref(), &requirements);
    }
    if uses_pytest(project, pyproject.as_ref(), &requirements) {
        found.tests.push(
            match tool {
                Tool::Uv => "uv run pytest",
                Tool::Poetry => "poetry run pytest",
                Tool::Pip => "python3 -m pytest",
            }
            .into(),
        );
    }
    found.outputs = outputs(project, &requirements);
    Some(found)
}

fn install(project: &Project, tool: Tool, pyproject: Option<&toml::Table>, requirements: &[&str]) -> Vec<String> {
    match tool {
        Tool::Uv => return vec!["uv sync --locked".into()],
        Tool::Poetry => return vec!["poetry install".into()],
        Tool::Pip => {}
    }
    let mut commands = Vec::new();
    if !requirements.is_empty() {
        let files: Vec<String> = requirements.iter().map(|r| format!("-r {r}")).collect();
        commands.push(format!("python3 -m pip install {}", files.join(" ")));
    }
    let installable = project.is_file("setup.py")
        || pyproject.is_some_and(|p| p.contains_key("project") || p.contains_key("build-system"));
    if installable {
        let extras = pyproject.and_then(|p| toml_get(p, &["project", "optional-dependencies"])?.as_table());
        let extras: Vec<&str> =
            TEST_EXTRAS.iter().copied().filter(|e| extras.is_some_and(|x| x.contains_key(*e))).collect();
        commands.push(match extras.is_empty() {
            true => "python3 -m pip install -e .".into(),
            false => format!("python3 -m pip install -e '.[{}]'", extras.join(",")),
        });
    }
    commands
}

/// pytest among the dependencies, or its configuration, or a tests directory.
fn uses_pytest(project: &Project, pyproject: Option<&toml::Table>, requirements: &[&str]) -> bool {
    let files = ["pytest.ini", "conftest.py"].iter().any(|f| project.is_file(f))
        || ["tests", "test"].iter().any(|d| project.is_dir(d));
    let in_requirements = requirements
        .iter()
        .filter_map(|r| project.read(r))
        .any(|text| text.lines().any(|l| is_pytest(requirement_name(l))));
    let ini = |file: &str, section: &str| project.read(file).is_some_and(|t| t.lines().any(|l| l.trim() == section));
    files
        || in_requirements
        || pyproject.is_some_and(pyproject_uses_pytest)
        || ini("setup.cfg", "[tool:pytest]")
        || ini("tox.ini", "[pytest]")
}

fn pyproject_uses_pytest(p: &toml::Table) -> bool {
    if toml_get(p, &["tool", "pytest"]).is_some() {
        return true;
    }
    // PEP 621 lists and dependency groups hold requirement strings; Poetry's
    // tables are keyed by name.
    let mut lists: Vec<&toml::Value> = Vec::new();
    lists.extend(toml_get(p, &["project", "dependencies"]));
    lists.extend(toml_get(p, &["tool", "uv", "dev-dependencies"]));
    for table in [&["project", "optional-dependencies"][..], &["dependency-groups"]] {
        lists.extend(toml_get(p, table).and_then(toml::Value::as_table).into_iter().flat_map(|t| t.values()));
    }
    let in_lists = lists
        .iter()
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(toml::Value::as_str)
        .any(|r| is_pytest(requirement_name(r)));
    let mut poetry: Vec<&toml::Table> = Vec::new();
    for path in [&["tool", "poetry", "dependencies"][..], &["tool", "poetry", "dev-dependencies"]] {
        poetry.extend(toml_get(p, path).and_then(toml::Value::as_table));
    }
    let groups = toml_get(p, &["tool", "poetry", "group"]).and_then(toml::Value::as_table);
    for group in groups.into_iter().flat_map(|g| g.values()) {
        poetry.extend(group.get("dependencies").and_then(toml::Value::as_table));
    }
    in_lists || poetry.iter().any(|t| t.keys().any(|k| is_pytest(k)))
}

/// The distribution name at the start of a requirement line.
fn requirement_name(line: &str) -> &str {
    let line = line.trim();
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(line.len());
    &line[..end]
}

/// pytest, or a `pytest-…` plugin (which brings pytest).
fn is_pytest(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    name == "pytest" || name.starts_with("pytest-")
}

fn outputs(project: &Project, requirements: &[&str]) -> Vec<String> {
    let mut outputs: Vec<String> = ["pyproject.toml", "setup.py", "setup.cfg"]
        .iter()
        .copied()
        .chain(requirements.iter().copied())
        .chain(["uv.lock", "poetry.lock"])
        .filter(|f| project.is_file(f))
        .map(str::to_string)
        .collect();
    let entries = project.entries();
    let packages = entries.iter().filter(|(name, dir)| {
        *dir && !name.starts_with('.')
            && !NOT_PACKAGES.contains(&name.as_str())
            && project.is_file(&format!("{name}/__init__.py"))
    });
    let dirs = ["src", "tests", "test"].iter().filter(|d| project.is_dir(d)).map(|d| d.to_string());
    for dir in dirs.chain(packages.map(|(name, _)| name.clone())) {
        push_unique(&mut outputs, format!("{dir}/"));
    }
    for (name, _) in entries.iter().filter(|(name, dir)| !dir && name.ends_with(".py")) {
        push_unique(&mut outputs, name.clone());
    }
    outputs
}
