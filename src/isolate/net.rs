//! The sandbox's network: only `lo`, brought up; sockets made inside it for
//! the supervisor.

use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, connect, listen, socket};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `ip link set lo up`, by ioctl.
pub fn loopback_up() -> io::Result<()> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: ifreq is plain data; the ioctls read and write it in place.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn loopback(port: u16) -> SockaddrIn {
    SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A TCP socket connected to `127.0.0.1:port` inside the sandbox.
pub fn connect_loopback(port: u16) -> io::Result<OwnedFd> {
    let sock = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    connect(sock.as_raw_fd(), &loopback(port))?;
    Ok(sock)
}

/// A TCP socket listening on `127.0.0.1:port` inside the sandbox.
pub fn listen_loopback(port: u16) -> io::Result<OwnedFd> {
    let sock = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(sock.as_raw_fd(), &loopback(port))?;
    listen(&sock, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    Ok(sock)
}

/// The network namespace, made beside PID 1's work: the helper makes it (it
/// costs more than every other namespace together) while PID 1 mounts, says
/// so on a pipe, and PID 1 joins it through the host's `/proc`, opened
/// before the fork.
pub struct Deferred {
    proc_dir: OwnedFd,
    read: OwnedFd,
    write: OwnedFd,
    helper: libc::pid_t,
}

/// PID 1's side of a `Deferred`.
pub struct Joiner {
    proc_dir: OwnedFd,
    read: OwnedFd,
    helper: libc::pid_t,
}

impl Deferred {
    /// `None` when the host's `/proc` cannot be opened: then the helper makes
    /// the namespace with the others.
    pub fn prepare() -> Option<Deferred> {
        let proc_dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open("/proc")
            .ok()?;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        Some(Deferred { proc_dir: proc_dir.into(), read, write, helper: nix::unistd::getpid().as_raw() })
    }

    /// In the helper, after the fork: makes the namespace and reports how
    /// that went (an errno, 0 for success).
    pub fn make(self) {
        let Deferred { write, .. } = self;
        let errno = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            Ok(()) => 0,
            Err(e) => e as i32,
        };
        let _ = nix::unistd::write(&write, &errno.to_ne_bytes());
    }

    /// In PID 1, after the fork.
    pub fn into_joiner(self) -> Joiner {
        let Deferred { proc_dir, read, helper, .. } = self;
        Joiner { proc_dir, read, helper }
    }
}

impl Joiner {
    /// Waits for the helper's namespace and moves into it.
    pub fn join(self) -> io::Result<()> {
        let mut word = [0u8; 4];
        let mut file = std::fs::File::from(self.read);
        std::io::Read::read_exact(&mut file, &mut word)
            .map_err(|_| io::Error::other("the helper exited before it made the network namespace"))?;
        match i32::from_ne_bytes(word) {
            0 => {}
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
        let path = std::ffi::CString::new(format!("{}/ns/net", self.helper)).map_err(io::Error::other)?;
        // SAFETY: a relative path under the directory fd we hold; the result is checked.
        let ns = unsafe { libc::openat(self.proc_dir.as_raw_fd(), path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if ns < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just opened, owned here.
        let ns = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ns) };
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(())
    }
}
