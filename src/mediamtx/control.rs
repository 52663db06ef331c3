//! The `mediamtx-control` thread: sole owner of the path table.
//!
//! Camera CONNECTED → converge its path (read it; absent → add; different → replace; equal → leave: docs/design.md,
//! "MediaMTX paths").
//! Camera gone → DELETE its path (404 = already gone), but never while it records. Every ~2 s it reads the
//! runtime path list (metrics cache; a path of ours missing from it means MediaMTX restarted and forgot it, so it
//! is converged again) and retries what failed. Reconciliation (also deleting stale `cameraN` paths that no
//! connected camera owns) runs on first contact, after each recovery and at least every 60 s.
//!
//! A path operation that MediaMTX refuses or that cannot reach it is a `mediamtx.error` event, once per failure:
//! the retries of every tick stay silent until that operation on that path has succeeded again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use serde_json::{json, Value};

use super::client::{ApiError, ApiResult, Client};
use super::{pathconf, CameraFeed, Hooks, Shared};
use crate::camera::{Camera, CameraEvent, CameraStatus};
use crate::error::{Error, Result};
use crate::events::Topic;
use crate::process::Shutdown;
use crate::rpc::notify::Notification;

/// Full reconciliation at least this often.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

pub(crate) enum Command {
    /// Create the path now (lazy creation, `camera.auto_start_streams: false`).
    Ensure { path: String, reply: Sender<Result<()>> },
    /// Switch MediaMTX's recorder for the path.
    SetRecord { path: String, on: bool, reply: Sender<Result<()>> },
    /// MediaMTX (re)appeared: re-create every path and drop stale ones.
    Reconcile,
}

/// What converging did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converged {
    Unchanged,
    Added,
    Replaced,
}

/// Bring path `name` to `desired` (docs/design.md, "MediaMTX paths"). A lost reply to the add (connection reset,
/// timeout) and a `path already exists` are both resolved by reading the state again.
pub fn converge(client: &Client, name: &str, desired: &Value) -> ApiResult<Converged> {
    match client.get_path_config(name) {
        Ok(actual) => leave_or_replace(client, name, desired, &actual),
        Err(ApiError::NotFound(_)) => match client.add_path(name, desired) {
            Ok(()) => Ok(Converged::Added),
            Err(ApiError::AlreadyExists) => match client.get_path_config(name) {
                Ok(actual) => leave_or_replace(client, name, desired, &actual),
                // Added by someone else and not yet visible (reply-then-reload): replace is an upsert.
                Err(ApiError::NotFound(_)) => client.replace_path(name, desired).map(|_| Converged::Replaced),
                Err(e) => Err(e),
            },
            Err(e) if e.is_transport() => match client.get_path_config(name) {
                Ok(actual) => leave_or_replace(client, name, desired, &actual),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn leave_or_replace(client: &Client, name: &str, desired: &Value, actual: &Value) -> ApiResult<Converged> {
    if pathconf::matches(desired, actual) {
        return Ok(Converged::Unchanged);
    }
    log::info!("MediaMTX path {name} differs ({}): replacing", pathconf::differences(desired, actual).join(", "));
    client.replace_path(name, desired).map(|_| Converged::Replaced)
}

struct Entry {
    camera: Arc<Camera>,
    connected: bool,
    /// The path should exist (connected, and auto-start or asked for).
    wanted: bool,
    /// Converged in MediaMTX.
    exists: bool,
    record: bool,
    /// A removal still to do (camera gone while recording, or the DELETE failed).
    delete_pending: bool,
}

struct Control {
    shared: Arc<Shared>,
    hooks: Hooks,
    table: BTreeMap<String, Entry>,
    last_reconcile: Option<Instant>,
    /// Whether each runtime path had a ready stream at the last look (for `mediamtx.stream_started`/`_stopped`).
    ready: HashMap<String, bool>,
    /// (operation, path) pairs whose failure was announced and that have not succeeded since.
    failing: HashSet<(&'static str, String)>,
}

/// `mediamtx.error` params: the operation (`create_path`, `delete_path`, `set_record`, `health_check`), the path
/// and the camera it concerns (null when none), and MediaMTX's error. A path's source may be an IP camera's URL,
/// which MediaMTX can quote in its error: passwords are masked.
pub(crate) fn error_event(operation: &str, path: Option<&str>, device: Option<&str>, error: &str) -> Notification {
    let error = crate::util::redact::text(error);
    let params = json!({"operation": operation, "path": path, "device": device, "error": error});
    Notification::event(Topic::MediamtxError, device, params)
}

pub(crate) fn run(
    shared: Arc<Shared>,
    feed: CameraFeed,
    hooks: Hooks,
    commands: Receiver<Command>,
    shutdown: Shutdown,
) -> std::result::Result<(), String> {
    let period = Duration::from_secs_f64(shared.config.mediamtx.health_check_interval.clamp(0.2, 2.0));
    let ticker = crossbeam_channel::tick(period);
    let mut events = feed.events;
    let mut c = Control {
        shared,
        hooks,
        table: BTreeMap::new(),
        last_reconcile: None,
        ready: HashMap::new(),
        failing: HashSet::new(),
    };
    for camera in feed.initial {
        c.on_camera(camera);
    }
    loop {
        select! {
            recv(events) -> ev => match ev {
                Ok(CameraEvent { camera, .. }) => c.on_camera(camera),
                Err(_) => events = crossbeam_channel::never(),
            },
            recv(commands) -> cmd => match cmd {
                Ok(cmd) => c.on_command(cmd),
                Err(_) => return Ok(()),
            },
            recv(ticker) -> _ => c.on_tick(),
            recv(shutdown.channel()) -> _ => return Ok(()),
        }
        if shutdown.is_set() {
            return Ok(());
        }
    }
}

fn is_camera_path(name: &str) -> bool {
    name.strip_prefix("camera").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Control {
    fn api(&self) -> &Client {
        &self.shared.bg_client
    }

    fn on_camera(&mut self, camera: Arc<Camera>) {
        let path = camera.path_name.clone();
        let connected = camera.status == CameraStatus::Connected;
        let auto = self.shared.config.camera.auto_start_streams;
        let entry = self.table.entry(path.clone()).or_insert_with(|| Entry {
            camera: camera.clone(),
            connected,
            wanted: false,
            exists: false,
            record: false,
            delete_pending: false,
        });
        entry.camera = camera;
        entry.connected = connected;
        if connected {
            entry.wanted = entry.wanted || auto;
            entry.delete_pending = false;
            if entry.wanted && !self.shared.breaker_open() {
                let _ = self.converge(&path);
            }
        } else {
            entry.wanted = false;
            entry.record = false;
            // A failure to create or switch the path ends with its camera: the next plug starts afresh.
            self.failing.retain(|(op, p)| p != &path || *op == "delete_path");
            self.remove(&path);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Ensure { path, reply } => {
                let r = self.ensure(&path);
                let _ = reply.send(r);
            }
            Command::SetRecord { path, on, reply } => {
                let r = self.set_record(&path, on);
                let _ = reply.send(r);
            }
            Command::Reconcile => self.reconcile(),
        }
    }

    fn connected_entry(&mut self, path: &str) -> Result<&mut Entry> {
        match self.table.get_mut(path) {
            Some(e) if e.connected => Ok(e),
            _ => Err(Error::MediaMtx(format!("no connected camera for MediaMTX path {path}"))),
        }
    }

    fn ensure(&mut self, path: &str) -> Result<()> {
        let entry = self.connected_entry(path)?;
        entry.wanted = true;
        if entry.exists {
            return Ok(());
        }
        self.converge(path).map(|_| ()).map_err(|e| Error::MediaMtx(format!("path {path}: {e}")))
    }

    fn set_record(&mut self, path: &str, on: bool) -> Result<()> {
        let breaker_open = self.shared.breaker_open();
        let entry = self.connected_entry(path)?;
        entry.record = on;
        entry.wanted = true;
        if breaker_open {
            // Kept in the table: converging applies it once MediaMTX is back.
            return Err(Error::MediaMtx(format!("record {path}: MediaMTX unavailable (circuit breaker open)")));
        }
        let patched = if entry.exists {
            match self.shared.bg_client.patch_path(path, &json!({ "record": on })) {
                // Gone behind our back (MediaMTX restarted): converge re-creates it with the recorder setting.
                Err(ApiError::NotFound(_)) => None,
                other => Some(other),
            }
        } else {
            None
        };
        let result = match patched {
            Some(r) => {
                self.outcome("set_record", path, &r);
                r
            }
            None => self.converge(path).map(|_| ()),
        };
        if result.is_ok() {
            let topic = if on { Topic::MediamtxRecordingStarted } else { Topic::MediamtxRecordingStopped };
            let device = self.table.get(path).map(|e| e.camera.device.clone());
            let params = json!({"path": path, "device": device});
            self.hooks.hub.publish(Notification::event(topic, device.as_deref(), params));
        }
        result.map_err(|e| Error::MediaMtx(format!("record {} on {path}: {e}", if on { "on" } else { "off" })))
    }

    /// Announce the first failure of `operation` on `path` (`mediamtx.error`); a success ends the failure, so the
    /// next one is announced again.
    fn outcome<T>(&mut self, operation: &'static str, path: &str, result: &ApiResult<T>) {
        let key = (operation, path.to_string());
        let Err(e) = result else {
            self.failing.remove(&key);
            return;
        };
        if self.failing.insert(key) {
            let device = self.table.get(path).map(|entry| entry.camera.device.clone());
            self.hooks.hub.publish(error_event(operation, Some(path), device.as_deref(), &e.to_string()));
        }
    }

    /// Streams that became ready or stopped being ready since the last runtime list.
    fn stream_events(&mut self, list: &[super::client::RuntimePath]) {
        let now: HashMap<String, bool> = list.iter().map(|p| (p.name.clone(), p.ready == Some(true))).collect();
        let mut changes: Vec<(&str, bool)> = now
            .iter()
            .filter(|(name, ready)| self.ready.get(*name).copied().unwrap_or(false) != **ready)
            .map(|(name, ready)| (name.as_str(), *ready))
            .collect();
        changes
            .extend(self.ready.iter().filter(|(n, r)| **r && !now.contains_key(*n)).map(|(n, _)| (n.as_str(), false)));
        changes.sort_unstable();
        for (path, ready) in changes {
            let device = self.table.get(path).map(|e| e.camera.device.clone());
            let (topic, status) = if ready {
                (Topic::MediamtxStreamStarted, "started")
            } else {
                (Topic::MediamtxStreamStopped, "stopped")
            };
            let params = json!({"path": path, "device": device, "status": status, "ready": ready});
            self.hooks.hub.publish(Notification::events(&[topic, Topic::MediamtxStream], device.as_deref(), params));
        }
        self.ready = now;
    }

    /// Converge one path of the table and record the outcome.
    fn converge(&mut self, path: &str) -> ApiResult<Converged> {
        let Some(entry) = self.table.get(path) else {
            return Err(ApiError::NotFound(path.to_string()));
        };
        let desired = pathconf::desired(&self.shared.config, &entry.camera, entry.record);
        let result = converge(self.api(), path, &desired);
        self.outcome("create_path", path, &result);
        match &result {
            Ok(done) => {
                if *done != Converged::Unchanged {
                    log::info!("MediaMTX path {path}: {done:?}");
                }
                self.set_exists(path, true);
            }
            Err(e) => log::warn!("MediaMTX path {path} not converged: {e}"),
        }
        result
    }

    fn set_exists(&mut self, path: &str, exists: bool) {
        let Some(entry) = self.table.get_mut(path) else {
            return;
        };
        let changed = entry.exists != exists;
        entry.exists = exists;
        {
            let mut set = self.shared.paths.write();
            if exists {
                set.insert(path.to_string());
            } else {
                set.remove(path);
            }
        }
        if changed {
            (self.hooks.announce)(&entry.camera.device);
            let (device, action) = (&entry.camera.device, if exists { "created" } else { "removed" });
            let params = json!({"path": path, "device": device, "action": action});
            self.hooks.hub.publish(Notification::event(Topic::MediamtxPath, Some(device), params));
        }
    }

    /// Delete the path of a camera that went away, unless it is recording (then later).
    fn remove(&mut self, path: &str) {
        let device = match self.table.get(path) {
            Some(e) => e.camera.device.clone(),
            None => return,
        };
        if (self.hooks.is_recording)(&device) {
            log::info!("MediaMTX path {path}: camera gone but still recording; deleting later");
            if let Some(e) = self.table.get_mut(path) {
                e.delete_pending = true;
            }
            return;
        }
        let result = if self.shared.breaker_open() {
            Err(ApiError::Unreachable("circuit breaker open".into()))
        } else {
            // 404: already gone, which is what we wanted.
            let result = self.api().delete_path(path).or_else(|e| match e {
                ApiError::NotFound(_) => Ok(()),
                e => Err(e),
            });
            self.outcome("delete_path", path, &result);
            result
        };
        let done = result.is_ok();
        if let Err(e) = &result {
            log::warn!("MediaMTX path {path} not deleted: {e}");
        }
        if let Some(e) = self.table.get_mut(path) {
            e.delete_pending = !done;
        }
        if done {
            self.set_exists(path, false);
        }
    }

    fn on_tick(&mut self) {
        if self.shared.breaker_open() {
            return;
        }
        if self.last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY) {
            return self.reconcile();
        }
        let list = match self.api().list_paths() {
            Ok(list) => list,
            Err(e) => {
                log::debug!("MediaMTX runtime list: {e}");
                return;
            }
        };
        self.shared.store_runtime(&list);
        self.stream_events(&list);
        let present: std::collections::HashSet<&str> = list.iter().map(|p| p.name.as_str()).collect();
        let lost: Vec<String> = self
            .table
            .iter()
            .filter(|(p, e)| e.exists && !present.contains(p.as_str()))
            .map(|(p, _)| p.clone())
            .collect();
        for path in lost {
            log::warn!("MediaMTX forgot path {path} (restarted?): re-creating");
            if self.converge(&path).is_err_and(|e| e.is_transport()) {
                return;
            }
        }
        self.retry_pending();
    }

    /// Retry failed creations and deletions; stop at the first transport error (MediaMTX is down again).
    fn retry_pending(&mut self) {
        let todo: Vec<(String, bool)> = self
            .table
            .iter()
            .filter(|(_, e)| (e.wanted && e.connected && !e.exists) || e.delete_pending)
            .map(|(p, e)| (p.clone(), e.delete_pending))
            .collect();
        for (path, delete) in todo {
            if delete {
                self.remove(&path);
            } else if self.converge(&path).is_err_and(|e| e.is_transport()) {
                return;
            }
        }
    }

    /// Re-create every wanted path and delete stale `cameraN` paths that no connected camera owns.
    fn reconcile(&mut self) {
        self.last_reconcile = Some(Instant::now());
        let list = match self.api().list_paths() {
            Ok(list) => list,
            Err(e) => {
                log::debug!("MediaMTX reconcile skipped: {e}");
                return;
            }
        };
        self.shared.store_runtime(&list);
        self.stream_events(&list);
        for p in &list {
            // Only static entries of ours: a regexp-matched runtime path has another confName.
            if p.conf_name != p.name || !is_camera_path(&p.name) {
                continue;
            }
            if self.table.get(&p.name).is_some_and(|e| e.connected) {
                continue;
            }
            let number = &p.name["camera".len()..];
            let entry = self.table.entry(p.name.clone()).or_insert_with(|| stale_entry(&p.name, number));
            entry.delete_pending = true;
            log::info!("MediaMTX path {} has no connected camera: deleting", p.name);
        }
        let wanted: Vec<String> =
            self.table.iter().filter(|(_, e)| e.wanted && e.connected).map(|(p, _)| p.clone()).collect();
        for path in wanted {
            if self.converge(&path).is_err_and(|e| e.is_transport()) {
                return;
            }
        }
        let stale: Vec<String> = self.table.iter().filter(|(_, e)| e.delete_pending).map(|(p, _)| p.clone()).collect();
        for path in stale {
            self.remove(&path);
        }
    }
}

/// A table entry for a path found in MediaMTX without a camera we know of.
fn stale_entry(path: &str, number: &str) -> Entry {
    let n: u32 = number.parse().unwrap_or(0);
    let camera = Camera {
        path_name: path.to_string(),
        identity: String::new(),
        validation_status: "disconnected".into(),
        ..Camera::unprobed(n, CameraStatus::Disconnected)
    };
    Entry {
        camera: Arc::new(camera),
        connected: false,
        wanted: false,
        exists: false,
        record: false,
        delete_pending: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_path_names() {
        assert!(is_camera_path("camera0") && is_camera_path("camera12"));
        assert!(!is_camera_path("camera") && !is_camera_path("camera1x") && !is_camera_path("virtual0"));
    }
}
