//! Methods that act on the connection's session rather than on a component: `authenticate`.
//!
//! Bad credentials are a *result* `{"authenticated": false, "error": ...}`, not an error: every shipped client reads
//! only replies that carry `result`, so an error reply would leave it waiting for its timeout instead of telling the
//! user the token is wrong.

use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};

use super::params::Deferred;
use super::{method, Call, Method};
use crate::auth::{jwt, Authenticator, Session};
use crate::error::{Error, Result};
use crate::util::{ids, timefmt};

pub static METHODS: &[Method<Authenticator>] = &[method!(session "authenticate", Public, Inline, authenticate)];

/// API-key sessions do not expire; `expires_at` then reports a day from now, as the Python service does.
const API_KEY_EXPIRES_IN: i64 = 24 * 3600;

#[derive(Deserialize)]
struct AuthParams {
    auth_token: Option<Deferred<String>>,
    token: Option<Deferred<String>>,
    auth_type: Option<String>,
}

fn authenticate(auth: &Authenticator, p: AuthParams, _: &Call, session: &mut Session) -> Result<Value> {
    let token = match p.auth_token.or(p.token).map(|t| t.0) {
        Some(Ok(t)) if !t.trim().is_empty() => t,
        _ => return Err(Error::invalid_params("auth_token (or token) must be a non-empty string")),
    };
    Ok(match auth.authenticate(&token, p.auth_type.as_deref()) {
        Err(reason) => {
            log::info!("authentication failed: {reason}");
            json!({"authenticated": false, "error": reason})
        }
        Ok(identity) => {
            let session_id = ids::uuid_v4();
            let expires = identity.expires_at.unwrap_or_else(|| jwt::now_secs() + API_KEY_EXPIRES_IN);
            let result = json!({
                "authenticated": true,
                "role": identity.role.as_str(),
                "permissions": identity.role.permissions(),
                "expires_at": timefmt::rfc3339(UNIX_EPOCH + Duration::from_secs(expires.max(0) as u64)),
                "session_id": session_id,
                "user_id": &*identity.user_id,
                "auth_method": identity.method,
            });
            log::info!("authenticated {} as {}", identity.user_id, identity.role);
            session.identity = Some(identity);
            session.session_id = Some(session_id);
            result
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::rpc::Caller;

    fn run(auth: &Authenticator, session: &mut Session, params: Value) -> Result<Value> {
        let caller = Caller::default();
        match METHODS[0].handler {
            crate::rpc::Handler::Session(f) => f(auth, &params, &Call::new(&caller), session),
            crate::rpc::Handler::Call(_) => unreachable!("authenticate is a session method"),
        }
    }

    #[test]
    fn authenticate_changes_only_this_session() {
        let auth = Authenticator::new(b"unit-secret", "/nonexistent/keys.json".into(), 0);
        let mut s = Session::default();
        let r = run(&auth, &mut s, json!({"token": "garbage"})).unwrap();
        assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired JWT token"}));
        assert!(s.identity.is_none());
        let token = auth.issue("alice", Role::Operator, 60);
        let r = run(&auth, &mut s, json!({"auth_token": token, "auth_type": "jwt"})).unwrap();
        assert_eq!((r["authenticated"].clone(), r["role"].clone()), (json!(true), json!("operator")));
        assert_eq!(s.identity.as_ref().map(|i| i.role), Some(Role::Operator));
        for bad in [json!({}), json!({"token": ""}), json!({"auth_token": 5}), json!(["x"])] {
            assert!(matches!(run(&auth, &mut Session::default(), bad), Err(Error::InvalidParams(_))));
        }
        let err = run(&auth, &mut Session::default(), json!({"token": "x", "auth_type": 3})).unwrap_err();
        assert_eq!(err, Error::InvalidParams("auth_type must be a string".into()));
    }
}
