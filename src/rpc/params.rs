//! Parameter extraction with the contract's validation rules: every violation is -32602 with a reason.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The params object; omitted or `null` params read as an empty object, anything else is invalid.
pub fn object(params: &Value) -> Result<Map<String, Value>> {
    match params {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        _ => Err(Error::invalid_params("params must be an object")),
    }
}

/// Borrowing view of the params object.
pub fn obj(params: &Value) -> Result<Option<&Map<String, Value>>> {
    match params {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        _ => Err(Error::invalid_params("params must be an object")),
    }
}

fn get<'a>(params: &'a Value, key: &str) -> Result<Option<&'a Value>> {
    Ok(obj(params)?.and_then(|m| m.get(key)).filter(|v| !v.is_null()))
}

/// A required non-empty string.
pub fn required_str<'a>(params: &'a Value, key: &str) -> Result<&'a str> {
    match get(params, key)? {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Error::invalid_params(format!("{key} must not be empty"))),
        Some(_) => Err(Error::invalid_params(format!("{key} must be a string"))),
        None => Err(Error::invalid_params(format!("{key} is required"))),
    }
}

/// An optional string.
pub fn opt_str<'a>(params: &'a Value, key: &str) -> Result<Option<&'a str>> {
    match get(params, key)? {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid_params(format!("{key} must be a string"))),
        None => Ok(None),
    }
}

/// An optional integer within `min..=max` (a float such as 1.5, a bool or a string is invalid).
pub fn opt_int(params: &Value, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
    match get(params, key)? {
        None => Ok(None),
        Some(v) => {
            let n = v.as_i64().filter(|_| v.is_i64() || v.is_u64());
            match n {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                Some(n) => Err(Error::invalid_params(format!("{key} must be between {min} and {max}, got {n}"))),
                None => Err(Error::invalid_params(format!("{key} must be an integer"))),
            }
        }
    }
}

/// An optional boolean.
pub fn opt_bool(params: &Value, key: &str) -> Result<Option<bool>> {
    match get(params, key)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid_params(format!("{key} must be a boolean"))),
    }
}

/// An optional number (integer or float; booleans are rejected).
pub fn opt_number(params: &Value, key: &str) -> Result<Option<f64>> {
    match get(params, key)? {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| Error::invalid_params(format!("{key} must be a number"))),
    }
}
