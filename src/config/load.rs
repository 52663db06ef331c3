//! Loading: search order, YAML, environment overrides, validation (decisions §2).
//! (Foundation placeholder: file only; the full loader replaces this.)

use std::path::PathBuf;

use super::Config;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`: must exist.
    pub path: Option<PathBuf>,
    /// `--strict-config`: unknown keys are errors.
    pub strict: bool,
}

/// A configuration error: one line naming the key, e.g. `server.port: expected 1..65535, got 70000`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, if any.
    pub source: Option<PathBuf>,
    /// Lines to log at WARN once logging is up (unknown keys, ...).
    pub warnings: Vec<String>,
}

pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let Some(path) = opts.path.clone() else {
        return Ok(Loaded { config: Config::default(), source: None, warnings: vec![] });
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    let mut config: Config =
        serde_norway::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    if let Ok(v) = std::env::var("CAMERA_SERVICE_JWT_SECRET") {
        config.security.jwt.secret_key = Some(v);
    }
    if let Ok(v) = std::env::var("CAMERA_SERVICE_API_KEYS_PATH") {
        config.security.api_keys.storage_file = v.into();
    }
    if let Ok(v) = std::env::var("CAMERA_SERVICE_RATE_RPM") {
        config.security.rate_limiting.requests_per_minute =
            v.parse().map_err(|_| ConfigError(format!("CAMERA_SERVICE_RATE_RPM: expected an integer, got {v:?}")))?;
    }
    Ok(Loaded { config, source: Some(path), warnings: vec![] })
}
