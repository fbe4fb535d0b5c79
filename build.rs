fn main() {
    // Only the addon needs the napi link setup; the init helper links none of it.
    if std::env::var_os("CARGO_FEATURE_BINDING").is_some() {
        napi_build::setup();
    }
}
