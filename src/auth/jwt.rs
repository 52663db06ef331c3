//! HS256 JWTs with the claims the Python service issues: `user_id`, `role`, `iat`, `exp`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Identity, Role};

/// A token whose `iat` lies further in the future than this is rejected (clock skew allowance).
const MAX_IAT_SKEW_SECS: i64 = 60;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    user_id: serde_json::Value,
    role: String,
    iat: serde_json::Value,
    exp: i64,
}

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Verifies and issues tokens with one shared secret.
pub struct JwtKeys {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        // HS256 only: `alg: none` and every other algorithm fail validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        JwtKeys { decoding: DecodingKey::from_secret(secret), encoding: EncodingKey::from_secret(secret), validation }
    }

    /// The identity in a valid, unexpired token; `None` for anything else (expired, forged, malformed).
    pub fn verify(&self, token: &str) -> Option<Identity> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let c = data.claims;
        let role = Role::parse(&c.role)?;
        let iat = c.iat.as_f64()?;
        let now = now_secs();
        if iat as i64 > now + MAX_IAT_SKEW_SECS || c.exp <= now {
            return None;
        }
        // The session identity: a non-empty string (a number or an empty name identifies nobody).
        let user_id = match c.user_id {
            serde_json::Value::String(s) if !s.trim().is_empty() => s,
            _ => return None,
        };
        Some(Identity { user_id: user_id.into(), role, method: "jwt", expires_at: Some(c.exp), key_id: None })
    }

    /// A token for `user` with `role`, valid for `ttl_secs`.
    pub fn issue(&self, user: &str, role: Role, ttl_secs: u64) -> String {
        let now = now_secs();
        let claims = Claims {
            user_id: serde_json::Value::String(user.to_string()),
            role: role.as_str().to_string(),
            iat: now.into(),
            exp: now + ttl_secs as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn accepts_python_tokens_and_rejects_bad_ones() {
        let keys = JwtKeys::new(b"secret");
        let now = now_secs();
        let good = sign(b"secret", json!({"user_id": "alice", "role": "operator", "iat": now, "exp": now + 60}));
        let id = keys.verify(&good).unwrap();
        assert_eq!((&*id.user_id, id.role), ("alice", Role::Operator));
        let expired = sign(b"secret", json!({"user_id": "a", "role": "admin", "iat": now - 100, "exp": now - 1}));
        assert!(keys.verify(&expired).is_none());
        let forged = sign(b"other", json!({"user_id": "a", "role": "admin", "iat": now, "exp": now + 60}));
        assert!(keys.verify(&forged).is_none());
        let no_exp = sign(b"secret", json!({"user_id": "a", "role": "admin", "iat": now}));
        assert!(keys.verify(&no_exp).is_none());
        let future_iat =
            sign(b"secret", json!({"user_id": "a", "role": "admin", "iat": now + 3600, "exp": now + 7200}));
        assert!(keys.verify(&future_iat).is_none());
        let bad_role = sign(b"secret", json!({"user_id": "a", "role": "root", "iat": now, "exp": now + 60}));
        assert!(keys.verify(&bad_role).is_none());
        for user in [json!(""), json!(" "), json!(42), json!(null), json!(["a"])] {
            let t = sign(b"secret", json!({"user_id": user, "role": "admin", "iat": now, "exp": now + 60}));
            assert!(keys.verify(&t).is_none(), "user_id {user} must be refused");
        }
        let no_user = sign(b"secret", json!({"role": "admin", "iat": now, "exp": now + 60}));
        assert!(keys.verify(&no_user).is_none());
        // alg: none
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&json!({"user_id":"a","role":"admin","iat":now,"exp":now+60}).to_string())
        );
        assert!(keys.verify(&none).is_none());
        assert!(keys.verify("not.a.token").is_none());
        assert_eq!(keys.verify(&keys.issue("cli", Role::Admin, 60)).unwrap().role, Role::Admin);
    }

    fn b64(s: &str) -> String {
        base64_url(s.as_bytes())
    }

    fn base64_url(input: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..=chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}
