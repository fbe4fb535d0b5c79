//! `bun-sandbox-init`: the helper that becomes PID 1 inside a sandbox.
fn main() {
    eprintln!("bun-sandbox-init: the isolation runtime is not built yet");
    std::process::exit(70);
}
