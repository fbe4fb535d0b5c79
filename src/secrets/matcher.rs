//! Finding SECRET values (or placeholders) in bytes, whole or as a stream.
//!
//! Matches follow leftmost-longest semantics (of two values where one starts
//! the other, the longer wins) and do not overlap. The streaming form gives
//! exactly the bytes the whole form would, however the input is cut, while
//! holding back as little as possible: from the first position where the
//! rest of what has been seen is a proper prefix of some pattern (more input
//! could complete a match there, or a longer one). Everything before that is
//! decided:
//! - a match found before it cannot be beaten by one starting earlier (that
//!   one would be complete already, or be a proper prefix starting earlier)
//!   nor by a longer one at the same place (its start would be such a prefix);
//! - and no match can start between the last one and it.
//!
//! The held-back tail is found with each pattern's KMP border table over the
//! last `len - 1` bytes, so one call costs time linear in the input plus the
//! total length of the patterns.

use aho_corasick::{AhoCorasick, Input, MatchKind};

/// A set of non-empty byte patterns, each with the caller's id.
pub struct Matcher {
    /// `None` when there is no pattern: nothing ever matches.
    ac: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
}

struct Pattern {
    id: usize,
    bytes: Vec<u8>,
    /// KMP: `border[i]` is the length of the longest proper prefix of
    /// `bytes[..=i]` that is also its suffix.
    border: Vec<usize>,
}

/// Writes the replacement for a match of pattern `id` (the matched bytes are
/// given too) to `out`.
pub type Replace<'a> = dyn FnMut(usize, &[u8], &mut Vec<u8>) + 'a;

impl Matcher {
    /// Empty patterns (which would match everywhere) are left out, and of
    /// equal patterns only the first is kept: its id is the one reported.
    pub fn new(patterns: impl IntoIterator<Item = (usize, Vec<u8>)>) -> Result<Matcher, aho_corasick::BuildError> {
        let mut kept: Vec<Pattern> = Vec::new();
        for (id, bytes) in patterns {
            if bytes.is_empty() || kept.iter().any(|p| p.bytes == bytes) {
                continue;
            }
            let border = borders(&bytes);
            kept.push(Pattern { id, bytes, border });
        }
        let ac = if kept.is_empty() {
            None
        } else {
            let ac =
                AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(kept.iter().map(|p| &p.bytes))?;
            Some(ac)
        };
        Ok(Matcher { ac, patterns: kept })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `input` with every match replaced, or `None` when nothing matched.
    pub fn replace_all(&self, input: &[u8], replace: &mut Replace<'_>) -> Option<Vec<u8>> {
        let ac = self.ac.as_ref()?;
        let mut matches = ac.find_iter(input).peekable();
        matches.peek()?;
        let mut out = Vec::with_capacity(input.len());
        let mut done = 0;
        for m in matches {
            out.extend_from_slice(&input[done..m.start()]);
            self.replace_one(m.pattern().as_usize(), &input[m.start()..m.end()], &mut out, replace);
            done = m.end();
        }
        out.extend_from_slice(&input[done..]);
        Some(out)
    }

    /// The streaming form: appends to `out` what is decided of `held` (the
    /// tail kept back by the previous call) followed by `input`, and leaves
    /// the rest in `held`.
    pub fn feed(&self, held: &mut Vec<u8>, input: &[u8], out: &mut Vec<u8>, replace: &mut Replace<'_>) {
        let Some(ac) = &self.ac else {
            out.append(held);
            out.extend_from_slice(input);
            return;
        };
        let mut buf = std::mem::take(held);
        buf.extend_from_slice(input);
        let open = self.open_starts(&buf);
        let mut done = 0;
        loop {
            // The first position from `done` on that more input could still
            // turn into (a longer) match.
            let hold = open.iter().copied().find(|&s| s >= done).unwrap_or(buf.len());
            match ac.find(Input::new(&buf).range(done..)) {
                Some(m) if m.start() < hold => {
                    out.extend_from_slice(&buf[done..m.start()]);
                    self.replace_one(m.pattern().as_usize(), &buf[m.start()..m.end()], out, replace);
                    done = m.end();
                }
                _ => {
                    out.extend_from_slice(&buf[done..hold]);
                    buf.drain(..hold);
                    *held = buf;
                    return;
                }
            }
        }
    }

    /// Ends a stream: what is held back can no longer grow, so it is
    /// replaced as a whole.
    pub fn finish(&self, held: &mut Vec<u8>, out: &mut Vec<u8>, replace: &mut Replace<'_>) {
        let buf = std::mem::take(held);
        match self.replace_all(&buf, replace) {
            Some(replaced) => out.extend_from_slice(&replaced),
            None => out.extend_from_slice(&buf),
        }
    }

    fn replace_one(&self, index: usize, matched: &[u8], out: &mut Vec<u8>, replace: &mut Replace<'_>) {
        match self.patterns.get(index) {
            Some(p) => replace(p.id, matched, out),
            // aho-corasick reports only indexes of the patterns it was built from.
            None => out.extend_from_slice(matched),
        }
    }

    /// Every position `s` where `buf[s..]` is a non-empty proper prefix of
    /// some pattern, ascending.
    fn open_starts(&self, buf: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        for p in &self.patterns {
            // Only the last `len - 1` bytes can start a proper prefix.
            let window = &buf[buf.len().saturating_sub(p.bytes.len() - 1)..];
            let mut k = 0;
            for &b in window {
                // `k` stays below the window's length, itself below the
                // pattern's, so the indexing is in bounds.
                while k > 0 && p.bytes[k] != b {
                    k = p.border[k - 1];
                }
                if p.bytes[k] == b {
                    k += 1;
                }
            }
            // `k` is the longest prefix of the pattern ending `buf`; its
            // borders are all the shorter ones.
            while k > 0 {
                starts.push(buf.len() - k);
                k = p.border[k - 1];
            }
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// The length of the longest pattern, for tests of the hold-back bound.
    #[cfg(test)]
    pub fn longest(&self) -> usize {
        self.patterns.iter().map(|p| p.bytes.len()).max().unwrap_or(0)
    }
}

/// The KMP border table of `p`.
fn borders(p: &[u8]) -> Vec<usize> {
    let mut border = vec![0; p.len()];
    let mut k = 0;
    for i in 1..p.len() {
        while k > 0 && p[i] != p[k] {
            k = border[k - 1];
        }
        if p[i] == p[k] {
            k += 1;
        }
        border[i] = k;
    }
    border
}

#[cfg(test)]
mod tests;
