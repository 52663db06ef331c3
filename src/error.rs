//! The one internal error type and its single mapping to JSON-RPC wire errors.
//!
//! Codes and messages are part of the wire contract (docs/api.md lists them): clients of the Python service match
//! on them, so they live here, next to their doc comments, and nowhere else.

use std::fmt;

use serde_json::{json, Value};

/// Which file directory a file error is about (the -1005 message names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Recording,
    Snapshot,
}

impl FileKind {
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Recording => "Recording",
            FileKind::Snapshot => "Snapshot",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// -32700 "Parse error": the frame is not valid JSON.
    Parse,
    /// -32600 "Invalid Request": not a JSON-RPC 2.0 request object (or an empty batch).
    InvalidRequest,
    /// -32600 "Invalid Request" with a reason: a batch too long, or whose replies outgrew the reply budget.
    InvalidBatch(String),
    /// -32600 "Invalid Request - missing method": `method` missing, empty or not a string.
    MissingMethod,
    /// -32601 "Method not found".
    MethodNotFound,
    /// -32602 "Invalid parameters"; the reason goes to `data.reason`.
    InvalidParams(String),
    /// -32603 "Internal server error"; the details are logged, never sent.
    Internal(String),
    /// -32001 "Authentication required for <method> - call authenticate or provide auth_token".
    AuthRequired { method: String },
    /// -32001 "Authentication failed: <reason>" (per-call token rejected, or "token expired").
    AuthFailed(String),
    /// -32002 "Rate limit exceeded".
    RateLimited,
    /// -32003 "Insufficient permissions - <role> role required for <method>".
    PermissionDenied { role: &'static str, method: String },
    /// -1000 "Camera device not found".
    CameraNotFound(String),
    /// -1003 "MediaMTX operation failed"; the reason goes to `data.reason`.
    MediaMtx(String),
    /// -1004 "Stream operation failed".
    Stream(String),
    /// -1005 "Recording file not found: <name>" / "Snapshot file not found: <name>".
    FileNotFound { kind: FileKind, name: String },
    /// -1006 "Camera is currently recording".
    CameraRecording(String),
    /// -1008 "Storage space is low".
    StorageLow(String),
    /// -1010 "Storage space is critical".
    StorageCritical(String),
    /// -32030 "Unsupported": the feature is switched off in the configuration (the Go port's code; no Python
    /// method answers it). The reason goes to `data.reason`.
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid_params(reason: impl Into<String>) -> Error {
        Error::InvalidParams(reason.into())
    }

    pub fn internal(details: impl fmt::Display) -> Error {
        Error::Internal(details.to_string())
    }

    pub fn code(&self) -> i64 {
        match self {
            Error::Parse => -32700,
            Error::InvalidRequest | Error::InvalidBatch(_) | Error::MissingMethod => -32600,
            Error::MethodNotFound => -32601,
            Error::InvalidParams(_) => -32602,
            Error::Internal(_) => -32603,
            Error::AuthRequired { .. } | Error::AuthFailed(_) => -32001,
            Error::RateLimited => -32002,
            Error::PermissionDenied { .. } => -32003,
            Error::CameraNotFound(_) => -1000,
            Error::MediaMtx(_) => -1003,
            Error::Stream(_) => -1004,
            Error::FileNotFound { .. } => -1005,
            Error::CameraRecording(_) => -1006,
            Error::StorageLow(_) => -1008,
            Error::StorageCritical(_) => -1010,
            Error::Unsupported(_) => -32030,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Error::Parse => "Parse error".into(),
            Error::InvalidRequest | Error::InvalidBatch(_) => "Invalid Request".into(),
            Error::MissingMethod => "Invalid Request - missing method".into(),
            Error::MethodNotFound => "Method not found".into(),
            Error::InvalidParams(_) => "Invalid parameters".into(),
            Error::Internal(_) => "Internal server error".into(),
            Error::AuthRequired { method } => {
                format!("Authentication required for {method} - call authenticate or provide auth_token")
            }
            Error::AuthFailed(reason) => format!("Authentication failed: {reason}"),
            Error::RateLimited => "Rate limit exceeded".into(),
            Error::PermissionDenied { role, method } => {
                format!("Insufficient permissions - {role} role required for {method}")
            }
            Error::CameraNotFound(_) => "Camera device not found".into(),
            Error::MediaMtx(_) => "MediaMTX operation failed".into(),
            Error::Stream(_) => "Stream operation failed".into(),
            Error::FileNotFound { kind, name } => format!("{} file not found: {name}", kind.label()),
            Error::CameraRecording(_) => "Camera is currently recording".into(),
            Error::StorageLow(_) => "Storage space is low".into(),
            Error::StorageCritical(_) => "Storage space is critical".into(),
            Error::Unsupported(_) => "Unsupported".into(),
        }
    }

    /// `data` is optional; when present it is `{"reason": ...}` with string values, which is what the Python
    /// clients read.
    /// Internal errors never carry data: their details may leak paths or internals.
    pub fn data(&self) -> Option<Value> {
        let reason = match self {
            Error::InvalidParams(r)
            | Error::InvalidBatch(r)
            | Error::MediaMtx(r)
            | Error::Stream(r)
            | Error::CameraRecording(r)
            | Error::StorageLow(r)
            | Error::StorageCritical(r)
            | Error::Unsupported(r)
            | Error::CameraNotFound(r) => r.as_str(),
            _ => return None,
        };
        // A reason may quote a source URL or an ffmpeg line naming one: never with its password.
        (!reason.is_empty()).then(|| json!({ "reason": crate::util::redact::text(reason) }))
    }

    /// The wire error object `{code, message, data?}`.
    pub fn to_wire(&self) -> Value {
        let mut obj = json!({ "code": self.code(), "message": self.message() });
        if let Some(data) = self.data() {
            obj["data"] = data;
        }
        obj
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())?;
        match self {
            Error::Internal(d) | Error::InvalidParams(d) | Error::MediaMtx(d) if !d.is_empty() => write!(f, ": {d}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_and_messages_match_the_contract() {
        let e = Error::FileNotFound { kind: FileKind::Recording, name: "x.mp4".into() };
        assert_eq!(e.to_wire(), json!({"code": -1005, "message": "Recording file not found: x.mp4"}));
        let e = Error::PermissionDenied { role: "admin", method: "get_metrics".into() };
        assert_eq!(e.message(), "Insufficient permissions - admin role required for get_metrics");
        assert_eq!(
            Error::Internal("secret path".into()).to_wire(),
            json!({"code": -32603, "message": "Internal server error"})
        );
        assert_eq!(
            Error::invalid_params("device is required").to_wire(),
            json!({"code": -32602, "message": "Invalid parameters", "data": {"reason": "device is required"}})
        );
    }
}
