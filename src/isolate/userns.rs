//! The user namespace's id maps: `inner_uid` inside is one uid outside (the
//! invoking user, or for a root host user the unprivileged uid of
//! `super::remap`), and nobody else is mapped.

use super::{SetupError, Step};
use crate::protocol::Ids;

/// Writes the maps of the process whose `/proc` directory is `proc`:
/// `ids.inner_uid`/`inner_gid` inside are `uid`/`gid` outside.
pub fn write_maps(proc: &str, ids: &Ids, uid: u32, gid: u32) -> Result<(), SetupError> {
    // An unprivileged process may only write gid_map after denying setgroups.
    std::fs::write(format!("{proc}/setgroups"), "deny").step(|| "deny setgroups in the user namespace".into())?;
    std::fs::write(format!("{proc}/uid_map"), format!("{} {uid} 1\n", ids.inner_uid))
        .step(|| format!("map uid {uid} to {} inside", ids.inner_uid))?;
    std::fs::write(format!("{proc}/gid_map"), format!("{} {gid} 1\n", ids.inner_gid))
        .step(|| format!("map gid {gid} to {} inside", ids.inner_gid))?;
    Ok(())
}
