use super::*;

#[test]
fn requirements_project() {
    let f = Fixture::new();
    f.file("requirements.txt", "flask==3.0\npytest>=8 ; python_version > '3.8'\n").file("app.py", "");
    f.file("requirements-dev.txt", "black\n");
    let mut expected = base();
    expected.run_commands = strings(&["python3 -m pip install -r requirements.txt -r requirements-dev.txt"]);
    expected.tests = vec![process("python3 -m pytest", None)];
    expected.outputs = strings(&["requirements.txt", "requirements-dev.txt", "app.py"]);
    assert_eq!(f.infer(), expected);
}

#[test]
fn installable_pyproject_with_test_extras() {
    let f = Fixture::new();
    f.file(
        "pyproject.toml",
        "[project]\nname = \"pkg\"\ndependencies = [\"httpx\"]\n\
         [project.optional-dependencies]\ntest = [\"pytest-cov\"]\ndev = [\"ruff\"]\ndocs = [\"mkdocs\"]\n",
    );
    f.file("src/pkg/__init__.py", "").file("tests/test_x.py", "");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["python3 -m pip install -e '.[dev,test]'"]));
    assert_eq!(tests_of(&file), ["python3 -m pytest"]);
    assert_eq!(file.outputs, strings(&["pyproject.toml", "src/", "tests/"]));
}

#[test]
fn requirements_and_setup_py_install_both() {
    let f = Fixture::new();
    f.file("requirements.txt", "requests\n").file("setup.py", "from setuptools import setup\n");
    f.file("mypkg/__init__.py", "").file("docs/index.md", "").file("build/lib/x/__init__.py", "");
    let file = f.infer();
    assert_eq!(
        file.run_commands,
        strings(&["python3 -m pip install -r requirements.txt", "python3 -m pip install -e ."])
    );
    assert!(file.tests.is_empty(), "no pytest anywhere");
    assert_eq!(file.outputs, strings(&["setup.py", "requirements.txt", "mypkg/"]));
}

#[test]
fn config_only_pyproject_is_not_installed() {
    let f = Fixture::new();
    f.file("pyproject.toml", "[tool.black]\nline-length = 100\n");
    let file = f.infer();
    assert!(file.run_commands.is_empty());
    assert!(file.tests.is_empty());
    assert_eq!(file.outputs, strings(&["pyproject.toml"]));
}

#[test]
fn uv_project() {
    let f = Fixture::new();
    f.file("pyproject.toml", "[project]\nname = \"x\"\n[dependency-groups]\ndev = [\"pytest>=8\"]\n")
        .file("uv.lock", "");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["uv sync --locked"]));
    assert_eq!(tests_of(&file), ["uv run pytest"]);
    assert_eq!(file.outputs, strings(&["pyproject.toml", "uv.lock"]));
}

#[test]
fn poetry_project() {
    let f = Fixture::new();
    f.file(
        "pyproject.toml",
        "[tool.poetry]\nname = \"x\"\n[tool.poetry.group.test.dependencies]\npytest = \"^8\"\n\
         [build-system]\nrequires = [\"poetry-core\"]\n",
    );
    f.file("poetry.lock", "");
    let file = f.infer();
    assert_eq!(file.run_commands, strings(&["poetry install"]));
    assert_eq!(tests_of(&file), ["poetry run pytest"]);
    assert_eq!(file.outputs, strings(&["pyproject.toml", "poetry.lock"]));
}

#[test]
fn uv_lock_wins_over_poetry_lock() {
    let f = Fixture::new();
    f.file("pyproject.toml", "[project]\nname = \"x\"\n").file("uv.lock", "").file("poetry.lock", "");
    assert_eq!(f.infer().run_commands, strings(&["uv sync --locked"]));
}

#[test]
fn pytest_signals() {
    let signals: [(&str, &str); 9] = [
        ("pytest.ini", "[pytest]\n"),
        ("conftest.py", ""),
        ("tests/test_a.py", ""),
        ("test/test_a.py", ""),
        ("setup.cfg", "[metadata]\nname = x\n[tool:pytest]\naddopts = -q\n"),
        ("tox.ini", "[tox]\n[pytest]\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-q\"\n"),
        ("pyproject.toml", "[tool.poetry.dev-dependencies]\nPytest = \"*\"\n"),
        ("pyproject.toml", "[tool.uv]\ndev-dependencies = [\"pytest_asyncio\"]\n"),
    ];
    for (file, text) in signals {
        let f = Fixture::new();
        f.file("requirements.txt", "requests\n").file(file, text);
        assert_eq!(tests_of(&f.infer()), ["python3 -m pytest"], "{file}: {text}");
    }
    for not_pytest in ["pytestify\n", "# pytest\n", "nose\n"] {
        let f = Fixture::new();
        f.file("requirements.txt", not_pytest);
        assert!(f.infer().tests.is_empty(), "{not_pytest}");
    }
}

#[test]
fn malformed_pyproject_is_skipped_with_a_note() {
    let f = Fixture::new();
    f.file("pyproject.toml", "[project\nname=").file("requirements.txt", "x\n");
    let inference = f.inference();
    assert_eq!(inference.file.run_commands, strings(&["python3 -m pip install -r requirements.txt"]));
    assert_eq!(inference.file.outputs, strings(&["pyproject.toml", "requirements.txt"]));
    assert!(inference.notes.iter().any(|n| n.contains("pyproject.toml")), "{:?}", inference.notes);
}

#[test]
fn index_hosts_from_the_project() {
    let f = Fixture::new();
    f.file(
        "requirements.txt",
        "-i https://pypi.example.test/simple\n--extra-index-url=https://extra.example.test:8443/simple\n\
         --find-links https://links.example.test/wheels/\nflask\n",
    );
    f.file(
        "pyproject.toml",
        "[project]\nname = \"x\"\n[tool.uv]\nindex-url = \"https://uv.example.test/simple\"\n\
         extra-index-url = [\"https://uvextra.example.test/\"]\n\
         [[tool.uv.index]]\nname = \"corp\"\nurl = \"https://uvindex.example.test/simple\"\n\
         [[tool.poetry.source]]\nname = \"p\"\nurl = \"https://poetry.example.test/simple\"\n",
    );
    f.file("uv.toml", "[[index]]\nurl = \"https://uvtoml.example.test/\"\n");
    assert_eq!(
        f.infer().net,
        strings(&[
            "pypi.example.test",
            "extra.example.test:8443",
            "links.example.test",
            "uv.example.test",
            "uvextra.example.test",
            "uvindex.example.test",
            "poetry.example.test",
            "uvtoml.example.test",
        ])
    );
}

#[test]
fn index_hosts_from_variables_and_user_files() {
    let mut f = Fixture::new();
    f.file("requirements.txt", "flask\n");
    let system = f.home.join("etc");
    write(&system.join("pip.conf"), "[global]\nindex-url = https://system.example.test/simple\n");
    f.env.system = Some(system);
    f.home_file(
        ".config/pip/pip.conf",
        "[global]\nindex_url = https://user.example.test/simple\nextra-index-url =\n    https://a.example.test/\n    https://b.example.test/\ntimeout = 60\n",
    );
    f.home_file(".pip/pip.conf", "[install]\nextra-index-url: https://legacy.example.test\n");
    f.home_file(".config/uv/uv.toml", "index-url = \"https://uvuser.example.test/\"\n");
    let custom = f.home.join("custom.conf");
    write(&custom, "[global]\nindex-url=https://custom.example.test/\n");
    f.var("PIP_CONFIG_FILE", custom.to_str().unwrap());
    f.var("PIP_INDEX_URL", "https://env.example.test/simple");
    f.var("PIP_EXTRA_INDEX_URL", "https://e1.example.test/ https://e2.example.test/");
    f.var("UV_INDEX", "corp=https://uvenv.example.test/simple?x=1");
    assert_eq!(
        f.infer().net,
        strings(&[
            "env.example.test",
            "e1.example.test",
            "e2.example.test",
            "uvenv.example.test",
            "custom.example.test",
            "user.example.test",
            "a.example.test",
            "b.example.test",
            "legacy.example.test",
            "system.example.test",
            "uvuser.example.test",
        ])
    );
}

#[test]
fn no_install_no_index_hosts() {
    let mut f = Fixture::new();
    f.file("pyproject.toml", "[tool.uv]\nindex-url = \"https://uv.example.test/\"\n");
    f.var("PIP_INDEX_URL", "https://env.example.test/simple");
    assert!(f.infer().net.is_empty());
}
