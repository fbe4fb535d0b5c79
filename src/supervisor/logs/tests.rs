use super::*;
use std::fs;
use std::sync::Mutex;
use std::time::Duration;

fn split(cap: usize, chunks: &[&[u8]]) -> (Vec<String>, usize) {
    let mut s = LineSplitter::new(cap);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.push(c));
    }
    (out, s.pending())
}

#[test]
fn lines_come_out_whole_and_a_partial_last_line_waits() {
    let (lines, pending) = split(64, &[b"one\ntw", b"o\r\nthr", b"ee"]);
    assert_eq!(lines, ["one", "two"]);
    assert_eq!(pending, 5);
    let (lines, pending) = split(64, &[b"a\n\n", b"\nb\n"]);
    assert_eq!(lines, ["a", "", "", "b"]);
    assert_eq!(pending, 0);
}

#[test]
fn a_long_line_comes_in_capped_pieces() {
    let long = vec![b'x'; 25];
    let (lines, pending) = split(10, &[&long, b"\n"]);
    assert_eq!(lines, ["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
    assert_eq!(pending, 0);
    // Exactly the cap, then the newline in the next chunk: one line, no empty one.
    let (lines, _) = split(10, &[&[b'y'; 10], b"\nz\n"]);
    assert_eq!(lines, ["y".repeat(10), "z".to_string()]);
    // The cap, then more of the line in the next chunk.
    let (lines, pending) = split(10, &[&[b'y'; 10], b"yy"]);
    assert_eq!(lines, ["y".repeat(10)]);
    assert_eq!(pending, 2);
    // Memory stays at the cap for an endless line.
    let mut s = LineSplitter::new(1024);
    for _ in 0..1000 {
        s.push(&[b'q'; 4096]);
        assert!(s.pending() <= 1024);
    }
}

#[test]
fn pieces_never_split_a_character() {
    // "é" is two bytes: a cut at 5 would split the third one.
    let text = "éééé\n";
    let (lines, _) = split(5, &[text.as_bytes()]);
    assert_eq!(lines, ["éé", "éé"]);
    let (lines, _) = split(6, &["€€€€\n".as_bytes()]);
    assert_eq!(lines, ["€€", "€€"]);
    // Byte by byte, the same.
    let bytes = "a€b€c\n".as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    let (lines, _) = split(4, &chunks);
    assert_eq!(lines.concat(), "a€b€c");
    assert!(lines.iter().all(|l| !l.contains('\u{FFFD}')), "{lines:?}");
    // Invalid UTF-8 is replaced, not dropped.
    let (lines, _) = split(64, &[b"a\xffb\n"]);
    assert_eq!(lines, ["a\u{FFFD}b"]);
}

/// A WORKDIR and an upper, laid out by hand the way overlayfs does.
struct Overlay {
    _tmp: tempfile::TempDir,
    lower: PathBuf,
    upper: PathBuf,
}

fn overlay() -> Overlay {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    let upper = tmp.path().join("upper");
    fs::create_dir_all(lower.join("logs/old")).unwrap();
    fs::create_dir_all(&upper).unwrap();
    fs::write(lower.join("logs/a.log"), "host a\n").unwrap();
    fs::write(lower.join("logs/b.log"), "host b\n").unwrap();
    fs::write(lower.join("logs/old/c.log"), "host c\n").unwrap();
    fs::write(lower.join("logs/gone.log"), "host gone\n").unwrap();
    Overlay { _tmp: tmp, lower, upper }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of that size.
    unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) == 0 }
}

/// A whiteout: a character device 0/0 when allowed, else the xattr form.
fn whiteout(path: &Path) {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    if unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0 {
        return;
    }
    fs::write(path, "").unwrap();
    assert!(set_xattr(path, "user.overlay.whiteout", b""), "cannot set user xattrs here");
}

fn rels(files: Vec<(String, PathBuf)>) -> Vec<(String, String)> {
    files.into_iter().map(|(r, p)| (r, p.to_string_lossy().into_owned())).collect()
}

#[test]
fn log_files_as_the_sandbox_sees_them() {
    let o = overlay();
    let set = PathSet::new(["logs/*"]).unwrap();
    let lower = |r: &str| o.lower.join(r).to_string_lossy().into_owned();
    let upper = |r: &str| o.upper.join(r).to_string_lossy().into_owned();
    // Before the sandbox: WORKDIR's.
    assert_eq!(
        rels(log_files(&o.lower, None, &set)),
        [
            ("logs/a.log".to_string(), lower("logs/a.log")),
            ("logs/b.log".to_string(), lower("logs/b.log")),
            ("logs/gone.log".to_string(), lower("logs/gone.log")),
        ]
    );
    // The sandbox changed a.log, wrote new.log, deleted gone.log.
    fs::create_dir_all(o.upper.join("logs")).unwrap();
    fs::write(o.upper.join("logs/a.log"), "host a\nsandbox a\n").unwrap();
    fs::write(o.upper.join("logs/new.log"), "new\n").unwrap();
    whiteout(&o.upper.join("logs/gone.log"));
    assert_eq!(
        rels(log_files(&o.lower, Some(&o.upper), &set)),
        [
            ("logs/a.log".to_string(), upper("logs/a.log")),
            ("logs/b.log".to_string(), lower("logs/b.log")),
            ("logs/new.log".to_string(), upper("logs/new.log")),
        ]
    );
    let a = open_as_seen(&o.lower, Some(&o.upper), "logs/a.log").unwrap();
    assert_eq!((a.layer, a.size), (Layer::Upper, 17));
    assert!(open_as_seen(&o.lower, Some(&o.upper), "logs/gone.log").is_none());
    assert!(open_as_seen(&o.lower, Some(&o.upper), "logs/../logs/a.log").is_none());
    assert!(open_as_seen(&o.lower, Some(&o.upper), "/etc/passwd").is_none());
}

#[test]
fn an_opaque_directory_hides_workdirs_files() {
    let o = overlay();
    let set = PathSet::new(["logs/"]).unwrap();
    fs::create_dir_all(o.upper.join("logs")).unwrap();
    assert!(set_xattr(&o.upper.join("logs"), "user.overlay.opaque", b"y"));
    fs::write(o.upper.join("logs/fresh.log"), "").unwrap();
    assert_eq!(
        rels(log_files(&o.lower, Some(&o.upper), &set)),
        [("logs/fresh.log".to_string(), o.upper.join("logs/fresh.log").to_string_lossy().into_owned())]
    );
    // A whited-out directory hides everything below it.
    let o = overlay();
    whiteout(&o.upper.join("logs"));
    assert_eq!(log_files(&o.lower, Some(&o.upper), &set), []);
}

#[test]
fn links_fifos_and_directories_are_never_log_files() {
    let o = overlay();
    let set = PathSet::new(["logs/*"]).unwrap();
    let secret = o.lower.parent().unwrap().join("secret");
    fs::write(&secret, "do not read\n").unwrap();
    fs::create_dir_all(o.upper.join("logs")).unwrap();
    std::os::unix::fs::symlink(&secret, o.upper.join("logs/a.log")).unwrap();
    std::os::unix::fs::symlink(&secret, o.upper.join("logs/link.log")).unwrap();
    nix::unistd::mkfifo(&o.upper.join("logs/fifo.log"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let got: Vec<String> = log_files(&o.lower, Some(&o.upper), &set).into_iter().map(|(r, _)| r).collect();
    // a.log is a link inside the sandbox now: not readable as a log.
    assert_eq!(got, ["logs/b.log", "logs/gone.log"]);
    // A linked directory on the way is not followed either.
    let o = overlay();
    let elsewhere = o.lower.parent().unwrap().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("x.log"), "x\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, o.upper.join("logs")).unwrap();
    assert!(open_as_seen(&o.lower, Some(&o.upper), "logs/x.log").is_none());
    assert!(open_as_seen(&o.lower, Some(&o.upper), "logs/a.log").is_none(), "the upper's logs is a link: hidden");
}

/// Lines a tail delivered.
#[derive(Clone, Default)]
struct Got(Arc<Mutex<Vec<(String, String)>>>);

impl Got {
    fn sink(&self) -> LineSink {
        let got = self.0.clone();
        Arc::new(move |file, line| -> LineFuture {
            got.lock().unwrap().push((file, line));
            Box::pin(async { true })
        })
    }

    async fn until(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..500 {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.0.lock().unwrap().clone()
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    fs::OpenOptions::new().append(true).create(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn tail_follows_appends_copy_up_new_files_and_truncation() {
    let o = overlay();
    let got = Got::default();
    let handle = tail(o.lower.clone(), Some(o.upper.clone()), Arc::new(PathSet::new(["logs/*"]).unwrap()), got.sink());
    // Appended on the host: only the new line.
    append(&o.lower.join("logs/b.log"), "b1\nb2 partial");
    assert_eq!(got.until(1).await, pairs(&[("logs/b.log", "b1")]));
    append(&o.lower.join("logs/b.log"), " done\n");
    assert_eq!(got.until(2).await[1], ("logs/b.log".into(), "b2 partial done".into()));
    // Copied up and appended inside: the offset holds across layers.
    fs::create_dir_all(o.upper.join("logs")).unwrap();
    fs::copy(o.lower.join("logs/a.log"), o.upper.join("logs/.tmp")).unwrap();
    fs::rename(o.upper.join("logs/.tmp"), o.upper.join("logs/a.log")).unwrap();
    append(&o.upper.join("logs/a.log"), "sandbox a\n");
    assert_eq!(got.until(3).await[2], ("logs/a.log".into(), "sandbox a".into()));
    // A file that appears later: all of it.
    append(&o.upper.join("logs/new.log"), "n1\nn2\n");
    let all = got.until(5).await;
    assert_eq!(all[3..], pairs(&[("logs/new.log", "n1"), ("logs/new.log", "n2")]));
    // Truncated and written again: from the start.
    fs::write(o.upper.join("logs/new.log"), "t\n").unwrap();
    assert_eq!(got.until(6).await[5], ("logs/new.log".into(), "t".into()));
    // Stopped: nothing more.
    handle.stop();
    tokio::task::yield_now().await;
    append(&o.upper.join("logs/new.log"), "after\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.0.lock().unwrap().len(), 6);
}
