//! The user namespace's id maps: the invoking user outside is `inner_uid`
//! inside, and nobody else is mapped.

use super::{SetupError, Step};
use crate::protocol::Ids;

pub fn write_maps(ids: &Ids) -> Result<(), SetupError> {
    // An unprivileged process may only write gid_map after denying setgroups.
    std::fs::write("/proc/self/setgroups", "deny").step(|| "deny setgroups in the user namespace".into())?;
    std::fs::write("/proc/self/uid_map", format!("{} {} 1\n", ids.inner_uid, ids.outer_uid))
        .step(|| format!("map uid {} to {} inside", ids.outer_uid, ids.inner_uid))?;
    std::fs::write("/proc/self/gid_map", format!("{} {} 1\n", ids.inner_gid, ids.outer_gid))
        .step(|| format!("map gid {} to {} inside", ids.outer_gid, ids.inner_gid))?;
    Ok(())
}
