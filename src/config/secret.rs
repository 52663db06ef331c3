//! Secrets in the configuration stay secret: `--check-config`, `Debug` output and log lines show [`REDACTED`]
//! instead of the JWT secret, and the `--check-config` dump masks the password of every URL in it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};
use serde_norway::Value;

/// What is printed in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A configured secret (`security.jwt.secret_key`). Its `Debug` and `Serialize` forms are [`REDACTED`]; the value is
/// reachable only through [`Secret::expose`], so a config dump or a `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it (signing and verifying tokens).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Masks the password (and secret query values) of every URL string in a configuration tree (the
/// `--check-config` dump), with the one URL redactor of the daemon, [`crate::util::redact::url`].
pub fn redact_urls(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(r) = crate::util::redact::url(s) {
                *s = r;
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(redact_urls),
        Value::Mapping(m) => m.values_mut().for_each(redact_urls),
        Value::Tagged(t) => redact_urls(&mut t.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(serde_norway::to_string(&s).unwrap().trim(), REDACTED);
        assert_eq!(s.expose(), "hunter2-hunter2");
        let back: Secret = serde_norway::from_str("hunter2-hunter2").unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn url_passwords_in_the_dump_are_masked() {
        let mut tree: Value = serde_norway::from_str("cams: [{url: 'rtsp://a:b@h/'}]\nother: 'x:y@z'\n").unwrap();
        redact_urls(&mut tree);
        assert_eq!(serde_norway::to_string(&tree).unwrap(), "cams:\n- url: rtsp://a:***@h/\nother: x:y@z\n");
    }
}
