//! Builds the sandbox's root filesystem from the plan's mounts, then moves
//! into it with `pivot_root` and detaches the host's root.

use super::{SetupError, Step, mount_api};
use crate::protocol::{Mount, RootPlan};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, pivot_root};
use std::collections::HashMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const NONE: Option<&str> = None;

/// A root being built, still outside it (`enter` moves in): where it is,
/// and the fd of the upper directory of the overlay marked `pass_upper`,
/// opened before the host paths vanish. A spare's PID 1 makes the host's
/// part of it before it has a sandbox (`Building::prebuild`, which keeps
/// what it built); the plan that comes then adds the rest.
pub struct Building {
    root: PathBuf,
    upper: Option<OwnedFd>,
    prebuilt: Option<RootPlan>,
    /// The mounts (indices into the plan, with their detached mount) that
    /// wait for the network namespace: the sysfs, which shows the network
    /// namespace of the process that mounts it, and what goes below it.
    waiting: Vec<(usize, Option<OwnedFd>)>,
    sysfs: Option<PathBuf>,
}

impl Building {
    /// Mounts the scratch tmpfs and the tmpfs that becomes `/`.
    pub fn begin(plan: &RootPlan) -> Result<Building, SetupError> {
        // Nothing mounted from here on may propagate back to the host.
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
            .step(|| "make the mount namespace private".into())?;
        let scratch = &plan.scratch;
        let mut opts = "mode=0700".to_string();
        if let Some(size) = plan.scratch_size {
            opts.push_str(&format!(",size={size}"));
        }
        mount(Some("tmpfs"), scratch, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(opts.as_str()))
            .step(|| format!("mount the scratch tmpfs on {}", scratch.display()))?;
        let root = scratch.join("root");
        mkdir_p(&root, 0o755)?;
        // The host's root filesystem will be mounted there instead.
        if let Some(Mount::HostRoot { .. }) = plan.mounts.first() {
            return Ok(Building { root, upper: None, prebuilt: None, waiting: Vec::new(), sysfs: None });
        }
        let root_opts = format!("mode=0755,size={}", plan.root_size.unwrap_or(crate::policy::plan::ROOT_SIZE));
        mount(Some("tmpfs"), &root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(root_opts.as_str()))
            .step(|| format!("mount the root tmpfs on {}", root.display()))?;
        Ok(Building { root, upper: None, prebuilt: None, waiting: Vec::new(), sysfs: None })
    }

    /// Builds the whole of a spare's `Prebuild` (`detached` came with it),
    /// and keeps it to check the plan that follows against.
    pub fn prebuild(pre: RootPlan, detached: Vec<OwnedFd>) -> Result<Building, SetupError> {
        let mut b = Building::begin(&pre)?;
        b.apply(&pre, 0, detached)?;
        b.prebuilt = Some(pre);
        Ok(b)
    }

    /// Whether this is a prebuild begun as `plan` would begin and made of
    /// exactly the first `n` of `plan`'s mounts.
    pub fn is_start_of(&self, plan: &RootPlan, n: usize) -> bool {
        self.prebuilt.as_ref().is_some_and(|pre| {
            pre.scratch == plan.scratch
                && pre.scratch_size == plan.scratch_size
                && pre.root_size == plan.root_size
                && pre.mounts.len() == n
                && plan.mounts.get(..n) == Some(&pre.mounts[..])
        })
    }

    /// Makes `plan.mounts[from..]`. `detached` came with them: the mounts
    /// `plan.detached` names (all at `from` or after) get theirs, in order
    /// (a root host user's, `supervisor::remap`).
    pub fn apply(&mut self, plan: &RootPlan, from: usize, detached: Vec<OwnedFd>) -> Result<(), SetupError> {
        let named = plan.detached.iter().all(|&i| i >= from && i < plan.mounts.len());
        if !named || detached.len() != plan.detached.len() {
            return Err(std::io::Error::other(format!("{} came, {} named", detached.len(), plan.detached.len())))
                .step(|| "receive the plan's detached mounts".into());
        }
        let mut detached: HashMap<usize, OwnedFd> = plan.detached.iter().copied().zip(detached).collect();
        for (i, m) in plan.mounts.iter().enumerate().skip(from) {
            if let Mount::Sysfs { target } = m {
                self.sysfs = Some(target.clone());
            }
            if self.sysfs.as_ref().is_some_and(|sysfs| m.target().starts_with(sysfs)) {
                self.waiting.push((i, detached.remove(&i)));
                continue;
            }
            apply(&self.root, m, detached.remove(&i))?;
            if let Mount::Overlay { upper, pass_upper: true, .. } = m {
                // A path on the scratch tmpfs, in this mount namespace only:
                // the supervisor reads the layer through this fd.
                let dir = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(upper)
                    .step(|| format!("open the WORKDIR's upper layer {}", upper.display()))?;
                self.upper = Some(OwnedFd::from(dir));
            }
        }
        Ok(())
    }

    /// Makes the mounts that waited for the network namespace, which PID 1
    /// is in now; gives back where the root is, and the passed-out upper's fd.
    pub fn finish(mut self, plan: &RootPlan) -> Result<(PathBuf, Option<OwnedFd>), SetupError> {
        self.apply_waiting(plan)?;
        Ok((self.root, self.upper))
    }

    /// In a spare's PID 1, once it is in the network namespace: makes the
    /// prebuild's mounts that waited for it.
    pub fn settle(&mut self) -> Result<(), SetupError> {
        let Some(pre) = self.prebuilt.take() else { return Ok(()) };
        let made = self.apply_waiting(&pre);
        self.prebuilt = Some(pre);
        made
    }

    fn apply_waiting(&mut self, plan: &RootPlan) -> Result<(), SetupError> {
        for (i, fd) in std::mem::take(&mut self.waiting) {
            let m = plan
                .mounts
                .get(i)
                .ok_or_else(|| std::io::Error::other("the plan is shorter"))
                .step(|| "finish the root".into())?;
            apply(&self.root, m, fd)?;
        }
        Ok(())
    }
}

/// `target` (absolute, as the sandbox sees it) under the new root.
fn under(root: &Path, target: &Path) -> PathBuf {
    root.join(target.strip_prefix("/").unwrap_or(target))
}

fn mkdir_p(path: &Path, mode: u32) -> Result<(), SetupError> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(path).step(|| format!("create {}", path.display()))
}

/// An overlay's options for its layers, as a user namespace may mount it.
fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        overlay_path(lower),
        overlay_path(upper),
        overlay_path(work)
    )
}

/// A path in overlay's option syntax: `,` `:` and `\` are escaped.
fn overlay_path(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Applies one mount; `detached`, when the plan sent one for it, is its
/// lower or source as a detached mount (the idmapped WORKDIR, or a host
/// path the sandbox user may not reach).
fn apply(root: &Path, m: &Mount, detached: Option<OwnedFd>) -> Result<(), SetupError> {
    match m {
        Mount::HostRoot { upper, work } => {
            let tree = detached
                .ok_or_else(|| std::io::Error::other("none came with the plan"))
                .step(|| "receive the mount of the host's root filesystem".into())?;
            mkdir_p(upper, 0o755)?;
            mkdir_p(work, 0o700)?;
            mount_api::attach(&tree, root).step(|| "attach the mount of the host's root filesystem".into())?;
            let opts = overlay_options(root, upper, work);
            // Refused, the mount stays as the supervisor made it: read-only.
            let _ = mount(Some("overlay"), root, Some("overlay"), MsFlags::MS_NOSUID, Some(opts.as_str()));
            Ok(())
        }
        Mount::Overlay { lower, upper, work, target, fallback_ro_bind, volatile, .. } => {
            let at = under(root, target);
            mkdir_p(&at, 0o755)?;
            mkdir_p(upper, 0o755)?;
            mkdir_p(work, 0o700)?;
            // A detached lower goes where the overlay will be (the overlay
            // resolves its layers before it covers them).
            let lower = match detached {
                Some(tree) => {
                    mount_api::attach(&tree, &at)
                        .step(|| format!("attach the detached mount of {}", lower.display()))?;
                    at.clone()
                }
                None => lower.clone(),
            };
            let lower = &lower;
            let opts = overlay_options(lower, upper, work);
            // `volatile`: a layer on disk is disposable, so the overlay skips
            // syncing it (which made unmounting slow); older kernels lack it.
            let overlay = |data: &str| mount(Some("overlay"), &at, Some("overlay"), MsFlags::MS_NOSUID, Some(data));
            let mounted = match volatile {
                true => overlay(&format!("{opts},volatile")).or_else(|_| overlay(&opts)),
                false => overlay(&opts),
            };
            match mounted {
                Ok(()) => Ok(()),
                Err(_) if *fallback_ro_bind => ro_bind(lower, &at),
                Err(e) => Err(e).step(|| format!("mount a copy-on-write overlay of {}", lower.display())),
            }
        }
        Mount::RoBind { source, target } => {
            let at = under(root, target);
            let is_dir = match &detached {
                Some(tree) => nix::sys::stat::fstat(tree).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
                None => Ok(source.is_dir()),
            };
            // A file already there is bound over as it is (opening it to
            // write would copy it up into the layer for nothing).
            if is_dir.step(|| format!("stat the detached mount of {}", source.display()))? {
                mkdir_p(&at, 0o755)?
            } else if at.symlink_metadata().is_err() {
                touch(&at)?
            }
            match detached {
                // Made read-only, nosuid and nodev by the supervisor.
                Some(tree) => {
                    mount_api::attach(&tree, &at).step(|| format!("attach the detached mount of {}", source.display()))
                }
                None => ro_bind(source, &at),
            }
        }
        Mount::Tmpfs { target, mode, size } => {
            let at = under(root, target);
            mkdir_p(&at, 0o755)?;
            let mut opts = format!("mode={mode:o}");
            if let Some(size) = size {
                opts.push_str(&format!(",size={size}"));
            }
            mount(Some("tmpfs"), &at, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(opts.as_str()))
                .step(|| format!("mount a tmpfs on {}", target.display()))
        }
        Mount::Symlink { link, target } => {
            let at = under(root, link);
            if let Some(parent) = at.parent() {
                mkdir_p(parent, 0o755)?;
            }
            symlink(target, &at).step(|| format!("link {} -> {}", link.display(), target.display()))
        }
        Mount::Proc { target } => {
            let at = under(root, target);
            mkdir_p(&at, 0o555)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("proc"), &at, Some("proc"), flags, NONE)
                .step(|| "mount a /proc that shows only the sandbox's processes".into())?;
            limit_watches(&at)?;
            // What in it acts on the host rather than on the sandbox, read-only
            // (as bubblewrap and container runtimes do): sysctls, most of them
            // host-wide, and IRQ, bus and filesystem settings. Their files are
            // root's, and a root host user's sandbox user may be uid 0 outside.
            for host_wide in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
                let path = at.join(host_wide);
                if path.symlink_metadata().is_ok() {
                    ro_bind(&path, &path)?;
                }
            }
            Ok(())
        }
        Mount::Sysfs { target } => {
            let at = under(root, target);
            mkdir_p(&at, 0o555)?;
            // The kernel lets a user namespace that owns the network
            // namespace mount sysfs, where the host's /sys is fully visible
            // (nothing but empty directories covered); a container's /sys
            // may not be, and its read-only bind is what stands in then.
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            match mount(Some("sysfs"), &at, Some("sysfs"), flags, NONE) {
                Ok(()) => Ok(()),
                Err(nix::Error::EPERM | nix::Error::EACCES) => ro_bind(Path::new("/sys"), &at),
                Err(e) => Err(e).step(|| "mount the sandbox's /sys".into()),
            }
        }
        Mount::Dev { target, shm_size } => dev(&under(root, target), *shm_size),
        Mount::Mask { target } => {
            let at = under(root, target);
            if at.symlink_metadata().is_err() {
                return Ok(());
            }
            mask(&at)
        }
        Mount::MaskDir { target } => {
            let at = under(root, target);
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), &at, Some("tmpfs"), flags, Some("mode=0700,size=4k"))
                .step(|| format!("hide {}", target.display()))
        }
        Mount::Dir { target, mode } => {
            let at = under(root, target);
            mkdir_p(&at, *mode)?;
            fs::set_permissions(&at, fs::Permissions::from_mode(*mode)).step(|| format!("chmod {}", target.display()))
        }
    }
}

fn touch(path: &Path) -> Result<(), SetupError> {
    if let Some(parent) = path.parent() {
        mkdir_p(parent, 0o755)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .step(|| format!("create {}", path.display()))?;
    Ok(())
}

/// inotify and fanotify instances, watches and marks count against the host
/// user's own limits (the sandbox's user namespace charges its owner): a
/// sandbox gets at most half of each, so that one sandbox cannot leave the
/// host user (host root, for a root host user) without any. Written in the
/// sandbox's user namespace, before `/proc/sys` is made read-only.
fn limit_watches(proc: &Path) -> Result<(), SetupError> {
    for (ours, host) in [
        ("max_inotify_instances", "fs/inotify/max_user_instances"),
        ("max_inotify_watches", "fs/inotify/max_user_watches"),
        ("max_fanotify_groups", "fanotify/max_user_groups"),
        ("max_fanotify_marks", "fanotify/max_user_marks"),
    ] {
        let limit = proc.join("sys/user").join(ours);
        let Some(host) =
            fs::read_to_string(proc.join("sys").join(host)).ok().and_then(|v| v.trim().parse::<u64>().ok())
        else {
            continue;
        };
        if limit.exists() {
            fs::write(&limit, (host / 2).max(1).to_string()).step(|| format!("limit {ours} in the sandbox"))?;
        }
    }
    Ok(())
}

/// A read-only recursive bind: the directory and every filesystem mounted
/// below it on the host (`/sys/fs/cgroup`, a disk under `/mnt`), which a
/// bind's own remount would leave writable — to a root host user, whose uid
/// the sandbox's user is, the host's cgroup files among them. And `nodev`:
/// a read-only mount still lets a device node be opened for writing, and
/// such a bind shows the host's own filesystem, whose nodes work (an
/// overlay or tmpfs made in the sandbox's user namespace is nodev anyway).
fn ro_bind(source: &Path, at: &Path) -> Result<(), SetupError> {
    bind_read_only(source, at, true)
}

/// `/dev/null` over a file: read-only, but a working device.
fn mask(at: &Path) -> Result<(), SetupError> {
    bind_read_only(Path::new("/dev/null"), at, false)
}

fn bind_read_only(source: &Path, at: &Path, nodev: bool) -> Result<(), SetupError> {
    mount(Some(source), at, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .step(|| format!("bind {}", source.display()))?;
    match read_only_tree(at, nodev) {
        // Kernels before 5.12: each mount of the tree in turn.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            for point in mounts_at_or_below(at) {
                remount_read_only(&point, nodev).step(|| format!("make {} read-only", point.display()))?;
            }
            Ok(())
        }
        other => other.step(|| format!("make {} read-only", source.display())),
    }
}

/// `mount_setattr(AT_RECURSIVE)`: read-only, nosuid (and nodev), the whole
/// tree at once. Flags the kernel locked on a mount are only ever added to.
fn read_only_tree(at: &Path, nodev: bool) -> std::io::Result<()> {
    use mount_api::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    let path = mount_api::c_path(at)?;
    let nodev = if nodev { MOUNT_ATTR_NODEV } else { 0 };
    let attrs = mount_api::Attrs { set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | nodev, ..Default::default() };
    mount_api::set_attrs(libc::AT_FDCWD, &path, mount_api::AT_RECURSIVE, attrs)
}

/// Mount points at `at` or below it in this mount namespace, outermost first.
fn mounts_at_or_below(at: &Path) -> Vec<PathBuf> {
    crate::policy::mount_table::read().into_iter().filter(|p| p.starts_with(at)).collect()
}

/// A bind remounted read-only. The remount must keep the flags the kernel
/// locked on the original mount (nosuid, nodev, ...), or it is refused.
fn remount_read_only(at: &Path, nodev: bool) -> nix::Result<()> {
    let locked = statvfs(at).map(|s| s.flags()).unwrap_or(FsFlags::empty());
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    if nodev {
        flags |= MsFlags::MS_NODEV;
    }
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if locked.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(NONE, at, NONE, flags, NONE)
}

/// A minimal /dev: the harmless device nodes bound from the host, a private
/// devpts, and a tmpfs for shared memory.
fn dev(at: &Path, shm_size: Option<u64>) -> Result<(), SetupError> {
    mkdir_p(at, 0o755)?;
    mount(Some("tmpfs"), at, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("mode=0755,size=1m"))
        .step(|| "mount the /dev tmpfs".into())?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = at.join(node);
        touch(&target)?;
        let source = Path::new("/dev").join(node);
        mount(Some(&source), &target, NONE, MsFlags::MS_BIND, NONE).step(|| format!("bind /dev/{node}"))?;
    }
    let pts = at.join("pts");
    mkdir_p(&pts, 0o755)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .step(|| "mount a private devpts".into())?;
    let shm = at.join("shm");
    mkdir_p(&shm, 0o1777)?;
    let shm_opts = match shm_size {
        Some(size) => format!("mode=1777,size={size}"),
        None => "mode=1777".to_string(),
    };
    mount(Some("tmpfs"), &shm, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(shm_opts.as_str()))
        .step(|| "mount /dev/shm".into())?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, at.join(link)).step(|| format!("link /dev/{link}"))?;
    }
    Ok(())
}

/// Makes `root` the root and detaches the host's.
pub fn enter(root: &Path) -> Result<(), SetupError> {
    chdir(root).step(|| "enter the new root".into())?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detach below then takes it away.
    pivot_root(".", ".").step(|| "pivot_root into the new root".into())?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detach the host's root".into())?;
    chdir("/").step(|| "chdir /".into())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a mount namespace of its own: a tree of two tmpfs mounts, bound
    /// twice, made read-only once each way. Every mount of each bind refuses
    /// a write and the use of a device node; the source keeps both.
    fn binds_are_read_only_all_the_way_down(dir: &Path) -> Result<(), String> {
        fn err(what: &str) -> impl Fn(nix::Error) -> String + '_ {
            move |e| format!("{what}: {e}")
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(err("unshare"))?;
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(err("private"))?;
        let (source, sub) = (dir.join("source"), dir.join("source/sub"));
        fs::create_dir(&source).map_err(|e| e.to_string())?;
        mount(Some("tmpfs"), &source, Some("tmpfs"), MsFlags::empty(), NONE).map_err(err("tmpfs"))?;
        fs::create_dir(&sub).map_err(|e| e.to_string())?;
        mount(Some("tmpfs"), &sub, Some("tmpfs"), MsFlags::empty(), NONE).map_err(err("tmpfs below"))?;
        // A device node like /dev/null's, usable where it was made.
        let dev = libc::makedev(1, 3);
        nix::sys::stat::mknod(
            &sub.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            dev,
        )
        .map_err(err("mknod"))?;
        let bind = |name: &str| -> Result<PathBuf, String> {
            let at = dir.join(name);
            fs::create_dir(&at).map_err(|e| e.to_string())?;
            mount(Some(&source), &at, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).map_err(err("bind"))?;
            Ok(at)
        };
        let with_setattr = bind("setattr")?;
        read_only_tree(&with_setattr, true).map_err(|e| format!("mount_setattr: {e}"))?;
        let with_remounts = bind("remounts")?;
        let points = mounts_at_or_below(&with_remounts);
        if points != [with_remounts.clone(), with_remounts.join("sub")] {
            return Err(format!("mounts below {}: {points:?}", with_remounts.display()));
        }
        for point in &points {
            remount_read_only(point, true).map_err(err("remount"))?;
        }
        for at in [&with_setattr, &with_remounts] {
            for file in [at.join("x"), at.join("sub/x")] {
                match fs::write(&file, "") {
                    Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
                    other => return Err(format!("{}: {other:?}", file.display())),
                }
            }
        }
        // nodev: the node cannot be opened through either bind.
        for at in [&with_setattr, &with_remounts] {
            match fs::OpenOptions::new().write(true).open(at.join("sub/null")) {
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
                other => return Err(format!("a device node through {}: {other:?}", at.display())),
            }
        }
        fs::OpenOptions::new().write(true).open(sub.join("null")).map_err(|e| format!("the source's node: {e}"))?;
        fs::write(sub.join("x"), "").map_err(|e| format!("the source: {e}"))
    }

    /// In user, mount and network namespaces of its own, as the sandbox's
    /// PID 1 is: `Mount::Sysfs` is a sysfs of that network namespace (`lo`
    /// alone, nothing mounted below). With `covered`, a tmpfs first hides
    /// the host's non-empty `/sys/firmware` (as container runtimes mask it):
    /// the kernel then refuses a fresh sysfs, and the host's `/sys` comes
    /// read-only instead, with what is mounted below it.
    fn sysfs_in_a_sandbox(dir: &Path, covered: bool) -> Result<(), String> {
        use nix::sched::{CloneFlags, unshare};
        let err = |what: &'static str| move |e: nix::Error| format!("{what}: {e}");
        if covered {
            unshare(CloneFlags::CLONE_NEWNS).map_err(err("unshare the mount namespace"))?;
            mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(err("private"))?;
            mount(Some("tmpfs"), "/sys/firmware", Some("tmpfs"), MsFlags::empty(), NONE)
                .map_err(err("cover /sys/firmware"))?;
        }
        crate::testing::enter_user_namespace(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)?;
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(err("private"))?;
        apply(dir, &Mount::Sysfs { target: "/sys".into() }, None).map_err(|e| e.to_string())?;
        let at = dir.join("sys");
        let below: Vec<_> =
            crate::policy::mount_table::read().into_iter().filter(|p| p.starts_with(&at) && *p != at).collect();
        let mut net: Vec<_> = fs::read_dir(at.join("class/net"))
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        net.sort();
        match covered {
            false if below.is_empty() && net == ["lo"] => {}
            true if below.contains(&at.join("firmware")) => {}
            _ => return Err(format!("covered {covered}: mounts below {below:?}, interfaces {net:?}")),
        }
        match fs::create_dir(at.join("bsb-probe")) {
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
            other => Err(format!("a write into /sys: {other:?}")),
        }
    }

    #[test]
    fn sysfs_is_the_sandboxs_own_or_the_hosts_read_only() {
        let cases: &[bool] = if nix::unistd::geteuid().is_root() { &[false, true] } else { &[false] };
        for &covered in cases {
            let dir = tempfile::tempdir().unwrap();
            crate::testing::in_child(&format!("sysfs, covered: {covered}"), || sysfs_in_a_sandbox(dir.path(), covered));
        }
    }

    #[test]
    fn read_only_binds_cover_the_mounts_below() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        crate::testing::in_child("read-only binds", || binds_are_read_only_all_the_way_down(dir.path()));
    }
}
