use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::fs::testutil::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// No temporary file anywhere below `root`.
fn no_temporaries(root: &Path) {
    for path in tree(root).keys() {
        assert!(!path.rsplit('/').next().unwrap().starts_with(TEMP_PREFIX), "temporary left behind: {path}");
    }
}

fn refusals(err: &io::Error) -> &[Refusal] {
    match fs_error(err) {
        FsError::Refused(list) => list,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn applies_added_modified_and_deleted_to_the_workdir_itself() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/keep.ts", "k")
            .lower_file("src/change.ts", "old")
            .lower_file("src/gone.ts", "g")
            .lower_file("src/olddir/a.ts", "a")
            .lower_file("src/olddir/sub/b.ts", "b")
            .lower_file("README.md", "outside OUTPUT");
        l.upper_file("src/change.ts", "new")
            .upper_file("src/new/deep/n.ts", "n")
            .upper_link("src/new/link", "deep/n.ts")
            .whiteout("src/gone.ts", form)
            .whiteout("src/olddir", form)
            .upper_file("README.md", "changed, but not under OUTPUT");
        let written = l.extract_to(&["src/"], &l.lower).expect("extract");
        assert_eq!(
            written,
            strings(&[
                "src/change.ts",
                "src/gone.ts",
                "src/new/deep/n.ts",
                "src/new/link",
                "src/olddir/a.ts",
                "src/olddir/sub/b.ts"
            ]),
            "{form:?}"
        );
        let t = tree(&l.lower);
        assert_eq!(
            t.keys().cloned().collect::<Vec<_>>(),
            strings(&["README.md", "src/change.ts", "src/keep.ts", "src/new/deep/n.ts", "src/new/link"])
        );
        assert_eq!(fs::read_to_string(l.lower.join("src/change.ts")).unwrap(), "new");
        assert_eq!(fs::read_to_string(l.lower.join("README.md")).unwrap(), "outside OUTPUT");
        assert_eq!(fs::read_link(l.lower.join("src/new/link")).unwrap(), Path::new("deep/n.ts"));
        assert!(!l.lower.join("src/olddir").exists(), "a directory the sandbox removed is removed");
        no_temporaries(&l.lower);
    }
}

#[test]
fn extracts_into_another_directory_created_on_demand() {
    let l = Layers::new();
    l.lower_file("package.json", "{}");
    l.upper_file("package.json", "{\"name\":\"x\"}").upper_file("src/a.ts", "a");
    let dest = l.root.join("out/nested");
    let report =
        extract_report(&l.upper, &l.lower, &OutputMatcher::new(["src/", "package.json"]).unwrap(), &dest).unwrap();
    assert_eq!(report.written, strings(&["package.json", "src/a.ts"]));
    assert!(report.deleted.is_empty() && report.withheld.is_empty());
    assert_eq!(fs::read_to_string(dest.join("src/a.ts")).unwrap(), "a");
}

#[test]
fn deletions_of_files_the_destination_lacks_are_not_reported() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/gone.ts", "g");
        l.whiteout("src/gone.ts", form);
        assert_eq!(l.extract(&["src/"]).unwrap(), Vec::<String>::new());
        assert_eq!(l.extract_to(&["src/"], &l.lower).unwrap(), strings(&["src/gone.ts"]));
    }
}

#[test]
fn a_removed_directory_stays_when_something_else_is_in_it() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/old/a.ts", "a");
        l.whiteout("src/old", form);
        copy_tree(&l.lower, &l.dest);
        fs::write(l.dest.join("src/old/untracked"), "mine").unwrap();
        assert_eq!(l.extract(&["src/**/*.ts"]).unwrap(), strings(&["src/old/a.ts"]));
        assert_eq!(names(&l.dest.join("src/old")), strings(&["untracked"]));
    }
}

#[test]
fn modes_are_kept_without_setuid_setgid_or_sticky() {
    let l = Layers::new();
    for (name, m) in [("a", 0o600), ("b", 0o751), ("c", 0o4755), ("d", 0o2750), ("e", 0o1777), ("f", 0o444)] {
        l.upper_file(&format!("bin/{name}"), name).upper_mode(&format!("bin/{name}"), m);
    }
    l.extract(&["bin/"]).unwrap();
    for (name, m) in [("a", 0o600), ("b", 0o751), ("c", 0o755), ("d", 0o750), ("e", 0o777), ("f", 0o444)] {
        assert_eq!(mode(&l.dest.join("bin").join(name)), m, "bin/{name}");
        assert_eq!(fs::read_to_string(l.dest.join("bin").join(name)).unwrap(), name);
    }
}

#[test]
fn never_writes_through_a_link_in_the_destination() {
    let outside = tempfile::TempDir::new().unwrap();
    fs::write(outside.path().join("victim.ts"), "untouched").unwrap();
    fs::write(outside.path().join("gone.ts"), "untouched").unwrap();
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/gone.ts", "g");
        l.upper_file("package.json", "{}")
            .upper_file("src/victim.ts", "pwned")
            .upper_file("src/new/x.ts", "pwned")
            .whiteout("src/gone.ts", form);
        fs::create_dir_all(&l.dest).unwrap();
        symlink(outside.path(), l.dest.join("src")).unwrap();

        let err = l.extract(&["./"]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let list = refusals(&err);
        assert_eq!(list.len(), 3, "{err}");
        assert!(list.iter().all(|r| r.reason == RefusalReason::DestinationLink("src".into())), "{err}");
        assert!(err.to_string().contains("src/victim.ts") && err.to_string().contains("nothing was written"), "{err}");
        // Nothing outside changed, and nothing at all was written.
        assert_eq!(names(outside.path()), strings(&["gone.ts", "victim.ts"]));
        assert_eq!(fs::read_to_string(outside.path().join("victim.ts")).unwrap(), "untouched");
        assert!(!l.dest.join("package.json").exists());
    }
}

#[test]
fn a_destination_link_appearing_after_the_check_is_refused_on_the_way() {
    let outside = tempfile::TempDir::new().unwrap();
    let l = Layers::new();
    l.upper_file("src/a/b.ts", "pwned");
    fs::create_dir_all(l.dest.join("src")).unwrap();
    symlink(outside.path(), l.dest.join("src/a")).unwrap();
    let mut dest = Tree { root: Dir::open(&l.dest).unwrap(), root_path: l.dest.clone(), cache: None };
    for missing in [Missing::Create, Missing::Stop, Missing::Fail] {
        let err = dest.walk("src/a", missing).unwrap_err();
        assert!(matches!(&err, FsError::Unsafe { reason, .. } if reason.contains("symbolic link")), "{err}");
        assert!(err.to_string().contains("src/a"), "{err}");
    }
    assert!(names(outside.path()).is_empty());
}

#[test]
fn a_link_at_the_target_itself_is_replaced_not_followed() {
    let outside = tempfile::TempDir::new().unwrap();
    fs::write(outside.path().join("file"), "untouched").unwrap();
    let l = Layers::new();
    l.upper_file("src/a.ts", "new");
    fs::create_dir_all(l.dest.join("src")).unwrap();
    symlink(outside.path().join("file"), l.dest.join("src/a.ts")).unwrap();
    assert_eq!(l.extract(&["src/"]).unwrap(), strings(&["src/a.ts"]));
    assert_eq!(fs::read_to_string(outside.path().join("file")).unwrap(), "untouched");
    assert!(fs::symlink_metadata(l.dest.join("src/a.ts")).unwrap().is_file());
}

#[test]
fn link_targets_must_stay_inside() {
    let ok = [
        ("src/l", "a.ts"),
        ("src/l", "../x"),
        ("src/deep/l", "../../README.md"),
        ("l", "."),
        ("src/l", "./a/./b"),
        ("src/l", ".."),
    ];
    for (link, target) in ok {
        assert_eq!(check_link_target(link, target.as_bytes()), Ok(()), "{link} -> {target}");
    }
    type Expect = fn(&RefusalReason) -> bool;
    let bad: &[(&str, &str, Expect)] = &[
        ("src/l", "/etc/passwd", |r| matches!(r, RefusalReason::AbsoluteTarget(_))),
        ("src/l", "../../x", |r| matches!(r, RefusalReason::EscapingTarget(_))),
        ("l", "..", |r| matches!(r, RefusalReason::EscapingTarget(_))),
        ("src/l", "a/../../x", |r| matches!(r, RefusalReason::DotDotAfterName(_))),
        ("src/l", "a/..", |r| matches!(r, RefusalReason::DotDotAfterName(_))),
        ("src/l", "", |r| matches!(r, RefusalReason::EmptyTarget)),
        ("src/l", "../.git/hooks/pre-commit", |r| matches!(r, RefusalReason::ProtectedTarget(_, ".git"))),
        ("l", ".bashrc", |r| matches!(r, RefusalReason::ProtectedTarget(_, ".bashrc"))),
    ];
    for (link, target, expected) in bad {
        let got = check_link_target(link, target.as_bytes()).expect_err(target);
        assert!(expected(&got), "{link} -> {target}: {got}");
    }
}

#[test]
fn escaping_links_are_refused_and_nothing_is_written() {
    let l = Layers::new();
    l.upper_file("src/fine.ts", "f")
        .upper_link("src/passwd", "/etc/passwd")
        .upper_link("src/up", "../../x")
        .upper_link("src/ok", "fine.ts");
    let err = l.extract(&["src/"]).unwrap_err();
    let list = refusals(&err);
    assert_eq!(list.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["src/passwd", "src/up"]);
    let msg = err.to_string();
    assert!(msg.contains("src/passwd: its link target \"/etc/passwd\" is absolute"), "{msg}");
    assert!(msg.contains("src/up: its link target \"../../x\" leads out of the destination"), "{msg}");
    assert!(!l.dest.exists(), "nothing was written, not even the destination");
}

#[test]
fn special_files_are_refused() {
    let l = Layers::new();
    l.upper_file("src/fine.ts", "f");
    fifo(&l.upper.join("src/fifo"));
    let _sock = std::os::unix::net::UnixListener::bind(l.upper.join("src/sock")).unwrap();
    let device = try_char_device(&l.upper.join("src/null"));
    let err = l.extract(&["src/"]).unwrap_err();
    let mut expected = vec![("src/fifo", "FIFO"), ("src/sock", "socket")];
    if device {
        expected.insert(1, ("src/null", "character device"));
    }
    let got: Vec<(&str, &str)> = refusals(&err)
        .iter()
        .map(|r| match &r.reason {
            RefusalReason::Special(kind) => (r.path.as_str(), *kind),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(got, expected);
    assert!(!l.dest.join("src/fine.ts").exists());
}

#[test]
fn odd_but_plain_names_are_extracted() {
    let l = Layers::new();
    for name in ["..foo", "foo..", "...", ". x", "-rf", "new\nline", "ü"] {
        l.upper_file(&format!("src/{name}"), name);
    }
    let written = l.extract(&["src/"]).unwrap();
    assert_eq!(written.len(), 7);
    for name in ["..foo", "foo..", "...", ". x", "-rf", "new\nline", "ü"] {
        assert_eq!(fs::read_to_string(l.dest.join("src").join(name)).unwrap(), name);
    }
    assert!(!l.root.join("foo").exists());
}

#[test]
fn only_plain_relative_paths_pass() {
    for path in ["a", "a/b", "..foo/b", "a/...", "a/.b"] {
        assert_eq!(check_relative_path(path), Ok(()), "{path}");
    }
    for path in ["", "/etc/passwd", "../x", "a/../b", "a/..", "./a", "a/.", "a//b", "a/", "a\0b"] {
        assert_eq!(check_relative_path(path), Err(RefusalReason::BadPath), "{path:?}");
    }
}

#[test]
fn protected_files_are_not_extracted_unless_named() {
    let l = Layers::new();
    l.lower_file(".git/config", "[core]");
    copy_tree(&l.lower, &l.dest);
    l.upper_file(".git/config", "[core]\nhooksPath=evil")
        .upper_file(".git/hooks/pre-commit", "evil")
        .upper_file(".vscode/tasks.json", "{}")
        .upper_file(".mcp.json", "{}")
        .upper_file("src/a.ts", "a");
    let report = extract_report(&l.upper, &l.lower, &OutputMatcher::new(["./"]).unwrap(), &l.dest).unwrap();
    assert_eq!(report.written, strings(&["src/a.ts"]));
    assert_eq!(report.withheld, strings(&[".git/config", ".git/hooks/pre-commit", ".mcp.json", ".vscode/tasks.json"]));
    assert_eq!(fs::read_to_string(l.dest.join(".git/config")).unwrap(), "[core]");
    assert!(
        !l.dest.join(".git/hooks").exists() && !l.dest.join(".vscode").exists() && !l.dest.join(".mcp.json").exists()
    );

    assert_eq!(l.extract(&["./", ".mcp.json"]).unwrap(), strings(&[".mcp.json", "src/a.ts"]));
}

#[test]
fn a_directory_in_the_way_is_an_error_and_leaves_no_temporary() {
    let l = Layers::new();
    l.upper_file("src/a.ts", "a").upper_file("src/b.ts", "b");
    fs::create_dir_all(l.dest.join("src/b.ts/inside")).unwrap();
    let err = l.extract(&["src/"]).unwrap_err();
    assert!(
        matches!(fs_error(&err), FsError::Unsafe { reason, .. } if reason.contains("directory is in the way")),
        "{err}"
    );
    assert!(err.to_string().contains("src/b.ts"), "{err}");
    no_temporaries(&l.dest);
    // Files before it are complete; the directory is untouched.
    assert_eq!(fs::read_to_string(l.dest.join("src/a.ts")).unwrap(), "a");
    assert_eq!(names(&l.dest.join("src/b.ts")), strings(&["inside"]));
}

#[test]
fn writes_go_through_a_temporary_name_and_a_rename() {
    let tmp = tempfile::TempDir::new().unwrap();
    fs::write(tmp.path().join("target"), "old content").unwrap();
    let dir = Dir::open(tmp.path()).unwrap();

    // Midway through writing, the target still holds the old content whole,
    // and the new bytes sit under a temporary name.
    let result = write_atomic(&dir, c"target", 0o640, |file| {
        use std::io::Write;
        file.write_all(b"new ")?;
        let listing = names(tmp.path());
        assert_eq!(listing.len(), 2, "{listing:?}");
        let temp = listing.iter().find(|n| n.starts_with(TEMP_PREFIX)).expect("a temporary name");
        assert_eq!(fs::read_to_string(tmp.path().join(temp)).unwrap(), "new ");
        assert_eq!(fs::read_to_string(tmp.path().join("target")).unwrap(), "old content");
        file.write_all(b"content")
    });
    result.unwrap();
    assert_eq!(names(tmp.path()), strings(&["target"]));
    assert_eq!(fs::read_to_string(tmp.path().join("target")).unwrap(), "new content");
    assert_eq!(mode(&tmp.path().join("target")), 0o640);

    // A failure midway leaves the target as it was and no temporary.
    let err = write_atomic(&dir, c"target", 0o644, |file| {
        use std::io::Write;
        file.write_all(b"partial")?;
        Err(io::Error::other("disk full"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(names(tmp.path()), strings(&["target"]));
    assert_eq!(fs::read_to_string(tmp.path().join("target")).unwrap(), "new content");

    // The same for a new file.
    let _ = write_atomic(&dir, c"fresh", 0o644, |_| Err(io::Error::other("fail")));
    assert_eq!(names(tmp.path()), strings(&["target"]));
}

#[test]
fn an_upper_swapped_after_the_scan_is_not_followed() {
    let outside = tempfile::TempDir::new().unwrap();
    fs::write(outside.path().join("b.ts"), "host secret").unwrap();
    let l = Layers::new();
    l.upper_file("src/a.ts", "a").upper_file("lib/b.ts", "b");
    let outputs = OutputMatcher::new(["src/", "lib/"]).unwrap();
    let scanned = scan(&l.upper, &l.lower, &outputs).unwrap();
    // The sandbox, still running, swaps a file for a link to a host secret
    // and a directory for a link to a host directory.
    fs::remove_file(l.upper.join("src/a.ts")).unwrap();
    symlink("/etc/passwd", l.upper.join("src/a.ts")).unwrap();
    fs::remove_dir_all(l.upper.join("lib")).unwrap();
    symlink(outside.path(), l.upper.join("lib")).unwrap();

    let err = apply(scanned, &l.upper, &l.dest, None).unwrap_err();
    assert!(matches!(&err, FsError::Unsafe { path, .. } if path.ends_with("lib")), "{err}");
    assert!(!tree(&l.dest).values().any(|e| matches!(e, Entry::File { content, .. } if content == b"host secret")));
    assert!(!l.dest.join("lib").exists());
}

#[test]
fn a_file_swapped_for_a_link_after_the_scan_is_refused() {
    let l = Layers::new();
    l.upper_file("src/a.ts", "a");
    let scanned = scan(&l.upper, &l.lower, &OutputMatcher::new(["src/"]).unwrap()).unwrap();
    fs::remove_file(l.upper.join("src/a.ts")).unwrap();
    symlink("/etc/passwd", l.upper.join("src/a.ts")).unwrap();
    let err = apply(scanned, &l.upper, &l.dest, None).unwrap_err();
    assert!(matches!(&err, FsError::Refused(list) if list[0].path == "src/a.ts"), "{err}");
    assert!(fs::symlink_metadata(l.dest.join("src/a.ts")).is_err());
}

#[test]
fn replacing_files_by_directories_and_back() {
    let l = Layers::new();
    l.lower_file("src/x", "file").lower_file("src/y/inner.ts", "i");
    // x: file → directory (opaque, as the overlay makes it); y: directory → file.
    l.opaque("src/x").upper_file("src/x/child.ts", "c").upper_file("src/y", "now a file");
    copy_tree(&l.lower, &l.dest);
    let written = l.extract(&["src/"]).unwrap();
    assert_eq!(written, strings(&["src/x", "src/x/child.ts", "src/y", "src/y/inner.ts"]));
    assert_eq!(fs::read_to_string(l.dest.join("src/x/child.ts")).unwrap(), "c");
    assert_eq!(fs::read_to_string(l.dest.join("src/y")).unwrap(), "now a file");
}
