//! Authentication and authorization: JWT, API keys, roles, per-connection sessions, rate limits. Sessions belong
//! to one connection; see docs/design.md ("Compatibility choices").

pub mod apikeys;
pub mod jwt;
mod role;
pub mod session;
pub mod signed_url;

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use role::Role;
pub use session::Session;

use crate::config::Config;
use apikeys::ApiKeys;
use jwt::JwtKeys;
use signed_url::UrlSigner;

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user_id: Arc<str>,
    pub role: Role,
    /// `jwt` or `api_key`.
    pub method: &'static str,
    /// JWT `exp` (seconds since the epoch); API-key sessions do not expire.
    pub expires_at: Option<i64>,
    /// The API key's `key_id` (API-key identities only): a session re-checks it on every call, so revoking the key
    /// ends sessions already open.
    pub key_id: Option<Arc<str>>,
}

/// Failure texts of `authenticate`, as the Python service words them (clients show them to users).
pub const JWT_FAILED: &str = "Invalid or expired JWT token";
pub const API_KEY_FAILED: &str = "Invalid or expired API key";
pub const UNKNOWN_TYPE_FAILED: &str = "Invalid authentication token";

/// Verifies JWTs and API keys. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    jwt: JwtKeys,
    api_keys: ApiKeys,
    urls: UrlSigner,
    rate_per_minute: u64,
}

impl Authenticator {
    /// Build from configuration: resolves the JWT secret (see `resolve_secret`) and opens the API key store.
    pub fn from_config(config: &Config) -> Result<Authenticator, String> {
        let secret = resolve_secret(config)?;
        Ok(Authenticator::new(
            secret.as_bytes(),
            config.security.api_keys.storage_file.clone(),
            config.security.rate_limiting.requests_per_minute,
        ))
    }

    pub fn new(secret: &[u8], api_keys_path: PathBuf, rate_per_minute: u64) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                jwt: JwtKeys::new(secret),
                urls: UrlSigner::new(secret),
                api_keys: ApiKeys::new(api_keys_path),
                rate_per_minute,
            }),
        }
    }

    /// A raw JWT (as in `Authorization: Bearer <jwt>`).
    pub fn verify_jwt(&self, token: &str) -> Option<Identity> {
        self.inner.jwt.verify(token)
    }

    /// An API key (as in `X-API-Key`).
    pub fn verify_api_key(&self, key: &str) -> Option<Identity> {
        self.inner.api_keys.verify(key)
    }

    /// `authenticate` semantics: `auth_type` jwt / api_key / auto (JWT, then API key); the error is the
    /// Python reason text.
    pub fn authenticate(&self, token: &str, auth_type: Option<&str>) -> Result<Identity, &'static str> {
        match auth_type.unwrap_or("auto") {
            "jwt" => self.verify_jwt(token).ok_or(JWT_FAILED),
            "api_key" => self.verify_api_key(token).ok_or(API_KEY_FAILED),
            "auto" => self.verify_jwt(token).or_else(|| self.verify_api_key(token)).ok_or(JWT_FAILED),
            _ => self.verify_jwt(token).or_else(|| self.verify_api_key(token)).ok_or(UNKNOWN_TYPE_FAILED),
        }
    }

    /// Is a session with this identity still allowed? JWTs: not expired. API keys: still in the keys file, active
    /// and unexpired (the file is re-read when it changes, checked at most once a second).
    pub fn still_valid(&self, identity: &Identity) -> bool {
        identity.expires_at.is_none_or(|exp| jwt::now_secs() < exp) && !self.revoked(identity)
    }

    /// An API-key identity whose key is no longer in the keys file, inactive or expired (false for JWTs).
    pub fn revoked(&self, identity: &Identity) -> bool {
        identity.key_id.as_ref().is_some_and(|key_id| !self.inner.api_keys.is_active(key_id))
    }

    pub fn rate_per_minute(&self) -> u64 {
        self.inner.rate_per_minute
    }

    /// Issue a token (the `token` CLI command).
    pub fn issue(&self, user: &str, role: Role, ttl_secs: u64) -> String {
        self.inner.jwt.issue(user, role, ttl_secs)
    }

    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.api_keys
    }

    /// Signs and verifies short-lived URLs with a key derived from the JWT secret.
    pub fn url_signer(&self) -> &UrlSigner {
        &self.inner.urls
    }
}

/// `CAMERA_SERVICE_JWT_SECRET` / `security.jwt.secret_key` (the loader maps the env var onto the key); else
/// `<state_dir>/jwt_secret`; else 32 random bytes written there with mode 0600 and a WARN. Never a built-in default.
fn resolve_secret(config: &Config) -> Result<String, String> {
    if let Some(s) = config.security.jwt.secret_key.as_ref().map(crate::config::Secret::expose) {
        if s.trim().is_empty() {
            return Err("security.jwt.secret_key: the JWT secret must not be empty".into());
        }
        return Ok(s.to_string());
    }
    let path = config.state_dir.join("jwt_secret");
    match fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => return Err(format!("{}: JWT secret file is empty", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: cannot read JWT secret: {e}", path.display()))
        }
        Err(_) => {}
    }
    let secret = generate_secret(&path)?;
    log::warn!(
        "no JWT secret configured: generated one in {} (set CAMERA_SERVICE_JWT_SECRET to choose your own)",
        path.display()
    );
    Ok(secret)
}

fn generate_secret(path: &Path) -> Result<String, String> {
    let mut bytes = [0u8; 32];
    crate::util::ids::random_bytes(&mut bytes).map_err(|e| format!("cannot generate a JWT secret: {e}"))?;
    let secret = crate::util::ids::hex(&bytes);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: cannot write JWT secret: {e}", path.display()))?;
    f.write_all(secret.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret)
}
