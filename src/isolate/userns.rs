//! The user namespace's id maps: the invoking user outside is `inner_uid`
//! inside, and nobody else is mapped.

use super::{SetupError, Step};
use crate::protocol::Plan;

pub fn write_maps(plan: &Plan) -> Result<(), SetupError> {
    // An unprivileged process may only write gid_map after denying setgroups.
    std::fs::write("/proc/self/setgroups", "deny").step(|| "deny setgroups in the user namespace".into())?;
    std::fs::write("/proc/self/uid_map", format!("{} {} 1\n", plan.inner_uid, plan.outer_uid))
        .step(|| format!("map uid {} to {} inside", plan.outer_uid, plan.inner_uid))?;
    std::fs::write("/proc/self/gid_map", format!("{} {} 1\n", plan.inner_gid, plan.outer_gid))
        .step(|| format!("map gid {} to {} inside", plan.outer_gid, plan.inner_gid))?;
    Ok(())
}
