//! The sandbox's network: only `lo`, brought up; sockets made inside it for
//! the supervisor.

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, listen, socket, Backlog};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

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
