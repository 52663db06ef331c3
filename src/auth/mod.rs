//! Authentication and authorization: JWT, API keys, roles, per-connection sessions, rate limits.

mod role;

pub use role::Role;

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user_id: String,
    pub role: Role,
    /// `jwt` or `api_key`.
    pub method: &'static str,
    /// JWT `exp` (seconds since the epoch); API-key sessions do not expire.
    pub expires_at: Option<i64>,
}

/// Verifies JWTs and API keys. (Placeholder until the JSON-RPC server issue; the signatures are the contract.)
#[derive(Clone, Default)]
pub struct Authenticator;

impl Authenticator {
    /// A raw JWT (as in `Authorization: Bearer <jwt>`).
    pub fn verify_jwt(&self, _token: &str) -> Option<Identity> {
        None
    }

    /// An API key (as in `X-API-Key`).
    pub fn verify_api_key(&self, _key: &str) -> Option<Identity> {
        None
    }
}
