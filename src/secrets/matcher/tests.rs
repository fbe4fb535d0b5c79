use proptest::prelude::*;

use super::*;

fn matcher(patterns: &[&str]) -> Matcher {
    Matcher::new(patterns.iter().map(|p| p.as_bytes().to_vec()).enumerate()).expect("patterns build")
}

/// Writes `<id>` for each match.
fn tag(id: usize, _: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("<{id}>").as_bytes());
}

fn whole(m: &Matcher, input: &[u8]) -> Vec<u8> {
    m.replace_all(input, &mut tag).unwrap_or_else(|| input.to_vec())
}

/// Streams `input` cut at `cuts`; also checks what is held after each piece.
fn streamed(m: &Matcher, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(start, input.len());
        m.feed(&mut held, &input[start..cut], &mut out, &mut tag);
        assert!(held.len() < m.longest().max(1), "holds {} bytes with patterns of at most {}", held.len(), m.longest());
        assert!(held.is_empty() || m.patterns.iter().any(|p| p.bytes.len() > held.len() && p.bytes.starts_with(&held)));
        start = cut;
    }
    m.finish(&mut held, &mut out, &mut tag);
    assert!(held.is_empty());
    out
}

fn s(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("test output is UTF-8")
}

#[test]
fn leftmost_longest_whole() {
    let m = matcher(&["abc", "abcdef", "cd"]);
    assert_eq!(s(whole(&m, b"xabcdefx")), "x<1>x");
    assert_eq!(s(whole(&m, b"xabcdex")), "x<0>dex");
    assert_eq!(s(whole(&m, b"xbcdx")), "xb<2>x");
    assert_eq!(m.replace_all(b"nothing here", &mut tag), None);
}

#[test]
fn a_longer_match_may_still_come() {
    // "abc" is complete but may become "abcdef".
    let m = matcher(&["abc", "abcdef"]);
    assert_eq!(s(streamed(&m, b"abcdef", &[3])), "<1>");
    assert_eq!(s(streamed(&m, b"abcdex", &[3, 5])), "<0>dex");
    assert_eq!(s(streamed(&m, b"abc", &[3])), "<0>");
}

#[test]
fn an_earlier_match_may_still_come() {
    // "cd" is complete, but "abcdefgh" started before it.
    let m = matcher(&["abcdefgh", "cd"]);
    assert_eq!(s(streamed(&m, b"abcdefgh", &[4])), "<0>");
    assert_eq!(s(streamed(&m, b"abcdxx", &[4])), "ab<1>xx");
}

#[test]
fn holds_back_only_a_possible_start() {
    let m = matcher(&["secretvalue"]);
    let mut held = Vec::new();
    let mut out = Vec::new();
    m.feed(&mut held, b"xx secr", &mut out, &mut tag);
    assert_eq!((out.as_slice(), held.as_slice()), (&b"xx "[..], &b"secr"[..]));
    m.feed(&mut held, b"et", &mut out, &mut tag);
    assert_eq!(held, b"secret");
    m.feed(&mut held, b"valu", &mut out, &mut tag);
    assert_eq!(held, b"secretvalu");
    m.feed(&mut held, b"ex", &mut out, &mut tag);
    assert_eq!(s(out.clone()), "xx <0>x");
    assert!(held.is_empty());
    // Nothing that could start the value: nothing held.
    m.feed(&mut held, b"plain text", &mut out, &mut tag);
    assert!(held.is_empty());
    // A repeated prefix: "sese" could be "se" + "secretvalue"; only "se" is held.
    m.feed(&mut held, b"sese", &mut out, &mut tag);
    assert_eq!(held, b"se");
}

#[test]
fn empty_and_repeated_patterns_are_left_out() {
    let m = Matcher::new([(0, b"".to_vec()), (1, b"abc".to_vec()), (2, b"abc".to_vec())]).expect("builds");
    assert_eq!(s(whole(&m, b"abc")), "<1>");
    let none = Matcher::new([(0, Vec::new())]).expect("builds");
    assert!(none.is_empty());
    assert_eq!(none.replace_all(b"abc", &mut tag), None);
    assert_eq!(s(streamed(&none, b"abc", &[1])), "abc");
}

#[test]
fn borders_match_the_definition() {
    for p in [&b"aabaaab"[..], b"abcabcab", b"aaaa", b"abcd", b"a"] {
        let got = borders(p);
        for (i, &k) in got.iter().enumerate() {
            let prefix = &p[..=i];
            let want = (0..prefix.len()).rev().find(|&k| prefix[..k] == prefix[prefix.len() - k..]).unwrap_or(0);
            assert_eq!(k, want, "border of {:?}", String::from_utf8_lossy(prefix));
        }
    }
}

/// Patterns over a tiny alphabet, so that they overlap, prefix and contain
/// each other, and an input made mostly of pieces of them.
fn patterns_and_input() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>, Vec<usize>)> {
    prop::collection::vec(prop::collection::vec(prop::sample::select(&b"ab"[..]), 1..7), 1..5).prop_flat_map(
        |patterns| {
            let piece = prop_oneof![
                (prop::sample::select(patterns.clone()), any::<prop::sample::Index>(), any::<prop::sample::Index>())
                    .prop_map(|(p, a, b)| {
                        let (a, b) = (a.index(p.len() + 1), b.index(p.len() + 1));
                        p[a.min(b)..a.max(b)].to_vec()
                    }),
                prop::sample::select(patterns.clone()),
                prop::collection::vec(prop::sample::select(&b"abc"[..]), 0..4),
            ];
            let input = prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat());
            (Just(patterns), input, prop::collection::vec(0..80usize, 0..8))
        },
    )
}

proptest! {
    #[test]
    fn streaming_equals_whole((patterns, input, mut cuts) in patterns_and_input()) {
        let m = Matcher::new(patterns.into_iter().enumerate()).expect("builds");
        cuts.sort_unstable();
        prop_assert_eq!(streamed(&m, &input, &cuts), whole(&m, &input));
    }

    #[test]
    fn byte_by_byte_equals_whole((patterns, input, _) in patterns_and_input()) {
        let m = Matcher::new(patterns.into_iter().enumerate()).expect("builds");
        let cuts: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(streamed(&m, &input, &cuts), whole(&m, &input));
    }
}
