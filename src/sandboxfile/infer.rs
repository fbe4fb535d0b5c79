//! Infers a Sandboxfile from a project directory (SPEC §1.3).

use super::Sandboxfile;
use std::path::Path;

pub fn infer(_dir: &Path) -> std::io::Result<Sandboxfile> {
    Err(std::io::Error::other("inference is not built yet"))
}
