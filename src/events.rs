//! Event topics and per-connection subscriptions (no I/O, no threads).
//!
//! A connection that never subscribes gets the Python notifications (`camera_status_update`,
//! `recording_status_update`) exactly as the Python service sends them. A connection that calls `subscribe_events`
//! gets only the topics it chose, each as a notification named after the topic, with a `timestamp`. One event can be
//! known under several topics (a recording start is `recording_status_update` and `recording.start`); see
//! docs/design.md ("Notifications").
//!
//! The subscription itself lives in the connection's session (so it dies with the connection); [`Interest`] only
//! counts, so that producers can skip work nobody asked for (recording progress) and `get_subscription_stats` can
//! answer without asking every worker.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// Every topic a client may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Topic {
    CameraStatusUpdate,
    RecordingStatusUpdate,
    SystemHealthUpdate,
    CameraConnected,
    CameraDisconnected,
    CameraStatusChange,
    CameraCapabilityDetected,
    CameraCapabilityError,
    RecordingStart,
    RecordingStop,
    RecordingProgress,
    RecordingError,
    SnapshotTaken,
    SnapshotError,
    SystemHealth,
    SystemError,
    SystemStartup,
    SystemShutdown,
    MediamtxStream,
    MediamtxPath,
    MediamtxError,
    MediamtxRecordingStarted,
    MediamtxRecordingStopped,
    MediamtxRecordingFailed,
    MediamtxStreamStarted,
    MediamtxStreamStopped,
}

impl Topic {
    /// Every topic, in the order of their numbers.
    pub const ALL: [Topic; 26] = [
        Topic::CameraStatusUpdate,
        Topic::RecordingStatusUpdate,
        Topic::SystemHealthUpdate,
        Topic::CameraConnected,
        Topic::CameraDisconnected,
        Topic::CameraStatusChange,
        Topic::CameraCapabilityDetected,
        Topic::CameraCapabilityError,
        Topic::RecordingStart,
        Topic::RecordingStop,
        Topic::RecordingProgress,
        Topic::RecordingError,
        Topic::SnapshotTaken,
        Topic::SnapshotError,
        Topic::SystemHealth,
        Topic::SystemError,
        Topic::SystemStartup,
        Topic::SystemShutdown,
        Topic::MediamtxStream,
        Topic::MediamtxPath,
        Topic::MediamtxError,
        Topic::MediamtxRecordingStarted,
        Topic::MediamtxRecordingStopped,
        Topic::MediamtxRecordingFailed,
        Topic::MediamtxStreamStarted,
        Topic::MediamtxStreamStopped,
    ];

    /// The topic's name: the notification `method` subscribers receive.
    pub fn name(self) -> &'static str {
        match self {
            Topic::CameraStatusUpdate => "camera_status_update",
            Topic::RecordingStatusUpdate => "recording_status_update",
            Topic::SystemHealthUpdate => "system_health_update",
            Topic::CameraConnected => "camera.connected",
            Topic::CameraDisconnected => "camera.disconnected",
            Topic::CameraStatusChange => "camera.status_change",
            Topic::CameraCapabilityDetected => "camera.capability_detected",
            Topic::CameraCapabilityError => "camera.capability_error",
            Topic::RecordingStart => "recording.start",
            Topic::RecordingStop => "recording.stop",
            Topic::RecordingProgress => "recording.progress",
            Topic::RecordingError => "recording.error",
            Topic::SnapshotTaken => "snapshot.taken",
            Topic::SnapshotError => "snapshot.error",
            Topic::SystemHealth => "system.health",
            Topic::SystemError => "system.error",
            Topic::SystemStartup => "system.startup",
            Topic::SystemShutdown => "system.shutdown",
            Topic::MediamtxStream => "mediamtx.stream",
            Topic::MediamtxPath => "mediamtx.path",
            Topic::MediamtxError => "mediamtx.error",
            Topic::MediamtxRecordingStarted => "mediamtx.recording_started",
            Topic::MediamtxRecordingStopped => "mediamtx.recording_stopped",
            Topic::MediamtxRecordingFailed => "mediamtx.recording_failed",
            Topic::MediamtxStreamStarted => "mediamtx.stream_started",
            Topic::MediamtxStreamStopped => "mediamtx.stream_stopped",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The Python notifications, which connections without a subscription receive (unchanged, without
    /// `timestamp`).
    pub fn is_python(self) -> bool {
        matches!(self, Topic::CameraStatusUpdate | Topic::RecordingStatusUpdate)
    }

    fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// A set of topics (a bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicSet(u32);

impl TopicSet {
    pub const EMPTY: TopicSet = TopicSet(0);

    pub fn of(topics: &[Topic]) -> TopicSet {
        TopicSet(topics.iter().fold(0, |acc, t| acc | t.bit()))
    }

    pub fn with(self, t: Topic) -> TopicSet {
        TopicSet(self.0 | t.bit())
    }

    pub fn without(self, other: TopicSet) -> TopicSet {
        TopicSet(self.0 & !other.0)
    }

    pub fn union(self, other: TopicSet) -> TopicSet {
        TopicSet(self.0 | other.0)
    }

    pub fn intersect(self, other: TopicSet) -> TopicSet {
        TopicSet(self.0 & other.0)
    }

    pub fn contains(self, t: Topic) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Members in topic order.
    pub fn iter(self) -> impl Iterator<Item = Topic> {
        Topic::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// The Python notification among the members, if any.
    pub fn python(self) -> Option<Topic> {
        self.iter().find(|t| t.is_python())
    }
}

/// Parse topic names; the error lists every unknown name, in the order given.
pub fn parse_topics<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<TopicSet, Vec<String>> {
    let mut set = TopicSet::EMPTY;
    let mut unknown = Vec::new();
    for name in names {
        match Topic::from_name(name) {
            Some(t) => set = set.with(t),
            None if !unknown.iter().any(|u| u == name) => unknown.push(name.to_string()),
            None => {}
        }
    }
    if unknown.is_empty() {
        Ok(set)
    } else {
        Err(unknown)
    }
}

/// A connection's subscription: its topics and optional filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: TopicSet,
    /// Only events about this camera (its id as in responses: `/dev/videoN`, `virtualN`, a stream name). Events
    /// that concern no camera (system, MediaMTX paths of no camera) pass the filter.
    pub device: Option<String>,
}

impl Subscription {
    /// Does an event with these topics, about `device`, reach this subscriber? Returns the topics to send it as.
    pub fn wants(&self, topics: TopicSet, device: Option<&str>) -> TopicSet {
        let hit = self.topics.intersect(topics);
        if hit.is_empty() {
            return hit;
        }
        match (&self.device, device) {
            (Some(want), Some(got)) if want != got => TopicSet::EMPTY,
            _ => hit,
        }
    }
}

/// A camera id as events carry it: the Go port's `cameraN` is `/dev/videoN`; every other form is kept.
pub fn canonical_device(id: &str) -> String {
    match id.strip_prefix("camera") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => format!("/dev/video{n}"),
        _ => id.to_string(),
    }
}

/// How a connection takes part in notifications, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Not authenticated (or expired, revoked): receives nothing.
    #[default]
    None,
    /// Authenticated, never subscribed: receives the Python notifications.
    Default,
    /// Authenticated and subscribed to these topics.
    Subscribed(TopicSet),
}

/// Counts of connections by what they receive, kept by the connection workers as connections change.
pub struct Interest {
    topics: [AtomicI64; Topic::ALL.len()],
    subscribed: AtomicI64,
    default: AtomicI64,
    /// Woken when a topic gains its first subscriber (producers that run only while someone listens wait here).
    wake_tx: crossbeam_channel::Sender<()>,
    wake_rx: crossbeam_channel::Receiver<()>,
}

impl Default for Interest {
    fn default() -> Interest {
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        Interest {
            topics: std::array::from_fn(|_| AtomicI64::new(0)),
            subscribed: AtomicI64::new(0),
            default: AtomicI64::new(0),
            wake_tx,
            wake_rx,
        }
    }
}

/// Figures for `get_subscription_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Connections with a subscription.
    pub subscribed: u64,
    /// Authenticated connections without one (they receive the Python notifications).
    pub default: u64,
    /// Subscribers per topic (topics nobody subscribed to are left out).
    pub topics: Vec<(Topic, u64)>,
}

impl Interest {
    /// A connection changed from `old` to `new`.
    pub fn change(&self, old: Role, new: Role) {
        if old == new {
            return;
        }
        self.apply(old, -1);
        self.apply(new, 1);
    }

    fn apply(&self, role: Role, delta: i64) {
        match role {
            Role::None => {}
            Role::Default => {
                self.default.fetch_add(delta, Relaxed);
            }
            Role::Subscribed(set) => {
                self.subscribed.fetch_add(delta, Relaxed);
                for t in set.iter() {
                    let before = self.topics[t as usize].fetch_add(delta, Relaxed);
                    if delta > 0 && before == 0 {
                        let _ = self.wake_tx.try_send(());
                    }
                }
            }
        }
    }

    /// Is anybody subscribed to `topic`?
    pub fn wanted(&self, topic: Topic) -> bool {
        self.topics[topic as usize].load(Relaxed) > 0
    }

    /// Is anybody subscribed to any of `topics`?
    pub fn any_wanted(&self, topics: TopicSet) -> bool {
        topics.iter().any(|t| self.wanted(t))
    }

    /// Receives a message when some topic gets its first subscriber.
    pub fn first_subscriber(&self) -> &crossbeam_channel::Receiver<()> {
        &self.wake_rx
    }

    pub fn counts(&self) -> Counts {
        let n = |a: &AtomicI64| a.load(Relaxed).max(0) as u64;
        Counts {
            subscribed: n(&self.subscribed),
            default: n(&self.default),
            topics: Topic::ALL.into_iter().map(|t| (t, n(&self.topics[t as usize]))).filter(|(_, c)| *c > 0).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, t) in Topic::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i, "ALL is in number order");
            assert_eq!(Topic::from_name(t.name()), Some(t));
        }
        assert_eq!(Topic::from_name("recording.started"), None);
    }

    #[test]
    fn unknown_topics_are_all_named_once() {
        assert_eq!(
            parse_topics(["recording.start", "x", "camera.connected", "y", "x"]),
            Err(vec!["x".into(), "y".into()])
        );
        let set = parse_topics(["recording.start", "recording.stop"]).unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), [Topic::RecordingStart, Topic::RecordingStop]);
    }

    #[test]
    fn device_filter_passes_only_that_device_and_device_less_events() {
        let s = Subscription { topics: TopicSet::of(&[Topic::RecordingStart]), device: Some("/dev/video0".into()) };
        let start = TopicSet::of(&[Topic::RecordingStatusUpdate, Topic::RecordingStart]);
        assert_eq!(s.wants(start, Some("/dev/video0")), TopicSet::of(&[Topic::RecordingStart]));
        assert!(s.wants(start, Some("/dev/video1")).is_empty());
        assert!(s.wants(TopicSet::of(&[Topic::RecordingStop]), Some("/dev/video0")).is_empty());
        let all = Subscription { topics: TopicSet::of(&[Topic::SystemHealth]), device: Some("/dev/video0".into()) };
        assert!(!all.wants(TopicSet::of(&[Topic::SystemHealth]), None).is_empty());
        assert_eq!(canonical_device("camera3"), "/dev/video3");
        assert_eq!(canonical_device("/dev/video3"), "/dev/video3");
        assert_eq!(canonical_device("camera"), "camera");
        assert_eq!(canonical_device("virtual0"), "virtual0");
    }

    #[test]
    fn counters_follow_role_changes_and_wake_on_first_subscriber() {
        let i = Interest::default();
        let progress = TopicSet::of(&[Topic::RecordingProgress, Topic::RecordingStart]);
        i.change(Role::None, Role::Default);
        assert!(i.first_subscriber().try_recv().is_err());
        i.change(Role::Default, Role::Subscribed(progress));
        assert!(i.first_subscriber().try_recv().is_ok(), "first subscriber wakes producers");
        assert!(i.wanted(Topic::RecordingProgress));
        i.change(Role::None, Role::Subscribed(TopicSet::of(&[Topic::RecordingStart])));
        let c = i.counts();
        assert_eq!((c.subscribed, c.default), (2, 0));
        assert_eq!(c.topics, [(Topic::RecordingStart, 2), (Topic::RecordingProgress, 1)]);
        i.change(Role::Subscribed(progress), Role::None);
        assert!(!i.wanted(Topic::RecordingProgress));
        assert_eq!(i.counts().subscribed, 1);
    }
}
