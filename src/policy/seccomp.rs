//! The seccomp filter every sandboxed command runs under (SPEC §3
//! "Processes", DESIGN "Processes inside").
//!
//! The supervisor builds the filter on the host with [`sandbox_filter`],
//! puts it into the plan as [`to_words`], and init turns it back with
//! [`from_words`] and installs it with [`apply`] as the last step before
//! `execve` in each command's child.
//!
//! # What the filter does
//!
//! Everything is allowed except:
//!
//! - the calls in the `DENIED` table below, which fail with `EPERM`, each for
//!   the reason written next to it;
//! - `personality` with any persona other than `0`, `PER_LINUX32` or the
//!   `0xffffffff` query: `EPERM` (`ADDR_NO_RANDOMIZE` and friends weaken
//!   exploit hardening);
//! - `clone` whose flags ask for any new namespace: `EPERM`;
//! - `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)`: `EPERM`;
//! - `clone3`: `ENOSYS`, so libc falls back to `clone`, whose flags (unlike
//!   `clone3`'s, which sit in memory) the filter can read;
//! - on x86_64, every x32 system call (number with bit 30 set): `ENOSYS`.
//!   x32 calls carry `AUDIT_ARCH_X86_64` like native ones but have other
//!   numbers, so a native-only filter would never match them.
//!
//! A call made with another architecture's convention (`int 0x80` from an
//! x86_64 process, AArch32 compat on aarch64) kills the process with
//! `SIGSYS`: seccompiler starts every program with `LD arch; JEQ <target>;
//! RET KILL_PROCESS`, and the numbers of foreign tables mean other calls.
//!
//! # Shape of the program
//!
//! seccompiler gives a filter one action on match and one on mismatch, but
//! the sandbox needs three outcomes (allow, `EPERM`, `ENOSYS`). The program is
//! therefore several small programs run one after another ([`then`]): each
//! part's "allow" becomes a jump to the next part, so the first part that
//! refuses a call decides, and a call that every part allows is allowed. The
//! result is a single classic BPF program for one `seccomp()` call.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    sock_filter,
};

pub use seccompiler::{BpfProgram, TargetArch};

/// Why the filter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "the seccomp filter has no system call table for {0:?}; only x86_64 and aarch64 are supported"
    )]
    UnsupportedArch(TargetArch),
    #[error("the seccomp filter for {arch:?} could not be compiled")]
    Compile {
        arch: TargetArch,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error(
        "the seccomp filter for {arch:?} has {len} instructions; the kernel accepts at most {max}"
    )]
    TooLong {
        arch: TargetArch,
        len: usize,
        max: usize,
    },
}

/// The architecture this process runs on, if the filter supports it.
pub fn host_arch() -> Option<TargetArch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(TargetArch::x86_64),
        "aarch64" => Some(TargetArch::aarch64),
        _ => None,
    }
}

/// A system call by name with its number on each supported architecture
/// (`None`: the architecture has no such call).
struct Syscall {
    name: &'static str,
    x86_64: Option<i64>,
    aarch64: Option<i64>,
}

const fn sys(name: &'static str, x86_64: i64, aarch64: i64) -> Syscall {
    Syscall {
        name,
        x86_64: Some(x86_64),
        aarch64: Some(aarch64),
    }
}

const fn sys_x86_64(name: &'static str, x86_64: i64) -> Syscall {
    Syscall {
        name,
        x86_64: Some(x86_64),
        aarch64: None,
    }
}

impl Syscall {
    fn number(&self, arch: TargetArch) -> Option<i64> {
        match arch {
            TargetArch::x86_64 => self.x86_64,
            TargetArch::aarch64 => self.aarch64,
            _ => None,
        }
    }
}

/// Calls that fail with `EPERM` whatever their arguments. Numbers from the
/// kernel's `arch/x86/entry/syscalls/syscall_64.tbl` and the generic table
/// that aarch64 uses; the tests check the host's column against
/// `libc::SYS_*` (CI on aarch64 checks that column).
const DENIED: &[Syscall] = &[
    // Reads and writes another process's memory and registers.
    sys("ptrace", 101, 117),
    // Reads another process's memory without ptrace.
    sys("process_vm_readv", 310, 270),
    // Writes another process's memory without ptrace.
    sys("process_vm_writev", 311, 271),
    // Copies a file descriptor out of another process (ptrace-class access).
    sys("pidfd_getfd", 438, 438),
    // Changes another process's memory (ptrace-class access).
    sys("process_madvise", 440, 440),
    // Compares kernel objects of other processes; leaks kernel pointers' order.
    sys("kcmp", 312, 272),
    // Replaces the running kernel.
    sys("kexec_load", 246, 104),
    // Replaces the running kernel from a file.
    sys("kexec_file_load", 320, 294),
    // Loads kernel code.
    sys("init_module", 175, 105),
    // Loads kernel code from a file.
    sys("finit_module", 313, 273),
    // Unloads kernel code.
    sys("delete_module", 176, 106),
    // Loads programs into the kernel; a frequent source of kernel exploits.
    sys("bpf", 321, 280),
    // Observes the kernel and other processes; a frequent source of kernel exploits.
    sys("perf_event_open", 298, 241),
    // The kernel keyring is not namespaced: keys could leak between sandboxes and host.
    sys("add_key", 248, 217),
    // The kernel keyring is not namespaced.
    sys("request_key", 249, 218),
    // The kernel keyring is not namespaced.
    sys("keyctl", 250, 219),
    // The mount tree is fixed once setup is done.
    sys("mount", 165, 40),
    // Unmounting could uncover what setup hid under a mount.
    sys("umount2", 166, 39),
    // The root is fixed once setup is done.
    sys("pivot_root", 155, 41),
    // New mount API: same power as mount.
    sys("move_mount", 429, 429),
    // New mount API: clones mount trees.
    sys("open_tree", 428, 428),
    // New mount API (6.15): clones mount trees with new attributes.
    sys("open_tree_attr", 467, 467),
    // New mount API: creates a file system.
    sys("fsopen", 430, 430),
    // New mount API: configures a file system.
    sys("fsconfig", 431, 431),
    // New mount API: turns a file system into a mount.
    sys("fsmount", 432, 432),
    // New mount API: reconfigures an existing mount.
    sys("fspick", 433, 433),
    // Changes mount flags (e.g. makes a read-only mount writable).
    sys("mount_setattr", 442, 442),
    // New namespaces (a user namespace above all) open the kernel's whole privileged surface.
    sys("unshare", 272, 97),
    // Joining other namespaces would leave the sandbox's.
    sys("setns", 308, 268),
    // Lets a process stall the kernel mid-copy; a staple of kernel exploits.
    sys("userfaultfd", 323, 282),
    // io_uring can create sockets and open files without the syscalls this filter sees.
    sys("io_uring_setup", 425, 425),
    // io_uring: see io_uring_setup.
    sys("io_uring_enter", 426, 426),
    // io_uring: see io_uring_setup.
    sys("io_uring_register", 427, 427),
    // Process accounting writes host-wide records.
    sys("acct", 163, 89),
    // Swap is host-wide.
    sys("swapon", 167, 224),
    // Swap is host-wide.
    sys("swapoff", 168, 225),
    // Rebooting is for the host, not a sandbox.
    sys("reboot", 169, 142),
    // Disk quotas are host-wide.
    sys("quotactl", 179, 60),
    // Disk quotas are host-wide.
    sys("quotactl_fd", 443, 443),
    // Resolves kernel cookies to paths outside the sandbox (profiling; removed in 6.10).
    sys("lookup_dcookie", 212, 18),
    // Opens files by handle, bypassing the mount tree: a known container escape (shocker).
    sys("open_by_handle_at", 304, 265),
    // The kernel log is host-wide and can leak kernel addresses.
    sys("syslog", 103, 116),
    // The clock is host-wide.
    sys("settimeofday", 164, 170),
    // The clock is host-wide.
    sys("clock_settime", 227, 112),
    // The clock is host-wide (this also refuses adjtimex's read-only query, ntp_gettime).
    sys("adjtimex", 159, 171),
    // The clock is host-wide.
    sys("clock_adjtime", 305, 266),
    // Hangs up the controlling terminal of other sessions.
    sys("vhangup", 153, 58),
    // Kernel NFS server control (gone since 3.1; refused in case of an old kernel).
    sys("nfsservctl", 180, 42),
    // Loads a shared library the old a.out way; dead code in the kernel.
    sys_x86_64("uselib", 134),
];

/// `clone`: flags are argument 0 on x86_64 and on aarch64.
const CLONE: Syscall = sys("clone", 56, 220);
/// `clone3`: its flags are in memory, out of the filter's reach.
const CLONE3: Syscall = sys("clone3", 435, 435);
const IOCTL: Syscall = sys("ioctl", 16, 29);
const PERSONALITY: Syscall = sys("personality", 135, 92);

/// Every `CLONE_NEW*` flag. `CLONE_NEWTIME` (0x80) shares bits with the exit
/// signal in `clone` and is only usable through `clone3`/`unshare`; listing
/// it refuses nothing valid (no signal number is that large).
const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x80, // CLONE_NEWTIME
];

/// `TIOCSTI` pushes characters into a terminal's input: a process could type
/// commands into the terminal the sandbox was started from.
const TIOCSTI: u64 = 0x5412;
/// `TIOCLINUX` subcodes can paste the console selection into its input, like TIOCSTI.
const TIOCLINUX: u64 = 0x541C;

/// Personas a program may set: `PER_LINUX`, `PER_LINUX32` (32-bit uname,
/// used by `linux32`) and the `0xffffffff` query glibc and others issue.
/// Everything else (`ADDR_NO_RANDOMIZE`, `READ_IMPLIES_EXEC`,
/// `MMAP_PAGE_ZERO`, `UNAME26`, …) is refused: several weaken exploit
/// hardening.
const ALLOWED_PERSONAS: [u64; 3] = [0, 8, 0xffff_ffff];

/// x32 system calls have `__X32_SYSCALL_BIT` set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Offsets into `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// The kernel's limit on one classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = libc::BPF_MAXINSNS as usize;

/// Builds the sandbox's filter for `arch` (see the module documentation).
/// Pure: nothing is installed.
pub fn sandbox_filter(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    if !matches!(arch, TargetArch::x86_64 | TargetArch::aarch64) {
        return Err(SeccompError::UnsupportedArch(arch));
    }
    let compile = |source| SeccompError::Compile { arch, source };

    let mut parts = Vec::new();
    if arch == TargetArch::x86_64 {
        parts.push(x32_guard());
    }
    parts.push(
        compile_filter(
            arch,
            BTreeMap::from([(number(&CLONE3, arch), Vec::new())]),
            libc::ENOSYS,
        )
        .map_err(compile)?,
    );
    parts.push(
        compile_filter(arch, eperm_rules(arch).map_err(compile)?, libc::EPERM).map_err(compile)?,
    );

    let program = parts.into_iter().reduce(then).unwrap_or_default();
    if program.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong {
            arch,
            len: program.len(),
            max: MAX_INSTRUCTIONS,
        });
    }
    Ok(program)
}

/// Compiles one part: calls that match `rules` fail with `errno`, every
/// other call is allowed (by this part).
fn compile_filter(
    arch: TargetArch,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
) -> Result<BpfProgram, seccompiler::BackendError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )?;
    filter.try_into()
}

/// The rules whose match means `EPERM`. An empty rule list refuses the call
/// whatever its arguments; otherwise any one matching rule refuses it.
fn eperm_rules(
    arch: TargetArch,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .filter_map(|call| call.number(arch))
        .map(|nr| (nr, Vec::new()))
        .collect();

    // clone asking for any new namespace: one rule per flag, since a masked
    // compare can only test equality ("this bit is set").
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![low32(0, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(number(&CLONE, arch), clone);

    // TIOCSTI / TIOCLINUX. The request is an `unsigned int` to the kernel, so
    // only the low 32 bits count; comparing all 64 would let
    // `TIOCSTI | 1 << 32` through (CVE-2019-10063).
    let ioctl = [TIOCSTI, TIOCLINUX]
        .iter()
        .map(|&request| {
            rule(vec![low32(
                1,
                SeccompCmpOp::MaskedEq(0xffff_ffff),
                request,
            )?])
        })
        .collect::<Result<_, _>>()?;
    rules.insert(number(&IOCTL, arch), ioctl);

    // personality with a persona outside the allowed few (an `unsigned int`
    // to the kernel: low 32 bits).
    let personality = ALLOWED_PERSONAS
        .iter()
        .map(|&persona| low32(0, SeccompCmpOp::Ne, persona))
        .collect::<Result<_, _>>()?;
    rules.insert(number(&PERSONALITY, arch), vec![rule(personality)?]);

    Ok(rules)
}

/// A condition on the low 32 bits of argument `arg`, the part the kernel
/// reads of an `int`/`unsigned int` argument; the upper half can never
/// bypass it.
fn low32(
    arg: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(conditions)
}

fn number(call: &Syscall, arch: TargetArch) -> i64 {
    call.number(arch)
        .unwrap_or_else(|| panic!("{} has no number on {arch:?}", call.name))
}

// Classic BPF opcodes (linux/bpf_common.h); libc spells them as u32.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// x86_64 only: refuses every x32 call with `ENOSYS`, as on a kernel built
/// without x32. seccompiler cannot express this: its rules match exact
/// numbers, and the x32 numbers of the denied calls differ from the native
/// ones (x32 `ptrace` is 521).
fn x32_guard() -> BpfProgram {
    vec![
        insn(LD_W_ABS, 0, 0, DATA_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, DATA_NR),
        insn(JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Runs `first`, and where `first` would allow the call, `second`: every
/// `RET ALLOW` of `first` becomes a forward jump to the start of `second`.
/// Both read only `seccomp_data` (no scratch memory), so `second` starts
/// from a clean slate.
fn then(mut first: BpfProgram, second: BpfProgram) -> BpfProgram {
    let len = first.len();
    for (at, insn) in first.iter_mut().enumerate() {
        if insn.code == RET_K && insn.k == libc::SECCOMP_RET_ALLOW {
            // JA jumps k instructions past the next one.
            *insn = sock_filter {
                code: JMP_JA,
                jt: 0,
                jf: 0,
                k: (len - at - 1) as u32,
            };
        }
    }
    first.extend(second);
    first
}

/// Encodes a program for the plan: one number per instruction,
/// `code << 48 | jt << 40 | jf << 32 | k`, so a hex dump reads like a BPF
/// listing. The words exceed 2^53: they survive serde_json (Rust to Rust)
/// exactly, but must not pass through a JavaScript number.
pub fn to_words(program: &[sock_filter]) -> Vec<u64> {
    program
        .iter()
        .map(|i| {
            u64::from(i.code) << 48 | u64::from(i.jt) << 40 | u64::from(i.jf) << 32 | u64::from(i.k)
        })
        .collect()
}

/// Decodes [`to_words`]. Every word is some instruction; whether the program
/// is valid is for the kernel to judge when [`apply`] installs it.
pub fn from_words(words: &[u64]) -> BpfProgram {
    words
        .iter()
        .map(|&w| sock_filter {
            code: (w >> 48) as u16,
            jt: (w >> 40) as u8,
            jf: (w >> 32) as u8,
            k: w as u32,
        })
        .collect()
}

/// Installs `program` on the calling thread; it is inherited by every child
/// and across `execve`, and can never be removed.
///
/// Order (init, in the command's child): `PR_SET_NO_NEW_PRIVS`, drop
/// capabilities, … , then `apply`, then `execve` at once. The filter refuses
/// `mount`, `unshare`, `setns` and `pivot_root`, so nothing of the setup may
/// come after it. An unprivileged process may install a filter only with
/// no_new_privs set (else `EACCES`); seccompiler's `apply_filter` sets it
/// itself too, which is harmless when it is already set.
///
/// Per thread: call it in the single-threaded child, never in a threaded
/// process expecting every thread to be covered.
pub fn apply(program: &[sock_filter]) -> io::Result<()> {
    if program.is_empty() || program.len() > MAX_INSTRUCTIONS {
        // seccompiler would refuse an empty program, and would silently
        // truncate the length of a very long one to u16.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a seccomp program has 1 to {MAX_INSTRUCTIONS} instructions, not {}",
                program.len()
            ),
        ));
    }
    seccompiler::apply_filter(program).map_err(|e| match e {
        seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
        other => io::Error::other(other.to_string()),
    })
}

#[cfg(test)]
mod tests;
