//! The `recording-progress` thread: `recording.progress` about once a second for each running recording, only
//! while some connection subscribes to that topic. With no subscriber it sleeps on the hub's "first subscriber"
//! signal (no timer runs); it reads the recorder's published sessions and never asks the recorder anything.
#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime};

use crossbeam_channel::select;
use serde_json::{json, Value};

use super::{Recordings, SessionInfo};
use crate::events::Topic;
use crate::process::{Shutdown, Supervisor};
use crate::rpc::notify::{Hub, Notification};

/// One progress event per recording this often.
pub const PERIOD: Duration = Duration::from_secs(1);

pub fn spawn(recordings: Recordings, hub: Hub, supervisor: &Supervisor) -> std::io::Result<()> {
    let shutdown = supervisor.shutdown().clone();
    supervisor.spawn("recording-progress", move || {
        run(&recordings, &hub, &shutdown);
        Ok(())
    })
}

fn run(recordings: &Recordings, hub: &Hub, shutdown: &Shutdown) {
    let interest = hub.interest().clone();
    loop {
        if !interest.wanted(Topic::RecordingProgress) {
            // Nobody listens: wait for a first subscriber to any topic (then look again), or for shutdown.
            select! {
                recv(interest.first_subscriber()) -> _ => continue,
                recv(shutdown.channel()) -> _ => return,
            }
        }
        let infos: Vec<SessionInfo> = recordings.read().values().cloned().collect();
        for info in &infos {
            hub.publish(Notification::event(Topic::RecordingProgress, Some(&info.device), progress(info)));
        }
        select! {
            recv(shutdown.channel()) -> _ => return,
            default(PERIOD) => {}
        }
    }
}

/// `recording.progress` params: how far the recording is, from its files on disk.
pub(crate) fn progress(info: &SessionInfo) -> Value {
    let files = info.files();
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    let current = files.last().map_or(info.filename.clone(), |(name, _)| name.clone());
    let elapsed = SystemTime::now().duration_since(info.start).unwrap_or_default().as_secs_f64();
    json!({
        "device": info.device,
        "session_id": info.session_id,
        "status": "RECORDING",
        "filename": current,
        "elapsed": (elapsed * 10.0).round() / 10.0,
        "duration": info.duration,
        "file_size": bytes,
        "files": files.len(),
    })
}
