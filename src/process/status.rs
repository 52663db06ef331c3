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
    watchers: Arc<RwLock<Vec<Watcher>>>,
}

/// Called when a component's state changes (not on details alone): name, new status, previous state.
pub type Watcher = Arc<dyn Fn(&'static str, &ComponentStatus, Option<State>) + Send + Sync>;

impl Components {
    pub fn set(&self, name: &'static str, state: State, details: impl Into<String>) {
        let status = ComponentStatus { state, details: details.into() };
        let previous = self.inner.write().insert(name, status.clone()).map(|p| p.state);
        if previous != Some(state) {
            for w in self.watchers.read().iter() {
                w(name, &status, previous);
            }
        }
    }

    /// Be told of every state change from now on (wiring: health events for clients).
    pub fn watch(&self, w: Watcher) {
        self.watchers.write().push(w);
    }

    pub fn get(&self, name: &str) -> Option<ComponentStatus> {
        self.inner.read().get(name).cloned()
    }

    pub fn all(&self) -> BTreeMap<&'static str, ComponentStatus> {
        self.inner.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn watchers_see_state_changes_only() {
        let c = Components::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        c.watch(Arc::new(move |name, now, before| s.lock().push((name, now.state, before))));
        c.set("recorder", State::Starting, "starting");
        c.set("recorder", State::Running, "no active recordings");
        c.set("recorder", State::Running, "1 active recordings");
        c.set("mediamtx", State::Degraded, "unreachable");
        assert_eq!(
            *seen.lock(),
            [
                ("recorder", State::Starting, None),
                ("recorder", State::Running, Some(State::Starting)),
                ("mediamtx", State::Degraded, None)
            ]
        );
    }
}
