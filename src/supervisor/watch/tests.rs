use super::*;
use std::fs;

fn set(globs: &[&str]) -> PathSet {
    PathSet::new(globs).unwrap()
}

#[test]
fn globs_match_like_output() {
    let s = set(&["src/**"]);
    assert!(s.matches("src/app.ts"));
    assert!(s.matches("src/a/b/c.ts"));
    assert!(!s.matches("srcx/app.ts"));
    assert!(!s.matches("lib/src/app.ts"));

    let s = set(&["logs/*"]);
    assert!(s.matches("logs/app.log"));
    assert!(!s.matches("logs/old/app.log"), "* stops at /");

    let s = set(&["logs/"]);
    assert!(s.matches("logs/old/app.log"), "a trailing / is the whole directory");

    let s = set(&["./app.log"]);
    assert!(s.matches("app.log"));
    assert!(!s.matches("x/app.log"));

    let s = set(&["**/*.log"]);
    assert!(s.matches("a.log"));
    assert!(s.matches("deep/er/a.log"));
}

#[test]
fn bad_globs_are_errors() {
    assert!(PathSet::new(["/abs/**"]).is_err());
    assert!(PathSet::new(["../up/*"]).is_err());
    assert!(PathSet::new([""]).is_err());
    assert!(PathSet::new(["src/[a"]).is_err());
    assert!(PathSet::new(Vec::<String>::new()).unwrap().is_empty());
}

#[test]
fn descend_prunes_directories_no_match_can_lie_in() {
    let s = set(&["logs/*"]);
    assert!(s.descend(""));
    assert!(s.descend("logs"));
    assert!(!s.descend("logs/old"), "logs/* matches only direct children");
    assert!(!s.descend("src"));

    let s = set(&["src/**"]);
    assert!(s.descend("src"));
    assert!(s.descend("src/a/b"));
    assert!(!s.descend("node_modules"));
    assert!(!s.descend("src/node_modules"), "node_modules is skipped below a wildcard");

    let s = set(&["node_modules/pkg/**"]);
    assert!(s.descend("node_modules"), "unless the glob names it");
    assert!(s.descend("node_modules/pkg/lib"));

    let s = set(&["*.log"]);
    assert!(s.descend(""));
    assert!(!s.descend("a"));

    let s = set(&["**/*.log"]);
    assert!(s.descend("a/b"));
    assert!(!s.descend(".git"));
    assert!(!s.descend("a/.git"));
}

#[test]
fn debounce_waits_for_quiet() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut d = Debounce::new(ms(200), ms(2000));
    assert_eq!(d.deadline(), None);
    assert_eq!(d.take(t0), None);
    d.add("a".into(), t0);
    assert_eq!(d.deadline(), Some(t0 + ms(200)));
    d.add("b".into(), t0 + ms(150));
    d.add("a".into(), t0 + ms(160));
    assert_eq!(d.deadline(), Some(t0 + ms(360)), "each change restarts the quiet period");
    assert_eq!(d.take(t0 + ms(359)), None);
    assert_eq!(d.take(t0 + ms(360)), Some((vec!["a".to_string(), "b".to_string()], 0)));
    assert_eq!(d.deadline(), None);
    assert_eq!(d.take(t0 + ms(1000)), None, "one batch per change");
}

#[test]
fn debounce_fires_during_a_stream_of_changes() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut d = Debounce::new(ms(200), ms(2000));
    let mut fired = None;
    for i in 0..100 {
        let now = t0 + ms(i * 100);
        if let Some(batch) = d.take(now) {
            fired = Some((i, batch));
            break;
        }
        d.add("f".into(), now);
    }
    let (i, batch) = fired.expect("a file changing every 100 ms still restarts");
    assert_eq!(i, 20);
    assert_eq!(batch, (vec!["f".to_string()], 0));
}

#[test]
fn debounce_memory_is_bounded() {
    let t0 = Instant::now();
    let mut d = Debounce::new(Duration::from_millis(200), Duration::from_secs(2));
    for i in 0..10_000 {
        d.add(format!("f{i}"), t0);
    }
    let (paths, more) = d.take(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(paths.len(), DEBOUNCE_PATHS);
    assert_eq!(paths.len() + more, 10_000);
}

#[test]
fn backoff_doubles_while_runs_fail_and_resets_after_a_good_run() {
    let ms = Duration::from_millis;
    let mut b = Backoff::new(ms(200), ms(10_000));
    // A run that lasted and is alive: restart at once.
    assert_eq!(b.before_restart(true, ms(5000)), Duration::ZERO);
    // Runs that exit by themselves soon after starting.
    let waits: Vec<u128> = (0..8).map(|_| b.before_restart(false, ms(250)).as_millis()).collect();
    assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    // A run that stayed up resets it.
    assert_eq!(b.before_restart(true, ms(3000)), Duration::ZERO);
    assert_eq!(b.before_restart(false, ms(100)), ms(200));
    // Exited by itself, but long after it started: not a crash loop.
    assert_eq!(b.before_restart(false, ms(60_000)), Duration::ZERO);
    // Alive but restarted within a second of its start: normal at first
    // (an edit right after a start), backed off when it keeps happening.
    assert_eq!(b.before_restart(true, ms(300)), Duration::ZERO);
    assert_eq!(b.before_restart(true, ms(300)), Duration::ZERO);
    assert_eq!(b.before_restart(true, ms(300)), ms(200));
    assert_eq!(b.before_restart(true, ms(300)), ms(400));
    assert_eq!(b.before_restart(true, ms(5000)), Duration::ZERO);
    assert_eq!(b.before_restart(true, ms(300)), Duration::ZERO);
}

#[test]
fn restart_messages() {
    let none = Duration::ZERO;
    assert_eq!(
        restart_message("api", &["src/app.ts".into()], 0, none),
        "bun-sandbox: src/app.ts changed; restarting api\n"
    );
    assert_eq!(
        restart_message("api", &["a".into(), "b".into()], 0, none),
        "bun-sandbox: a and 1 other file changed; restarting api\n"
    );
    assert_eq!(
        restart_message("dev", &["a".into(), "b".into()], 5, none),
        "bun-sandbox: a and 6 other files changed; restarting dev\n"
    );
    let m = restart_message("dev", &["a".into()], 0, Duration::from_millis(400));
    assert!(m.starts_with("bun-sandbox: a changed; restarting dev in 400 ms"), "{m}");
}

/// Two temporary layers, as a WORKDIR and its upper.
struct Layers {
    _tmp: tempfile::TempDir,
    lower: PathBuf,
    upper: PathBuf,
}

fn layers() -> Layers {
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("lower");
    let upper = tmp.path().join("upper");
    fs::create_dir_all(lower.join("src")).unwrap();
    fs::create_dir_all(&upper).unwrap();
    fs::write(lower.join("src/app.ts"), "1").unwrap();
    fs::create_dir_all(lower.join("node_modules/x")).unwrap();
    Layers { _tmp: tmp, lower, upper }
}

/// The next batch of changes, or a failure after a few seconds.
async fn next(tw: &mut TreeWatch) -> BTreeSet<String> {
    tokio::time::timeout(Duration::from_secs(5), tw.changes()).await.expect("no change was reported")
}

async fn maps_both_layers_to_workdir_paths(mut tw: TreeWatch, l: &Layers) {
    // A change on the host.
    fs::write(l.lower.join("src/app.ts"), "2").unwrap();
    assert!(next(&mut tw).await.contains("src/app.ts"));
    // Inside the sandbox: a new directory in the upper, then a file in it;
    // both name the path relative to WORKDIR.
    fs::create_dir_all(l.upper.join("src/deep")).unwrap();
    fs::write(l.upper.join("src/deep/new.ts"), "x").unwrap();
    let mut seen = BTreeSet::new();
    while !seen.contains("src/deep/new.ts") {
        seen.extend(next(&mut tw).await);
    }
    assert!(seen.iter().all(|p| p.starts_with("src/")), "{seen:?}");
    // Files no glob matches are not reported.
    fs::write(l.lower.join("outside.txt"), "x").unwrap();
    fs::write(l.lower.join("node_modules/x/i.js"), "x").unwrap();
    fs::write(l.upper.join("src/deep/new.ts"), "y").unwrap();
    let batch = next(&mut tw).await;
    assert!(batch.iter().all(|p| p.starts_with("src/")), "{batch:?}");
    // A deletion is a change.
    fs::remove_file(l.lower.join("src/app.ts")).unwrap();
    let mut seen = BTreeSet::new();
    while !seen.contains("src/app.ts") {
        seen.extend(next(&mut tw).await);
    }
}

#[tokio::test]
async fn inotify_maps_upper_and_lower_events_to_relative_paths() {
    let l = layers();
    let tw = TreeWatch::new(
        vec![(Layer::Lower, l.lower.clone()), (Layer::Upper, l.upper.clone())],
        Arc::new(set(&["src/**"])),
    );
    assert!(tw.uses_inotify());
    maps_both_layers_to_workdir_paths(tw, &l).await;
}

#[tokio::test]
async fn polling_maps_upper_and_lower_changes_to_relative_paths() {
    let l = layers();
    let tw = TreeWatch::polling(
        vec![(Layer::Lower, l.lower.clone()), (Layer::Upper, l.upper.clone())],
        Arc::new(set(&["src/**"])),
    );
    assert!(!tw.uses_inotify());
    maps_both_layers_to_workdir_paths(tw, &l).await;
}

#[tokio::test]
async fn a_directory_that_appears_with_files_already_in_it_is_reported() {
    let l = layers();
    let mut tw = TreeWatch::new(
        vec![(Layer::Lower, l.lower.clone()), (Layer::Upper, l.upper.clone())],
        Arc::new(set(&["logs/*"])),
    );
    // Built elsewhere and moved in whole, as overlay copy-up does.
    let staged = l.upper.parent().unwrap().join("staged");
    fs::create_dir_all(&staged).unwrap();
    fs::write(staged.join("a.log"), "x\n").unwrap();
    fs::rename(&staged, l.upper.join("logs")).unwrap();
    let mut seen = BTreeSet::new();
    while !seen.contains("logs/a.log") {
        seen.extend(next(&mut tw).await);
    }
}
