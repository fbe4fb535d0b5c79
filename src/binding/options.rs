//! `SandboxOptions` from JavaScript: checked once, in the constructor, with a
//! `TypeError` naming the option that is wrong.

use super::errors::type_error;
use crate::supervisor as sv;
use napi::Env;
use napi::bindgen_prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options read from the JS object.
#[derive(Debug, Clone, Default)]
pub(super) struct Options {
    pub(super) cwd: Option<PathBuf>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) pids: Option<u64>,
    pub(super) cpu_seconds: Option<u64>,
    pub(super) memory_bytes: Option<u64>,
    /// `limits.diskBytes`: what the sandbox may write, all layers together.
    pub(super) disk_bytes: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) extract_dir: Option<PathBuf>,
    pub(super) ready_timeout_ms: Option<u64>,
    pub(super) hooks: sv::Hooks,
    /// `network.resolve`: host (or host:port) → address, like curl --resolve.
    pub(super) resolve: std::collections::HashMap<String, std::net::SocketAddr>,
    /// `network.extraCaCerts`, PEM (read from the file when a path was given).
    pub(super) extra_ca_certs: Option<String>,
    /// `network.allowPlaintextSecrets`: SECRET values also go over plain http.
    pub(super) plaintext_secrets: bool,
    /// `secretMode`: placeholders and the proxy (default), or plain values.
    pub(super) secret_mode: crate::secrets::SecretMode,
    /// `spare`: keep a spare ready for the next sandbox (default: unless
    /// `BUN_SANDBOX_SPARE=0`).
    pub(super) spare: Option<bool>,
}

/// The smallest `limits.diskBytes`: below it a sandbox could hardly start a shell.
const MIN_DISK_BYTES: u64 = 1 << 20;

pub(super) fn options_from_js(env: &Env, value: Option<Unknown<'_>>) -> Result<Options> {
    let Some(value) = value else { return Ok(Options::default()) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok(Options::default()),
        ValueType::Object => {}
        _ => return Err(type_error(env, "options must be an object")),
    }
    // SAFETY: checked to be an object just above.
    let obj: Object = unsafe { value.cast()? };
    let mut o = Options {
        cwd: obj.get::<String>("cwd")?.map(PathBuf::from),
        extract_dir: obj.get::<String>("extractDir")?.map(PathBuf::from),
        hooks: super::callbacks::hooks(env, &obj)?,
        ..Default::default()
    };
    if let Some(network) = obj.get::<Object>("network")? {
        if let Some(r) =
            network.get::<Unknown>("resolve")?.filter(|r| !matches!(r.get_type(), Ok(ValueType::Undefined)))
        {
            let map: BTreeMap<String, String> = env.from_js_value(r).map_err(|_| {
                type_error(env, "options.network.resolve must map host names to \"address:port\" strings")
            })?;
            for (host, addr) in map {
                let parsed = addr.parse::<std::net::SocketAddr>().map_err(|_| {
                    type_error(env, &format!("options.network.resolve[{host:?}] must be \"address:port\" (e.g. \"127.0.0.1:8443\"), not {addr:?}"))
                })?;
                o.resolve.insert(host, parsed);
            }
        }
        if let Some(pem) = network.get::<String>("extraCaCerts")? {
            o.extra_ca_certs = Some(extra_ca_certs(pem)?);
        }
        o.plaintext_secrets = network.get::<bool>("allowPlaintextSecrets")?.unwrap_or(false);
    }
    o.secret_mode = match obj.get::<String>("secretMode")?.as_deref() {
        None | Some("proxy") => crate::secrets::SecretMode::Proxy,
        Some("env") => crate::secrets::SecretMode::Env,
        Some(other) => {
            return Err(type_error(env, &format!("options.secretMode must be \"proxy\" or \"env\", not {other:?}")));
        }
    };
    o.ready_timeout_ms = match obj.get::<f64>("readyTimeoutMs")? {
        None => None,
        Some(v) if v > 0.0 && v <= 9.0e15 && v.fract() == 0.0 => Some(v as u64),
        Some(v) => return Err(type_error(env, &format!("options.readyTimeoutMs must be a positive integer, not {v}"))),
    };
    if let Some(e) = obj.get::<Unknown>("env")?
        && !matches!(e.get_type()?, ValueType::Undefined)
    {
        o.env = env
            .from_js_value::<BTreeMap<String, String>, _>(e)
            .map_err(|_| type_error(env, "options.env must map names to strings"))?;
    }
    if let Some(isolation) = obj.get::<String>("isolation")? {
        match isolation.as_str() {
            "full" => {}
            "none" => {
                return Err(napi::Error::new(
                    Status::InvalidArg,
                    "isolation: \"none\" is not available in this version: bun-sandbox only runs commands isolated",
                ));
            }
            other => {
                return Err(type_error(env, &format!("options.isolation must be \"full\" or \"none\", not {other:?}")));
            }
        }
    }
    let id = |name: &str| -> Result<Option<u32>> {
        match obj.get::<f64>(name)? {
            None => Ok(None),
            Some(v) if v >= 0.0 && v < u32::MAX as f64 && v.fract() == 0.0 => Ok(Some(v as u32)),
            Some(v) => Err(type_error(env, &format!("options.{name} must be a non-negative integer, not {v}"))),
        }
    };
    o.spare = obj.get::<bool>("spare")?;
    o.uid = id("uid")?;
    o.gid = id("gid")?;
    if let Some(limits) = obj.get::<Object>("limits")? {
        let positive = |name: &str| -> Result<Option<u64>> {
            match limits.get::<f64>(name)? {
                None => Ok(None),
                Some(v) if v > 0.0 && v <= 9.0e15 && v.fract() == 0.0 => Ok(Some(v as u64)),
                Some(v) => Err(type_error(env, &format!("limits.{name} must be a positive integer, not {v}"))),
            }
        };
        o.pids = positive("pids")?;
        o.cpu_seconds = positive("cpuSeconds")?;
        o.timeout_ms = positive("timeoutMs")?;
        o.memory_bytes = positive("memoryBytes")?;
        o.disk_bytes = positive("diskBytes")?;
        if let Some(bytes) = o.disk_bytes.filter(|b| *b < MIN_DISK_BYTES) {
            return Err(type_error(
                env,
                &format!("limits.diskBytes must be at least {MIN_DISK_BYTES} (1 MiB), not {bytes}"),
            ));
        }
    }
    Ok(o)
}

/// `network.extraCaCerts`: PEM text, or the path of a PEM file.
fn extra_ca_certs(value: String) -> Result<String> {
    if value.contains("-----BEGIN") {
        return Ok(value);
    }
    std::fs::read_to_string(&value).map_err(|e| {
        napi::Error::new(
            Status::InvalidArg,
            format!("options.network.extraCaCerts must be PEM certificates or the path of a PEM file; cannot read {value:?}: {e}"),
        )
    })
}
