//! The sandbox plan: which host directories appear where, and how. Built and
//! checked here on the host; init only applies it.

use super::mount_table::{self, unescape};
use crate::protocol::{Mount, RootPlan};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Top-level host entries that never appear as they are on the host.
/// `/proc`, `/dev`, `/tmp`, `/run`, `/home`, `/root` get fresh instances and
/// `/sys` a read-only bind; `lost+found` holds only root's recovered files.
const REPLACED: &[&str] = &["proc", "dev", "sys", "tmp", "run", "home", "root", "lost+found"];

/// Host files that hold credentials: hidden behind an empty file even from a
/// host root user (who appears inside as their owner). Swap files too
/// ([`swap_files`]): they hold the memory of host processes.
const MASKED_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/shadow~",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/gshadow~",
    "/etc/sudoers",
    "/etc/security/opasswd",
    // Debian's daily copies.
    "/var/backups/shadow.bak",
    "/var/backups/gshadow.bak",
];
/// Host directories of credentials: hidden behind an empty read-only tmpfs.
const MASKED_DIRS: &[&str] = &["/etc/sudoers.d", "/etc/ssl/private"];

/// Only when a root host user's sandbox user is uid 0 outside (its WORKDIR
/// could not be idmapped, `supervisor::remap`) and so the owner of every file
/// only root may read: well-known stores of host credentials, hidden behind
/// an empty read-only tmpfs. A deny-list cannot be complete, which is why a
/// root host user's sandbox normally runs as an unprivileged host uid
/// (docs/ARCHITECTURE.md, "Root host users").
const ROOT_MASKED_DIRS: &[&str] = &[
    "/etc/kubernetes",
    "/etc/rancher",
    "/etc/wireguard",
    "/etc/NetworkManager/system-connections",
    "/etc/letsencrypt",
    "/etc/pki/tls/private",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/tailscale",
    "/var/lib/cloud",
    // The host kernel's tracing, debugging, security and firmware views,
    // root's to read.
    "/sys/kernel/tracing",
    "/sys/kernel/debug",
    "/sys/kernel/security",
    "/sys/fs/pstore",
    "/sys/fs/bpf",
    "/sys/firmware",
    "/proc/acpi",
    "/proc/scsi",
];
/// Likewise only for a sandbox user that is host uid 0: files of the host
/// kernel root may read
/// (keyrings of host root, kernel memory layout, timers), hidden behind an
/// empty file.
const ROOT_MASKED_FILES: &[&str] = &[
    "/etc/krb5.keytab",
    "/etc/ipsec.secrets",
    "/etc/mysql/debian.cnf",
    "/var/lib/systemd/credential.secret",
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/slabinfo",
    "/proc/vmallocinfo",
    "/proc/pagetypeinfo",
];

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("WORKDIR {0} does not exist")]
    WorkdirMissing(PathBuf),
    #[error("WORKDIR {0} is not a directory")]
    WorkdirNotDir(PathBuf),
    #[error(
        "WORKDIR {given} resolves to {resolved}, outside the project {base}: a symlink may not lead the sandbox out of the project"
    )]
    WorkdirEscapes { given: PathBuf, resolved: PathBuf, base: PathBuf },
    #[error("WORKDIR {0} may not be /, or under /proc, /sys or /dev")]
    WorkdirForbidden(PathBuf),
    #[error("WORKDIR {workdir} contains the sandbox state directory {state}; set BUN_SANDBOX_STATE_DIR elsewhere")]
    WorkdirHoldsState { workdir: PathBuf, state: PathBuf },
    #[error(
        "WORKDIR {workdir} has another filesystem mounted inside it, at {mount}: the kernel refuses a copy-on-write layer over it in a user namespace"
    )]
    WorkdirHasMounts { workdir: PathBuf, mount: PathBuf },
    #[error("FROM {0}: not a root filesystem (it has no bin/sh)")]
    NotRootfs(PathBuf),
    #[error("FROM {0}: only `host` or a path to a directory holding a root filesystem are supported (images are not)")]
    UnsupportedFrom(String),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What the root filesystem is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Host,
    Rootfs(PathBuf),
}

impl Base {
    /// FROM's value: `host`, or a path (resolved against `base_dir`).
    pub fn from_directive(from: Option<&str>, base_dir: &Path) -> Result<Base, PlanError> {
        match from {
            None | Some("host") => Ok(Base::Host),
            Some(p) if p == "." || p.starts_with('/') || p.starts_with("./") || p.starts_with("../") => {
                let dir = base_dir.join(p);
                let dir = fs::canonicalize(&dir).map_err(|source| PlanError::Io { path: dir.clone(), source })?;
                if !dir.join("bin/sh").exists() {
                    return Err(PlanError::NotRootfs(dir));
                }
                Ok(Base::Rootfs(dir))
            }
            Some(other) => Err(PlanError::UnsupportedFrom(other.to_string())),
        }
    }

    /// The tree as the host sees it.
    pub fn dir(&self) -> &Path {
        match self {
            Base::Host => Path::new("/"),
            Base::Rootfs(p) => p,
        }
    }
}

/// Resolves and checks WORKDIR (relative to `base_dir`).
pub fn resolve_workdir(workdir: Option<&str>, base_dir: &Path, state_root: &Path) -> Result<PathBuf, PlanError> {
    let given = base_dir.join(workdir.unwrap_or("."));
    let meta = fs::metadata(&given).map_err(|_| PlanError::WorkdirMissing(given.clone()))?;
    if !meta.is_dir() {
        return Err(PlanError::WorkdirNotDir(given));
    }
    let resolved = fs::canonicalize(&given).map_err(|source| PlanError::Io { path: given.clone(), source })?;
    let forbidden = ["/proc", "/sys", "/dev"].iter().any(|p| resolved.starts_with(p));
    if resolved == Path::new("/") || forbidden {
        return Err(PlanError::WorkdirForbidden(resolved));
    }
    // A relative WORKDIR must stay inside the project once symlinks resolve.
    if !Path::new(workdir.unwrap_or(".")).is_absolute() {
        let base = fs::canonicalize(base_dir).map_err(|source| PlanError::Io { path: base_dir.into(), source })?;
        if !resolved.starts_with(&base) {
            return Err(PlanError::WorkdirEscapes { given, resolved, base });
        }
    }
    if state_root.starts_with(&resolved) {
        return Err(PlanError::WorkdirHoldsState { workdir: resolved, state: state_root.into() });
    }
    Ok(resolved)
}

/// The size of the root tmpfs (mount points, links and masks only; the user
/// may write there too).
pub const ROOT_SIZE: u64 = 64 << 20;

/// The mounts of a sandbox whose state lives in `state_dir`, with its
/// scratch tmpfs mounted on `scratch`. With `disk_bytes`, every writable
/// layer (the WORKDIR's too) is on the scratch tmpfs of that size, and each
/// private tmpfs (`/tmp`, `/run`, `/home`, `/root`, the home, `/dev/shm`,
/// a tmpfs `/`) is capped at it as well, separately. `remapped`: a root host
/// user's sandbox (`supervisor::remap`), whose `/` may be the host's root
/// filesystem as one overlay (its upper on the scratch).
#[allow(clippy::too_many_arguments)]
pub fn root_plan(
    base: &Base,
    workdir: &Path,
    home: &Path,
    state_dir: &Path,
    scratch: &Path,
    path_env: &str,
    disk_bytes: Option<u64>,
    remapped: Option<Remapped>,
) -> Result<RootPlan, PlanError> {
    let mut mounts = Vec::new();
    let mount_points = mount_table::current();
    if let Some(mount) = mounted_below(workdir, &mount_points) {
        return Err(PlanError::WorkdirHasMounts { workdir: workdir.into(), mount: mount.clone() });
    }
    let dir = base.dir();
    let whole_root = *base == Base::Host && remapped.is_some_and(|r| r.whole_root) && replaced_are_dirs(dir);
    if whole_root {
        mounts.push(Mount::HostRoot { upper: scratch.join("root-upper"), work: scratch.join("root-work") });
    }
    let remapped = remapped.map(|r| r.uid);
    // Whole, the root's overlay shows what is on its filesystem: only the
    // top-level entries the mount table names need a mount of their own.
    let names = match whole_root {
        true => mounted_top_level(&mount_points),
        false => {
            let mut names: Vec<_> = fs::read_dir(dir)
                .map_err(|source| PlanError::Io { path: dir.into(), source })?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            names
        }
    };
    for name in names {
        let Some(name_str) = name.to_str() else { continue };
        if REPLACED.contains(&name_str) {
            continue;
        }
        let source = dir.join(&name);
        let target = Path::new("/").join(&name);
        if whole_root && !mount_points.contains(&source) {
            // On the root filesystem, with mounts below it.
            mounts.push(Mount::RoBind { source, target });
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&source) else { continue };
        if meta.file_type().is_symlink() {
            if let Ok(to) = fs::read_link(&source) {
                mounts.push(Mount::Symlink { link: target, target: to });
            }
        } else if meta.is_dir() && mounted_below(&source, &mount_points).is_some() {
            // The kernel refuses an overlay whose lower has mounts below it
            // (they are locked in a user namespace): a read-only bind shows
            // the directory with what is mounted in it.
            mounts.push(Mount::RoBind { source, target });
        } else if meta.is_dir() && nothing_to_write(&source, &meta, remapped) {
            // Nothing the user could write there: a bind shows the same for
            // a fraction of an overlay's cost.
            mounts.push(Mount::RoBind { source, target });
        } else if meta.is_dir() {
            mounts.push(Mount::Overlay {
                lower: source,
                upper: scratch.join("upper").join(&name),
                work: scratch.join("work").join(&name),
                target,
                fallback_ro_bind: true,
                pass_upper: false,
                // On the scratch tmpfs, where syncing costs nothing.
                volatile: false,
                project: false,
            });
        } else if meta.is_file() {
            mounts.push(Mount::RoBind { source, target });
        }
    }
    // Only root may read it; a sandbox user that is host root too.
    if whole_root && dir.join("lost+found").is_dir() {
        mounts.push(Mount::MaskDir { target: "/lost+found".into() });
    }
    if dir.join("sys").is_dir() || *base == Base::Host {
        mounts.push(Mount::Sysfs { target: "/sys".into() });
    }
    mounts.push(Mount::Proc { target: "/proc".into() });
    mounts.push(Mount::Dev { target: "/dev".into(), shm_size: disk_bytes });
    for (target, mode) in [("/tmp", 0o1777), ("/run", 0o755), ("/home", 0o755), ("/root", 0o700)] {
        mounts.push(Mount::Tmpfs { target: target.into(), mode, size: disk_bytes });
    }
    if *base == Base::Host {
        mounts.extend(masks(
            MASKED_FILES.iter().map(PathBuf::from).chain(ssh_host_keys()).chain(swap_files()),
            MASKED_DIRS,
        ));
    }
    // An empty home at the same path, wherever the host keeps it.
    if home.is_absolute() && !["/home", "/root", "/tmp"].iter().any(|p| home.starts_with(p)) && home != Path::new("/") {
        mounts.push(Mount::Tmpfs { target: home.into(), mode: 0o755, size: disk_bytes });
    } else if home.is_absolute() && home != Path::new("/root") {
        mounts.push(Mount::Dir { target: home.into(), mode: 0o755 });
    }
    if *base == Base::Host {
        mounts.extend(tool_binds(path_env, home, workdir));
    }
    // The WORKDIR's layer: on the host disk, where diff and extract read it;
    // on the scratch, read through the fd init passes out, with a disk limit
    // or where the state dir's filesystem cannot hold an overlay's upper
    // layer (an overlayfs: a container's `/tmp`).
    let shared = mounts.len();
    let on_scratch = disk_bytes.is_some() || !holds_upper_layers(state_dir);
    let (upper, work) = match on_scratch {
        false => (workdir_upper(state_dir), workdir_work(state_dir)),
        true => (scratch.join("workdir-upper"), scratch.join("workdir-work")),
    };
    mounts.push(Mount::Overlay {
        lower: workdir.into(),
        upper,
        work,
        target: workdir.into(),
        fallback_ro_bind: false,
        pass_upper: on_scratch,
        volatile: !on_scratch,
        project: true,
    });
    let root_size = disk_bytes.map(|d| d.min(ROOT_SIZE));
    Ok(RootPlan { scratch: scratch.into(), scratch_size: disk_bytes, mounts, root_size, shared, detached: Vec::new() })
}

/// A root host user's sandbox: its user is the unprivileged `uid` outside;
/// with `whole_root`, the supervisor can take the mount of the host's root
/// filesystem alone (`supervisor::remap::whole_root`), and that one overlay
/// stands for every top-level directory on it.
#[derive(Debug, Clone, Copy)]
pub struct Remapped {
    pub uid: u32,
    pub whole_root: bool,
}

/// The top-level entries that are mount points or have mounts below them,
/// sorted, from the mount table (`/` itself not among them).
fn mounted_top_level(mount_points: &[PathBuf]) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = mount_points
        .iter()
        .filter_map(|p| match p.components().nth(1) {
            Some(Component::Normal(name)) if p.is_absolute() => Some(name.to_os_string()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether each top-level entry the sandbox replaces (`/tmp`, `/home`, ...)
/// is a directory on the host, or absent: a mount on a symlink would land
/// where it leads (`/home -> var/home`), and the host's directory would
/// show through the link. Otherwise the host's root is not taken whole.
fn replaced_are_dirs(root: &Path) -> bool {
    REPLACED.iter().all(|name| fs::symlink_metadata(root.join(name)).map_or(true, |m| m.is_dir()))
}

/// What a sandbox whose user is host uid 0 must not see besides (its
/// WORKDIR could not be idmapped, `supervisor::remap`): the masks of
/// [`ROOT_MASKED_FILES`] and [`ROOT_MASKED_DIRS`] the host has.
pub fn host_root_masks() -> Vec<Mount> {
    masks(ROOT_MASKED_FILES.iter().map(PathBuf::from), ROOT_MASKED_DIRS)
}

/// Masks for those of `files` and `dirs` the host has.
fn masks(files: impl Iterator<Item = PathBuf>, dirs: &[&str]) -> Vec<Mount> {
    let files = files.filter(|f| f.exists()).map(|target| Mount::Mask { target });
    let dirs = dirs.iter().filter(|d| Path::new(d).is_dir()).map(|d| Mount::MaskDir { target: d.into() });
    files.chain(dirs).collect()
}

/// A mount point strictly below `dir`, if there is one. Compared as bytes:
/// both are absolute and normal (the mount table's paths, and a joined or
/// canonical one), and `Path::starts_with`, component by component, for
/// each of some fifty mount points and thirty top-level entries took 30 µs
/// of every start here.
fn mounted_below<'a>(dir: &Path, mount_points: &'a [PathBuf]) -> Option<&'a PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let dir = dir.as_os_str().as_bytes();
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    mount_points.iter().find(|p| {
        let p = p.as_os_str().as_bytes();
        p.len() > dir.len() + 1 && p.starts_with(dir) && p[dir.len()] == b'/'
    })
}

/// Where the sandbox shows nothing of the host: the fresh tmpfs directories
/// and the user's home.
fn is_hidden(p: &Path, home: &Path) -> bool {
    ["/tmp", "/run", "/home", "/root"].iter().any(|h| p.starts_with(h))
        || (home != Path::new("/") && p.starts_with(home))
}

/// At most this many tool directories are bound in.
const MAX_TOOL_BINDS: usize = 64;

/// Toolchain managers whose commands on PATH need more of the home than
/// their bin directory: a PATH directory (relative to the home; `*` stands
/// for one component) and the directory its commands read (`*` the same
/// component), bound read-only too. These hold toolchains, not credentials;
/// what could (`etc/npmrc`, npm's global configuration, in a Node version
/// of nvm's) is masked.
const TOOLCHAIN_ROOTS: &[(&str, &str)] = &[
    // rustup's proxies (cargo, rustc, ...) read its toolchains and settings.
    (".cargo/bin", ".rustup"),
    // pyenv's shims run `pyenv exec` from its libexec, with its versions.
    (".pyenv/shims", ".pyenv"),
    (".pyenv/bin", ".pyenv"),
    (".pyenv/plugins/*/shims", ".pyenv"),
    // npm and npx link into the version's lib/node_modules.
    (".nvm/versions/node/*/bin", ".nvm/versions/node/*"),
];

/// Files of a toolchain root that may hold credentials, masked.
const TOOLCHAIN_MASKED: &[&str] = &["etc/npmrc"];

/// The toolchain root (`TOOLCHAIN_ROOTS`) whose commands the real
/// directory `dir` holds, when it is one of the home's.
fn toolchain_root(dir: &Path, home: &Path) -> Option<PathBuf> {
    let rel: Vec<_> = dir.strip_prefix(home).ok()?.iter().collect();
    TOOLCHAIN_ROOTS.iter().find_map(|(on_path, root)| {
        let pattern: Vec<_> = on_path.split('/').collect();
        if pattern.len() != rel.len() {
            return None;
        }
        let mut star = None;
        for (p, c) in pattern.iter().zip(&rel) {
            match *p {
                "*" => star = Some(*c),
                p if std::ffi::OsStr::new(p) == *c => {}
                _ => return None,
            }
        }
        let mut out = home.to_path_buf();
        for part in root.split('/') {
            out.push(if part == "*" { star? } else { std::ffi::OsStr::new(part) });
        }
        Some(out)
    })
}

/// The programs on PATH keep working inside: a PATH directory that lies where
/// the sandbox hides the host (a project's `node_modules/.bin` under /tmp, a
/// tool in `~/.bun/bin`) is bound in read-only at the same path, with the
/// files its symlinks point to, and for a toolchain manager's directory
/// (`~/.cargo/bin`, `~/.pyenv/shims`) the manager's store too
/// ([`TOOLCHAIN_ROOTS`]). Only those: never a home itself or one of its
/// ancestors, never one that holds the WORKDIR, and of a symlink's target
/// only the file, not the directory it is in (`~/.local/bin/x ->
/// ~/.config/git/x` would show git's credential store beside it).
pub fn tool_binds(path_env: &str, home: &Path, workdir: &Path) -> Vec<Mount> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let add = |dir: PathBuf, dirs: &mut Vec<PathBuf>| {
        let roots = [Path::new("/tmp"), Path::new("/run"), Path::new("/home"), Path::new("/root"), home];
        let too_wide = roots.iter().any(|r| r.starts_with(&dir)) || workdir.starts_with(&dir);
        if is_hidden(&dir, home) && !too_wide && !dirs.contains(&dir) && dirs.len() < MAX_TOOL_BINDS {
            dirs.push(dir);
        }
    };
    let mut seen: Vec<PathBuf> = Vec::new();
    // The home's real path, once a PATH directory needs it.
    let mut real_home: Option<PathBuf> = None;
    let mut roots: Vec<PathBuf> = Vec::new();
    for entry in path_env.split(':').filter(|e| e.starts_with('/')) {
        let Ok(dir) = fs::canonicalize(entry) else { continue };
        // A directory twice on PATH is looked at once.
        if seen.contains(&dir) || !is_hidden(&dir, home) {
            continue;
        }
        let Some(stamp) = fs::metadata(&dir).ok().filter(fs::Metadata::is_dir).map(|m| DirStamp::of(&m)) else {
            continue;
        };
        seen.push(dir.clone());
        for target in link_targets(&dir, stamp) {
            add(target, &mut dirs);
        }
        if let Some(root) = toolchain_root(
            &dir,
            real_home.get_or_insert_with(|| fs::canonicalize(home).unwrap_or_else(|_| home.into())),
        ) && root.is_dir()
        {
            roots.push(root.clone());
            add(root, &mut dirs);
        }
        add(dir, &mut dirs);
    }
    // What a toolchain root's bind shows already needs none of its own.
    let covered = |d: &PathBuf| dirs.iter().any(|other| other != d && d.starts_with(other));
    let dirs: Vec<PathBuf> = dirs.iter().filter(|d| !covered(d)).cloned().collect();
    let masks: Vec<Mount> = roots
        .iter()
        .filter(|r| dirs.contains(r))
        .flat_map(|r| TOOLCHAIN_MASKED.iter().map(move |f| r.join(f)))
        .filter(|f| f.is_file())
        .map(|target| Mount::Mask { target })
        .collect();
    dirs.into_iter().map(|d| Mount::RoBind { source: d.clone(), target: d }).chain(masks).collect()
}

/// What tells a directory's entries changed: its device and inode, and its
/// modification and change times (an entry added, removed or replaced, as
/// retargeting a link does, sets both).
#[derive(Clone, Copy, PartialEq, Eq)]
struct DirStamp([i64; 6]);

impl DirStamp {
    fn of(meta: &fs::Metadata) -> DirStamp {
        use std::os::unix::fs::MetadataExt;
        DirStamp([
            meta.dev() as i64,
            meta.ino() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ])
    }

    /// The last change of its entries is more than a second ago: any later
    /// one sets another modification time.
    fn settled(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.0[2] < now - 1
    }
}

/// The files that the symlinks in the real directory `dir` lead to, where
/// the directory's own bind does not show them (`node_modules/.bin/x ->
/// ../x/bin/x.js` needs its target; `cargo -> rustup` does not). Resolving
/// every link costs a lookup per component of its path, at every start: the
/// answer is kept per directory while its [`DirStamp`] is the same and each
/// target is still a file. Not for a directory whose entries changed in the
/// last second: timestamps may be as coarse as the kernel's tick, so a
/// change made within the tick of the one that set them would leave them as
/// they are.
fn link_targets(dir: &Path, stamp: DirStamp) -> Vec<PathBuf> {
    static KEPT: Kept<PathBuf, Vec<PathBuf>> = Kept::new();
    let still_files = |targets: &Vec<PathBuf>| targets.iter().all(|t| t.is_file());
    KEPT.get(dir.to_path_buf(), stamp, MAX_TOOL_BINDS, still_files, || {
        let mut targets = Vec::new();
        if let Ok(list) = fs::read_dir(dir) {
            for e in list.filter_map(Result::ok).take(1024) {
                if e.file_type().is_ok_and(|t| t.is_symlink())
                    && !links_beside(dir, &e.path())
                    && let Some(target) =
                        fs::canonicalize(e.path()).ok().filter(|t| t.is_file() && t.parent() != Some(dir))
                {
                    targets.push(target);
                }
            }
        }
        targets
    })
}

/// Answers about directories, each kept while the directory's [`DirStamp`]
/// is the same, and only for a settled one: what reading the directory at
/// every start would otherwise cost ([`link_targets`], [`holds_owned_by`]).
struct Kept<K, T>(std::sync::Mutex<Vec<(K, DirStamp, T)>>);

impl<K: PartialEq, T: Clone> Kept<K, T> {
    const fn new() -> Self {
        Kept(std::sync::Mutex::new(Vec::new()))
    }

    /// The answer kept for `key` at `stamp` if `still` holds for it, else
    /// `read()`'s, kept (at most `cap` answers) when the stamp is settled.
    fn get(&self, key: K, stamp: DirStamp, cap: usize, still: impl Fn(&T) -> bool, read: impl FnOnce() -> T) -> T {
        let mut kept = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((.., answer)) = kept.iter().find(|(k, s, _)| *k == key && *s == stamp)
            && still(answer)
        {
            return answer.clone();
        }
        let answer = read();
        kept.retain(|(k, ..)| *k != key);
        if stamp.settled() {
            if kept.len() >= cap {
                kept.remove(0);
            }
            kept.push((key, stamp, answer.clone()));
        }
        answer
    }
}

/// Whether `link`, in the real directory `dir`, names a regular file beside
/// it (`cargo -> rustup`): the directory's bind shows that one, found with
/// two lookups instead of resolving every component of the path.
fn links_beside(dir: &Path, link: &Path) -> bool {
    let Ok(to) = fs::read_link(link) else { return false };
    let mut parts = to.components();
    matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None))
        && dir.join(&to).symlink_metadata().is_ok_and(|m| m.is_file())
}

/// Whether an overlay may have its upper layer in `dir`: not on an overlayfs,
/// which the kernel refuses as an upper layer.
fn holds_upper_layers(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).map_or(true, |fs| fs.filesystem_type() != nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

/// Where the WORKDIR's changes collect on the host (read by diff and extract)
/// when they are not on the scratch tmpfs (no disk limit, and a state dir
/// that can hold an upper layer).
pub fn workdir_upper(state_dir: &Path) -> PathBuf {
    state_dir.join("workdir-upper")
}

/// The work directory of the WORKDIR's overlay beside [`workdir_upper`].
pub fn workdir_work(state_dir: &Path) -> PathBuf {
    state_dir.join("workdir-work")
}

/// Whether a copy-on-write layer over the top-level host directory `dir`
/// would let the sandbox's user write nothing: then a read-only bind shows
/// the same for a fraction of the cost (an overlay mount, about 0.1 ms per
/// start, and its teardown, each waiting out an RCU grace period). In a
/// layer the user writes only where the host would let it, and a write
/// below a directory copies that directory up first, with its owner, which
/// the kernel refuses (EOVERFLOW) for an owner the sandbox's user namespace
/// does not map: all but the user. So only `dir` itself (the layer's top,
/// when the user may write to it) and its entries that the user owns can
/// be written to (and what lies below those); a layer over a directory of
/// someone else holding nothing of the user's (`/usr`, `/etc`, an empty
/// `/srv`) refuses every write as a bind does (EACCES, EOVERFLOW; EROFS
/// from the bind). The sandbox's user is the invoking user, or for a root
/// host user the unprivileged uid `remapped` (in no group of the host: the
/// modes decide for it); a root host user whose sandbox user stays host
/// uid 0 may write anywhere, so for them every directory keeps its overlay.
fn nothing_to_write(dir: &Path, meta: &fs::Metadata, remapped: Option<u32>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (uid, may_write) = match remapped {
        Some(uid) => {
            (uid, meta.uid() == uid || (meta.gid() == uid && meta.mode() & 0o020 != 0) || meta.mode() & 0o002 != 0)
        }
        // Cheapest first: most top-level directories are root's, so a root
        // host user reads none of them.
        None => {
            let uid = nix::unistd::geteuid().as_raw();
            (uid, meta.uid() == uid || nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok())
        }
    };
    !may_write && !holds_owned_by(dir, DirStamp::of(meta), uid)
}

/// Whether an entry of `dir` is `uid`'s (or cannot be looked at). Reading
/// a directory of a hundred entries and each one's owner at every start
/// would cost more than the overlay: the answer is kept per directory while
/// its stamp is the same (an entry added, removed or renamed changes it;
/// an existing entry given to the user does not, and until the directory
/// changes otherwise it stays read-only inside), and not for a directory
/// changed in the last second ([`link_targets`] says why).
fn holds_owned_by(dir: &Path, stamp: DirStamp, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    static KEPT: Kept<(PathBuf, u32), bool> = Kept::new();
    KEPT.get(
        (dir.to_path_buf(), uid),
        stamp,
        256,
        |_| true,
        || match fs::read_dir(dir) {
            Ok(mut entries) => entries.any(|e| e.and_then(|e| e.metadata()).map_or(true, |m| m.uid() == uid)),
            Err(_) => true,
        },
    )
}

/// Swap files in use (`/proc/swaps`; partitions are not files).
fn swap_files() -> Vec<PathBuf> {
    let Ok(swaps) = fs::read_to_string("/proc/swaps") else { return Vec::new() };
    swaps
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let path = fields.next()?;
            (fields.next()? == "file").then(|| unescape(path))
        })
        .collect()
}

fn ssh_host_keys() -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir("/etc/ssh") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key"))
        })
        .collect()
}

/// True when `p` has no `..` and is relative (a path that stays inside).
pub fn is_contained(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_plan_replaces_sensitive_dirs_and_overlays_the_rest() {
        let plan = root_plan(
            &Base::Host,
            Path::new("/srv/project"),
            Path::new("/home/u"),
            Path::new("/tmp/s"),
            Path::new("/tmp/scratch"),
            "/usr/bin",
            None,
            None,
        )
        .unwrap();
        let targets: Vec<_> = plan
            .mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Overlay { target, .. } => Some(target.clone()),
                _ => None,
            })
            .collect();
        assert!(targets.contains(&PathBuf::from("/usr")));
        for hidden in ["/tmp", "/home", "/root", "/proc", "/dev", "/run"] {
            assert!(!targets.contains(&PathBuf::from(hidden)), "{hidden} must not be overlaid from the host");
        }
        assert_eq!(targets.last(), Some(&PathBuf::from("/srv/project")));
        assert!(plan.mounts.iter().any(|m| matches!(m, Mount::Tmpfs { target, .. } if target == Path::new("/tmp"))));
    }

    /// A root host user's plan with the host's root taken whole: one
    /// overlay of it first, then mounts only where the root filesystem is
    /// not what shows (other filesystems, directories with mounts below, the
    /// replaced ones), with no link or file of it made again.
    #[test]
    fn a_whole_root_plan_overlays_the_root_filesystem_once() {
        let mount_points = mount_table::current();
        let scratch = Path::new("/tmp/scratch");
        let plan_of = |whole_root| {
            let remapped = Some(Remapped { uid: 2_147_483_645, whole_root });
            root_plan(
                &Base::Host,
                Path::new("/srv/project"),
                Path::new("/root"),
                Path::new("/tmp/s"),
                scratch,
                "/usr/bin",
                None,
                remapped,
            )
            .unwrap()
        };
        let plan = plan_of(true);
        if !replaced_are_dirs(Path::new("/")) {
            eprintln!("skipped: this host's root has a replaced entry that is not a directory");
            return;
        }
        assert_eq!(
            plan.mounts[0],
            Mount::HostRoot { upper: scratch.join("root-upper"), work: scratch.join("root-work") }
        );
        assert!(
            !plan
                .mounts
                .iter()
                .any(|m| matches!(m, Mount::Symlink { .. } | Mount::HostRoot { .. } if m != &plan.mounts[0]))
        );
        for m in &plan.mounts[1..] {
            let target = m.target();
            let top = target.components().nth(1).map(|c| Path::new("/").join(c));
            let top = top.as_deref().unwrap_or(target);
            match m {
                // Only a top-level mount point, or the WORKDIR's layer.
                Mount::Overlay { project, .. } => {
                    assert!(*project || mount_points.contains(&target.to_path_buf()), "{m:?}")
                }
                Mount::RoBind { source, .. } if source == target && top == target => assert!(
                    mount_points.contains(&target.to_path_buf()) || mounted_below(target, &mount_points).is_some(),
                    "{m:?}: on the root filesystem, with nothing mounted below"
                ),
                _ => {}
            }
        }
        let lost = plan.mounts.iter().any(|m| *m == Mount::MaskDir { target: "/lost+found".into() });
        assert_eq!(lost, Path::new("/lost+found").is_dir());
        for replaced in ["/tmp", "/run", "/home", "/root", "/proc", "/dev", "/sys"] {
            assert!(plan.mounts.iter().any(|m| m.target() == Path::new(replaced)), "{replaced}");
        }
        // Without it, a tmpfs root with a mount per top-level directory.
        let mounts = plan_of(false).mounts;
        assert!(!mounts.iter().any(|m| matches!(m, Mount::HostRoot { .. })));
        // Nothing in /usr is that uid's: bound, not layered.
        assert!(mounts.iter().any(|m| matches!(m, Mount::RoBind { target, .. } if target == Path::new("/usr"))));
    }

    #[test]
    fn a_replaced_entry_that_is_a_link_keeps_the_root_from_being_taken_whole() {
        let root = tempfile::tempdir().unwrap();
        for d in ["usr", "var/home", "tmp"] {
            fs::create_dir_all(root.path().join(d)).unwrap();
        }
        assert!(replaced_are_dirs(root.path()));
        std::os::unix::fs::symlink("var/home", root.path().join("home")).unwrap();
        assert!(!replaced_are_dirs(root.path()));
    }

    #[test]
    fn without_disk_bytes_the_workdir_layer_is_on_disk_and_tmpfs_are_unsized() {
        let state = Path::new("/tmp/s");
        let scratch = Path::new("/tmp/scratch");
        let plan = root_plan(
            &Base::Host,
            Path::new("/srv/project"),
            Path::new("/home/u"),
            state,
            scratch,
            "/usr/bin",
            None,
            None,
        )
        .unwrap();
        assert_eq!(plan.root_size, None);
        assert_eq!((plan.scratch.as_path(), plan.scratch_size), (scratch, None));
        let last = plan.mounts.iter().rev().find(|m| matches!(m, Mount::Overlay { .. })).unwrap();
        assert_eq!(
            *last,
            Mount::Overlay {
                lower: "/srv/project".into(),
                upper: workdir_upper(state),
                work: state.join("workdir-work"),
                target: "/srv/project".into(),
                fallback_ro_bind: false,
                pass_upper: false,
                volatile: true,
                project: true,
            }
        );
        for m in &plan.mounts {
            match m {
                Mount::Tmpfs { target, size, .. }
                    if ["/tmp", "/run", "/home", "/root"].iter().any(|t| target == Path::new(t)) =>
                {
                    assert_eq!(*size, None, "{target:?}")
                }
                Mount::Dev { shm_size, .. } => assert_eq!(*shm_size, None),
                Mount::Overlay { pass_upper, volatile, upper, .. } => {
                    assert!(!pass_upper);
                    // Only the layer on the host disk skips syncing.
                    assert_eq!(*volatile, !upper.starts_with(scratch), "{upper:?}");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn with_disk_bytes_every_writable_layer_is_on_the_sized_scratch() {
        let state = Path::new("/tmp/s");
        let scratch = Path::new("/tmp/scratch").to_path_buf();
        let disk = 8 << 20;
        let home = Path::new("/opt/userhome");
        let plan =
            root_plan(&Base::Host, Path::new("/srv/project"), home, state, &scratch, "/usr/bin", Some(disk), None)
                .unwrap();
        assert_eq!((&plan.scratch, plan.scratch_size), (&scratch, Some(disk)));
        assert_eq!(plan.root_size, Some(disk));
        let overlays: Vec<_> = plan.mounts.iter().filter(|m| matches!(m, Mount::Overlay { .. })).collect();
        assert!(overlays.len() > 1);
        for m in &overlays {
            let Mount::Overlay { upper, work, target, pass_upper, volatile, .. } = m else { unreachable!() };
            assert!(!volatile, "{target:?}");
            assert!(upper.starts_with(&scratch), "{upper:?}");
            assert!(work.starts_with(&scratch), "{work:?}");
            // Only the WORKDIR's upper goes out to the supervisor.
            assert_eq!(*pass_upper, target == Path::new("/srv/project"), "{target:?}");
        }
        let Mount::Overlay { upper, work, target, pass_upper, .. } = overlays.last().unwrap() else { unreachable!() };
        assert_eq!(
            (upper, work, target, *pass_upper),
            (&scratch.join("workdir-upper"), &scratch.join("workdir-work"), &PathBuf::from("/srv/project"), true)
        );
        let mut sized: Vec<PathBuf> = Vec::new();
        for m in &plan.mounts {
            match m {
                Mount::Tmpfs { target, size, .. } if target.starts_with("/etc") => assert_eq!(*size, Some(4096)),
                Mount::Tmpfs { target, size, .. } => {
                    assert_eq!(*size, Some(disk), "{target:?}");
                    sized.push(target.clone());
                }
                Mount::Dev { shm_size, .. } => assert_eq!(*shm_size, Some(disk)),
                _ => {}
            }
        }
        for t in ["/tmp", "/run", "/home", "/root", "/opt/userhome"] {
            assert!(sized.contains(&PathBuf::from(t)), "{t} in {sized:?}");
        }
        // A large limit never grows the root tmpfs past its usual size.
        let big =
            root_plan(&Base::Host, Path::new("/srv/project"), home, state, &scratch, "/usr/bin", Some(1 << 40), None)
                .unwrap();
        assert_eq!(big.root_size, Some(ROOT_SIZE));
    }

    /// A toolchain manager's directory on PATH brings its store along
    /// (read-only, what it holds bound once), and nothing else of the home;
    /// npm's global configuration in it is masked.
    #[test]
    fn toolchain_managers_on_path_bring_their_stores_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let home = fs::canonicalize(tmp.path()).unwrap().join("home/u");
        for d in [".cargo/bin", ".rustup/toolchains", ".pyenv/shims", ".pyenv/versions", ".nvm/versions/node/v1/bin"] {
            fs::create_dir_all(home.join(d)).unwrap();
        }
        for d in [".nvm/versions/node/v1/etc", ".ssh", ".local/bin"] {
            fs::create_dir_all(home.join(d)).unwrap();
        }
        fs::write(home.join(".nvm/versions/node/v1/etc/npmrc"), "//registry.test/:_authToken=x\n").unwrap();
        fs::write(home.join(".ssh/id_ed25519"), "key").unwrap();
        let path: Vec<String> = [".cargo/bin", ".pyenv/shims", ".nvm/versions/node/v1/bin", ".local/bin"]
            .iter()
            .map(|d| home.join(d).display().to_string())
            .collect();
        let mounts = tool_binds(&path.join(":"), &home, Path::new("/srv/project"));
        let mut binds = Vec::new();
        let mut masked = Vec::new();
        for m in mounts {
            match m {
                Mount::RoBind { source, target } if source == target => binds.push(source),
                Mount::Mask { target } => masked.push(target),
                other => panic!("unexpected {other:?}"),
            }
        }
        binds.sort();
        let want: Vec<PathBuf> = [".cargo/bin", ".local/bin", ".nvm/versions/node/v1", ".pyenv", ".rustup"]
            .iter()
            .map(|d| home.join(d))
            .collect();
        assert_eq!(binds, want);
        assert_eq!(masked, [home.join(".nvm/versions/node/v1/etc/npmrc")]);
        // No manager's: its bin directory alone.
        let alone = tool_binds(&home.join(".local/bin").display().to_string(), &home, Path::new("/srv/project"));
        assert_eq!(alone, [Mount::RoBind { source: home.join(".local/bin"), target: home.join(".local/bin") }]);
    }

    #[test]
    fn tools_on_path_under_hidden_dirs_are_bound_but_never_a_home() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let bin = root.join("proj/node_modules/.bin");
        let pkg = root.join("proj/node_modules/tool/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&pkg).unwrap();
        fs::write(pkg.join("tool.js"), "").unwrap();
        fs::write(pkg.join("other.js"), "").unwrap();
        std::os::unix::fs::symlink("../tool/bin/tool.js", bin.join("tool")).unwrap();
        // A link to a file beside it (cargo -> rustup): the directory's bind shows both.
        fs::write(bin.join("multi"), "").unwrap();
        std::os::unix::fs::symlink("multi", bin.join("alias")).unwrap();
        let home = root.join("home/u");
        fs::create_dir_all(home.join(".bun/bin")).unwrap();
        // `bin` twice: bound once.
        let path = format!(
            "{}:{}:{}:{}:/usr/bin:relative:{}",
            bin.display(),
            home.display(),
            home.join(".bun/bin").display(),
            root.display(),
            bin.display()
        );
        let binds: Vec<PathBuf> = tool_binds(&path, &home, Path::new("/srv/project"))
            .into_iter()
            .map(|m| match m {
                Mount::RoBind { source, target } => {
                    assert_eq!(source, target);
                    source
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        if root.starts_with("/tmp") {
            assert!(binds.contains(&bin), "{binds:?}");
            // The target file, not the directory it is in.
            assert!(binds.contains(&pkg.join("tool.js")), "{binds:?}");
            assert!(!binds.contains(&pkg), "{binds:?}");
            assert!(!binds.contains(&bin.join("multi")), "{binds:?}");
            assert_eq!(binds.iter().filter(|b| **b == bin).count(), 1, "{binds:?}");
        }
        assert!(binds.contains(&home.join(".bun/bin")), "{binds:?}");
        // The home itself and its ancestors never are.
        assert!(!binds.iter().any(|b| home.starts_with(b)), "{binds:?}");
        assert!(!binds.contains(&PathBuf::from("/usr/bin")));
        if root.starts_with("/tmp") {
            // Kept while the directory is as it was (dated back, as if
            // settled); a link replaced is seen, however soon.
            let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
            fs::File::open(&bin).unwrap().set_modified(old).unwrap();
            let again = tool_binds(&path, &home, Path::new("/srv/project"));
            assert_eq!(again, tool_binds(&path, &home, Path::new("/srv/project")));
            fs::remove_file(bin.join("tool")).unwrap();
            std::os::unix::fs::symlink("../tool/bin/other.js", bin.join("tool")).unwrap();
            let binds: Vec<_> = tool_binds(&path, &home, Path::new("/srv/project"))
                .into_iter()
                .map(|m| m.target().to_path_buf())
                .collect();
            assert!(binds.contains(&pkg.join("other.js")) && !binds.contains(&pkg.join("tool.js")), "{binds:?}");
        }
    }

    #[test]
    fn only_a_directory_of_someone_else_holding_nothing_of_ours_is_bound() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("srv");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o555)).unwrap();
        let full = tmp.path().join("opt");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("tool"), "").unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(0o555)).unwrap();
        let meta = |p: &Path| fs::metadata(p).unwrap();
        // Ours (the owner may chmod it back): a layer. (Root, who may write
        // anywhere, always gets one; the other case is in
        // __test__/isolation.test.ts, run as an ordinary user too.)
        assert!(!nothing_to_write(&empty, &meta(&empty), None));
        assert!(!nothing_to_write(&full, &meta(&full), None));
        if nix::unistd::geteuid().is_root() {
            let nobody = Some(nix::unistd::Uid::from_raw(65534));
            for p in [&empty, &full, &full.join("tool")] {
                nix::unistd::chown(p, nobody, None).unwrap();
            }
            assert!(!nothing_to_write(&empty, &meta(&empty), None), "root may write to it");
            // A root host user's sandbox user, an unprivileged uid in no
            // group, may not: unless the modes let others (or it) write, or
            // an entry is its own.
            let uid = 2147483645;
            assert!(nothing_to_write(&empty, &meta(&empty), Some(uid)));
            assert!(nothing_to_write(&full, &meta(&full), Some(uid)), "nothing in it is ours");
            nix::unistd::chown(&full.join("tool"), Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
            assert!(!nothing_to_write(&full, &meta(&full), Some(uid)), "an entry of ours");
            fs::set_permissions(&empty, fs::Permissions::from_mode(0o757)).unwrap();
            assert!(!nothing_to_write(&empty, &meta(&empty), Some(uid)), "others may write");
            fs::set_permissions(&empty, fs::Permissions::from_mode(0o575)).unwrap();
            nix::unistd::chown(&empty, None, Some(nix::unistd::Gid::from_raw(uid))).unwrap();
            assert!(!nothing_to_write(&empty, &meta(&empty), Some(uid)), "its group may write");
            fs::set_permissions(&empty, fs::Permissions::from_mode(0o555)).unwrap();
            nix::unistd::chown(&empty, Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
            assert!(!nothing_to_write(&empty, &meta(&empty), Some(uid)), "its own");
        }
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What a directory holds is looked at again once it changed, and kept
    /// only while it is settled.
    #[test]
    fn a_directorys_owners_are_read_again_when_it_changes() {
        use nix::sys::stat::{UtimensatFlags, utimensat};
        use nix::sys::time::TimeSpec;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let stamp = |p: &Path| DirStamp::of(&fs::metadata(p).unwrap());
        let settle = |p: &Path| {
            let old = TimeSpec::new(1_000_000, 0);
            utimensat(nix::fcntl::AT_FDCWD, p, &old, &old, UtimensatFlags::FollowSymlink).unwrap();
        };
        settle(&dir);
        let first = stamp(&dir);
        assert!(!holds_owned_by(&dir, first, me));
        fs::write(dir.join("mine"), "").unwrap();
        settle(&dir);
        assert!(first != stamp(&dir), "an entry added changes the stamp");
        assert!(holds_owned_by(&dir, stamp(&dir), me));
        // An entry given to another owner changes nothing of the directory:
        // the kept answer stands until it changes otherwise.
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&dir.join("mine"), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(holds_owned_by(&dir, stamp(&dir), me), "kept");
            fs::write(dir.join("other"), "").unwrap();
            settle(&dir);
            nix::unistd::chown(&dir.join("other"), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(!holds_owned_by(&dir, stamp(&dir), me), "read again");
        }
    }

    #[test]
    fn mount_points_are_unescaped_and_only_strictly_below_counts() {
        assert_eq!(unescape("/mnt/with\\040space\\011tab\\134"), PathBuf::from("/mnt/with space\ttab\\"));
        // Not an escape: left as it is.
        assert_eq!(unescape("/a\\9x\\4"), PathBuf::from("/a\\9x\\4"));
        assert_eq!(unescape("/a\\777"), PathBuf::from("/a\\777"));
        let points = [PathBuf::from("/"), PathBuf::from("/boot"), PathBuf::from("/mnt/data"), PathBuf::from("/srvx")];
        assert_eq!(mounted_below(Path::new("/mnt"), &points), Some(&PathBuf::from("/mnt/data")));
        // A mount of the directory itself, or of a sibling sharing its prefix, is not below it.
        assert_eq!(mounted_below(Path::new("/boot"), &points), None);
        assert_eq!(mounted_below(Path::new("/srv"), &points), None);
        // Everything is below the root, but the root itself.
        assert_eq!(mounted_below(Path::new("/"), &points), Some(&PathBuf::from("/boot")));
        assert_eq!(mounted_below(Path::new("/"), &[PathBuf::from("/")]), None);
        // A trailing slash names the same directory.
        assert_eq!(mounted_below(Path::new("/mnt/"), &points), Some(&PathBuf::from("/mnt/data")));
        assert_eq!(mounted_below(Path::new("/mnt/data"), &points), None);
    }

    #[test]
    fn workdir_checks() {
        let base = tempfile::tempdir().unwrap();
        let state = Path::new("/tmp/bun-sandbox-test-state");
        assert!(matches!(resolve_workdir(Some("missing"), base.path(), state), Err(PlanError::WorkdirMissing(_))));
        fs::write(base.path().join("file"), "").unwrap();
        assert!(matches!(resolve_workdir(Some("file"), base.path(), state), Err(PlanError::WorkdirNotDir(_))));
        std::os::unix::fs::symlink("/etc", base.path().join("out")).unwrap();
        assert!(matches!(resolve_workdir(Some("out"), base.path(), state), Err(PlanError::WorkdirEscapes { .. })));
        assert!(matches!(resolve_workdir(Some("/proc/self"), base.path(), state), Err(PlanError::WorkdirForbidden(_))));
        assert!(matches!(resolve_workdir(Some("/"), base.path(), state), Err(PlanError::WorkdirForbidden(_))));
        let ok = resolve_workdir(Some("."), base.path(), state).unwrap();
        assert_eq!(ok, fs::canonicalize(base.path()).unwrap());
    }

    #[test]
    fn from_forms() {
        let base = Path::new("/");
        assert_eq!(Base::from_directive(None, base).unwrap(), Base::Host);
        assert_eq!(Base::from_directive(Some("host"), base).unwrap(), Base::Host);
        assert!(matches!(Base::from_directive(Some("ubuntu:22.04"), base), Err(PlanError::UnsupportedFrom(_))));
        assert!(matches!(Base::from_directive(Some("/etc"), base), Err(PlanError::NotRootfs(_))));
    }
}
