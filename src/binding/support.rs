//! `checkIsolationSupport()`: what this host can do, and why not. The answer
//! comes from the kernel's settings and from a real sandbox started as a probe.

use crate::supervisor::{self as sv, ExecOptions, StartOptions};
use napi_derive::napi;

#[napi(object)]
pub struct IsolationSupport {
    pub supported: bool,
    pub user_namespaces: bool,
    pub overlayfs: bool,
    pub seccomp: bool,
    /// Whether this process's sandboxes get cgroups of their own: a root host
    /// user's, where the host has the pids and memory controllers (then
    /// limits.memoryBytes binds the sandbox's processes together). An
    /// ordinary user's get none yet; `reasons` says what binds instead.
    pub cgroups: bool,
    pub reasons: Vec<String>,
}

fn sysctl(name: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/{name}")).ok()?.trim().parse().ok()
}

pub async fn check() -> IsolationSupport {
    let mut reasons = Vec::new();
    let mut userns = std::path::Path::new("/proc/self/ns/user").exists();
    if !userns {
        reasons.push("this kernel has no user namespaces (CONFIG_USER_NS)".into());
    }
    if sysctl("user/max_user_namespaces") == Some(0) {
        userns = false;
        reasons.push("user.max_user_namespaces = 0: user namespaces are disabled; set it above 0 (sysctl -w user.max_user_namespaces=15000)".into());
    }
    if sysctl("kernel/unprivileged_userns_clone") == Some(0) {
        userns = false;
        reasons.push(
            "kernel.unprivileged_userns_clone = 0: unprivileged user namespaces are disabled; set it to 1".into(),
        );
    }
    if sysctl("kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        reasons.push(
            "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+): AppArmor denies capabilities in new user \
             namespaces unless a profile allows it; add an AppArmor profile for bun-sandbox-init with `userns,` or set the \
             sysctl to 0"
                .into(),
        );
    }
    let overlayfs =
        std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.lines().any(|l| l.ends_with("overlay")));
    if !overlayfs {
        reasons.push("overlayfs is not available (modprobe overlay)".into());
    }
    // SAFETY: PR_GET_SECCOMP only reads this thread's mode.
    let mut seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
    if !seccomp {
        reasons.push("seccomp is not available in this kernel (CONFIG_SECCOMP_FILTER)".into());
    }
    if crate::policy::seccomp::host_arch().is_none() {
        seccomp = false;
        reasons.push(format!("the seccomp filter does not support this architecture ({})", std::env::consts::ARCH));
    }
    // What the sandboxes use: a root host user's get pids (and, with
    // memoryBytes, memory) cgroups; an ordinary user's none.
    let cgroups = match nix::unistd::getuid().is_root() {
        true => match sv::cgroup::available() {
            (true, true) => true,
            (true, false) => {
                reasons.push("no memory cgroup controller: limits.memoryBytes binds each process (RLIMIT_DATA), not the sandbox's processes together".into());
                false
            }
            (false, _) => {
                reasons.push("no pids cgroup controller: a root host user's sandboxes cannot start (RLIMIT_NPROC does not bind root)".into());
                false
            }
        },
        false => {
            reasons.push("an ordinary user's sandboxes get no cgroup (a delegated cgroup2 sub-tree is not used yet): limits bind each process (rlimits) and, for diskBytes, size-limited tmpfs mounts".into());
            false
        }
    };
    let probe = probe().await;
    if let Err(why) = &probe {
        reasons.push(format!("a probe sandbox failed: {why}"));
    }
    // Not a missing capability, but a weaker sandbox: said, as the first
    // sandbox's warning would.
    if nix::unistd::getuid().is_root()
        && let Some((cwd, why)) =
            std::env::current_dir().ok().and_then(|d| sv::remap::host_root_reason(&d).map(|w| (d, w)))
    {
        reasons.push(format!(
                "as root, a sandbox whose WORKDIR is {} runs as host uid 0, not an unprivileged uid: {why}; only a list of root's credential files is hidden from it",
                cwd.display()
            ));
    }
    IsolationSupport {
        supported: userns && overlayfs && seccomp && probe.is_ok(),
        user_namespaces: userns,
        overlayfs,
        seccomp,
        cgroups,
        reasons,
    }
}

/// Starts a sandbox on an empty directory and runs `/bin/true` in it.
async fn probe() -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("bun-sandbox-probe-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| e.to_string())?;
    let init = super::init_path::find_init().map_err(|e| e.reason.clone())?;
    let opts = StartOptions { base_dir: dir.path().into(), init, ..Default::default() };
    let sandbox = sv::Sandbox::start(opts).await.map_err(|e| e.to_string())?;
    let out = sandbox.exec("probe", "exec", ExecOptions { argv: vec!["/bin/true".into()], ..Default::default() }).await;
    sandbox.stop().await;
    match out {
        Ok(o) if o.exit_code == Some(0) => Ok(()),
        Ok(o) => Err(format!("/bin/true exited with {:?}: {}", o.exit_code, String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(e.to_string()),
    }
}
