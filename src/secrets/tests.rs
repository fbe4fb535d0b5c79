use super::*;

pub(super) fn spec(name: &str, value: &str, hosts: &[&str]) -> SecretSpec {
    SecretSpec { name: name.into(), value: value.into(), hosts: hosts.iter().map(|h| h.to_string()).collect() }
}

fn error(specs: Vec<SecretSpec>, mode: SecretMode) -> String {
    Secrets::new(specs, mode).expect_err("refused").to_string()
}

fn placeholders(s: &Secrets) -> Vec<String> {
    s.list.iter().map(|s| s.placeholder.clone()).collect()
}

#[test]
fn placeholders_have_the_values_length_and_are_alphanumeric() {
    let values = [
        "sk-live-0123456789abcdef",
        "pässwörd-☃",
        "12345678",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ];
    let specs = values.iter().enumerate().map(|(i, v)| spec(&format!("S{i}"), v, &[])).collect();
    let secrets = Secrets::new(specs, SecretMode::Proxy).expect("valid");
    let env = secrets.env();
    for ((name, placeholder), value) in env.iter().zip(values) {
        assert_eq!(placeholder.len(), value.len(), "{name}");
        assert!(placeholder.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}: {placeholder}");
        assert_ne!(placeholder, value);
    }
    // Placeholders against everything else (values may contain each other).
    let all: Vec<&str> = env.iter().map(|(_, p)| p.as_str()).chain(values).collect();
    for (i, (_, p)) in env.iter().enumerate() {
        for (j, other) in all.iter().enumerate() {
            if i != j {
                assert!(!p.contains(other) && !other.contains(p.as_str()), "{p:?} and {other:?}");
            }
        }
    }
    assert_eq!(secrets.names(), ["S0", "S1", "S2", "S3"]);
    assert!(!secrets.is_empty());
}

#[test]
fn placeholders_are_new_for_every_sandbox() {
    let make =
        || Secrets::new(vec![spec("K", "a-secret-value-of-32-bytes-long!", &[])], SecretMode::Proxy).expect("valid");
    assert_ne!(placeholders(&make()), placeholders(&make()));
}

#[test]
fn env_mode_gives_the_values() {
    let secrets =
        Secrets::new(vec![spec("A", "value-a-long", &[]), spec("B", "b", &[])], SecretMode::Env).expect("valid");
    assert_eq!(secrets.env(), [("A".to_string(), "value-a-long".to_string()), ("B".to_string(), "b".to_string())]);
    assert_eq!(secrets.mode(), SecretMode::Env);
    // Placeholders exist (echoes in responses become them) but are never searched for.
    assert_eq!(secrets.list[0].placeholder.len(), 12);
    assert!(secrets.placeholders.is_empty());
}

#[test]
fn env_mode_copes_with_values_that_leave_no_room() {
    // 70 one-byte values: no set of distinct one-byte placeholders exists.
    let specs = (0..70).map(|i| spec(&format!("K{i}"), &char::from(b'!' + i as u8).to_string(), &[])).collect();
    let secrets = Secrets::new(specs, SecretMode::Env).expect("valid");
    assert!(placeholders(&secrets).iter().all(|p| p.len() == 1));
}

#[test]
fn no_value_no_secret() {
    let none = Secrets::new(Vec::new(), SecretMode::Proxy).expect("valid");
    assert!(none.is_empty());
    assert!(none.env().is_empty());
    assert!(none.redactor().is_empty());
    // An empty value is allowed: it is never substituted nor redacted.
    let empty = Secrets::new(vec![spec("E", "", &["api.example.com"])], SecretMode::Proxy).expect("valid");
    assert_eq!(empty.env(), [("E".to_string(), String::new())]);
    assert!(empty.redactor().is_empty());
}

#[test]
fn refuses_a_nul() {
    for mode in [SecretMode::Proxy, SecretMode::Env] {
        assert_eq!(
            error(vec![spec("TOKEN", "abc\0defghij", &[])], mode),
            "SECRET TOKEN contains a NUL byte, which an environment variable cannot hold; remove it from the value"
        );
    }
}

#[test]
fn refuses_short_values_in_proxy_mode_only() {
    assert_eq!(
        error(vec![spec("PIN", "1234567", &[])], SecretMode::Proxy),
        "SECRET PIN is 7 bytes long; placeholders for values shorter than 8 bytes would be mistaken for ordinary text; use a longer value or secretMode: \"env\""
    );
    // Bytes, not characters: "ääää" is 8 bytes.
    assert!(Secrets::new(vec![spec("PIN", "ääää", &[])], SecretMode::Proxy).is_ok());
    assert!(Secrets::new(vec![spec("PIN", "12345678", &[])], SecretMode::Proxy).is_ok());
    assert!(Secrets::new(vec![spec("PIN", "1", &[])], SecretMode::Env).is_ok());
}

#[test]
fn refuses_hosts_that_are_not_patterns() {
    assert_eq!(
        error(vec![spec("KEY", "0123456789", &["api.example.com", "https://api.example.com/v1"])], SecretMode::Proxy),
        "SECRET KEY host \"https://api.example.com/v1\" is a URL; write just the host, e.g. \"api.example.com\""
    );
    assert_eq!(
        error(vec![spec("KEY", "0123456789", &["api.*.com"])], SecretMode::Env),
        "SECRET KEY host \"api.*.com\" has \"*\" where only a whole first label may be; write \"*.example.com\" for every subdomain, or \"*\" for every host"
    );
}

#[test]
fn refuses_a_name_given_twice() {
    assert_eq!(
        error(vec![spec("KEY", "0123456789", &[]), spec("KEY", "0123456789", &["a.test"])], SecretMode::Proxy),
        "SECRET KEY is given twice; give each secret once, with all of its hosts"
    );
}

#[test]
fn debug_output_never_shows_a_value() {
    let s = spec("KEY", "very-secret-value", &["api.example.com"]);
    let shown = format!("{s:?}");
    assert!(shown.contains("KEY") && shown.contains("17 bytes") && !shown.contains("very-secret-value"), "{shown}");
    let secrets = Secrets::new(vec![s], SecretMode::Proxy).expect("valid");
    let shown = format!("{secrets:?} {:?}", secrets.redactor());
    assert!(!shown.contains("very-secret-value") && !shown.contains(&secrets.env()[0].1), "{shown}");
}

#[test]
fn placeholder_draws_give_up_when_nothing_fits() {
    let every: Vec<String> = placeholder::ALPHABET.iter().map(|&b| char::from(b).to_string()).collect();
    let taken: Vec<&str> = every.iter().map(String::as_str).collect();
    assert!(matches!(placeholder::generate(1, &taken), Ok(Drawn::Clashing(p)) if p.len() == 1));
    assert!(matches!(placeholder::generate(1, &[]), Ok(Drawn::Clear(p)) if p.len() == 1));
    assert!(matches!(placeholder::generate(0, &[]), Ok(Drawn::Clear(p)) if p.is_empty()));
    // A long value containing a short one's every possible placeholder.
    let long = placeholder::ALPHABET.iter().map(|&b| char::from(b)).collect::<String>();
    assert!(matches!(placeholder::generate(1, &[&long]), Ok(Drawn::Clashing(_))));
}
