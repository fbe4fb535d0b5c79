//! The seccomp filter every sandboxed command runs under (SPEC §3
//! "Processes", DESIGN "Processes inside").
//!
//! The supervisor builds the filter on the host with [`sandbox_filter`],
//! puts it into the plan as [`to_words`], and init turns it back with
//! [`from_words`] and installs it with [`apply`] as the last step of its
//! setup, in PID 1; every command inherits it at `clone`.
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
//! - `socket` and `socketpair` of a family in the `DENIED_FAMILIES` table
//!   (`AF_VSOCK`): `EPERM`, for the reason written next to it (the family
//!   ignores network namespaces); every other family is allowed;
//! - `clone3`: `ENOSYS`, so libc falls back to `clone`, whose flags (unlike
//!   `clone3`'s, which sit in memory) the filter can read;
//! - on x86_64, every x32 system call (number with bit 30 set): `ENOSYS`.
//!   x32 calls carry `AUDIT_ARCH_X86_64` like native ones but have other
//!   numbers, so a native-only filter would never match them.
//!
//! A call made with another architecture's convention (`int 0x80` from an
//! x86_64 process, AArch32 compat on aarch64) kills the process with
//! `SIGSYS`: the program starts with `LD arch; JEQ <target>; RET
//! KILL_PROCESS`, since the numbers of foreign tables mean other calls.
//!
//! # Shape of the program
//!
//! [`sandbox_filter`] writes the classic BPF program itself (a small
//! assembler with forward labels, `Assembler`):
//!
//! ```text
//!               LD   arch
//!               JEQ  AUDIT_ARCH_<target>, native
//!               RET  KILL_PROCESS
//! native:       LD   nr
//!               JSET 0x40000000, enosys             (x86_64 only: x32)
//!               JGE  n_mid, upper                   binary search over the
//!               …                                   policy's numbers: JGE
//!               JEQ  n, <verdict of n>, allow       splits, JEQ at the leaves
//!               …
//! clone:        LD   args[0] (low half)
//!               JSET <every CLONE_NEW*>, eperm, allow
//! ioctl:        LD   args[1] (low half)
//!               JEQ  TIOCSTI, eperm
//!               JEQ  TIOCLINUX, eperm, allow
//! socket:       LD   args[0] (low half)             (socket and socketpair)
//!               JEQ  AF_VSOCK, eperm, allow
//! personality:  LD   args[0] (low half)
//!               JEQ  0, allow
//!               JEQ  PER_LINUX32, allow
//!               JEQ  0xffffffff, allow              (else on to eperm)
//! eperm:        RET  ERRNO | EPERM
//! allow:        RET  ALLOW
//! enosys:       RET  ERRNO | ENOSYS
//! ```
//!
//! Why a search rather than a list: the kernel runs the program on every
//! system call its action cache does not settle, and when the filter is
//! installed it fills that cache by running the program once per system
//! call number (`seccomp_cache_prepare`, some 450 numbers), so what a command
//! pays to install the filter grows with the path each number takes (about
//! 5 µs per instruction on the path, measured on a 2-core x86_64 VM), and
//! somewhat with the program's length (about 0.5 µs per instruction, to
//! check and translate it). seccompiler's compiler, which built this filter
//! before, emits a linear chain (one `JEQ` per number, in order, then the
//! arguments' checks): 342 instructions on x86_64, paths of up to 127, and
//! installing it took 270 to 360 µs per command, against about 30 µs for a
//! one-instruction filter. Here every number reaches its verdict in at most
//! ⌈log2 N⌉ + 1 comparisons (7 for the ~58 numbers of the policy: 12
//! instructions in all with the preamble and the `RET`; up to 4 more for the
//! five calls whose arguments are checked), the program has 128
//! instructions on x86_64 and 125 on aarch64, and installing it takes 80 to
//! 115 µs. The ignored test `apply_cost` measures it. It is installed once
//! per sandbox, by PID 1 at the end of its setup; commands inherit it.
//!
//! The program is shorter than 256 instructions, so every forward jump fits
//! the 8-bit offsets of a conditional jump; `Assembler::finish` checks each
//! one anyway and fails with [`SeccompError::JumpOutOfReach`] rather than
//! truncate.
//!
//! seccompiler's compiler remains the reference: the tests build the same
//! policy with it and check that both programs give the same answer for
//! every number, architecture and a set of telling arguments. seccompiler
//! still provides the types ([`BpfProgram`], [`TargetArch`]) and installs
//! the program ([`apply`]).

use std::collections::BTreeMap;
use std::io;

use seccompiler::sock_filter;

pub use seccompiler::{BpfProgram, TargetArch};

/// Why the filter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("the seccomp filter has no system call table for {0:?}; only x86_64 and aarch64 are supported")]
    UnsupportedArch(TargetArch),
    #[error(
        "the seccomp filter for {arch:?} needs a jump from instruction {from} to {to}, which \
         classic BPF cannot encode (jumps go forward, conditional ones by at most 255)"
    )]
    JumpOutOfReach { arch: TargetArch, from: usize, to: usize },
    #[error("the seccomp filter for {arch:?} has {len} instructions; the kernel accepts at most {max}")]
    TooLong { arch: TargetArch, len: usize, max: usize },
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
    Syscall { name, x86_64: Some(x86_64), aarch64: Some(aarch64) }
}

const fn sys_x86_64(name: &'static str, x86_64: i64) -> Syscall {
    Syscall { name, x86_64: Some(x86_64), aarch64: None }
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
/// `socket`: the family is argument 0 on x86_64 and on aarch64.
const SOCKET: Syscall = sys("socket", 41, 198);
/// `socketpair`: the family is argument 0, as for `socket`.
const SOCKETPAIR: Syscall = sys("socketpair", 53, 199);

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

/// Socket families that `socket` and `socketpair` refuse with `EPERM`, each
/// for the reason written next to it; every other family is allowed.
const DENIED_FAMILIES: [u64; 1] = [
    // vsock ignores network namespaces: a sandboxed process could reach the hypervisor or host-side vsock agents around "only loopback" and the egress proxy.
    libc::AF_VSOCK as u64,
];

/// x32 system calls have `__X32_SYSCALL_BIT` set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_AARCH64` (`EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// Offsets into `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

/// The offset of the low 32 bits of argument `arg`: the first half of the
/// `u64` on a little-endian machine. Both supported architectures' audit
/// values carry `__AUDIT_ARCH_LE`, so a big-endian kernel never gets past
/// the architecture check to these loads.
const fn arg_low(arg: u32) -> u32 {
    DATA_ARGS + 8 * arg
}

/// The kernel's limit on one classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = libc::BPF_MAXINSNS as usize;

/// `value` as the 32-bit word the program compares an argument's low half
/// with. Used in constants, so a value with upper bits set (which the
/// comparison would silently drop) fails the build.
const fn word(value: u64) -> u32 {
    assert!(value <= u32::MAX as u64, "the filter compares 32-bit words");
    value as u32
}

/// [`word`] of each value.
const fn words<const N: usize>(values: [u64; N]) -> [u32; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = word(values[i]);
        i += 1;
    }
    out
}

/// Every `CLONE_NEW*` flag in one mask, for a single `JSET`: "any bit of the
/// mask is set" is "some flag is set" because each flag is one bit.
const NAMESPACE_MASK: u32 = {
    let flags = words(NAMESPACE_FLAGS);
    let mut mask = 0;
    let mut i = 0;
    while i < flags.len() {
        assert!(flags[i].is_power_of_two(), "a namespace flag is one bit");
        mask |= flags[i];
        i += 1;
    }
    mask
};

/// What the program does with a call whose number is in the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// `EPERM`, whatever the arguments (the `DENIED` table).
    Eperm,
    /// `ENOSYS` (`clone3`).
    Enosys,
    /// `EPERM` if the flags ask for a new namespace, else allowed.
    Clone,
    /// `EPERM` for `TIOCSTI` and `TIOCLINUX`, else allowed.
    Ioctl,
    /// Allowed for the `ALLOWED_PERSONAS`, else `EPERM`.
    Personality,
    /// `EPERM` for the `DENIED_FAMILIES`, else allowed (`socket`, `socketpair`).
    Socket,
}

/// The numbers the filter looks at on `arch`, sorted, with what it does
/// with each; every other number is allowed.
fn policy(arch: TargetArch) -> BTreeMap<u32, Verdict> {
    let special = [
        (&CLONE, Verdict::Clone),
        (&CLONE3, Verdict::Enosys),
        (&IOCTL, Verdict::Ioctl),
        (&PERSONALITY, Verdict::Personality),
        (&SOCKET, Verdict::Socket),
        (&SOCKETPAIR, Verdict::Socket),
    ];
    let denied = DENIED.iter().filter(|call| call.number(arch).is_some()).map(|call| (call, Verdict::Eperm));
    let mut policy = BTreeMap::new();
    for (call, verdict) in denied.chain(special) {
        let nr = u32::try_from(number(call, arch))
            .unwrap_or_else(|_| panic!("{}'s number on {arch:?} is not a u32", call.name));
        if policy.insert(nr, verdict).is_some() {
            panic!("{} shares its number {nr} with another call on {arch:?}", call.name);
        }
    }
    policy
}

fn number(call: &Syscall, arch: TargetArch) -> i64 {
    call.number(arch).unwrap_or_else(|| panic!("{} has no number on {arch:?}", call.name))
}

/// Builds the sandbox's filter for `arch` (see the module documentation for
/// the shape of the program). Pure: nothing is installed.
pub fn sandbox_filter(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let audit_arch = match arch {
        TargetArch::x86_64 => AUDIT_ARCH_X86_64,
        TargetArch::aarch64 => AUDIT_ARCH_AARCH64,
        _ => return Err(SeccompError::UnsupportedArch(arch)),
    };
    let mut asm = Assembler::default();
    let [native, eperm, allow, enosys] = std::array::from_fn(|_| asm.label());
    let [clone, ioctl, socket, personality] = std::array::from_fn(|_| asm.label());

    // Another architecture's convention: its numbers mean other calls.
    asm.load(DATA_ARCH);
    asm.jump_if(JMP_JEQ_K, audit_arch, native.into(), Target::Next);
    asm.ret(libc::SECCOMP_RET_KILL_PROCESS);

    asm.place(native);
    asm.load(DATA_NR);
    if arch == TargetArch::x86_64 {
        // Every x32 call, as on a kernel built without x32: the x32 numbers
        // of the denied calls differ from the native ones (x32 ptrace is 521).
        asm.jump_if(JMP_JSET_K, X32_SYSCALL_BIT, enosys.into(), Target::Next);
    }

    let calls: Vec<(u32, Label)> = policy(arch)
        .into_iter()
        .map(|(nr, verdict)| {
            let target = match verdict {
                Verdict::Eperm => eperm,
                Verdict::Enosys => enosys,
                Verdict::Clone => clone,
                Verdict::Ioctl => ioctl,
                Verdict::Personality => personality,
                Verdict::Socket => socket,
            };
            (nr, target)
        })
        .collect();
    search(&mut asm, &calls, allow);

    // clone asking for any new namespace. Flags are an `unsigned long`, but
    // every CLONE_NEW* flag is in the low half.
    asm.place(clone);
    asm.load(arg_low(0));
    asm.jump_if(JMP_JSET_K, NAMESPACE_MASK, eperm.into(), allow.into());

    // TIOCSTI / TIOCLINUX. The request is an `unsigned int` to the kernel, so
    // only the low 32 bits count; comparing all 64 would let
    // `TIOCSTI | 1 << 32` through (CVE-2019-10063).
    asm.place(ioctl);
    asm.load(arg_low(1));
    asm.jump_if(JMP_JEQ_K, const { word(TIOCSTI) }, eperm.into(), Target::Next);
    asm.jump_if(JMP_JEQ_K, const { word(TIOCLINUX) }, eperm.into(), allow.into());

    // socket / socketpair of a denied family. The family is an `int` to the
    // kernel, so only the low 32 bits count: `AF_VSOCK | 1 << 32` is vsock.
    // The last mismatch goes to allow.
    asm.place(socket);
    asm.load(arg_low(0));
    let families = const { words(DENIED_FAMILIES) };
    for (i, family) in families.into_iter().enumerate() {
        let mismatch = if i + 1 == families.len() { allow.into() } else { Target::Next };
        asm.jump_if(JMP_JEQ_K, family, eperm.into(), mismatch);
    }

    // personality with a persona outside the allowed few (an `unsigned int`
    // to the kernel: low 32 bits). The last mismatch falls through to eperm.
    asm.place(personality);
    asm.load(arg_low(0));
    for persona in const { words(ALLOWED_PERSONAS) } {
        asm.jump_if(JMP_JEQ_K, persona, allow.into(), Target::Next);
    }

    asm.place(eperm);
    asm.ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    asm.place(allow);
    asm.ret(libc::SECCOMP_RET_ALLOW);
    asm.place(enosys);
    asm.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);

    asm.finish(arch)
}

/// Emits a balanced binary search over `calls` (sorted by number, distinct)
/// for the number in the accumulator: each `JGE` splits the slice in two
/// halves, and at a leaf one `JEQ` sends the number it holds to that call's
/// label and any other number to `allow`. Every number takes at most
/// ⌈log2 len⌉ + 1 comparisons.
fn search(asm: &mut Assembler, calls: &[(u32, Label)], allow: Label) {
    match calls {
        [] => asm.jump(allow),
        &[(nr, target)] => asm.jump_if(JMP_JEQ_K, nr, target.into(), allow.into()),
        _ => {
            let (lower, upper) = calls.split_at(calls.len() / 2);
            let upper_start = asm.label();
            asm.jump_if(JMP_JGE_K, upper[0].0, upper_start.into(), Target::Next);
            search(asm, lower, allow);
            asm.place(upper_start);
            search(asm, upper, allow);
        }
    }
}

// Classic BPF opcodes (linux/bpf_common.h); libc spells them as u32.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A place in the program, named before it is reached: classic BPF jumps
/// only forward, so jumps are written before the instructions they reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// Where a jump goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The next instruction (offset 0).
    Next,
    /// The instruction placed at a label.
    At(Label),
}

impl From<Label> for Target {
    fn from(label: Label) -> Self {
        Target::At(label)
    }
}

/// A jump whose offsets are known once every label is placed.
struct Pending {
    at: usize,
    jt: Target,
    jf: Target,
}

/// Appends instructions in order; jumps name [`Label`]s, which
/// [`Assembler::finish`] turns into offsets.
#[derive(Default)]
struct Assembler {
    program: BpfProgram,
    /// Where each label was placed, once it is.
    labels: Vec<Option<usize>>,
    jumps: Vec<Pending>,
}

impl Assembler {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    fn place(&mut self, label: Label) {
        let slot = &mut self.labels[label.0];
        assert!(slot.is_none(), "{label:?} placed twice");
        *slot = Some(self.program.len());
    }

    /// `A = seccomp_data[offset..offset + 4]`.
    fn load(&mut self, offset: u32) {
        self.program.push(insn(LD_W_ABS, 0, 0, offset));
    }

    fn ret(&mut self, action: u32) {
        self.program.push(insn(RET_K, 0, 0, action));
    }

    /// A conditional jump: `op` compares A with `k`.
    fn jump_if(&mut self, op: u16, k: u32, jt: Target, jf: Target) {
        self.jumps.push(Pending { at: self.program.len(), jt, jf });
        self.program.push(insn(op, 0, 0, k));
    }

    /// An unconditional jump (`JA`, whose offset is 32 bits).
    fn jump(&mut self, to: Label) {
        self.jump_if(JMP_JA, 0, to.into(), Target::Next);
    }

    /// The program with every jump's offset filled in, or an error for a
    /// jump that cannot be encoded (never a truncated offset).
    fn finish(self, arch: TargetArch) -> Result<BpfProgram, SeccompError> {
        let Assembler { mut program, labels, jumps } = self;
        if program.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::TooLong { arch, len: program.len(), max: MAX_INSTRUCTIONS });
        }
        for Pending { at, jt, jf } in jumps {
            let is_ja = program[at].code == JMP_JA;
            // JA's offset is 32 bits; a conditional jump's two are 8 bits.
            let reach = if is_ja { u32::MAX as usize } else { u8::MAX as usize };
            // Offsets count from the instruction after the jump: forward
            // only, within reach, and landing inside the program.
            let offset = |target| {
                let to = match target {
                    Target::Next => at + 1,
                    Target::At(label) => labels[label.0].unwrap_or_else(|| panic!("{label:?} is never placed")),
                };
                match to.checked_sub(at + 1) {
                    Some(offset) if offset <= reach && to < program.len() => Ok(offset),
                    _ => Err(SeccompError::JumpOutOfReach { arch, from: at, to }),
                }
            };
            let (jt, jf) = (offset(jt)?, offset(jf)?);
            let insn = &mut program[at];
            // The casts cannot truncate: both offsets are within `reach`.
            if is_ja {
                insn.k = jt as u32;
            } else {
                insn.jt = jt as u8;
                insn.jf = jf as u8;
            }
        }
        Ok(program)
    }
}

/// Encodes a program for the plan: one number per instruction,
/// `code << 48 | jt << 40 | jf << 32 | k`, so a hex dump reads like a BPF
/// listing. The words exceed 2^53: they survive serde_json (Rust to Rust)
/// exactly, but must not pass through a JavaScript number.
pub fn to_words(program: &[sock_filter]) -> Vec<u64> {
    program
        .iter()
        .map(|i| u64::from(i.code) << 48 | u64::from(i.jt) << 40 | u64::from(i.jf) << 32 | u64::from(i.k))
        .collect()
}

/// Decodes [`to_words`]. Every word is some instruction; whether the program
/// is valid is for the kernel to judge when [`apply`] installs it.
pub fn from_words(words: &[u64]) -> BpfProgram {
    words
        .iter()
        .map(|&w| sock_filter { code: (w >> 48) as u16, jt: (w >> 40) as u8, jf: (w >> 32) as u8, k: w as u32 })
        .collect()
}

/// Installs `program` on the calling thread; it is inherited by every child
/// and across `execve`, and can never be removed.
///
/// Order (init's PID 1): the whole setup, bounding set emptied,
/// `PR_SET_NO_NEW_PRIVS`, then `apply`; the command's child inherits it and
/// makes only calls it allows (setsid, dup2, setrlimit, chdir, capset) before
/// `execve`. The filter refuses `mount`, `unshare`, `setns` and `pivot_root`,
/// so nothing of the setup may come after it. An unprivileged process may install a filter only with
/// no_new_privs set (else `EACCES`); seccompiler's `apply_filter` sets it
/// itself too, which is harmless when it is already set.
///
/// Per thread: call it in a single-threaded process, never in a threaded
/// one expecting every thread to be covered.
pub fn apply(program: &[sock_filter]) -> io::Result<()> {
    if program.is_empty() || program.len() > MAX_INSTRUCTIONS {
        // seccompiler would refuse an empty program, and would silently
        // truncate the length of a very long one to u16.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a seccomp program has 1 to {MAX_INSTRUCTIONS} instructions, not {}", program.len()),
        ));
    }
    seccompiler::apply_filter(program).map_err(|e| match e {
        seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
        other => io::Error::other(other.to_string()),
    })
}

#[cfg(test)]
mod tests;
