//! The JavaScript API (SPEC §2). Only this module knows about napi.

mod callbacks;
mod errors;
mod init_path;
mod logs;
mod options;
mod sandbox;
mod sandboxfile;
mod support;
