use super::*;

fn matcher(lines: &[&str]) -> OutputMatcher {
    OutputMatcher::new(lines).expect("valid OUTPUT lines")
}

/// (OUTPUT lines, path, expected).
type Case = (&'static [&'static str], &'static str, bool);

fn check(cases: &[Case]) {
    for &(lines, path, expected) in cases {
        assert_eq!(matcher(lines).is_match(path), expected, "OUTPUT {lines:?} path {path:?}");
    }
}

#[test]
fn trailing_slash_is_the_whole_directory() {
    check(&[
        (&["src/"], "src/index.ts", true),
        (&["src/"], "src/a/b/c.ts", true),
        (&["src/"], "src", true),
        (&["src/"], "srcx/index.ts", false),
        (&["src/"], "lib/src/index.ts", false),
        (&["src/"], "package.json", false),
        (&["./src/"], "src/index.ts", true),
        (&["src//a/./"], "src/a/x", true),
        (&["src/*/"], "src/a/deep/x.ts", true),
        (&["src/*/"], "src/top.ts", true),
        (&["src/*/"], "lib/a/x", false),
    ]);
}

#[test]
fn literals_name_a_path_and_what_is_below_it() {
    check(&[
        (&["package.json"], "package.json", true),
        (&["package.json"], "a/package.json", false),
        (&["package.json"], "package.json.bak", false),
        (&["package.json"], "package.jsonx", false),
        (&["dist"], "dist/app.js", true),
        (&["dist"], "dist", true),
        (&["dist"], "distro/app.js", false),
        (&["./bun.lock"], "bun.lock", true),
    ]);
}

#[test]
fn globs_match_what_they_say_and_stop_at_slashes() {
    check(&[
        (&["src/**/*.ts"], "src/a.ts", true),
        (&["src/**/*.ts"], "src/a/b/c.ts", true),
        (&["src/**/*.ts"], "src/a/b/c.js", false),
        (&["src/**/*.ts"], "lib/a.ts", false),
        (&["*.md"], "README.md", true),
        (&["*.md"], "docs/README.md", false),
        (&["**/*.md"], "docs/README.md", true),
        (&["src/*"], "src/a.ts", true),
        (&["src/*"], "src/a/b.ts", false),
        (&["logs/?.log"], "logs/1.log", true),
        (&["logs/?.log"], "logs/10.log", false),
        (&["{a,b}/x"], "b/x", true),
    ]);
}

#[test]
fn dot_is_the_whole_workdir() {
    for line in [".", "./"] {
        let m = matcher(&[line]);
        assert!(m.is_match("anything/at/all.txt"), "{line}");
        assert!(m.is_match("top"), "{line}");
    }
}

#[test]
fn no_lines_match_nothing() {
    let m = OutputMatcher::new(Vec::<String>::new()).unwrap();
    assert!(!m.is_match("src/a.ts"));
    assert!(!m.may_cover("src"));
}

#[test]
fn bad_lines_are_errors() {
    for (line, needle) in [
        ("", "is empty"),
        ("/etc/passwd", "absolute"),
        ("../x", "\"..\""),
        ("src/../../x", "\"..\""),
        ("src/[", "not a valid glob"),
    ] {
        let err = OutputMatcher::new([line]).expect_err(line);
        assert!(err.to_string().contains(needle), "{line}: {err}");
        assert!(err.to_string().starts_with("OUTPUT \""), "{err}");
    }
}

#[test]
fn protected_paths_are_withheld_unless_named_literally() {
    let m = matcher(&["./"]);
    for path in [".git/hooks/pre-commit", ".git/config", ".bashrc", ".vscode/tasks.json", ".mcp.json", "a/.envrc"] {
        assert!(matches!(m.classify(path), OutputMatch::Withheld(_)), "{path}");
    }
    assert_eq!(m.classify("src/index.ts"), OutputMatch::Included);

    // A parent directory or a glob does not unlock them.
    for lines in [&[".git/"][..], &[".git"], &[".git/hooks/*"], &[".git/**"], &["**/pre-commit"], &[".git/hooks/"]] {
        assert!(matches!(matcher(lines).classify(".git/hooks/pre-commit"), OutputMatch::Withheld(_)), "{lines:?}");
    }
    for lines in [&[".vscode/"][..], &[".vscode"], &[".vscode/*.json"]] {
        assert!(matches!(matcher(lines).classify(".vscode/settings.json"), OutputMatch::Withheld(_)), "{lines:?}");
    }

    // The exact path does, and only that path.
    let m = matcher(&["./", ".vscode/settings.json", "./.mcp.json", ".git/hooks/pre-commit"]);
    assert_eq!(m.classify(".vscode/settings.json"), OutputMatch::Included);
    assert_eq!(m.classify(".mcp.json"), OutputMatch::Included);
    assert_eq!(m.classify(".git/hooks/pre-commit"), OutputMatch::Included);
    assert!(matches!(m.classify(".vscode/tasks.json"), OutputMatch::Withheld(_)));
    assert!(matches!(m.classify(".git/hooks/pre-push"), OutputMatch::Withheld(_)));
    // Exact means exact: a different case names a different file here.
    assert!(matches!(m.classify(".VSCODE/settings.json"), OutputMatch::Withheld(_)));
}

#[test]
fn protected_paths_outside_output_are_just_outside() {
    let m = matcher(&["src/"]);
    assert_eq!(m.classify(".bashrc"), OutputMatch::Outside);
    assert!(matches!(m.classify("src/.vscode/settings.json"), OutputMatch::Withheld(_)));
}

#[test]
fn may_cover_prunes_unrelated_subtrees() {
    let m = matcher(&["src/", "package.json", "lib/**/*.ts"]);
    for dir in ["src", "src/a/b", "lib", "lib/x"] {
        assert!(m.may_cover(dir), "{dir}");
    }
    for dir in ["node_modules", "srcx", "dist", "li"] {
        assert!(!m.may_cover(dir), "{dir}");
    }
    let m = matcher(&["packages/app/src/"]);
    assert!(m.may_cover("packages"));
    assert!(m.may_cover("packages/app"));
    assert!(!m.may_cover("packages/other"));
    assert!(matcher(&["*.md"]).may_cover("anything"));
}

#[test]
fn arbitrary_text_never_panics() {
    for line in ["[", "{", "\\", "**/**/**", "a\0b", "é/ü", " ", "*//", "./.", "{a,{b,c}}"] {
        if let Ok(m) = OutputMatcher::new([line]) {
            for path in ["", "a", "é/ü", "a\0b", "/abs", "../x"] {
                let _ = m.classify(path);
                let _ = m.may_cover(path);
            }
        }
    }
}
