//! `bun-sandbox-init`: the addon starts it once per process, as the zygote
//! that forks the helper of each sandbox, which becomes PID 1 inside it.
//! Built without the `binding` feature: no napi here.

#[cfg(target_os = "linux")]
fn main() {
    // argv[1]: the host process's pid (to check the parent-death race).
    let parent = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(-1);
    if parent <= 0 || std::env::var_os("BUN_SANDBOX_INIT").is_none() {
        eprintln!("bun-sandbox-init is started by the bun-sandbox addon, not by hand");
        std::process::exit(2);
    }
    bun_sandbox::isolate::zygote::main(parent)
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("bun-sandbox-init: isolation needs Linux namespaces, which this platform does not have");
    std::process::exit(2);
}
