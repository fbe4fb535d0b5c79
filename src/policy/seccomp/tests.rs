use super::*;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
const AUDIT_ARCH_ARM: u32 = 40 | 0x4000_0000;

const ARCHES: [TargetArch; 2] = [TargetArch::x86_64, TargetArch::aarch64];

fn audit_arch(arch: TargetArch) -> u32 {
    match arch {
        TargetArch::x86_64 => AUDIT_ARCH_X86_64,
        _ => AUDIT_ARCH_AARCH64,
    }
}

/// The other supported architecture, as foreign to `arch` as i386.
fn other_audit_arch(arch: TargetArch) -> u32 {
    match arch {
        TargetArch::x86_64 => AUDIT_ARCH_AARCH64,
        _ => AUDIT_ARCH_X86_64,
    }
}

/// What glibc's pthread_create passes to clone.
const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;
/// What glibc's fork passes to clone.
const FORK_FLAGS: u64 = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;

/// Runs a classic BPF program on a `struct seccomp_data` the way the kernel
/// does, checking the kernel's structural rules on the way (jumps stay in
/// the program, only seccomp-allowed opcodes, loads inside the data).
fn eval(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    run(program, arch, nr, args).0
}

/// [`eval`], with the number of instructions executed (the final `RET`
/// included).
fn run(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as i32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let insn = program.get(pc).unwrap_or_else(|| panic!("fell off the program at {pc}"));
        pc += 1;
        steps += 1;
        let k = insn.k;
        let branch = |taken: bool| {
            if taken { insn.jt as usize } else { insn.jf as usize }
        };
        match insn.code {
            0x20 => {
                // LD W ABS: aligned 32-bit load inside seccomp_data.
                let at = k as usize;
                assert!(at.is_multiple_of(4) && at + 4 <= data.len(), "bad load offset {at}");
                a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            0x54 => a &= k,                   // ALU AND K
            0x05 => pc += k as usize,         // JA
            0x15 => pc += branch(a == k),     // JEQ K
            0x25 => pc += branch(a > k),      // JGT K
            0x35 => pc += branch(a >= k),     // JGE K
            0x45 => pc += branch(a & k != 0), // JSET K
            0x06 => return (k, steps),        // RET K
            code => panic!("opcode {code:#x} at {} is not allowed in seccomp", pc - 1),
        }
    }
}

/// The calls outside `DENIED` that the filter looks at.
const SPECIAL: [&Syscall; 6] = [&CLONE, &CLONE3, &IOCTL, &PERSONALITY, &SOCKET, &SOCKETPAIR];

fn nr(name: &str, arch: TargetArch) -> i64 {
    let all = DENIED.iter().chain(SPECIAL);
    all.filter(|s| s.name == name).find_map(|s| s.number(arch)).unwrap()
}

fn filter(arch: TargetArch) -> BpfProgram {
    sandbox_filter(arch).unwrap()
}

/// Calls that must stay allowed, as (x86_64, aarch64) numbers.
const ORDINARY: &[(&str, i64, i64)] = &[
    ("read", 0, 63),
    ("write", 1, 64),
    ("openat", 257, 56),
    ("getpid", 39, 172),
    ("execve", 59, 221),
    ("wait4", 61, 260),
    ("socket", 41, 198),
    ("seccomp", 317, 277),
    ("prctl", 157, 167),
];

#[test]
fn builds_for_both_arches_within_the_kernel_limit() {
    for arch in ARCHES {
        let program = filter(arch);
        assert!(!program.is_empty() && program.len() <= MAX_INSTRUCTIONS, "{arch:?}: {}", program.len());
        // Same input, same program: the supervisor may rebuild it at will.
        assert_eq!(program, filter(arch));
    }
}

#[test]
fn riscv64_is_refused_with_a_reason() {
    let err = sandbox_filter(TargetArch::riscv64).unwrap_err();
    assert!(matches!(err, SeccompError::UnsupportedArch(TargetArch::riscv64)));
    assert!(err.to_string().contains("only x86_64 and aarch64"), "{err}");
}

#[test]
fn host_arch_is_supported_here() {
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(sandbox_filter(host_arch().unwrap()).is_ok());
    }
}

#[test]
fn every_denied_call_gets_eperm_on_both_arches() {
    for arch in ARCHES {
        let program = filter(arch);
        for call in DENIED {
            let Some(n) = call.number(arch) else { continue };
            assert_eq!(eval(&program, audit_arch(arch), n, [0; 6]), EPERM, "{} on {arch:?}", call.name);
            assert_eq!(eval(&program, audit_arch(arch), n, [u64::MAX; 6]), EPERM, "{} on {arch:?}", call.name);
        }
    }
}

#[test]
fn ordinary_calls_are_allowed() {
    for arch in ARCHES {
        let program = filter(arch);
        for &(name, x86, arm) in ORDINARY {
            let n = if arch == TargetArch::x86_64 { x86 } else { arm };
            assert_eq!(eval(&program, audit_arch(arch), n, [0; 6]), ALLOW, "{name} on {arch:?}");
        }
    }
}

#[test]
fn only_the_listed_numbers_are_touched() {
    for arch in ARCHES {
        let program = filter(arch);
        let special: Vec<i64> = DENIED.iter().chain(SPECIAL).filter_map(|s| s.number(arch)).collect();
        for n in (0..600).filter(|n| !special.contains(n)) {
            assert_eq!(eval(&program, audit_arch(arch), n, [u64::MAX; 6]), ALLOW, "nr {n} on {arch:?}");
        }
    }
}

#[test]
fn table_has_no_duplicates() {
    for arch in ARCHES {
        let mut seen = HashMap::new();
        for call in DENIED.iter().chain(SPECIAL) {
            if let Some(n) = call.number(arch) {
                assert_eq!(seen.insert(n, call.name), None, "{n} twice on {arch:?}");
            }
        }
    }
}

/// The host column of the table against libc's numbers for this target.
#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[allow(clippy::unnecessary_cast)] // libc::Ioctl differs between targets
fn host_numbers_match_libc() {
    let arch = host_arch().unwrap();
    let libc_nr = |name: &str| -> Option<i64> {
        Some(match name {
            "ptrace" => libc::SYS_ptrace,
            "process_vm_readv" => libc::SYS_process_vm_readv,
            "process_vm_writev" => libc::SYS_process_vm_writev,
            "pidfd_getfd" => libc::SYS_pidfd_getfd,
            "process_madvise" => libc::SYS_process_madvise,
            "kcmp" => libc::SYS_kcmp,
            "kexec_load" => libc::SYS_kexec_load,
            "kexec_file_load" => libc::SYS_kexec_file_load,
            "init_module" => libc::SYS_init_module,
            "finit_module" => libc::SYS_finit_module,
            "delete_module" => libc::SYS_delete_module,
            "bpf" => libc::SYS_bpf,
            "perf_event_open" => libc::SYS_perf_event_open,
            "add_key" => libc::SYS_add_key,
            "request_key" => libc::SYS_request_key,
            "keyctl" => libc::SYS_keyctl,
            "mount" => libc::SYS_mount,
            "umount2" => libc::SYS_umount2,
            "pivot_root" => libc::SYS_pivot_root,
            "move_mount" => libc::SYS_move_mount,
            "open_tree" => libc::SYS_open_tree,
            // Not in libc 0.2.191; 467 in syscall_64.tbl and the generic table.
            "open_tree_attr" => 467,
            "fsopen" => libc::SYS_fsopen,
            "fsconfig" => libc::SYS_fsconfig,
            "fsmount" => libc::SYS_fsmount,
            "fspick" => libc::SYS_fspick,
            "mount_setattr" => libc::SYS_mount_setattr,
            "unshare" => libc::SYS_unshare,
            "setns" => libc::SYS_setns,
            "userfaultfd" => libc::SYS_userfaultfd,
            "io_uring_setup" => libc::SYS_io_uring_setup,
            "io_uring_enter" => libc::SYS_io_uring_enter,
            "io_uring_register" => libc::SYS_io_uring_register,
            "acct" => libc::SYS_acct,
            "swapon" => libc::SYS_swapon,
            "swapoff" => libc::SYS_swapoff,
            "reboot" => libc::SYS_reboot,
            "quotactl" => libc::SYS_quotactl,
            "quotactl_fd" => libc::SYS_quotactl_fd,
            "lookup_dcookie" => libc::SYS_lookup_dcookie,
            "open_by_handle_at" => libc::SYS_open_by_handle_at,
            "syslog" => libc::SYS_syslog,
            "settimeofday" => libc::SYS_settimeofday,
            "clock_settime" => libc::SYS_clock_settime,
            "adjtimex" => libc::SYS_adjtimex,
            "clock_adjtime" => libc::SYS_clock_adjtime,
            "vhangup" => libc::SYS_vhangup,
            "nfsservctl" => libc::SYS_nfsservctl,
            #[cfg(target_arch = "x86_64")]
            "uselib" => libc::SYS_uselib,
            "clone" => libc::SYS_clone,
            "clone3" => libc::SYS_clone3,
            "ioctl" => libc::SYS_ioctl,
            "personality" => libc::SYS_personality,
            "socket" => libc::SYS_socket,
            "socketpair" => libc::SYS_socketpair,
            _ => return None,
        })
    };
    for call in DENIED.iter().chain(SPECIAL) {
        assert_eq!(call.number(arch), libc_nr(call.name), "{}", call.name);
    }
    assert_eq!(TIOCSTI, libc::TIOCSTI as u64);
    assert_eq!(TIOCLINUX, libc::TIOCLINUX as u64);
    assert_eq!(NAMESPACE_FLAGS[7], libc::CLONE_NEWTIME as u64);
    // AF_VSOCK in include/linux/socket.h.
    assert_eq!(DENIED_FAMILIES, [40]);
}

#[test]
fn clone_with_a_namespace_flag_is_refused() {
    let sigchld = libc::SIGCHLD as u64;
    let (thread, fork) = (THREAD_FLAGS, FORK_FLAGS);
    for arch in ARCHES {
        let program = filter(arch);
        let clone = |flags: u64| eval(&program, audit_arch(arch), nr("clone", arch), [flags, 0, 0, 0, 0, 0]);
        for flag in NAMESPACE_FLAGS {
            assert_eq!(clone(flag | sigchld), EPERM, "{flag:#x} on {arch:?}");
            assert_eq!(clone(flag | thread), EPERM, "{flag:#x} on {arch:?}");
            assert_eq!(clone(flag | 0xffff_ffff_0000_0000), EPERM, "{flag:#x} on {arch:?}");
        }
        let all = NAMESPACE_FLAGS.iter().fold(0, |a, f| a | f);
        assert_eq!(clone(all | sigchld), EPERM);
        assert_eq!(clone(sigchld), ALLOW);
        assert_eq!(clone(thread), ALLOW);
        assert_eq!(clone(fork), ALLOW);
        assert_eq!(clone(libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64 | sigchld), ALLOW);
    }
}

#[test]
fn clone3_gets_enosys() {
    for arch in ARCHES {
        let program = filter(arch);
        assert_eq!(eval(&program, audit_arch(arch), nr("clone3", arch), [0; 6]), ENOSYS, "{arch:?}");
    }
}

#[test]
fn tiocsti_and_tioclinux_are_refused_whatever_the_upper_bits() {
    for arch in ARCHES {
        let program = filter(arch);
        let ioctl = |request: u64| eval(&program, audit_arch(arch), nr("ioctl", arch), [0, request, 0, 0, 0, 0]);
        for request in [TIOCSTI, TIOCLINUX] {
            assert_eq!(ioctl(request), EPERM);
            assert_eq!(ioctl(request | 1 << 32), EPERM, "CVE-2019-10063 on {arch:?}");
            assert_eq!(ioctl(request | 0xffff_ffff_0000_0000), EPERM);
        }
        for request in [
            0x5401, /* TCGETS */
            0x541B, /* FIONREAD */
            0x5413, /* TIOCGWINSZ */
            0x5411, /* TIOCOUTQ */
        ] {
            assert_eq!(ioctl(request), ALLOW, "{request:#x} on {arch:?}");
        }
    }
}

#[test]
fn personality_allows_only_harmless_personas() {
    for arch in ARCHES {
        let program = filter(arch);
        let personality = |p: u64| eval(&program, audit_arch(arch), nr("personality", arch), [p, 0, 0, 0, 0, 0]);
        for p in [0, 8, 0xffff_ffff, u64::MAX, 1 << 32] {
            assert_eq!(personality(p), ALLOW, "{p:#x} on {arch:?}");
        }
        let denied = [
            libc::ADDR_NO_RANDOMIZE as u64,
            libc::UNAME26 as u64,
            libc::READ_IMPLIES_EXEC as u64,
            libc::MMAP_PAGE_ZERO as u64,
            libc::ADDR_COMPAT_LAYOUT as u64,
            1 << 32 | libc::ADDR_NO_RANDOMIZE as u64,
            8 | libc::ADDR_NO_RANDOMIZE as u64,
            1,
        ];
        for p in denied {
            assert_eq!(personality(p), EPERM, "{p:#x} on {arch:?}");
        }
    }
}

const AF_VSOCK: u64 = libc::AF_VSOCK as u64;
/// Families that must stay allowed: AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6,
/// AF_NETLINK, AF_PACKET, vsock's neighbours (39 AF_SMC, 41 AF_KCM) and
/// values no family has.
const ALLOWED_FAMILIES: [u64; 10] = [
    libc::AF_UNSPEC as u64,
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    libc::AF_NETLINK as u64,
    libc::AF_PACKET as u64,
    39,
    41,
    0xffff_ffff,
    u64::MAX,
];

/// The family is an `int` to the kernel (`SYSCALL_DEFINE3(socket, int,
/// family, …)` truncates the register), so `AF_VSOCK | 1 << 32` creates a
/// vsock socket: the filter compares the low 32 bits only.
#[test]
fn sockets_of_a_denied_family_are_refused_whatever_the_upper_bits() {
    let stream = libc::SOCK_STREAM as u64;
    for arch in ARCHES {
        let program = filter(arch);
        for call in ["socket", "socketpair"] {
            let create =
                |family: u64, kind: u64| eval(&program, audit_arch(arch), nr(call, arch), [family, kind, 0, 0, 0, 0]);
            for high in [0, 1 << 32, 0xffff_ffff_0000_0000] {
                assert_eq!(create(AF_VSOCK | high, stream), EPERM, "{call}({:#x}) on {arch:?}", AF_VSOCK | high);
            }
            assert_eq!(create(AF_VSOCK, libc::SOCK_DGRAM as u64), EPERM);
            for family in ALLOWED_FAMILIES {
                assert_eq!(create(family, stream), ALLOW, "{call}({family:#x}) on {arch:?}");
                assert_eq!(create(family | 1 << 32, stream), ALLOW);
            }
            // Only argument 0 is the family.
            assert_eq!(create(libc::AF_INET as u64, AF_VSOCK), ALLOW);
        }
    }
}

/// The program starts with an architecture check that kills the process on
/// a mismatch (`int 0x80` on x86_64, AArch32 on aarch64).
#[test]
fn foreign_architectures_are_killed() {
    let cases = [(TargetArch::x86_64, AUDIT_ARCH_I386), (TargetArch::aarch64, AUDIT_ARCH_ARM)];
    for (arch, foreign) in cases {
        let program = filter(arch);
        for n in [0, 20, 26, 120, 172, 0x4000_0000 | 39] {
            assert_eq!(eval(&program, foreign, n, [0; 6]), KILL, "nr {n} as {foreign:#x} on {arch:?}");
        }
        // The other supported architecture is just as foreign.
        assert_eq!(eval(&program, other_audit_arch(arch), 0, [0; 6]), KILL);
        // The very first instructions: LD arch; JEQ <arch>; RET KILL_PROCESS.
        assert_eq!(program[0], insn(LD_W_ABS, 0, 0, DATA_ARCH));
        assert_eq!(program[1], insn(JMP_JEQ_K, 1, 0, audit_arch(arch)));
        assert_eq!(program[2], insn(RET_K, 0, 0, KILL));
    }
}

#[test]
fn x32_calls_get_enosys_on_x86_64() {
    let program = filter(TargetArch::x86_64);
    // x32 getpid, ptrace (521), ioctl (514), process_vm_readv (539), and -1.
    for n in [39, 521, 514, 539, 101, 0x3fff_ffff] {
        let n = i64::from(X32_SYSCALL_BIT) | n;
        assert_eq!(eval(&program, AUDIT_ARCH_X86_64, n, [0; 6]), ENOSYS, "nr {n:#x}");
    }
    assert_eq!(eval(&program, AUDIT_ARCH_X86_64, -1, [0; 6]), ENOSYS);
}

// ---------------------------------------------------------------------------
// The generator against its reference: the same policy compiled by
// seccompiler, as this module did before it wrote its own program (a linear
// chain of 342 instructions on x86_64).

/// The policy as seccompiler compiles it. seccompiler gives a filter one
/// action on match and one on mismatch, but the sandbox needs three outcomes
/// (allow, `EPERM`, `ENOSYS`), so the reference is several small programs run
/// one after another ([`then`]): the first part that refuses a call decides,
/// and a call that every part allows is allowed.
fn reference_filter(arch: TargetArch) -> BpfProgram {
    let mut parts = Vec::new();
    if arch == TargetArch::x86_64 {
        parts.push(x32_guard());
    }
    parts.push(compile_filter(arch, BTreeMap::from([(number(&CLONE3, arch), Vec::new())]), libc::ENOSYS));
    parts.push(compile_filter(arch, eperm_rules(arch), libc::EPERM));
    parts.into_iter().reduce(then).unwrap()
}

/// Compiles one part: calls that match `rules` fail with `errno`, every
/// other call is allowed (by this part).
fn compile_filter(arch: TargetArch, rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> BpfProgram {
    SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
        .and_then(BpfProgram::try_from)
        .unwrap()
}

/// The rules whose match means `EPERM`. An empty rule list refuses the call
/// whatever its arguments; otherwise any one matching rule refuses it.
fn eperm_rules(arch: TargetArch) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().filter_map(|call| call.number(arch)).map(|nr| (nr, Vec::new())).collect();

    // clone asking for any new namespace: one rule per flag, since a masked
    // compare can only test equality ("this bit is set").
    let clone = NAMESPACE_FLAGS.iter().map(|&flag| rule(vec![low32(0, SeccompCmpOp::MaskedEq(flag), flag)])).collect();
    rules.insert(number(&CLONE, arch), clone);

    // TIOCSTI / TIOCLINUX, on the low 32 bits only (CVE-2019-10063).
    let ioctl = [TIOCSTI, TIOCLINUX]
        .iter()
        .map(|&request| rule(vec![low32(1, SeccompCmpOp::MaskedEq(0xffff_ffff), request)]))
        .collect();
    rules.insert(number(&IOCTL, arch), ioctl);

    // personality with a persona outside the allowed few (low 32 bits).
    let personality = ALLOWED_PERSONAS.iter().map(|&persona| low32(0, SeccompCmpOp::Ne, persona)).collect();
    rules.insert(number(&PERSONALITY, arch), vec![rule(personality)]);

    // socket / socketpair of a denied family (low 32 bits: the family is an int).
    for call in [&SOCKET, &SOCKETPAIR] {
        let families = DENIED_FAMILIES.iter().map(|&family| rule(vec![low32(0, SeccompCmpOp::Eq, family)])).collect();
        rules.insert(number(call, arch), families);
    }

    rules
}

/// A condition on the low 32 bits of argument `arg`, the part the kernel
/// reads of an `int`/`unsigned int` argument.
fn low32(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).unwrap()
}

fn rule(conditions: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conditions).unwrap()
}

/// x86_64 only: refuses every x32 call with `ENOSYS`. seccompiler cannot
/// express this (its rules match exact numbers), so the reference has it
/// written by hand too.
fn x32_guard() -> BpfProgram {
    vec![
        insn(LD_W_ABS, 0, 0, DATA_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, KILL),
        insn(LD_W_ABS, 0, 0, DATA_NR),
        insn(JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, ENOSYS),
        insn(RET_K, 0, 0, ALLOW),
    ]
}

/// Runs `first`, and where `first` would allow the call, `second`: every
/// `RET ALLOW` of `first` becomes a forward jump to the start of `second`.
/// Both read only `seccomp_data` (no scratch memory), so `second` starts
/// from a clean slate.
fn then(mut first: BpfProgram, second: BpfProgram) -> BpfProgram {
    let len = first.len();
    for (at, insn) in first.iter_mut().enumerate() {
        if insn.code == RET_K && insn.k == ALLOW {
            // JA jumps k instructions past the next one.
            *insn = sock_filter { code: JMP_JA, jt: 0, jf: 0, k: (len - at - 1) as u32 };
        }
    }
    first.extend(second);
    first
}

#[test]
fn then_runs_the_second_part_only_where_the_first_allows() {
    let ret = |k| vec![insn(RET_K, 0, 0, k)];
    assert_eq!(eval(&then(ret(ALLOW), ret(EPERM)), 0, 0, [0; 6]), EPERM);
    assert_eq!(eval(&then(ret(ENOSYS), ret(EPERM)), 0, 0, [0; 6]), ENOSYS);
    assert_eq!(eval(&then(ret(ALLOW), ret(ALLOW)), 0, 0, [0; 6]), ALLOW);
    // No RET ALLOW is left in the reference except in its last part.
    let program = reference_filter(TargetArch::x86_64);
    let first_allow = program.iter().position(|i| i.code == RET_K && i.k == ALLOW).unwrap();
    let last_part = program.len() - reference_part_len();
    assert!(first_allow >= last_part, "RET ALLOW at {first_allow}, last part starts at {last_part}");
}

fn reference_part_len() -> usize {
    compile_filter(TargetArch::x86_64, eperm_rules(TargetArch::x86_64), libc::EPERM).len()
}

/// Argument vectors that tell the verdicts apart: each value below in
/// `args[0]` (clone's flags, the persona, the socket family) and in
/// `args[1]` (ioctl's request), plus all zeros and all ones.
fn telling_args() -> Vec<[u64; 6]> {
    let sigchld = libc::SIGCHLD as u64;
    let all_namespaces = NAMESPACE_FLAGS.iter().fold(0, |a, f| a | f);
    let mut values = vec![
        0,
        u64::MAX,
        sigchld,
        THREAD_FLAGS,
        FORK_FLAGS,
        all_namespaces,
        all_namespaces | sigchld,
        TIOCSTI,
        TIOCLINUX,
        TIOCSTI | 1 << 32,
        TIOCLINUX | 1 << 32,
        0x5401, // TCGETS
        0x541B, // FIONREAD
        8,
        0xffff_ffff,
        0x0040000, // ADDR_NO_RANDOMIZE
        1,
        0xffff_ffff | 1 << 32,
        8 | 1 << 32,
        1 << 32,
        AF_VSOCK,
        AF_VSOCK | 1 << 32,
        AF_VSOCK | 0xffff_ffff_0000_0000,
    ];
    for family in ALLOWED_FAMILIES {
        values.extend([family, family | 1 << 32]);
    }
    for flag in NAMESPACE_FLAGS {
        values.extend([flag, flag | sigchld, flag | THREAD_FLAGS, flag << 32]);
    }
    let mut args: Vec<[u64; 6]> = values.iter().flat_map(|&v| [[v, 0, 0, 0, 0, 0], [0, v, 0, 0, 0, 0]]).collect();
    args.push([u64::MAX; 6]);
    args
}

/// Every number 0..=1100, the same with the x32 bit, and a few extremes.
fn telling_numbers() -> impl Iterator<Item = i64> + Clone {
    (0..=1100).flat_map(|n| [n, i64::from(X32_SYSCALL_BIT) | n]).chain([
        -1,
        i32::MIN.into(),
        i32::MAX.into(),
        0x8000_0000 | 16,
    ])
}

/// The hand-made program answers exactly as seccompiler's compilation of
/// the same policy, for every number, architecture and telling argument.
#[test]
fn same_verdicts_as_the_seccompiler_reference() {
    let args = telling_args();
    for arch in ARCHES {
        let (program, reference) = (filter(arch), reference_filter(arch));
        let compare = |audit: u32, nr: i64, args: [u64; 6]| {
            assert_eq!(
                eval(&program, audit, nr, args),
                eval(&reference, audit, nr, args),
                "nr {nr:#x}, arch {audit:#x}, args {args:#x?} on {arch:?}"
            );
        };
        for nr in telling_numbers() {
            for &args in &args {
                compare(audit_arch(arch), nr, args);
            }
            // Foreign conventions: the arguments make no difference to the
            // reference, whose first check is the architecture.
            let foreign = [AUDIT_ARCH_I386, AUDIT_ARCH_ARM, other_audit_arch(arch)];
            for audit in foreign {
                compare(audit, nr, [0; 6]);
                compare(audit, nr, [u64::MAX; 6]);
            }
        }
    }
}

/// The search keeps every number's path short, where a linear chain (the
/// reference: 356 instructions on x86_64) takes over a hundred steps for
/// many numbers. Each path is the preamble (`LD arch`, `JEQ`, `LD nr` and,
/// on x86_64, the x32 `JSET`), at most ⌈log2 N⌉ + 1 = 7 comparisons for the
/// ~58 numbers of the policy, and a `RET`; the calls whose arguments are
/// checked add a load and up to three compares.
#[test]
fn every_number_reaches_its_verdict_in_a_few_steps() {
    const MAX_PATH: usize = 12;
    const MAX_ARGUMENT_CHECK: usize = 4;
    for arch in ARCHES {
        let program = filter(arch);
        let checked = ["clone", "ioctl", "personality", "socket", "socketpair"].map(|name| nr(name, arch));
        let mut longest = 0;
        for n in telling_numbers() {
            for args in telling_args() {
                let (_, steps) = run(&program, audit_arch(arch), n, args);
                let limit = if checked.contains(&n) { MAX_PATH + MAX_ARGUMENT_CHECK } else { MAX_PATH };
                assert!(steps <= limit, "nr {n:#x} takes {steps} steps on {arch:?}");
                longest = longest.max(steps);
            }
        }
        let reference_longest =
            telling_numbers().map(|n| run(&reference_filter(arch), audit_arch(arch), n, [0; 6]).1).max().unwrap();
        eprintln!(
            "{arch:?}: {} instructions, longest path {longest} (reference: {} and {reference_longest})",
            program.len(),
            reference_filter(arch).len()
        );
    }
}

/// What the kernel's checker (`bpf_check_classic`, `seccomp_check_filter`)
/// demands of every instruction, reached or not: an opcode seccomp allows,
/// aligned loads inside `seccomp_data`, jumps that land inside the program,
/// and a `RET` at the end.
fn assert_kernel_accepts(program: &[sock_filter]) {
    const JMP_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
    const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    assert!(!program.is_empty() && program.len() <= MAX_INSTRUCTIONS);
    let lands = |at: usize, offset: usize| at + 1 + offset < program.len();
    for (at, i) in program.iter().enumerate() {
        match i.code {
            LD_W_ABS => assert!(i.k % 4 == 0 && i.k < 64, "load {} at {at}", i.k),
            JMP_JA => assert!(lands(at, i.k as usize), "JA at {at}"),
            JMP_JEQ_K | JMP_JGE_K | JMP_JGT_K | JMP_JSET_K => {
                assert!(lands(at, i.jt.into()) && lands(at, i.jf.into()), "jump at {at}")
            }
            ALU_AND_K | RET_K => {}
            code => panic!("opcode {code:#x} at {at}"),
        }
    }
    assert_eq!(program.last().unwrap().code, RET_K);
}

#[test]
fn every_instruction_is_one_the_kernel_accepts() {
    for arch in ARCHES {
        assert_kernel_accepts(&filter(arch));
        assert_kernel_accepts(&reference_filter(arch));
    }
}

/// The generator fills in every jump's offset or fails: it never truncates
/// an offset to its 8 bits, nor lets a jump go backward or off the end.
#[test]
fn jumps_out_of_reach_are_an_error_not_truncated() {
    // LD nr; JEQ 0, end; `gap` × RET ALLOW; end: RET EPERM.
    let over = |gap: usize| {
        let mut asm = Assembler::default();
        let end = asm.label();
        asm.load(DATA_NR);
        asm.jump_if(JMP_JEQ_K, 0, end.into(), Target::Next);
        for _ in 0..gap {
            asm.ret(ALLOW);
        }
        asm.place(end);
        asm.ret(EPERM);
        asm.finish(TargetArch::x86_64)
    };
    let farthest = over(255).unwrap();
    assert_eq!(farthest[1], insn(JMP_JEQ_K, 255, 0, 0));
    assert_eq!(eval(&farthest, 0, 0, [0; 6]), EPERM);
    assert_eq!(eval(&farthest, 0, 1, [0; 6]), ALLOW);
    let err = over(256).unwrap_err();
    assert!(matches!(err, SeccompError::JumpOutOfReach { from: 1, to: 258, .. }), "{err:?}");
    assert!(err.to_string().contains("at most 255"), "{err}");

    // JA's offset is 32 bits.
    let mut asm = Assembler::default();
    let end = asm.label();
    asm.jump(end);
    for _ in 0..1000 {
        asm.ret(ALLOW);
    }
    asm.place(end);
    asm.ret(EPERM);
    let program = asm.finish(TargetArch::x86_64).unwrap();
    assert_eq!(program[0], insn(JMP_JA, 0, 0, 1000));
    assert_eq!(eval(&program, 0, 0, [0; 6]), EPERM);

    // Backward.
    let mut asm = Assembler::default();
    let start = asm.label();
    asm.place(start);
    asm.load(DATA_NR);
    asm.jump_if(JMP_JEQ_K, 0, start.into(), Target::Next);
    asm.ret(ALLOW);
    assert!(matches!(asm.finish(TargetArch::x86_64), Err(SeccompError::JumpOutOfReach { from: 1, to: 0, .. })));

    // Off the end.
    let mut asm = Assembler::default();
    asm.load(DATA_NR);
    asm.jump_if(JMP_JEQ_K, 0, Target::Next, Target::Next);
    assert!(matches!(asm.finish(TargetArch::x86_64), Err(SeccompError::JumpOutOfReach { from: 1, to: 2, .. })));

    // More than the kernel accepts.
    let mut asm = Assembler::default();
    for _ in 0..=MAX_INSTRUCTIONS {
        asm.ret(ALLOW);
    }
    assert!(matches!(
        asm.finish(TargetArch::x86_64),
        Err(SeccompError::TooLong { len, .. }) if len == MAX_INSTRUCTIONS + 1
    ));
}

#[test]
fn words_round_trip() {
    for arch in ARCHES {
        let program = filter(arch);
        let words = to_words(&program);
        assert_eq!(words.len(), program.len());
        assert_eq!(from_words(&words), program);
        // Through the plan's JSON, as init receives it.
        let json = serde_json::to_string(&words).unwrap();
        let back: Vec<u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(from_words(&back), program);
    }
    // The layout: code, jt, jf, k from the most significant end.
    assert_eq!(to_words(&[insn(0x15, 1, 2, 0xc000_003e)]), [0x0015_0102_c000_003e]);
    assert_eq!(from_words(&[0x0006_0000_7fff_0000]), [insn(RET_K, 0, 0, ALLOW)]);
    assert_eq!(to_words(&[insn(u16::MAX, u8::MAX, u8::MAX, u32::MAX)]), [u64::MAX]);
}

#[test]
fn apply_refuses_empty_and_oversized_programs() {
    let err = apply(&[]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let long = vec![insn(RET_K, 0, 0, ALLOW); MAX_INSTRUCTIONS + 1];
    assert_eq!(apply(&long).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------------------
// Real behaviour: the filter installed in a child process (this test binary
// run again with `PROBE_ENV` set), which attempts the calls and prints what
// happened; the parent asserts on the output.

const PROBE_ENV: &str = "BUN_SANDBOX_SECCOMP_PROBE";
const PROBE_TEST: &str = "policy::seccomp::tests::probe_child";

fn run_child(mode: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", PROBE_TEST, "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, mode)
        .output()
        .unwrap()
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// "ok" for a successful call, else the errno's name (or number).
fn outcome(ret: i64) -> String {
    if ret != -1 {
        return "ok".into();
    }
    match errno() {
        libc::EPERM => "EPERM".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::ENOTTY => "ENOTTY".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EAFNOSUPPORT => "EAFNOSUPPORT".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::EBADF => "EBADF".into(),
        libc::EFAULT => "EFAULT".into(),
        e => format!("errno {e}"),
    }
}

fn report(name: &str, result: impl std::fmt::Display) {
    println!("PROBE {name} {result}");
}

/// `clone` without a new stack, fork-like; the child leaves at once.
/// Returns the child's exit code, or the errno as an outcome.
unsafe fn raw_clone(flags: u64) -> String {
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if pid == 0 {
        unsafe { libc::_exit(7) };
    }
    if pid < 0 {
        return outcome(-1);
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    format!("exit {}", libc::WEXITSTATUS(status))
}

#[test]
fn probe_child() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    match mode.as_str() {
        "calls" => probe_calls(),
        #[cfg(target_arch = "x86_64")]
        "int80-bare" => int80(false),
        #[cfg(target_arch = "x86_64")]
        "int80" => int80(true),
        other => panic!("unknown probe mode {other}"),
    }
}

/// `socket` and `socketpair` calls, as (name, call, family, type); the
/// family is a full 64-bit argument so its upper half can be set.
const SOCKET_PROBES: [(&str, i64, u64, i32); 9] = {
    use libc::{SOCK_DGRAM as DGRAM, SOCK_STREAM as STREAM, SYS_socket, SYS_socketpair};
    let (unix, inet, inet6) = (libc::AF_UNIX, libc::AF_INET, libc::AF_INET6);
    let (unix, inet, inet6) = (unix as u64, inet as u64, inet6 as u64);
    [
        ("socket_vsock", SYS_socket, AF_VSOCK, STREAM),
        ("socket_vsock_high", SYS_socket, AF_VSOCK | 1 << 32, STREAM),
        ("socketpair_vsock", SYS_socketpair, AF_VSOCK, STREAM),
        ("socket_unix", SYS_socket, unix, STREAM),
        // The kernel reads the family's low 32 bits: this is AF_UNIX.
        ("socket_unix_high", SYS_socket, unix | 1 << 32, STREAM),
        ("socketpair_unix", SYS_socketpair, unix, STREAM),
        ("socket_inet", SYS_socket, inet, STREAM),
        ("socket_inet6", SYS_socket, inet6, STREAM),
        // Protocol 0: NETLINK_ROUTE.
        ("socket_netlink", SYS_socket, libc::AF_NETLINK as u64, DGRAM),
    ]
};

/// Runs [`SOCKET_PROBES`], reporting each under its name and `suffix`.
fn probe_sockets(suffix: &str) {
    for (name, call, family, kind) in SOCKET_PROBES {
        let mut pair = [-1; 2];
        // socket ignores the fourth argument; socketpair writes the pair there.
        let ret = unsafe { libc::syscall(call, family, kind, 0, pair.as_mut_ptr()) };
        report(&format!("{name}{suffix}"), outcome(ret));
    }
}

fn install() {
    let program = from_words(&to_words(&sandbox_filter(host_arch().unwrap()).unwrap()));
    // As init does: no_new_privs first, then the filter, as the last step.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
    apply(&program).unwrap();
}

fn probe_calls() {
    use libc::{SYS_bpf, SYS_clone3, SYS_ioctl, SYS_personality, syscall};
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let missing = c("/nonexistent-bun-sandbox-seccomp-probe");

    #[cfg(target_arch = "x86_64")]
    report("x32_before", outcome(unsafe { syscall(X32_SYSCALL_BIT as i64 | 39) }));
    probe_sockets("_before");

    install();
    probe_sockets("");

    unsafe {
        report("getpid", outcome(syscall(libc::SYS_getpid)));
        report("ptrace", outcome(syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0)));
        report("process_vm_readv", outcome(syscall(libc::SYS_process_vm_readv, libc::getppid(), 0, 0, 0, 0, 0)));
        report("unshare", outcome(syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)));
        report("setns", outcome(syscall(libc::SYS_setns, -1, 0)));
        for (name, flag) in [
            ("user", libc::CLONE_NEWUSER),
            ("ns", libc::CLONE_NEWNS),
            ("pid", libc::CLONE_NEWPID),
            ("net", libc::CLONE_NEWNET),
            ("uts", libc::CLONE_NEWUTS),
            ("ipc", libc::CLONE_NEWIPC),
            ("cgroup", libc::CLONE_NEWCGROUP),
        ] {
            report(&format!("clone_new{name}"), raw_clone(flag as u64 | libc::SIGCHLD as u64));
        }
        report("clone_plain", raw_clone(libc::SIGCHLD as u64));
        report("clone3", outcome(syscall(SYS_clone3, 0, 88)));
        report("mount", outcome(syscall(libc::SYS_mount, 0, missing.as_ptr(), c("tmpfs").as_ptr(), 0, 0)));
        report("umount2", outcome(syscall(libc::SYS_umount2, missing.as_ptr(), 0)));
        report("pivot_root", outcome(syscall(libc::SYS_pivot_root, missing.as_ptr(), missing.as_ptr())));
        report("fsopen", outcome(syscall(libc::SYS_fsopen, c("tmpfs").as_ptr(), 0)));
        let mut params = [0u8; 120];
        report("io_uring_setup", outcome(syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr())));
        report("keyctl", outcome(syscall(libc::SYS_keyctl, 0, -3, 0)));
        report("add_key", outcome(syscall(libc::SYS_add_key, 0, 0, 0, 0, 0)));
        report("bpf", outcome(syscall(SYS_bpf, 0, 0, 0)));
        report("perf_event_open", outcome(syscall(libc::SYS_perf_event_open, 0, 0, -1, -1, 0)));
        report("userfaultfd", outcome(syscall(libc::SYS_userfaultfd, 0)));
        report("finit_module", outcome(syscall(libc::SYS_finit_module, -1, c("").as_ptr(), 0)));
        report("open_by_handle_at", outcome(syscall(libc::SYS_open_by_handle_at, -1, 0, 0)));
        report("syslog", outcome(syscall(libc::SYS_syslog, 10, 0, 0)));
        report("settimeofday", outcome(syscall(libc::SYS_settimeofday, 0, 0)));
        report("reboot", outcome(syscall(libc::SYS_reboot, 0, 0, 0, 0)));

        let null = libc::open(c("/dev/null").as_ptr(), libc::O_RDWR);
        assert!(null >= 0);
        let byte = b"x".as_ptr();
        report("ioctl_tiocsti", outcome(syscall(SYS_ioctl, null, TIOCSTI, byte)));
        report("ioctl_tiocsti_high", outcome(syscall(SYS_ioctl, null, TIOCSTI | 1 << 32, byte)));
        report("ioctl_tioclinux", outcome(syscall(SYS_ioctl, null, TIOCLINUX, byte)));
        let mut termios = [0u8; 64];
        report("ioctl_tcgets", outcome(syscall(SYS_ioctl, null, libc::TCGETS, termios.as_mut_ptr())));
        let mut fds = [0; 2];
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let mut n: libc::c_int = 0;
        report("ioctl_fionread", outcome(syscall(SYS_ioctl, fds[0], libc::FIONREAD, &mut n)));

        report("personality_query", outcome(syscall(SYS_personality, 0xffff_ffffu64)));
        report("personality_linux32", outcome(syscall(SYS_personality, 8)));
        report("personality_linux", outcome(syscall(SYS_personality, 0)));
        report("personality_addr_no_randomize", outcome(syscall(SYS_personality, libc::ADDR_NO_RANDOMIZE)));
        report("personality_uname26", outcome(syscall(SYS_personality, libc::UNAME26)));
        report("personality_high_bits", outcome(syscall(SYS_personality, 1u64 << 32 | libc::ADDR_NO_RANDOMIZE as u64)));

        #[cfg(target_arch = "x86_64")]
        report("x32_after", outcome(syscall(X32_SYSCALL_BIT as i64 | 39)));

        // libc's own paths: fork (clone), threads and posix_spawn (clone3,
        // then clone after ENOSYS).
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(3);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        report("fork", format!("exit {}", libc::WEXITSTATUS(status)));
    }
    report("thread", std::thread::spawn(|| 42).join().map_or("panicked".into(), |v| format!("value {v}")));
    let spawned = Command::new("/bin/sh").args(["-c", "exit 5"]).status();
    report("spawn", spawned.map_or_else(|e| format!("error {e}"), |s| format!("exit {}", s.code().unwrap_or(-1))));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let io = std::fs::write(&path, b"hello").and_then(|_| std::fs::read(&path));
    report("file_io", io.map_or_else(|e| format!("error {e}"), |b| String::from_utf8_lossy(&b).into_owned()));
}

/// i386 `getpid` through `int 0x80` from this x86_64 process.
#[cfg(target_arch = "x86_64")]
fn int80(filtered: bool) {
    // No core file when the filter kills us.
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if filtered {
        install();
    }
    let mut eax: u32 = 20;
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inout("eax") eax,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    report("int80", format!("returned {}", eax as i32));
}

fn probe_results(mode: &str) -> (std::process::Output, HashMap<String, String>) {
    let out = run_child(mode);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let results = stdout
        .lines()
        // The harness may print "test … ... " before the first line.
        .filter_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (out, results)
}

#[test]
fn installed_filter_refuses_and_allows_what_it_should() {
    let (out, got) = probe_results("calls");
    let dump = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{dump}");

    let mut expected: Vec<(&str, &str)> = vec![
        ("getpid", "ok"),
        ("ptrace", "EPERM"),
        ("process_vm_readv", "EPERM"),
        ("unshare", "EPERM"),
        ("setns", "EPERM"),
        ("clone_newuser", "EPERM"),
        ("clone_newns", "EPERM"),
        ("clone_newpid", "EPERM"),
        ("clone_newnet", "EPERM"),
        ("clone_newuts", "EPERM"),
        ("clone_newipc", "EPERM"),
        ("clone_newcgroup", "EPERM"),
        ("clone_plain", "exit 7"),
        ("clone3", "ENOSYS"),
        ("mount", "EPERM"),
        ("umount2", "EPERM"),
        ("pivot_root", "EPERM"),
        ("fsopen", "EPERM"),
        ("io_uring_setup", "EPERM"),
        ("keyctl", "EPERM"),
        ("add_key", "EPERM"),
        ("bpf", "EPERM"),
        ("perf_event_open", "EPERM"),
        ("userfaultfd", "EPERM"),
        ("finit_module", "EPERM"),
        ("open_by_handle_at", "EPERM"),
        ("syslog", "EPERM"),
        ("settimeofday", "EPERM"),
        ("reboot", "EPERM"),
        ("ioctl_tiocsti", "EPERM"),
        ("ioctl_tiocsti_high", "EPERM"),
        ("ioctl_tioclinux", "EPERM"),
        // Not a terminal: the kernel's answer, so ioctl as such is not refused.
        ("ioctl_tcgets", "ENOTTY"),
        ("ioctl_fionread", "ok"),
        ("personality_query", "ok"),
        ("personality_linux32", "ok"),
        ("personality_linux", "ok"),
        ("personality_addr_no_randomize", "EPERM"),
        ("personality_uname26", "EPERM"),
        ("personality_high_bits", "EPERM"),
        ("socket_vsock", "EPERM"),
        ("socket_vsock_high", "EPERM"),
        ("socketpair_vsock", "EPERM"),
        ("socket_unix", "ok"),
        ("socket_unix_high", "ok"),
        ("socketpair_unix", "ok"),
        ("socket_inet", "ok"),
        ("fork", "exit 3"),
        ("thread", "value 42"),
        ("spawn", "exit 5"),
        ("file_io", "hello"),
    ];
    if cfg!(target_arch = "x86_64") {
        expected.push(("x32_after", "ENOSYS"));
    }
    let mut wrong = Vec::new();
    for (name, want) in expected {
        let have = got.get(name).map(String::as_str).unwrap_or("<missing>");
        if have != want {
            wrong.push(format!("{name}: expected {want}, got {have}"));
        }
    }
    // Every family but vsock answers as it did before the filter (IPv6 may
    // be off on the host, so that answer is the kernel's to give).
    for (name, _, family, _) in SOCKET_PROBES {
        let (have, before) = (got.get(name), got.get(&format!("{name}_before")));
        if family as u32 != AF_VSOCK as u32 && (have != before || before.is_none()) {
            wrong.push(format!("{name}: {have:?}, {before:?} before"));
        }
    }
    assert!(wrong.is_empty(), "{}\n\n{dump}", wrong.join("\n"));
    if let Some(before) = got.get("socket_vsock_before") {
        eprintln!("socket(AF_VSOCK) before the filter: {before}");
    }
    if let Some(before) = got.get("x32_before") {
        eprintln!("x32 getpid before the filter: {before} (ok = this kernel runs x32 code)");
    }
}

/// A call with the i386 convention kills the process (the architecture
/// check), where the kernel would otherwise run it.
#[test]
#[cfg(target_arch = "x86_64")]
fn installed_filter_kills_int80_calls() {
    let (bare, got) = probe_results("int80-bare");
    if !bare.status.success() || got.get("int80").is_none_or(|v| v.starts_with("returned -")) {
        eprintln!("skipped: this kernel does not run i386 calls ({:?}, {got:?})", bare.status);
        return;
    }
    let (out, got) = probe_results("int80");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?} {got:?}", out.status);
    assert!(!got.contains_key("int80"), "{got:?}");
}

/// A measurement, not a check: what installing the host's filter costs a
/// fresh process (most of it the kernel's action cache, which runs the
/// program once per system call number), next to a one-instruction filter.
/// Run it alone: `cargo test --release --lib apply_cost -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn apply_cost() {
    const RUNS: u32 = 20;
    let ours = sandbox_filter(host_arch().unwrap()).unwrap();
    let minimal = vec![insn(RET_K, 0, 0, ALLOW)];
    for program in [ours, minimal] {
        let mut total_us = 0;
        for _ in 0..RUNS {
            let (r, w) = nix::unistd::pipe().unwrap();
            // SAFETY: the child only installs the filter, writes and exits.
            match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => {
                    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    let start = std::time::Instant::now();
                    apply(&program).unwrap();
                    let us = start.elapsed().as_micros() as u64;
                    nix::unistd::write(&w, &us.to_ne_bytes()).unwrap();
                    unsafe { libc::_exit(0) };
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let mut buf = [0u8; 8];
                    nix::unistd::read(&r, &mut buf).unwrap();
                    nix::sys::wait::waitpid(child, None).unwrap();
                    total_us += u64::from_ne_bytes(buf);
                }
            }
        }
        eprintln!("{} instructions: apply takes {:.1} µs on average", program.len(), total_us as f64 / f64::from(RUNS));
    }
}
