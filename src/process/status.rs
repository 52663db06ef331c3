//! Component health as reported by `get_status`, `/health/*` and `/metrics`: each component thread sets its own
//! entry; readers take a copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet (`/health/ready` is 503 while any component is here).
    Starting,
    Running,
    /// Working with reduced function (e.g. MediaMTX unreachable: the API still serves).
    Degraded,
    /// Stopped or failed.
    Stopped,
    /// Switched off by configuration (e.g. `mediamtx.enabled: false`); never counts as a failure.
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Degraded => "degraded",
            State::Stopped => "stopped",
            State::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComponentStatus {
    pub state: State,
    /// Human-readable details (`Camera monitor is running with 2 cameras`, the last MediaMTX error, ...).
    pub details: String,
}

/// Shared registry, cheap to clone. Well-known names: `websocket_server`, `camera_monitor`, `mediamtx`,
/// `recorder`, `retention`, `health_server`.
#[derive(Clone, Default)]
pub struct Components {
    inner: Arc<RwLock<BTreeMap<&'static str, ComponentStatus>>>,
}

impl Components {
    pub fn set(&self, name: &'static str, state: State, details: impl Into<String>) {
        self.inner.write().insert(name, ComponentStatus { state, details: details.into() });
    }

    pub fn get(&self, name: &str) -> Option<ComponentStatus> {
        self.inner.read().get(name).cloned()
    }

    pub fn all(&self) -> BTreeMap<&'static str, ComponentStatus> {
        self.inner.read().clone()
    }
}
