use proptest::prelude::*;

use super::*;

fn redactor(secrets: &[(&str, &str)]) -> Arc<Redactor> {
    Arc::new(Redactor::new(secrets.iter().copied()).expect("builds"))
}

fn stream_bytes(r: &Arc<Redactor>, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut stream = RedactStream::new(r.clone());
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(start, input.len());
        out.extend(stream.push(&input[start..cut]));
        start = cut;
    }
    out.extend(stream.finish());
    out
}

fn stream_text(r: &Arc<Redactor>, input: &[u8], cuts: &[usize]) -> String {
    let mut stream = RedactStr::new(r.clone());
    let mut out = String::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(start, input.len());
        out.push_str(&stream.push_bytes(&input[start..cut]));
        start = cut;
    }
    out.push_str(&stream.finish());
    out
}

#[test]
fn replaces_each_value_with_its_name() {
    let r = redactor(&[("API_KEY", "sk-live-123456"), ("DB", "hunter2hunter2")]);
    assert_eq!(r.redact_str("key=sk-live-123456 db=hunter2hunter2."), "key=[secret API_KEY] db=[secret DB].");
    assert_eq!(&*r.redact_bytes(b"sk-live-123456sk-live-123456"), b"[secret API_KEY][secret API_KEY]");
    assert!(matches!(r.redact_str("nothing to hide"), Cow::Borrowed(_)));
    assert!(matches!(r.redact_bytes(b"sk-live-12345"), Cow::Borrowed(_)));
}

#[test]
fn the_longer_of_two_overlapping_values_wins() {
    let r = redactor(&[("SHORT", "abcdefgh"), ("LONG", "abcdefghijkl")]);
    assert_eq!(r.redact_str("abcdefghijkl abcdefghij"), "[secret LONG] [secret SHORT]ij");
    assert_eq!(stream_bytes(&r, b"abcdefghijkl", &[8]), b"[secret LONG]");
}

#[test]
fn empty_values_are_never_redacted_and_a_shared_value_takes_the_first_name() {
    let r = redactor(&[("EMPTY", ""), ("A", "same-value"), ("B", "same-value")]);
    assert!(!r.is_empty());
    assert_eq!(r.redact_str("x same-value y"), "x [secret A] y");
    let none = redactor(&[("EMPTY", "")]);
    assert!(none.is_empty());
    assert_eq!(none.redact_str("anything"), "anything");
    assert_eq!(stream_bytes(&none, b"anything", &[3]), b"anything");
}

#[test]
fn the_stream_holds_back_only_what_could_become_a_value() {
    let r = redactor(&[("K", "0123456789")]);
    let mut stream = RedactStream::new(r);
    assert_eq!(stream.push(b"line one\n"), b"line one\n");
    assert_eq!(stream.held(), 0);
    assert_eq!(stream.push(b"token 01234"), b"token ");
    assert_eq!(stream.held(), 5);
    assert_eq!(stream.push(b"56789 done"), b"[secret K] done");
    assert_eq!(stream.push(b" 012"), b" ");
    assert_eq!(stream.finish(), b"012");
    // Usable again after finish.
    assert_eq!(stream.push(b"0123456789"), b"[secret K]");
}

#[test]
fn text_streams_never_cut_a_character() {
    let value = "pässwörd-ü-☃-секрет";
    let r = redactor(&[("PW", value)]);
    let text = format!("ä {value} ö {value}€");
    let whole = r.redact_str(&text).into_owned();
    assert_eq!(whole, "ä [secret PW] ö [secret PW]€");
    let bytes = text.as_bytes();
    for a in 0..=bytes.len() {
        for b in a..=bytes.len() {
            assert_eq!(stream_text(&r, bytes, &[a, b]), whole, "cut at {a} and {b}");
        }
    }
    // Whole &str pieces through `push`.
    let mut stream = RedactStr::new(r.clone());
    let mut out = String::new();
    for piece in ["ä pässw", "örd-ü-☃-сек", "рет ", "ö"] {
        out.push_str(&stream.push(piece));
    }
    out.push_str(&stream.finish());
    assert_eq!(out, "ä [secret PW] ö");
}

#[test]
fn text_streams_replace_bytes_that_are_not_utf8() {
    let r = redactor(&[("K", "secret-value")]);
    let input = b"a\xffb secret-value \xe2\x82";
    for cut in 0..=input.len() {
        assert_eq!(stream_text(&r, input, &[cut]), "a\u{fffd}b [secret K] \u{fffd}", "cut at {cut}");
    }
}

/// Names and values over a tiny alphabet (overlapping, prefixing and
/// containing each other), and an input made mostly of pieces of the values.
fn values_and_input() -> impl Strategy<Value = (Vec<String>, Vec<u8>, Vec<usize>)> {
    prop::collection::vec("[ab]{1,6}", 1..5).prop_flat_map(|values| {
        let piece = prop_oneof![
            (prop::sample::select(values.clone()), any::<prop::sample::Index>(), any::<prop::sample::Index>())
                .prop_map(|(v, a, b)| {
                    let (a, b) = (a.index(v.len() + 1), b.index(v.len() + 1));
                    v.as_bytes()[a.min(b)..a.max(b)].to_vec()
                }),
            prop::sample::select(values.clone()).prop_map(String::into_bytes),
            prop::collection::vec(prop::sample::select(&b"abx\xc3\xa4"[..]), 0..4),
        ];
        let input = prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat());
        (Just(values), input, prop::collection::vec(0..80usize, 0..8))
    })
}

proptest! {
    #[test]
    fn any_split_redacts_like_the_whole((values, input, mut cuts) in values_and_input()) {
        let names: Vec<String> = (0..values.len()).map(|i| format!("K{i}")).collect();
        let secrets = names.iter().map(String::as_str).zip(values.iter().map(String::as_str));
        let r = Arc::new(Redactor::new(secrets).expect("builds"));
        cuts.sort_unstable();
        let whole = r.redact_bytes(&input).into_owned();
        prop_assert_eq!(&stream_bytes(&r, &input, &cuts), &whole);
        let every_byte: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&stream_bytes(&r, &input, &every_byte), &whole);
        prop_assert_eq!(stream_text(&r, &input, &cuts), String::from_utf8_lossy(&whole));
        // "[secret Kn]" has neither "a" nor "b": no value can survive.
        for v in &values {
            let left = whole.windows(v.len()).any(|w| w == v.as_bytes());
            prop_assert!(!left, "{:?} left in {:?}", v, String::from_utf8_lossy(&whole));
        }
    }
}
