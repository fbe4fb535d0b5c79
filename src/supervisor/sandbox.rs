//! One sandbox: started on first use, every command in the same world, torn
//! down by `stop()`.

use super::cgroup::{OomKills, SandboxCgroups};
use super::connection::{AskedSocket, Connection, Exit, SocketFailure};
use super::disk_floor;
use super::jobs::{Hooks, Violation};
use super::launcher::{self, Helper, Launched};
use super::reaper::{self, abandon};
use super::remap::{self, ROOT_SANDBOX_ID, RootUser};
use super::spare;
use super::state;
use crate::net::{SandboxCa, UpstreamTrust};
use crate::policy::net::NetPolicy;
use crate::policy::plan::{self, Base, PlanError};
use crate::policy::seccomp;
use crate::policy::trust;
use crate::protocol::{CgroupJoin, Ids, Mount, Plan, Remap, Request, Rlimit, RlimitKind, Setup, Spawn};
use crate::secrets::{Redactor, SecretMode, Secrets};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("the sandbox could not be built: {0}")]
    Setup(String),
    #[error("this host cannot run the sandbox's seccomp filter: {0}")]
    Seccomp(String),
    #[error("the sandbox is stopped")]
    Stopped,
    #[error("the sandbox ended unexpectedly: {0}")]
    Died(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let context = context.into();
    move |source| SandboxError::Io { context, source }
}

/// What a sandbox is made of.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub from: Option<String>,
    pub workdir: Option<String>,
    /// What FROM and WORKDIR paths are relative to.
    pub base_dir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pids: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// `limits.diskBytes`: every writable layer on one tmpfs of this size.
    pub disk_bytes: Option<u64>,
    /// NET lines, and `network.resolve` (host or host:port → address).
    pub net: Vec<String>,
    pub resolve: HashMap<String, std::net::SocketAddr>,
    /// SECRET values and their placeholders (SPEC §4).
    pub secrets: Option<Arc<Secrets>>,
    /// `network.extraCaCerts` (PEM): roots the proxy trusts upstream, and the
    /// sandbox too.
    pub extra_ca_certs: Option<String>,
    /// `network.allowPlaintextSecrets`.
    pub plaintext_secrets: bool,
    pub init: PathBuf,
    pub hooks: Hooks,
    /// Whether a spare is made for the next sandbox once this one has
    /// started (`None`: unless `BUN_SANDBOX_SPARE=0`).
    pub spare: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// A live process, as `getStatus()` lists it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub name: String,
    pub kind: String,
    pub pid: i32,
}

/// A command that started, or the 127/126 of one that did not.
pub(super) enum Launch {
    Started(Started),
    NotStarted { code: i32, message: String },
}

pub(super) struct Started {
    pub id: u64,
    pub pid: i32,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub exited: tokio::sync::oneshot::Receiver<Exit>,
}

/// A command sent to init and not yet known to have started: what
/// [`Sandbox::start_with`] gives back for the first command, which it sends
/// right behind the plan (init starts it as soon as it is ready).
pub struct Pending {
    id: u64,
    started: tokio::sync::oneshot::Receiver<super::connection::Started>,
    exited: tokio::sync::oneshot::Receiver<Exit>,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// A command to send with the plan: its argv and the variables it adds.
pub type FirstCommand = (Vec<String>, BTreeMap<String, String>);

pub struct Sandbox {
    conn: Connection,
    cgroup: Mutex<Option<SandboxCgroups>>,
    child: Mutex<Option<Helper>>,
    state_dir: PathBuf,
    workdir: PathBuf,
    env: BTreeMap<String, String>,
    /// Replaces SECRET values with `[secret NAME]` in everything read back.
    redactor: Option<Arc<Redactor>>,
    running: Mutex<HashMap<u64, ProcessInfo>>,
    stopped: AtomicBool,
    hooks: Hooks,
    /// Output pumps of streamed processes: `stop()` waits for them, so no
    /// callback runs after it.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Accept loops of published ports: ended by `stop()`.
    listeners: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// With `limits.diskBytes`, or a state dir on an overlayfs: the
    /// WORKDIR's upper directory (on the scratch tmpfs in the sandbox's
    /// mount namespace), passed out by init.
    /// Its number stays taken for the sandbox's life: `workdir_upper()`
    /// names it as `/proc/self/fd/<n>`.
    upper_fd: Option<OwnedFd>,
    /// The next sandbox's spare, made once this one's first command is done
    /// (or at its stop), unless it was made at the start already (this
    /// sandbox took a spare).
    spare: Mutex<Option<spare::Offer>>,
}

/// Default process limit per sandbox: room for a build, not for a fork bomb.
const DEFAULT_PIDS: u64 = 4096;

/// How long a killed command's output may take to close.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// How long `stop()` waits for PID 1 to kill everything and exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long `stop()` waits after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);
/// How often the disk limit's tmpfs is checked for being full, and a
/// memory cgroup for OOM kills.
const LIMIT_POLL: Duration = Duration::from_millis(250);

impl Sandbox {
    pub async fn start(opts: StartOptions) -> Result<Sandbox, SandboxError> {
        Sandbox::start_with(opts, None).await.map(|(sandbox, _)| sandbox)
    }

    /// Starts the sandbox and, when given, sends `first` right behind the
    /// plan: the first command of a cold start does not wait for a round
    /// trip after init is ready. Its `Pending` goes to [`Sandbox::exec_pending`].
    pub async fn start_with(
        opts: StartOptions,
        first: Option<FirstCommand>,
    ) -> Result<(Sandbox, Option<Result<Pending, SandboxError>>), SandboxError> {
        // A spare checked alive can still die before it is ready (killed
        // from outside, say): then the start is made again, without one.
        let mut spare_failed = false;
        match Sandbox::start_once(&opts, first.clone(), true, &mut spare_failed).await {
            Err(_) if spare_failed => Sandbox::start_once(&opts, first, false, &mut spare_failed).await,
            started => started,
        }
    }

    /// One try of [`Sandbox::start_with`], with a spare when `take_spare`
    /// and there is one; `spare_failed` says whether the spare it took
    /// failed once the plan was sent (or as it was), which a fresh init may not.
    async fn start_once(
        opts: &StartOptions,
        first: Option<FirstCommand>,
        take_spare: bool,
        spare_failed: &mut bool,
    ) -> Result<(Sandbox, Option<Result<Pending, SandboxError>>), SandboxError> {
        let base = Base::from_directive(opts.from.as_deref(), &opts.base_dir)?;
        let policy = NetPolicy::new(&opts.net).map_err(|e| SandboxError::Setup(e.to_string()))?;
        let (violations_tx, violations_rx) = tokio::sync::mpsc::unbounded_channel::<crate::net::Violation>();
        let on_violation: crate::net::ViolationFn = Arc::new(move |v| {
            let _ = violations_tx.send(v);
        });
        let mut proxy = crate::net::ProxyConfig::new(Arc::new(policy), opts.resolve.clone(), on_violation.clone())
            .map_err(|e| SandboxError::Setup(format!("network.resolve: {e}")))?;
        let secrets = opts.secrets.clone().filter(|s| !s.is_empty());
        let redactor = secrets.as_ref().map(|s| s.redactor());
        let mut added_roots = String::new();
        if let Some(secrets) = &secrets {
            proxy = proxy.hook(secrets.hook(opts.plaintext_secrets, on_violation));
            // The proxy terminates TLS to the secrets' hosts with this CA.
            if secrets.mode() == SecretMode::Proxy {
                let ca = SandboxCa::generate()
                    .map_err(|e| SandboxError::Setup(format!("cannot make the sandbox's CA: {e}")))?;
                let trust = UpstreamTrust::new(opts.extra_ca_certs.as_deref())
                    .map_err(|e| SandboxError::Setup(e.to_string()))?;
                added_roots.push_str(&ca.cert_pem());
                proxy = proxy.intercept_with(Arc::new(ca), Arc::new(trust));
            }
        }
        if let Some(extra) = &opts.extra_ca_certs {
            // Checked here too when nothing is intercepted: programs inside
            // would otherwise get a bundle they cannot read.
            crate::net::check_extra_pem(extra).map_err(|e| SandboxError::Setup(e.to_string()))?;
            added_roots.push_str(extra.trim_end());
            added_roots.push('\n');
        }
        let root = state::root();
        let workdir = plan::resolve_workdir(opts.workdir.as_deref(), &opts.base_dir, &root)?;
        let seccomp_words = filter_words()?;
        let outer_uid = nix::unistd::getuid().as_raw();
        let outer_gid = nix::unistd::getgid().as_raw();
        // A root host user's sandbox user is an unprivileged uid outside,
        // with the WORKDIR idmapped to it, where it can be (`remap`).
        let root_user = (outer_uid == 0).then(|| remap::choose(&workdir));
        let remap = match root_user {
            Some(RootUser::Unprivileged { .. }) => Some(Remap { uid: ROOT_SANDBOX_ID, gid: ROOT_SANDBOX_ID }),
            _ => None,
        };
        let owner = remap.as_ref().map(|r| (r.uid, r.gid));
        let new_state_dir = || {
            state::create(&root, owner)
                .map_err(io_err(format!("cannot create a state directory in {}", root.display())))
        };
        // Many tools refuse to run as root: a root host user is 1000 inside.
        let inner_uid = opts.uid.unwrap_or(if outer_uid == 0 { 1000 } else { outer_uid });
        let inner_gid = opts.gid.unwrap_or(if outer_gid == 0 { 1000 } else { outer_gid });
        let key =
            spare::Key { init: opts.init.clone(), ids: Ids { outer_uid, outer_gid, inner_uid, inner_gid, remap } };
        let spare = if take_spare { spare::take(&key) } else { None };
        // A spare with the WORKDIR's layer built has its state dir: the
        // sandbox's if the plan fits it.
        let mut state_dir = match spare.as_ref().and_then(spare::Spare::state_dir) {
            Some(dir) => dir.to_path_buf(),
            None => match new_state_dir() {
                Ok(dir) => dir,
                Err(e) => {
                    if let Some(spare) = spare {
                        spare.discard();
                    }
                    return Err(e);
                }
            },
        };
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
        let result = async {
            let pids = opts.pids.unwrap_or(DEFAULT_PIDS);
            // Without a spare, init starts (and makes its namespaces) while
            // the plan is built: the launcher thread spawns it meanwhile.
            let mut starting = match spare {
                Some(spare) => Starting::Spare(spare),
                None => Starting::fresh(&key)?,
            };
            let path_env = opts.env.get("PATH").cloned().unwrap_or_else(|| std::env::var("PATH").unwrap_or_default());
            let scratch = state::scratch(&root);
            let remapped =
                key.ids.remap.as_ref().map(|r| plan::Remapped { uid: r.uid, whole_root: remap::whole_root() });
            let plan_root = |state_dir: &Path| {
                plan::root_plan(&base, &workdir, &home, state_dir, &scratch, &path_env, opts.disk_bytes, remapped)
                    .map_err(SandboxError::from)
            };
            let mut root_plan = match plan_root(&state_dir) {
                Ok(root_plan) => root_plan,
                Err(e) => {
                    starting.abandon().await;
                    return Err(e);
                }
            };
            // A spare that built something else is of no use; one whose
            // state dir this plan names takes it along.
            if matches!(&starting, Starting::Spare(spare) if !spare.fits(&root_plan)) {
                let dir_went = matches!(&starting, Starting::Spare(spare) if spare.state_dir().is_some());
                match Starting::fresh(&key) {
                    Ok(fresh) => std::mem::replace(&mut starting, fresh).abandon().await,
                    Err(e) => {
                        starting.abandon().await;
                        return Err(e);
                    }
                }
                if dir_went {
                    match new_state_dir().and_then(|dir| Ok((plan_root(&dir)?, dir))) {
                        Ok((planned, dir)) => (root_plan, state_dir) = (planned, dir),
                        Err(e) => {
                            starting.abandon().await;
                            return Err(e);
                        }
                    }
                }
            } else if let Starting::Spare(spare) = &mut starting {
                spare.take_state_dir();
            }
            // Whose plan the spare was made from: one of the same WORKDIR
            // (a series on one project) makes the next with that layer too.
            let series_of = match &starting {
                Starting::Spare(spare) => Some(spare.origin().to_path_buf()),
                Starting::Fresh(_) => None,
            };
            let planned = (|| {
                let trust = if added_roots.is_empty() {
                    trust::Trust::default()
                } else {
                    trust::install(&state_dir, base.dir(), &added_roots)
                        .map_err(io_err("cannot write the sandbox's CA bundle"))?
                };
                root_plan.mounts.extend(trust.mounts);
                // The sandbox user is host uid 0: root's own files are hidden.
                if let (Some(RootUser::HostRoot), Base::Host) = (&root_user, &base) {
                    root_plan.mounts.extend(plan::host_root_masks());
                }
                Ok::<_, SandboxError>(trust.env)
            })();
            let trust_env = match planned {
                Ok(env) => env,
                Err(e) => {
                    starting.abandon().await;
                    return Err(e);
                }
            };
            let prebuilt = match &starting {
                Starting::Spare(spare) => spare.prebuilt(),
                Starting::Fresh(_) => 0,
            };
            let detached = match root_user {
                Some(RootUser::Unprivileged { project }) => {
                    let project = remap::project_for(&root_plan, prebuilt, project, &workdir);
                    match project.and_then(|project| remap::detach(&mut root_plan, project, prebuilt)) {
                        Ok(fds) => fds,
                        Err(e) => {
                            starting.abandon().await;
                            return Err(io_err("cannot prepare the host paths for the sandbox's user")(e));
                        }
                    }
                }
                _ => Vec::new(),
            };
            let mut rlimits = vec![Rlimit { resource: RlimitKind::Core, soft: 0, hard: 0 }];
            // A root host user's sandboxes all run as one uid outside,
            // whose process count RLIMIT_NPROC would share among them:
            // their pids cgroup limits each instead.
            if outer_uid != 0 {
                rlimits.push(Rlimit { resource: RlimitKind::Nproc, soft: pids, hard: pids });
            }
            // RLIMIT_DATA, not RLIMIT_AS: JavaScript engines reserve far more
            // address space than they use, and reservations are not data.
            if let Some(bytes) = opts.memory_bytes {
                rlimits.push(Rlimit { resource: RlimitKind::Data, soft: bytes, hard: bytes });
            }
            if let Some(cpu) = opts.cpu_seconds {
                rlimits.push(Rlimit { resource: RlimitKind::Cpu, soft: cpu, hard: cpu + 1 });
            }
            let passes_upper = root_plan.mounts.iter().any(|m| matches!(m, Mount::Overlay { pass_upper: true, .. }));
            let mut plan = Plan {
                hostname: "sandbox".into(),
                root: root_plan,
                seccomp: seccomp_words.clone(),
                rlimits,
                prebuilt,
                cgroups: Vec::new(),
            };
            let (launched, mut cgroup) = match starting.started(pids, &state_dir).await {
                Ok(started) => started,
                Err(e) => return Err(e),
            };
            // PID 1 joins the cgroups it is not in yet before it forks
            // anything, so no command ever runs outside them.
            let mut fds: Vec<_> = detached.iter().map(|fd| fd.as_raw_fd()).collect();
            let joins = match cgroup.as_mut().map(|cg| cgroup_joins(cg, &state_dir, opts.memory_bytes)) {
                Some(Err(e)) => {
                    abandon(launched.child, cgroup);
                    return Err(e);
                }
                Some(Ok(joins)) => joins,
                None => Vec::new(),
            };
            for (file, how) in &joins {
                fds.push(file.as_raw_fd());
                plan.cgroups.push(*how);
            }
            let child = launched.child;
            let (conn, ready) = match Connection::new(launched.control).map_err(io_err("control socket")) {
                Ok(c) => c,
                Err(e) => {
                    abandon(child, cgroup);
                    return Err(e);
                }
            };
            let setup = Setup::Plan(plan);
            if let Err(e) = conn.send(&setup, &fds).await {
                // init waits for a plan that will not come, or is gone.
                *spare_failed = prebuilt > 0;
                abandon(child, cgroup);
                return Err(io_err("cannot send the plan to init")(e));
            }
            drop((detached, joins));
            let Setup::Plan(plan) = setup else { unreachable!("made above") };
            let offer = match opts.spare.unwrap_or_else(spare::enabled) {
                true => {
                    let layer = series_of.is_some_and(|origin| origin == workdir);
                    spare::Offer::new(key, plan.root, pids, workdir.clone(), layer)
                }
                false => None,
            };
            // A sandbox that took a spare is one of a series: the next one's
            // spare is begun once this one is ready, so that the two do not
            // share the CPU while this one starts; in a burst (this start
            // came right after a stop) at once, since the next sandbox comes
            // as soon as this one is gone (`spare::in_burst`). The first of a
            // process (or after a change) has the machine to itself until its
            // first command is done.
            let series = prebuilt > 0;
            let offer = spare::Offer::make_if(offer, series && spare::in_burst());
            // The environment is known before init is ready (the proxy's port
            // is chosen here), so the first command goes right behind the
            // plan and the proxy's socket, which init makes first.
            let proxy_port = proxy_port();
            let mut env = base_env(&home, inner_uid);
            env.extend(opts.env.clone());
            env.extend(proxy_env(proxy_port));
            env.extend(trust_env);
            // Placeholders (or, with secretMode "env", the values).
            env.extend(secrets.iter().flat_map(|s| s.env()));
            let proxy_asked = conn.ask_socket(|id| Request::Listen { id, port: proxy_port }).await;
            let first = match first {
                Some((argv, extra)) if proxy_asked.is_ok() => {
                    Some(send_spawn(&conn, &env, &workdir, argv, extra).await)
                }
                _ => None,
            };
            let why = match tokio::join!(ready, start_proxy(&conn, proxy, proxy_asked)) {
                (Ok(Ok(upper)), Ok(task)) if upper.is_some() || !passes_upper => {
                    let offer = spare::Offer::make_if(offer, series);
                    return Ok((conn, child, cgroup, task, env, upper, first, offer));
                }
                (Ok(Ok(_)), Ok(task)) => {
                    task.abort();
                    "init did not pass out the WORKDIR's upper layer".to_string()
                }
                (Ok(Ok(_)), Err(e)) => e.to_string(),
                (Ok(Err(why)), _) => why,
                (Err(_), _) => "init ended before it was ready".into(),
            };
            *spare_failed = prebuilt > 0;
            abandon(child, cgroup);
            Err(SandboxError::Setup(why))
        }
        .await;
        match result {
            Ok((conn, child, cgroup, proxy_task, env, upper_fd, first, offer)) => {
                let hooks = opts.hooks.clone();
                let violations = tokio::spawn(report_violations(violations_rx, hooks.clone(), redactor.clone()));
                let mut listeners = vec![proxy_task];
                if let (Some(Ok(fd)), Some(limit)) = (upper_fd.as_ref().map(OwnedFd::try_clone), opts.disk_bytes) {
                    listeners.push(tokio::spawn(watch_disk(fd, limit, hooks.clone())));
                }
                if let (Some(kills), Some(limit)) =
                    (cgroup.as_ref().and_then(SandboxCgroups::oom_kills), opts.memory_bytes)
                {
                    listeners.push(tokio::spawn(watch_memory(kills, limit, hooks.clone())));
                }
                // The WORKDIR's layer is on the host's disk: the floor keeps
                // the host room (`disk_floor`).
                if upper_fd.is_none()
                    && let Ok(at_start) = disk_floor::room(&state_dir)
                {
                    let floor = disk_floor::floor(at_start);
                    let watch = disk_floor::watch(state_dir.clone(), root.clone(), floor, conn.sender(), hooks);
                    listeners.push(tokio::spawn(watch));
                }
                let sandbox = Sandbox {
                    conn,
                    cgroup: Mutex::new(cgroup),
                    child: Mutex::new(Some(child)),
                    state_dir,
                    workdir,
                    env,
                    redactor,
                    running: Mutex::new(HashMap::new()),
                    stopped: AtomicBool::new(false),
                    hooks: opts.hooks.clone(),
                    tasks: Mutex::new(vec![violations]),
                    listeners: Mutex::new(listeners),
                    upper_fd,
                    spare: Mutex::new(offer),
                };
                Ok((sandbox, first))
            }
            Err(e) => {
                let _ = state::remove(&state_dir);
                Err(e)
            }
        }
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub(super) fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// The redactor of this sandbox's SECRET values, if it has any.
    pub fn redactor(&self) -> Option<&Arc<Redactor>> {
        self.redactor.as_ref()
    }

    /// `bytes` with every SECRET value replaced by `[secret NAME]`.
    pub fn redact(&self, bytes: Vec<u8>) -> Vec<u8> {
        match &self.redactor {
            Some(r) => r.redact_bytes(&bytes).into_owned(),
            None => bytes,
        }
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn track(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut t) = self.tasks.lock() {
            t.retain(|t| !t.is_finished());
            t.push(task);
        }
    }

    pub(super) fn track_listener(&self, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut t) = self.listeners.lock() {
            t.push(task);
        }
    }

    /// The host directory where the WORKDIR's changes collect: in the state
    /// dir, or (with a disk limit, or a state dir on an overlayfs)
    /// `/proc/self/fd/<n>`, a link into the sandbox's mount namespace that
    /// this process can follow.
    pub fn workdir_upper(&self) -> PathBuf {
        match &self.upper_fd {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => plan::workdir_upper(&self.state_dir),
        }
    }

    /// Points the upper's fd number at an empty directory (deleted with the
    /// state dir), so the scratch tmpfs and its memory go with the sandbox
    /// while a path from `workdir_upper()` can never name another file.
    fn release_upper(&self) {
        let Some(fd) = &self.upper_fd else { return };
        let empty = self.state_dir.join("released-upper");
        let _ = std::fs::create_dir(&empty);
        let open_dir = |path: &Path| {
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(path)
        };
        if let Ok(dir) = open_dir(&empty).or_else(|_| open_dir(Path::new("/proc/self/fdinfo"))) {
            // SAFETY: both fds are open and ours; dup3 atomically replaces what
            // `fd`'s number refers to, which `upper_fd` still owns.
            unsafe { libc::dup3(dir.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) };
        }
    }

    /// Whether any process runs in the sandbox (the reference's meaning).
    pub fn is_running(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst)
            && self.conn.closed().is_none()
            && self.running.lock().is_ok_and(|r| !r.is_empty())
    }

    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.running.lock().map(|r| r.values().cloned().collect()).unwrap_or_default()
    }

    /// Starts a command: its pipes and exit, or why it did not start.
    pub(super) async fn launch(
        &self,
        name: &str,
        kind: &str,
        argv: Vec<String>,
        extra_env: BTreeMap<String, String>,
    ) -> Result<Launch, SandboxError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(SandboxError::Stopped);
        }
        if let Some(why) = self.conn.closed() {
            return Err(SandboxError::Died(why));
        }
        let pending = send_spawn(&self.conn, &self.env, &self.workdir, argv, extra_env).await?;
        self.confirm(name, kind, pending).await
    }

    /// Waits for init's word on a sent command: started (then `getStatus()`
    /// lists it), or why not.
    async fn confirm(&self, name: &str, kind: &str, pending: Pending) -> Result<Launch, SandboxError> {
        let Pending { id, started, exited, stdin, stdout, stderr } = pending;
        match started.await {
            Ok(Ok(pid)) => {
                if let Ok(mut r) = self.running.lock() {
                    r.insert(id, ProcessInfo { name: name.into(), kind: kind.into(), pid });
                }
                Ok(Launch::Started(Started { id, pid, stdin, stdout, stderr, exited }))
            }
            Ok(Err(_)) | Err(_) if self.conn.closed().is_some() => {
                Err(SandboxError::Died(self.conn.closed().unwrap_or_default()))
            }
            Ok(Err((errno, message))) => {
                let code = if errno == libc::ENOENT || errno == libc::EACCES { 127 } else { 126 };
                Ok(Launch::NotStarted { code, message: format!("bun-sandbox: {message}\n") })
            }
            Err(_) => Err(SandboxError::Died(self.conn.closed().unwrap_or_default())),
        }
    }

    /// Done with a command: init forgets its group, `getStatus()` drops it.
    pub(super) async fn forget(&self, id: u64) {
        let _ = self.conn.send(&Request::Forget { id }, &[]).await;
        if let Ok(mut r) = self.running.lock() {
            r.remove(&id);
        }
    }

    /// Signals a command's process group.
    pub(super) async fn signal(&self, id: u64, signal: i32) {
        let _ = self.conn.send(&Request::Signal { id, signal }, &[]).await;
    }

    /// Runs one command to its end, collecting its output.
    pub async fn exec(&self, name: &str, kind: &str, opts: ExecOptions) -> Result<ExecOutput, SandboxError> {
        let launch = self.launch(name, kind, opts.argv, opts.env).await?;
        self.collect(name, launch, opts.stdin, opts.timeout).await
    }

    /// Runs the command [`Sandbox::start_with`] sent with the plan to its end
    /// (its argv and variables went with it; `stdin` and `timeout` apply here).
    pub async fn exec_pending(
        &self,
        name: &str,
        kind: &str,
        pending: Pending,
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SandboxError> {
        let launch = self.confirm(name, kind, pending).await?;
        self.collect(name, launch, stdin, timeout).await
    }

    /// Feeds a started command its input and collects its output and exit,
    /// killing it (and what it started) past `timeout`.
    async fn collect(
        &self,
        name: &str,
        launch: Launch,
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SandboxError> {
        let started = match launch {
            Launch::Started(s) => s,
            Launch::NotStarted { code, message } => {
                return Ok(ExecOutput { exit_code: Some(code), stderr: message.into_bytes(), ..Default::default() });
            }
        };
        let Started { id, stdin: stdin_w, stdout: stdout_r, stderr: stderr_r, exited, .. } = started;
        let stdin_data = stdin.unwrap_or_default();
        let feed = async move {
            let mut tx = tokio::net::unix::pipe::Sender::from_owned_fd(stdin_w)?;
            // A command that does not read its input is not an error.
            let _ = tx.write_all(&stdin_data).await;
            Ok::<_, io::Error>(())
        };
        let collect = |fd: OwnedFd| async move {
            let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
            let mut out = Vec::new();
            rx.read_to_end(&mut out).await?;
            Ok::<_, io::Error>(out)
        };
        let all = async {
            let (_, out, err, exit) = tokio::join!(feed, collect(stdout_r), collect(stderr_r), exited);
            (out, err, exit)
        };
        tokio::pin!(all);
        let mut timed_out = false;
        let result = match timeout {
            None => Some((&mut all).await),
            Some(limit) => match tokio::time::timeout(limit, &mut all).await {
                Ok(r) => Some(r),
                Err(_) => {
                    // Past its time: its whole process group goes, including
                    // what it left running after it exited itself.
                    timed_out = true;
                    let _ = self.conn.send(&Request::Signal { id, signal: libc::SIGKILL }, &[]).await;
                    let detail = format!(
                        "{name} ran past its time limit of {} ms and was killed, with what it started",
                        limit.as_millis()
                    );
                    self.hooks.violation(Violation { kind: "limit", detail, host: None }).await;
                    tokio::time::timeout(KILL_WAIT, &mut all).await.ok()
                }
            },
        };
        self.forget(id).await;
        self.offer_spare();
        let Some((out, err, exit)) = result else {
            // Something outside its group still holds its output open.
            return Ok(ExecOutput { exit_code: None, signal: Some(libc::SIGKILL), timed_out, ..Default::default() });
        };
        let exit = exit.unwrap_or(Exit { code: None, signal: Some(libc::SIGKILL) });
        Ok(ExecOutput {
            exit_code: exit.code,
            signal: exit.signal,
            stdout: self.redact(out.map_err(io_err("reading the command's output"))?),
            stderr: self.redact(err.map_err(io_err("reading the command's error output"))?),
            timed_out,
        })
    }

    /// Makes the next sandbox's spare, the first time.
    fn offer_spare(&self) {
        if let Some(offer) = self.spare.lock().ok().and_then(|mut o| o.take()) {
            offer.make();
        }
    }

    /// SIGTERM to every command, SIGKILL after a grace period, then init goes
    /// and the state dir with it. Idempotent.
    pub async fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.offer_spare();
        spare::stopped();
        // SIGTERM to every process (what the commands started too, so a
        // server behind `sh -c` shuts down cleanly); PID 1 sends SIGKILL to
        // what is left once the grace period is over, reaps everything and
        // exits, closing the socket.
        let _ = self.conn.send(&Request::Stop { grace_ms: GRACE.as_millis() as u64 }, &[]).await;
        if tokio::time::timeout(GRACE + SHUTDOWN_WAIT, self.conn.wait_gone()).await.is_err() {
            // A PID 1 that does not answer: kill the helper, and with it PID 1
            // (parent-death signal) and so the whole pid namespace.
            if let Ok(mut child) = self.child.lock()
                && let Some(c) = child.as_mut()
            {
                let _ = c.kill();
            }
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.conn.wait_gone()).await;
        }
        for l in self.listeners.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default() {
            l.abort();
        }
        // The helper's own exit tears the namespaces down, which can take a
        // while on a busy host; nothing of the sandbox runs any more, so it is
        // reaped (its pids cgroup and state dir removed) off this path.
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        let cgroup = self.cgroup.lock().ok().and_then(|mut c| c.take());
        // Every process is gone, so every pipe is closed: the pumps finish
        // delivering what was written, and no callback runs after this.
        for t in self.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default() {
            let _ = t.await;
        }
        self.release_upper();
        // Gone from its path now; deleted once the helper has exited.
        let discarded = state::discard(&self.state_dir).ok().flatten();
        reaper::finish(child, cgroup, discarded);
    }
}

/// The egress proxy's listening socket, made by init inside the sandbox's
/// network namespace (so the sandbox reaches it on its own loopback), served
/// here: nothing leaves the sandbox but through code that checks NET.
async fn start_proxy(
    conn: &Connection,
    config: crate::net::ProxyConfig,
    asked: Result<AskedSocket, SocketFailure>,
) -> Result<tokio::task::JoinHandle<()>, SandboxError> {
    let made = match asked {
        Ok(asked) => conn.socket_made(asked).await,
        Err(e) => Err(e),
    };
    let fd = made.map_err(|e| match e {
        SocketFailure::Refused(why) => SandboxError::Setup(format!("cannot listen for the egress proxy inside: {why}")),
        SocketFailure::Gone(why) => SandboxError::Died(why),
        SocketFailure::Send(e) => io_err("cannot ask init for the proxy socket")(e),
    })?;
    crate::net::serve(fd, config).map_err(io_err("cannot serve the egress proxy"))
}

/// The proxy's port inside: drawn from the kernel's default ephemeral range
/// (where servers seldom listen), before init exists, so that the commands'
/// environment is known before it is ready. The network namespace is fresh,
/// and init makes the proxy's socket before it starts any command, so the
/// port is free.
fn proxy_port() -> u16 {
    const FIRST: u16 = 32768;
    const COUNT: u16 = 61000 - FIRST;
    let mut bytes = [0u8; 2];
    let drawn = match crate::secrets::fill_random(&mut bytes) {
        Ok(()) => u16::from_ne_bytes(bytes),
        Err(_) => std::process::id() as u16,
    };
    FIRST + drawn % COUNT
}

/// Sends init a command with fresh pipes for its stdio (their other ends go
/// with it); init answers `Spawned` or `SpawnFailed`.
async fn send_spawn(
    conn: &Connection,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    argv: Vec<String>,
    extra_env: BTreeMap<String, String>,
) -> Result<Pending, SandboxError> {
    let id = conn.next_id();
    let (started, exited) = conn.expect_spawn(id).map_err(|e| SandboxError::Died(e.to_string()))?;
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = output_pipe()?;
    let (stderr_r, stderr_w) = output_pipe()?;
    let mut env = env.clone();
    env.extend(extra_env);
    let spawn = Spawn { id, argv, cwd: cwd.to_path_buf(), env };
    let sent =
        conn.send(&Request::Spawn(spawn), &[stdin_r.as_raw_fd(), stdout_w.as_raw_fd(), stderr_w.as_raw_fd()]).await;
    if let Err(e) = sent {
        // init is gone, and the reader has not seen its end yet: say so as
        // the reader will (a pending read of its end comes at once).
        if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.wait_gone()).await;
            if let Some(why) = conn.closed() {
                return Err(SandboxError::Died(why));
            }
        }
        return Err(io_err("cannot send the command to the sandbox")(e));
    }
    Ok(Pending { id, started, exited, stdin: stdin_w, stdout: stdout_r, stderr: stderr_r })
}

/// How programs inside find the proxy: every common variable, both cases.
fn proxy_env(port: u16) -> BTreeMap<String, String> {
    let http = format!("http://127.0.0.1:{port}");
    let socks = format!("socks5h://127.0.0.1:{port}");
    let mut env = BTreeMap::new();
    for (name, value) in [("HTTP_PROXY", &http), ("HTTPS_PROXY", &http), ("ALL_PROXY", &socks)] {
        env.insert(name.to_string(), value.clone());
        env.insert(name.to_lowercase(), value.clone());
    }
    env.insert("NO_PROXY".into(), "localhost,127.0.0.1,::1".into());
    env.insert("no_proxy".into(), "localhost,127.0.0.1,::1".into());
    // Node's fetch and http honour the variables only when asked to.
    env.insert("NODE_USE_ENV_PROXY".into(), "1".into());
    env
}

/// Reports, once, that the tmpfs of every writable layer is full: the writer
/// got ENOSPC from the kernel; the sandbox runs on. Ends at `stop()`.
/// The files of the cgroups PID 1 joins with its plan: its pids cgroup
/// unless a spare's PID 1 is in it already, and with `memory_bytes` the
/// memory cgroup that limits the sandbox's processes together (cgroup v1;
/// on cgroup2 the same cgroup). Where the host has no memory controller,
/// `RLIMIT_DATA` alone limits each process, as for an ordinary user.
fn cgroup_joins(
    cg: &mut SandboxCgroups,
    state_dir: &Path,
    memory_bytes: Option<u64>,
) -> Result<Vec<(std::fs::File, CgroupJoin)>, SandboxError> {
    let mut joins = Vec::new();
    if !cg.joined {
        joins.push(cg.join_file().map_err(io_err("cannot open the sandbox's pids cgroup"))?);
    }
    if let Some(bytes) = memory_bytes {
        let name = state::name(state_dir);
        match cg.limit_memory(&name, bytes) {
            Ok(join) => joins.extend(join),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
            Err(e) => return Err(io_err("cannot limit the sandbox's memory")(e)),
        }
    }
    Ok(joins)
}

async fn watch_disk(upper: OwnedFd, limit: u64, hooks: Hooks) {
    let mut tick = tokio::time::interval(LIMIT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(st) = nix::sys::statfs::fstatfs(&upper) else { return };
        let free = st.blocks_available().saturating_mul(u64::try_from(st.block_size()).unwrap_or(0));
        if free < 4096 {
            let detail = format!(
                "the sandbox's writable layers reached limits.diskBytes ({limit} bytes): writes fail with \"No space left on device\""
            );
            hooks.violation(Violation { kind: "limit", detail, host: None }).await;
            return;
        }
    }
}

/// Reports each process the kernel kills for the sandbox's memory limit
/// (a memory cgroup's), polled like the disk.
async fn watch_memory(kills: OomKills, limit: u64, hooks: Hooks) {
    let mut tick = tokio::time::interval(LIMIT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = 0;
    loop {
        tick.tick().await;
        let Some(now) = kills.read() else { return };
        if now > seen {
            let detail = format!(
                "the sandbox's processes together reached limits.memoryBytes ({limit} bytes): the kernel killed {} of them",
                match now - seen {
                    1 => "one".to_string(),
                    n => n.to_string(),
                }
            );
            seen = now;
            hooks.violation(Violation { kind: "limit", detail, host: None }).await;
        }
    }
}

/// Refusals reach `onViolation` in order; ends when the proxy is gone.
async fn report_violations(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::net::Violation>,
    hooks: Hooks,
    redactor: Option<Arc<Redactor>>,
) {
    let redact = |s: String| match &redactor {
        Some(r) => r.redact_str(&s).into_owned(),
        None => s,
    };
    while let Some(v) = rx.recv().await {
        hooks.violation(Violation { kind: "net", detail: redact(v.detail), host: Some(redact(v.host)) }).await;
    }
}

/// The seccomp program as words, built once per process.
fn filter_words() -> Result<Vec<u64>, SandboxError> {
    static WORDS: std::sync::OnceLock<Result<Vec<u64>, String>> = std::sync::OnceLock::new();
    WORDS
        .get_or_init(|| {
            let arch = seccomp::host_arch().ok_or_else(|| "unsupported architecture".to_string())?;
            let filter = seccomp::sandbox_filter(arch).map_err(|e| e.to_string())?;
            Ok(seccomp::to_words(&filter))
        })
        .clone()
        .map_err(SandboxError::Seccomp)
}

/// Where a sandbox's init comes from: a spare, or a helper started now.
/// One lives in each start, so the spare's size is of no matter.
#[allow(clippy::large_enum_variant)]
enum Starting {
    Spare(spare::Spare),
    Fresh(Pin<Box<dyn Future<Output = std::io::Result<Launched>> + Send>>),
}

impl Starting {
    /// A helper started for `key` now, with the ids as its first message.
    fn fresh(key: &spare::Key) -> Result<Starting, SandboxError> {
        let ids = crate::protocol::encode(&key.ids).map_err(io_err("cannot encode the ids"))?;
        Ok(Starting::Fresh(Box::pin(launcher::launch(key.init.clone(), vec![(ids, Vec::new())]))))
    }

    /// The init, once it runs, and its pids cgroup (a root host user's):
    /// the spare's own, or one made now and named after the state dir.
    async fn started(self, pids: u64, state_dir: &Path) -> Result<(Launched, Option<SandboxCgroups>), SandboxError> {
        let limit = |e: std::io::Error| {
            SandboxError::Setup(format!(
                "cannot limit the sandbox's processes: RLIMIT_NPROC does not bind the root user and no pids cgroup could be made: {e}"
            ))
        };
        let launching = match self {
            Starting::Spare(spare) => return spare.into_parts(pids).map_err(limit),
            Starting::Fresh(launching) => launching,
        };
        // The kernel does not apply RLIMIT_NPROC to the host's root user.
        let cgroup = match nix::unistd::getuid().is_root() {
            true => {
                let name = state::name(state_dir);
                match SandboxCgroups::create(&name, pids) {
                    Ok(cg) => Some(cg),
                    Err(e) => {
                        Starting::Fresh(launching).abandon().await;
                        return Err(limit(e));
                    }
                }
            }
            false => None,
        };
        match launching.await {
            Ok(launched) => Ok((launched, cgroup)),
            Err(e) => {
                reaper::finish(None, cgroup, None);
                Err(io_err("cannot start the sandbox's init process")(e))
            }
        }
    }

    /// Ends what was started, for a sandbox that will not be.
    async fn abandon(self) {
        match self {
            Starting::Spare(spare) => spare.discard(),
            Starting::Fresh(launching) => {
                if let Ok(launched) = launching.await {
                    abandon(launched.child, None);
                }
            }
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("cannot make a pipe")(e.into()))
}

/// A pipe for a command's output, 1 MiB where the host allows it (64 KiB
/// otherwise): a fast writer wakes the reader less often. The memory is only
/// used while output waits in it.
fn output_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let (r, w) = pipe()?;
    let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(OUTPUT_PIPE));
    Ok((r, w))
}

const OUTPUT_PIPE: i32 = 1 << 20;

/// The environment every command starts from (SPEC §2): nothing of the
/// host's but what a program needs to run.
fn base_env(home: &Path, uid: u32) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    env.insert("PATH".into(), path);
    env.insert("HOME".into(), home.to_string_lossy().into_owned());
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "sandbox".into());
    env.insert("USER".into(), user.clone());
    env.insert("LOGNAME".into(), user);
    env.insert("TERM".into(), std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()));
    env.insert("LANG".into(), std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()));
    env.insert("SANDBOX".into(), "1".into());
    env
}
