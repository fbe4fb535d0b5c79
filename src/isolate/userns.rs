//! The user namespace's id maps: `inner_uid` inside is one uid outside (the
//! invoking user, or for a root host user the unprivileged uid of
//! `supervisor::remap`), and nobody else is mapped. Either way the helper
//! maps its own uid, which needs no privilege.

use super::{SetupError, Step};
use crate::protocol::{Ids, Remap};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

/// Writes this process's maps: `ids.inner_uid`/`inner_gid` inside are
/// `uid`/`gid` (its own) outside.
pub fn write_maps(ids: &Ids, uid: u32, gid: u32) -> Result<(), SetupError> {
    // An unprivileged process may only write gid_map after denying setgroups.
    std::fs::write("/proc/self/setgroups", "deny").step(|| "deny setgroups in the user namespace".into())?;
    std::fs::write("/proc/self/uid_map", format!("{} {uid} 1\n", ids.inner_uid))
        .step(|| format!("map uid {uid} to {} inside", ids.inner_uid))?;
    std::fs::write("/proc/self/gid_map", format!("{} {gid} 1\n", ids.inner_gid))
        .step(|| format!("map gid {gid} to {} inside", ids.inner_gid))?;
    Ok(())
}

/// A root host user's helper, before it makes its namespaces, becomes the
/// unprivileged uid its sandbox user is outside; everything root had to do
/// the supervisor did. The namespace it makes next is that uid's, and
/// mapping it takes no privilege.
pub fn become_unprivileged(remap: &Remap) -> Result<(), SetupError> {
    // Root's own supplementary groups (group 0 among them) go first.
    nix::unistd::setgroups(&[]).step(|| "drop root's supplementary groups".into())?;
    let (uid, gid) = (Uid::from_raw(remap.uid), Gid::from_raw(remap.gid));
    setresgid(gid, gid, gid).step(|| "become the sandbox's group".into())?;
    setresuid(uid, uid, uid).step(|| "become the sandbox's user".into())?;
    // A change of uid leaves the process not dumpable: its /proc files
    // (the id maps among them) would stay root's.
    nix::sys::prctl::set_dumpable(true).step(|| "keep /proc/self writable".into())?;
    // It also clears the parent-death signal: the caller checks the race.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).step(|| "set the parent-death signal".into())
}
