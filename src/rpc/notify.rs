//! Server→client notifications: one broadcast point that components publish to.
//!
//! A notification is rendered to its JSON-RPC frame once per distinct client host (stream URLs depend on the Host
//! header a client used) and handed to every connection worker, which queues it for its
//! authenticated connections only. Publishing never blocks on a slow client: workers own bounded per-connection
//! queues and drop clients that cannot keep up.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::events::{Interest, Subscription, Topic, TopicSet};
use crate::util::timefmt;

type HostRender = dyn Fn(Option<&str>) -> Value + Send + Sync;

/// An event on its way to clients: the topics it is known under, the camera it concerns, when it happened and
/// its params.
pub struct Notification {
    topics: TopicSet,
    device: Option<String>,
    timestamp: String,
    params: Params,
}

enum Params {
    Fixed(Value),
    PerHost(Box<HostRender>),
}

/// Which frame a connection gets for a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendering {
    /// The Python notification, unchanged (connections without a subscription).
    Python(Topic),
    /// A subscribed topic: `method` is the topic, params carry `timestamp`.
    Topic(Topic),
}

impl Notification {
    /// A notification by name with params that do not depend on the client: a Python notification
    /// (`recording_status_update` is also published as `recording.start`/`stop`/`error` by its `status`) or any
    /// topic.
    pub fn new(method: &str, params: Value) -> Notification {
        match Topic::from_name(method) {
            Some(Topic::RecordingStatusUpdate) => Notification::recording(params),
            Some(t) => Notification::event(t, None, params),
            None => {
                log::error!("notification {method} has no topic: not sent");
                Notification::fixed(TopicSet::EMPTY, None, params)
            }
        }
    }

    fn fixed(topics: TopicSet, device: Option<String>, params: Value) -> Notification {
        Notification { topics, device, timestamp: timefmt::now_rfc3339(), params: Params::Fixed(params) }
    }

    /// An event under one topic, about `device` (as in responses) or about no camera.
    pub fn event(topic: Topic, device: Option<&str>, params: Value) -> Notification {
        Notification::fixed(TopicSet::of(&[topic]), device.map(str::to_string), params)
    }

    /// An event under several topics.
    pub fn events(topics: &[Topic], device: Option<&str>, params: Value) -> Notification {
        Notification::fixed(TopicSet::of(topics), device.map(str::to_string), params)
    }

    /// `recording_status_update` params: also `recording.start` (STARTED), `recording.stop` (STOPPED) or
    /// `recording.error` (FAILED).
    pub fn recording(params: Value) -> Notification {
        let mut topics = TopicSet::of(&[Topic::RecordingStatusUpdate]);
        match params["status"].as_str() {
            Some("STARTED") => topics = topics.with(Topic::RecordingStart),
            Some("STOPPED") => topics = topics.with(Topic::RecordingStop),
            Some("FAILED") => topics = topics.with(Topic::RecordingError),
            _ => {}
        }
        let device = params["device"].as_str().map(str::to_string);
        Notification::fixed(topics, device, params)
    }

    /// Params that embed URLs built from the client's host (`None` when the client sent no Host header).
    pub fn per_host(
        topics: &[Topic],
        device: Option<&str>,
        render: impl Fn(Option<&str>) -> Value + Send + Sync + 'static,
    ) -> Notification {
        Notification {
            topics: TopicSet::of(topics),
            device: device.map(str::to_string),
            timestamp: timefmt::now_rfc3339(),
            params: Params::PerHost(Box::new(render)),
        }
    }

    /// The name non-subscribers see it under (its Python notification), else its first topic's name.
    pub fn method(&self) -> &'static str {
        self.topics.python().or_else(|| self.topics.iter().next()).map_or("", Topic::name)
    }

    pub fn topics(&self) -> TopicSet {
        self.topics
    }

    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    pub fn depends_on_host(&self) -> bool {
        matches!(self.params, Params::PerHost(_))
    }

    pub fn params(&self, host: Option<&str>) -> Value {
        match &self.params {
            Params::Fixed(v) => v.clone(),
            Params::PerHost(f) => f(host),
        }
    }

    /// What a connection with `subscription` (`None`: never subscribed) receives: nothing, the Python
    /// notification, or one frame per subscribed topic.
    pub fn renderings(&self, subscription: Option<&Subscription>) -> impl Iterator<Item = Rendering> {
        let (python, topics) = match subscription {
            None => (self.topics.python(), TopicSet::EMPTY),
            Some(s) => (None, s.wants(self.topics, self.device())),
        };
        python.map(Rendering::Python).into_iter().chain(topics.iter().map(Rendering::Topic))
    }

    /// The complete text frame for one rendering.
    pub fn frame(&self, rendering: Rendering, host: Option<&str>) -> String {
        let (topic, stamped) = match rendering {
            Rendering::Python(t) => (t, false),
            Rendering::Topic(t) => (t, true),
        };
        let mut params = self.params(host);
        if stamped {
            match &mut params {
                Value::Object(m) => {
                    m.insert("timestamp".into(), Value::String(self.timestamp.clone()));
                }
                other => *other = json!({"data": other.take(), "timestamp": self.timestamp}),
            }
        }
        json!({"jsonrpc": "2.0", "method": topic.name(), "params": params}).to_string()
    }
}

/// Something that delivers notifications to clients (a connection worker).
pub trait Subscriber: Send + Sync {
    fn deliver(&self, n: &Arc<Notification>);
}

/// The broadcast point, with the counts of who listens to what. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    subscribers: Arc<RwLock<Vec<Arc<dyn Subscriber>>>>,
    interest: Arc<Interest>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    pub fn subscribe(&self, s: Arc<dyn Subscriber>) {
        self.subscribers.write().push(s);
    }

    /// Who listens to what (kept up to date by the connection workers).
    pub fn interest(&self) -> &Arc<Interest> {
        &self.interest
    }

    /// Hand `n` to every worker, unless nobody can receive it (no Python notification and no subscriber to any of
    /// its topics).
    pub fn publish(&self, n: Notification) {
        if n.topics.python().is_none() && !self.interest.any_wanted(n.topics) {
            return;
        }
        let n = Arc::new(n);
        log::debug!("notification {:?}", n.topics.iter().map(Topic::name).collect::<Vec<_>>());
        for s in self.subscribers.read().iter() {
            s.deliver(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Role;
    use parking_lot::Mutex;

    struct Collect(Mutex<Vec<String>>);
    impl Subscriber for Collect {
        fn deliver(&self, n: &Arc<Notification>) {
            for r in n.renderings(None) {
                self.0.lock().push(n.frame(r, Some("h")));
            }
        }
    }

    #[test]
    fn publishes_to_every_subscriber() {
        let hub = Hub::new();
        let subs: Vec<Arc<Collect>> = (0..3).map(|_| Arc::new(Collect(Mutex::new(vec![])))).collect();
        for c in &subs {
            hub.subscribe(c.clone());
        }
        hub.publish(Notification::per_host(&[Topic::CameraStatusUpdate], None, |h| json!({ "host": h })));
        hub.publish(Notification::new("recording_status_update", json!({"status": "STARTED"})));
        for c in &subs {
            assert_eq!(
                *c.0.lock(),
                [
                    r#"{"jsonrpc":"2.0","method":"camera_status_update","params":{"host":"h"}}"#,
                    r#"{"jsonrpc":"2.0","method":"recording_status_update","params":{"status":"STARTED"}}"#
                ],
                "every subscriber gets every notification, once, in order, Python ones unchanged"
            );
        }
        // A clone of the hub publishes to the same subscribers; a topic nobody subscribed to is not handed out.
        hub.clone().publish(Notification::new("camera_status_update", Value::Null));
        hub.publish(Notification::event(Topic::SnapshotTaken, None, json!({})));
        assert!(subs.iter().all(|c| c.0.lock().len() == 3));
    }

    #[test]
    fn subscribers_get_their_topics_stamped_and_filtered() {
        let n = Notification::recording(json!({"device": "/dev/video0", "status": "STOPPED"}));
        let sub = |topics: &[Topic], device: Option<&str>| Subscription {
            topics: TopicSet::of(topics),
            device: device.map(str::to_string),
        };
        let frames = |s: Option<&Subscription>| -> Vec<Value> {
            n.renderings(s).map(|r| serde_json::from_str(&n.frame(r, None)).unwrap()).collect()
        };
        let default = frames(None);
        assert_eq!(
            default,
            [json!({"jsonrpc": "2.0", "method": "recording_status_update",
            "params": {"device": "/dev/video0", "status": "STOPPED"}})]
        );
        let both = frames(Some(&sub(&[Topic::RecordingStop, Topic::RecordingStatusUpdate], None)));
        assert_eq!(both.len(), 2);
        assert_eq!(
            (both[0]["method"].as_str(), both[1]["method"].as_str()),
            (Some("recording_status_update"), Some("recording.stop"))
        );
        let stamp = both[1]["params"]["timestamp"].as_str().unwrap();
        assert!(timefmt::parse_rfc3339(stamp).is_some() && stamp.ends_with('Z'), "{stamp}");
        assert!(frames(Some(&sub(&[Topic::RecordingStart], None))).is_empty());
        assert!(frames(Some(&sub(&[Topic::RecordingStop], Some("/dev/video1")))).is_empty());
        assert_eq!(frames(Some(&sub(&[Topic::RecordingStop], Some("/dev/video0")))).len(), 1);
    }

    #[test]
    fn topics_with_subscribers_are_published() {
        let hub = Hub::new();
        let got = Arc::new(Collect(Mutex::new(vec![])));
        hub.subscribe(got.clone());
        hub.interest().change(Role::None, Role::Subscribed(TopicSet::of(&[Topic::SnapshotTaken])));
        struct Count(Mutex<usize>);
        impl Subscriber for Count {
            fn deliver(&self, _: &Arc<Notification>) {
                *self.0.lock() += 1;
            }
        }
        let count = Arc::new(Count(Mutex::new(0)));
        hub.subscribe(count.clone());
        hub.publish(Notification::event(Topic::SnapshotTaken, None, json!({})));
        hub.publish(Notification::event(Topic::SnapshotError, None, json!({})));
        assert_eq!(*count.0.lock(), 1, "only the topic somebody subscribed to reaches the workers");
    }
}
