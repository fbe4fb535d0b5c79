//! Parses arbitrary bytes as a Sandboxfile. The parser must never panic; when
//! it accepts the text, `format` must accept the result and the formatted text
//! must parse back to the same value.
#![no_main]

use bun_sandbox::sandboxfile::{format, parse};
use libfuzzer_sys::fuzz_target;

fn check(src: &str) {
    let Ok(file) = parse(src) else { return };
    let text = match format(&file) {
        Ok(text) => text,
        Err(e) => panic!("{src:?} parsed to {file:?}, which format refuses: {e}"),
    };
    assert_eq!(parse(&text).as_ref(), Ok(&file), "{src:?} formatted as {text:?}");
    // Formatting is canonical.
    assert_eq!(format(&parse(&text).unwrap()).as_deref(), Ok(text.as_str()));
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        // Valid UTF-8: the text exactly as given.
        Ok(src) => check(src),
        // Anything else as a JS string would see it: invalid sequences become U+FFFD.
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
