//! Where the `bun-sandbox-init` helper is.

use napi::Status;
use napi::bindgen_prelude::*;
use std::path::PathBuf;

/// The init helper: beside the loaded addon (a platform package), else in a
/// checkout's `target/` (the newest build).
pub fn find_init() -> Result<PathBuf> {
    const NAME: &str = "bun-sandbox-init";
    let missing = || {
        napi::Error::new(
            Status::GenericFailure,
            format!("cannot find {NAME} beside the bun-sandbox addon; reinstall bun-sandbox"),
        )
    };
    let dir = addon_path().and_then(|p| p.parent().map(PathBuf::from)).ok_or_else(missing)?;
    // Installed: the platform package ships it beside the addon.
    let beside = dir.join(NAME);
    if beside.is_file() {
        return Ok(beside);
    }
    // A checkout: the newer of the two builds in target/.
    let modified = |p: &PathBuf| std::fs::metadata(p).ok().filter(|m| m.is_file()).and_then(|m| m.modified().ok());
    ["release", "debug"]
        .into_iter()
        .map(|profile| dir.join("target").join(profile).join(NAME))
        .filter_map(|p| modified(&p).map(|t| (t, p)))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(missing)
}

/// The path of the loaded `.node` file.
fn addon_path() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address of a function in this library.
    let found = unsafe { libc::dladdr(addon_path as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated path.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}
