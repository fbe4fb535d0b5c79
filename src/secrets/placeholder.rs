//! Placeholders: what the sandbox sees instead of a SECRET value (SPEC §4).
//!
//! A placeholder has the value's byte length, so that replacing one by the
//! other keeps every `Content-Length` and offset right, and is made of
//! `[A-Za-z0-9]`, so that it survives URLs, headers, JSON and shells
//! unquoted. It is drawn fresh for every sandbox, and differs from, is not
//! inside, and does not contain any other placeholder or value: the proxy
//! finds placeholders by searching for them, and must never find one where
//! the sandbox wrote something else.

use std::io::{self, Read};

pub(super) const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Draws beyond this many are given up: a clash is about 1 in 10^14 per draw
/// for values of 8 bytes, so reaching it means the values leave no room
/// (only possible for very short values, in `secretMode: "env"`).
const ATTEMPTS: usize = 64;

/// What [`generate`] found.
#[derive(Debug)]
pub enum Drawn {
    /// A placeholder clear of every value and other placeholder.
    Clear(String),
    /// The last draw, which clashes with something. Acceptable only where
    /// placeholders are never searched for (env mode).
    Clashing(String),
}

/// A placeholder of `len` bytes that is clear of every string in `taken`.
pub fn generate(len: usize, taken: &[&str]) -> io::Result<Drawn> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        last = random_alnum(len)?;
        if taken.iter().all(|t| !clashes(&last, t)) {
            return Ok(Drawn::Clear(last));
        }
    }
    Ok(Drawn::Clashing(last))
}

/// Equal, or one inside the other.
fn clashes(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && (a.contains(b) || b.contains(a))
}

/// `len` characters from [`ALPHABET`], uniformly.
fn random_alnum(len: usize) -> io::Result<String> {
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        fill_random(&mut pool)?;
        // 248 = 4 * 62: bytes above it are dropped so that `% 62` is uniform.
        for &b in pool.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Fills `buf` from the kernel's CSPRNG: `getrandom(2)`, or `/dev/urandom`
/// where that system call is missing.
pub(crate) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            match usize::try_from(n) {
                Ok(n) => filled += n,
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => continue,
                        Some(libc::ENOSYS) => break,
                        _ => return Err(e),
                    }
                }
            }
        }
        if filled == buf.len() {
            return Ok(());
        }
    }
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
