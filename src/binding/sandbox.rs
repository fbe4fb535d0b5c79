//! The `Sandbox` class (SPEC §2) over `crate::supervisor`: exec, the
//! lifecycle (setup, services, dev, tests, run), diff and extraction, and
//! `runIsolated` and `checkIsolationSupport`.

use super::errors::{expect_string, type_error};
use super::init_path::find_init;
use super::options::{Options, options_from_js};
use super::sandboxfile::config_from_js;
use super::support::IsolationSupport;
use crate::fs as fsx;
use crate::fs::outputs::OutputMatcher;
use crate::policy::net::NetPolicy;
use crate::sandboxfile::{self as sf, Sandboxfile};
use crate::secrets::{SecretSpec, Secrets};
use crate::supervisor::{self as sv, ExecOptions, StartOptions};
use napi::Env;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

type KeepAlive = napi::threadsafe_function::ThreadsafeFunction<(), (), (), Status, false, false>;

pub(super) struct Inner {
    hooks: sv::Hooks,
    /// Published URLs by process name.
    urls: std::sync::Mutex<BTreeMap<String, String>>,
    /// A strong (not weak) threadsafe function held while DEV or SERVICE
    /// processes run: it keeps the host's event loop alive until `stop()`.
    keepalive: std::sync::Mutex<Option<KeepAlive>>,
    pub(super) config: Sandboxfile,
    net: NetPolicy,
    outputs: OutputMatcher,
    pub(super) options: Options,
    pub(super) sandbox: OnceCell<Arc<sv::Sandbox>>,
    /// Log tails and WATCH restarters, ended by `stop()`.
    pub(super) background: super::logs::Background,
    stopped: std::sync::atomic::AtomicBool,
    /// SECRET values with their placeholders, read once on the JS thread
    /// (`loadSecrets()`, or the first call that needs the sandbox).
    secrets: std::sync::OnceLock<std::result::Result<Arc<Secrets>, String>>,
}

fn sandbox_error(e: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(Status::GenericFailure, e.to_string())
}

impl Inner {
    /// Reads the SECRET values (SPEC §4): `options.env.NAME`, else the host's
    /// `process.env.NAME`; a missing one is a warning and stays absent.
    /// Idempotent: the first call decides. Runs on the JS thread, since
    /// `process.env` is what JavaScript sees, not the C environment. Throws
    /// only when JavaScript does; values that cannot be used (too short for
    /// a placeholder) are kept as the error that starting the sandbox gives.
    pub(super) fn read_secrets(&self, env: &Env) -> Result<()> {
        if self.secrets.get().is_some() {
            return Ok(());
        }
        let mut specs = Vec::new();
        if !self.config.secrets.is_empty() {
            let process_env: Object =
                env.get_global()?.get_named_property::<Object>("process")?.get_named_property("env")?;
            let mut seen = std::collections::HashSet::new();
            // A name declared twice (validate warns) is one secret.
            for name in self.config.secrets.iter().filter(|n| seen.insert(n.as_str())) {
                let value = match self.options.env.get(name) {
                    Some(v) => Some(v.clone()),
                    None => process_env.get::<String>(name)?,
                };
                let Some(value) = value else {
                    eprintln!(
                        "bun-sandbox: warning: SECRET {name} has no value (set the environment variable {name}, options.env.{name}, or -e {name}=... on the command line); it is absent in the sandbox"
                    );
                    continue;
                };
                let hosts = self.config.hosts_of_secret(name).map(<[String]>::to_vec).unwrap_or_default();
                specs.push(SecretSpec { name: name.clone(), value, hosts });
            }
        }
        let secrets = Secrets::new(specs, self.options.secret_mode).map(Arc::new).map_err(|e| e.to_string());
        let _ = self.secrets.set(secrets);
        Ok(())
    }

    /// The secrets read by [`Inner::read_secrets`], or why they cannot be used.
    pub(super) fn secrets(&self) -> Result<Arc<Secrets>> {
        match self.secrets.get() {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(why)) => Err(napi::Error::new(Status::InvalidArg, why.clone())),
            None => Err(sandbox_error("SECRET values were not read")),
        }
    }

    /// The environment, created on first use.
    pub(super) async fn sandbox(&self) -> Result<Arc<sv::Sandbox>> {
        self.sandbox_with(None).await.map(|(sandbox, _)| sandbox)
    }

    /// The environment, created on first use; when this call creates it,
    /// `first` goes to init with the plan and comes back pending.
    async fn sandbox_with(&self, first: Option<sv::FirstCommand>) -> Result<(Arc<sv::Sandbox>, Option<sv::Pending>)> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sandbox_error("the sandbox is stopped: create a new Sandbox"));
        }
        let sent = std::sync::Mutex::new(None);
        let started = self
            .sandbox
            .get_or_try_init(|| async {
                let base_dir = match &self.options.cwd {
                    Some(cwd) => cwd.clone(),
                    None => std::env::current_dir().map_err(sandbox_error)?,
                };
                // Every entry point reads them first, on the JS thread.
                let secrets = self.secrets()?;
                // A secret's real value never reaches the sandbox through
                // options.env (that is where it may come from).
                let mut env = self.options.env.clone();
                env.retain(|name, _| !self.config.secrets.contains(name));
                let opts = StartOptions {
                    from: self.config.from.clone(),
                    workdir: self.config.workdir.clone(),
                    base_dir,
                    env,
                    secrets: Some(secrets),
                    extra_ca_certs: self.options.extra_ca_certs.clone(),
                    plaintext_secrets: self.options.plaintext_secrets,
                    uid: self.options.uid,
                    gid: self.options.gid,
                    pids: self.options.pids,
                    cpu_seconds: self.options.cpu_seconds,
                    memory_bytes: self.options.memory_bytes,
                    disk_bytes: self.options.disk_bytes,
                    net: self.config.net.clone(),
                    resolve: self.options.resolve.clone(),
                    init: find_init()?,
                    hooks: self.hooks.clone(),
                    spare: self.options.spare,
                };
                let (sandbox, pending) = sv::Sandbox::start_with(opts, first).await.map_err(sandbox_error)?;
                if let Ok(mut sent) = sent.lock() {
                    *sent = pending;
                }
                Ok::<_, napi::Error>(Arc::new(sandbox))
            })
            .await?;
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            started.stop().await;
            return Err(sandbox_error("the sandbox is stopped: create a new Sandbox"));
        }
        let pending = sent.into_inner().ok().flatten().transpose().map_err(sandbox_error)?;
        Ok((started.clone(), pending))
    }

    async fn exec(
        &self,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        stdin: Option<String>,
        timeout_ms: Option<u64>,
    ) -> Result<ExecResult> {
        let timeout = timeout_ms.or(self.options.timeout_ms).map(Duration::from_millis);
        let stdin = stdin.map(String::into_bytes);
        // On a cold start the command travels with the plan.
        let first = self.sandbox.get().is_none().then(|| (argv.clone(), env.clone()));
        let (sandbox, pending) = self.sandbox_with(first).await?;
        let out = match pending {
            Some(pending) => sandbox.exec_pending("exec", "exec", pending, stdin, timeout).await,
            None => sandbox.exec("exec", "exec", ExecOptions { argv, env, stdin, timeout }).await,
        }
        .map_err(sandbox_error)?;
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.timed_out {
            stderr.push_str(&format!(
                "bun-sandbox: the command ran past its time limit of {} ms and was killed\n",
                timeout.map(|t| t.as_millis()).unwrap_or_default()
            ));
        }
        // A signal is the shell's 128+N, except a timeout, which is null.
        let code = out.exit_code.or(out.signal.map(|s| 128 + s)).filter(|_| !out.timed_out);
        Ok(ExecResult {
            exit_code: code.map_or(Either::B(Null), Either::A),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        })
    }

    fn env_for_jobs(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// RUN lines in order through `/bin/sh -c`, output under the name
    /// `setup`; false at the first that fails (or when stopped meanwhile).
    async fn run_setup(&self) -> Result<bool> {
        let sandbox = self.sandbox().await?;
        for cmd in &self.config.run_commands {
            if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(false);
            }
            let job =
                sandbox.spawn_job("setup", "run", shell(cmd), self.env_for_jobs()).await.map_err(sandbox_error)?;
            if job.wait().await.code != Some(0) {
                return Ok(false);
            }
        }
        Ok(!self.stopped.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Starts a background process; with a PORT, publishes it and waits
    /// until it accepts connections.
    async fn start_background(&self, name: &str, kind: &str, command: &str, port: Option<u16>) -> Result<Arc<sv::Job>> {
        let sandbox = self.sandbox().await?;
        let job = sandbox.spawn_job(name, kind, shell(command), self.env_for_jobs()).await.map_err(sandbox_error)?;
        if let Some(port) = port {
            let timeout = Duration::from_millis(self.options.ready_timeout_ms.unwrap_or(READY_TIMEOUT_MS));
            sandbox.wait_ready(&job, port, timeout).await.map_err(sandbox_error)?;
            let host_port = sandbox.publish(port).await.map_err(sandbox_error)?;
            if let Ok(mut urls) = self.urls.lock() {
                urls.insert(name.to_string(), format!("http://127.0.0.1:{host_port}"));
            }
        } else if let Some(exit) = job.exited() {
            return Err(sandbox_error(format!("{name} exited at once with {}", sv::jobs::describe_exit(exit))));
        }
        self.watch_background(&sandbox, &job, name, kind, shell(command), self.env_for_jobs())?;
        Ok(job)
    }

    async fn start_services(&self) -> Result<()> {
        let starts = self.config.services.iter().map(|s| self.start_background(&s.name, "service", &s.command, s.port));
        for r in futures::future::join_all(starts).await {
            r?;
        }
        Ok(())
    }

    async fn start_dev(&self) -> Result<Option<DevProcess>> {
        let Some(dev) = &self.config.dev else { return Ok(None) };
        let name = dev.name.clone().unwrap_or_else(|| "dev".into());
        let job = self.start_background(&name, "dev", &dev.command, dev.port).await?;
        Ok(Some(DevProcess { name, pid: job.pid }))
    }

    async fn run_tests(&self) -> Result<TestResults> {
        let sandbox = self.sandbox().await?;
        let mut results = Vec::new();
        for (i, t) in self.config.tests.iter().enumerate() {
            if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let name = t.name.clone().unwrap_or_else(|| format!("test-{i}"));
            let job = sandbox
                .spawn_job(&name, "test", shell(&t.command), self.env_for_jobs())
                .await
                .map_err(sandbox_error)?;
            let exit = job.wait().await;
            let code = exit.code.or(exit.signal.map(|s| 128 + s));
            results.push(TestResult {
                name,
                passed: exit.code == Some(0),
                exit_code: code.map_or(Either::B(Null), Either::A),
            });
        }
        let passed = results.len() == self.config.tests.len() && results.iter().all(|r| r.passed);
        Ok(TestResults { passed, results })
    }

    /// loadSecrets → runSetup → startServices → startDev → runTests.
    async fn run(&self) -> Result<RunResult> {
        if !self.run_setup().await? {
            return Ok(RunResult { success: false, test_results: None });
        }
        self.start_services().await?;
        self.start_dev().await?;
        let test_results = if self.config.tests.is_empty() { None } else { Some(self.run_tests().await?) };
        if let Some(dir) = &self.options.extract_dir {
            self.extract(dir.clone()).await?;
        }
        Ok(RunResult { success: test_results.as_ref().is_none_or(|t| t.passed), test_results })
    }

    /// OUTPUT changes so far. Before the first command there are none.
    async fn diff(&self) -> Result<fsx::Diff> {
        let Some(sandbox) = self.sandbox.get() else { return Ok(fsx::Diff::default()) };
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sandbox_error(
                "the sandbox is stopped: its changes are gone (use options.extractDir to keep them)",
            ));
        }
        let (upper, lower, outputs) = (sandbox.workdir_upper(), sandbox.workdir().to_path_buf(), self.outputs.clone());
        tokio::task::spawn_blocking(move || fsx::diff(&upper, &lower, &outputs))
            .await
            .map_err(sandbox_error)?
            .map_err(sandbox_error)
    }

    async fn extract(&self, dest: PathBuf) -> Result<Vec<String>> {
        let Some(sandbox) = self.sandbox.get() else { return Ok(Vec::new()) };
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sandbox_error(
                "the sandbox is stopped: its changes are gone (use options.extractDir to keep them)",
            ));
        }
        let (upper, lower, outputs) = (sandbox.workdir_upper(), sandbox.workdir().to_path_buf(), self.outputs.clone());
        let redactor = sandbox.redactor().cloned();
        let report = tokio::task::spawn_blocking(move || {
            fsx::extract_redacted(&upper, &lower, &outputs, &dest, redactor.as_ref())
        })
        .await
        .map_err(sandbox_error)?
        .map_err(sandbox_error)?;
        Ok(report.paths())
    }

    /// Extracts to `options.extractDir` when set, then tears down.
    async fn stop(&self) -> Result<Vec<String>> {
        let mut extracted = Vec::new();
        let first = !self.stopped.load(std::sync::atomic::Ordering::SeqCst);
        if let (true, Some(dir)) = (first, &self.options.extract_dir) {
            extracted = self.extract(dir.clone()).await?;
        }
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        self.background.stop_all();
        if let Some(sandbox) = self.sandbox.get() {
            sandbox.stop().await;
        }
        if let Ok(mut k) = self.keepalive.lock() {
            k.take();
        }
        Ok(extracted)
    }
}

/// How long a PORT may take to accept connections, unless
/// `options.readyTimeoutMs` says otherwise.
const READY_TIMEOUT_MS: u64 = 60_000;

fn shell(cmd: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

#[napi(object)]
pub struct DevProcess {
    pub name: String,
    pub pid: i32,
}

#[napi(object)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    #[napi(ts_type = "number | null")]
    pub exit_code: Either<i32, Null>,
}

#[napi(object)]
pub struct TestResults {
    pub passed: bool,
    pub results: Vec<TestResult>,
}

#[napi(object)]
pub struct RunResult {
    pub success: bool,
    pub test_results: Option<TestResults>,
}

#[napi(object)]
pub struct DiffResult {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
}

/// `host` or `host:port` (and `[v6]:port`).
fn split_port(s: &str) -> (&str, Option<u16>) {
    if let Some((host, port)) = s.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
        && (!host.contains(':') || host.starts_with('['))
    {
        return (host, Some(port));
    }
    (s, None)
}

impl Inner {
    fn new(config: Sandboxfile, options: Options) -> Result<Inner> {
        let invalid = |e: String| napi::Error::new(Status::InvalidArg, e);
        let net = NetPolicy::new(&config.net).map_err(|e| invalid(e.to_string()))?;
        let outputs = OutputMatcher::new(&config.outputs).map_err(|e| invalid(e.to_string()))?;
        Ok(Inner {
            hooks: options.hooks.clone(),
            config,
            net,
            outputs,
            options,
            sandbox: OnceCell::new(),
            stopped: Default::default(),
            urls: Default::default(),
            keepalive: Default::default(),
            background: Default::default(),
            secrets: Default::default(),
        })
    }
}

#[napi(object)]
pub struct ExecResult {
    /// `null` when the command did not exit by itself (killed, timed out).
    #[napi(ts_type = "number | null")]
    pub exit_code: Either<i32, Null>,
    pub stdout: String,
    pub stderr: String,
}

#[napi(object)]
pub struct ProcessStatus {
    pub name: String,
    #[napi(ts_type = "'run' | 'dev' | 'service' | 'test' | 'exec'")]
    pub r#type: String,
    pub pid: i32,
}

#[napi]
pub struct Sandbox {
    pub(super) inner: Arc<Inner>,
}

fn argv_from_js(env: &Env, command: Unknown<'_>) -> Result<Vec<String>> {
    match command.get_type()? {
        // A string is a shell command line.
        ValueType::String => Ok(vec!["/bin/sh".into(), "-c".into(), expect_string(env, command, "command")?]),
        ValueType::Object => {
            let argv: Vec<String> = env
                .from_js_value(command)
                .map_err(|_| type_error(env, "command must be a string or an array of strings"))?;
            if argv.is_empty() {
                return Err(type_error(env, "command must not be an empty array"));
            }
            Ok(argv)
        }
        _ => Err(type_error(env, "command must be a string or an array of strings")),
    }
}

#[napi]
impl Sandbox {
    #[napi(constructor, ts_args_type = "config: Sandboxfile, options?: SandboxOptions")]
    pub fn new(env: Env, config: Unknown, options: Option<Unknown>) -> Result<Self> {
        let config = config_from_js(&env, config, "new Sandbox(config): config")?;
        let report = sf::validate(&config);
        if !report.errors.is_empty() {
            return Err(napi::Error::new(
                Status::InvalidArg,
                format!("the Sandboxfile is not valid:\n  {}", report.errors.join("\n  ")),
            ));
        }
        let options = options_from_js(&env, options)?;
        Ok(Sandbox { inner: Arc::new(Inner::new(config, options)?) })
    }

    /// Whether NET lets the sandbox reach `hostname` (optionally `host:port`),
    /// with the same matcher the egress proxy uses.
    #[napi]
    pub fn is_network_allowed(&self, env: Env, hostname: Unknown) -> Result<bool> {
        let hostname = expect_string(&env, hostname, "isNetworkAllowed(hostname): hostname")?;
        let (host, port) = split_port(&hostname);
        Ok(self.inner.net.allows(host, port).is_some())
    }

    /// The OUTPUT changes so far: added, modified, deleted (paths relative to WORKDIR).
    #[napi(ts_return_type = "Promise<{ added: string[]; modified: string[]; deleted: string[] }>")]
    pub fn diff<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, DiffResult>> {
        let inner = self.inner.clone();
        env.spawn_future(async move {
            let d = inner.diff().await?;
            Ok(DiffResult { added: d.added, modified: d.modified, deleted: d.deleted })
        })
    }

    /// Applies the OUTPUT changes to `destDir`; resolves with the relative paths written or deleted.
    #[napi(ts_args_type = "destDir: string", ts_return_type = "Promise<string[]>")]
    pub fn extract_outputs<'e>(&self, env: &'e Env, dest_dir: Unknown<'e>) -> Result<PromiseRaw<'e, Vec<String>>> {
        let dest = PathBuf::from(expect_string(env, dest_dir, "extractOutputs(destDir): destDir")?);
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.extract(dest).await })
    }

    /// `http://127.0.0.1:<port>` where a DEV or SERVICE PORT is published on the host.
    #[napi(ts_return_type = "string | undefined")]
    pub fn get_service_url(&self, name: String) -> Either<String, ()> {
        let url = self.inner.urls.lock().ok().and_then(|u| u.get(&name).cloned());
        url.map_or(Either::B(()), Either::A)
    }

    /// Holds the host's event loop open until `stop()` (background processes run).
    fn keep_alive(&self, env: &Env) -> Result<()> {
        let Ok(mut k) = self.inner.keepalive.lock() else { return Ok(()) };
        if k.is_none() && !self.inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let f = env.create_function_from_closure::<(), (), _>("bunSandboxKeepAlive", |_| Ok(()))?;
            *k = Some(f.build_threadsafe_function().callee_handled::<false>().build()?);
        }
        Ok(())
    }

    /// Reads the SECRET values (`options.env`, else `process.env`); a missing
    /// one is a warning. Called by every method that needs the sandbox, so
    /// calling it is optional; the first call decides.
    #[napi]
    pub fn load_secrets(&self, env: Env) -> Result<()> {
        self.inner.read_secrets(&env)?;
        self.inner.secrets().map(drop)
    }

    /// Runs the RUN lines in order; resolves false at the first failure.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn run_setup<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, bool>> {
        self.inner.read_secrets(env)?;
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.run_setup().await })
    }

    /// Starts every SERVICE; resolves when each one with a PORT accepts connections.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start_services<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, ()>> {
        self.inner.read_secrets(env)?;
        self.keep_alive(env)?;
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.start_services().await })
    }

    /// Starts DEV (named `dev` unless named); resolves when its PORT accepts connections.
    #[napi(ts_return_type = "Promise<{ name: string; pid: number } | null>")]
    pub fn start_dev<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, Option<DevProcess>>> {
        self.inner.read_secrets(env)?;
        self.keep_alive(env)?;
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.start_dev().await })
    }

    /// Runs the TEST lines in order (named `test-<i>` unless named).
    #[napi(
        ts_return_type = "Promise<{ passed: boolean; results: { name: string; passed: boolean; exitCode: number | null }[] }>"
    )]
    pub fn run_tests<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, TestResults>> {
        self.inner.read_secrets(env)?;
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.run_tests().await })
    }

    /// The whole lifecycle; DEV and SERVICE processes stay up until `stop()`.
    #[napi(
        ts_return_type = "Promise<{ success: boolean; testResults?: { passed: boolean; results: { name: string; passed: boolean; exitCode: number | null }[] } }>"
    )]
    pub fn run<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, RunResult>> {
        self.inner.read_secrets(env)?;
        if self.inner.config.dev.is_some() || !self.inner.config.services.is_empty() {
            self.keep_alive(env)?;
        }
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.run().await })
    }

    /// Runs one command in the sandbox (created on first use) to its end.
    #[napi(
        ts_args_type = "command: string | string[], opts?: { env?: Record<string, string>; timeoutMs?: number; stdin?: string }",
        ts_return_type = "Promise<{ exitCode: number | null; stdout: string; stderr: string }>"
    )]
    pub fn exec<'e>(
        &self,
        env: &'e Env,
        command: Unknown<'e>,
        opts: Option<Object<'e>>,
    ) -> Result<PromiseRaw<'e, ExecResult>> {
        self.inner.read_secrets(env)?;
        let argv = argv_from_js(env, command)?;
        let (mut vars, mut stdin, mut timeout) = (BTreeMap::new(), None, None);
        if let Some(o) = opts {
            if let Some(e) = o.get::<Unknown>("env")?.filter(|e| !matches!(e.get_type(), Ok(ValueType::Undefined))) {
                vars = env.from_js_value(e).map_err(|_| type_error(env, "opts.env must map names to strings"))?;
            }
            stdin = o.get::<String>("stdin")?;
            timeout = match o.get::<f64>("timeoutMs")? {
                Some(t) if t > 0.0 && t.fract() == 0.0 => Some(t as u64),
                Some(t) => return Err(type_error(env, &format!("opts.timeoutMs must be a positive integer, not {t}"))),
                None => None,
            };
        }
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.exec(argv, vars, stdin, timeout).await })
    }

    /// Stops every process and removes the sandbox (extracting OUTPUT to
    /// `options.extractDir` first, when set). Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, ()>> {
        let inner = self.inner.clone();
        env.spawn_future(async move { inner.stop().await.map(|_| ()) })
    }

    #[napi]
    pub fn is_running(&self) -> bool {
        self.inner.sandbox.get().is_some_and(|s| s.is_running())
    }

    #[napi]
    pub fn get_status(&self) -> Vec<ProcessStatus> {
        let Some(s) = self.inner.sandbox.get() else { return Vec::new() };
        s.processes().into_iter().map(|p| ProcessStatus { name: p.name, r#type: p.kind, pid: p.pid }).collect()
    }
}

#[napi(object)]
pub struct RunIsolatedResult {
    pub success: bool,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub modified_files: Vec<String>,
    pub extracted_files: Vec<String>,
}

/// One command in a fresh sandbox: its output, the OUTPUT changes it made
/// (`modifiedFiles`), and what was extracted to `options.extractDir`.
#[napi(
    ts_args_type = "command: string[], config: Sandboxfile, options?: SandboxOptions",
    ts_return_type = "Promise<RunIsolatedResult>"
)]
pub fn run_isolated<'e>(
    env: &'e Env,
    command: Unknown<'e>,
    config: Unknown<'e>,
    options: Option<Unknown<'e>>,
) -> Result<PromiseRaw<'e, RunIsolatedResult>> {
    let argv = argv_from_js(env, command)?;
    let config = config_from_js(env, config, "runIsolated(command, config): config")?;
    let report = sf::validate(&config);
    if !report.errors.is_empty() {
        return Err(napi::Error::new(
            Status::InvalidArg,
            format!("the Sandboxfile is not valid:\n  {}", report.errors.join("\n  ")),
        ));
    }
    let inner = Arc::new(Inner::new(config, options_from_js(env, options)?)?);
    inner.read_secrets(env)?;
    env.spawn_future(async move {
        let run = async {
            let out = inner.exec(argv, BTreeMap::new(), None, None).await?;
            let d = inner.diff().await?;
            Ok::<_, napi::Error>((out, d))
        }
        .await;
        let extracted = inner.stop().await;
        let (out, d) = run?;
        let mut modified: Vec<String> = d.added.into_iter().chain(d.modified).chain(d.deleted).collect();
        modified.sort();
        let code = match out.exit_code {
            Either::A(code) => Some(code),
            Either::B(_) => None,
        };
        Ok(RunIsolatedResult {
            success: code == Some(0),
            exit_code: code.unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
            modified_files: modified,
            extracted_files: extracted?,
        })
    })
}

#[napi(ts_return_type = "Promise<IsolationSupport>")]
pub fn check_isolation_support<'e>(env: &'e Env) -> Result<PromiseRaw<'e, IsolationSupport>> {
    env.spawn_future(async move { Ok(super::support::check().await) })
}
