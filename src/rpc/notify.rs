//! Server→client notifications: one broadcast point that components publish to.
//!
//! A notification is handed to every connection worker, which writes it to its authenticated connections only.
//! Each distinct frame (per rendering, and per client host when stream URLs depend on the Host header a client
//! used) is rendered once per notification, whichever worker needs it first, and shared by every connection and
//! worker that sends it. Publishing never blocks on a slow client: workers own bounded per-connection queues and
//! drop clients that cannot keep up.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use tungstenite::Utf8Bytes;

use crate::events::{Interest, Subscription, Topic, TopicSet};
use crate::util::timefmt;

type HostRender = dyn Fn(Option<&str>) -> Value + Send + Sync;
/// A rendered frame: its rendering, the client host if the params depend on it, the frame.
type Rendered = (Rendering, Option<Box<str>>, Utf8Bytes);

/// An event on its way to clients: the topics it is known under, the camera it concerns, when it happened and
/// its params.
pub struct Notification {
    topics: TopicSet,
    device: Option<String>,
    timestamp: String,
    params: Params,
    /// Frames rendered so far. A notification has a few distinct frames at most (its topics times the hosts clients
    /// used), so a list is enough.
    rendered: Mutex<Vec<Rendered>>,
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
        Notification {
            topics,
            device,
            timestamp: timefmt::now_rfc3339(),
            params: Params::Fixed(params),
            rendered: Mutex::default(),
        }
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
            rendered: Mutex::default(),
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

    /// The text frame for one rendering, shared: rendered by the first caller, a reference-counted copy for every
    /// later one (no per-connection rendering, allocation or copy).
    pub fn text(&self, rendering: Rendering, host: Option<&str>) -> Utf8Bytes {
        let host = if self.depends_on_host() { host } else { None };
        // Held while rendering, so a second worker asking for the same frame waits instead of rendering it again.
        let mut rendered = self.rendered.lock();
        if let Some((_, _, text)) = rendered.iter().find(|(r, h, _)| *r == rendering && h.as_deref() == host) {
            return text.clone();
        }
        let text = Utf8Bytes::from(self.frame(rendering, host));
        rendered.push((rendering, host.map(Box::from), text.clone()));
        text
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
    fn each_distinct_frame_is_rendered_once() {
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = renders.clone();
        let n = Notification::per_host(&[Topic::CameraStatusUpdate], None, move |h| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json!({ "host": h })
        });
        let python = Rendering::Python(Topic::CameraStatusUpdate);
        let a = n.text(python, Some("a:8002"));
        assert_eq!(a.as_str(), n.frame(python, Some("a:8002")));
        assert_eq!(renders.swap(0, std::sync::atomic::Ordering::Relaxed), 2, "text() rendered once, frame() once");
        assert_eq!(n.text(python, Some("a:8002")).as_str(), a.as_str());
        let b = n.text(python, Some("b:8002"));
        assert_eq!(b.as_str(), r#"{"jsonrpc":"2.0","method":"camera_status_update","params":{"host":"b:8002"}}"#);
        let topic = Rendering::Topic(Topic::CameraStatusUpdate);
        assert!(n.text(topic, Some("a:8002")).as_str().contains(r#""timestamp":"#));
        assert_eq!(n.text(topic, Some("a:8002")).as_str(), n.text(topic, Some("a:8002")).as_str());
        assert_eq!(renders.load(std::sync::atomic::Ordering::Relaxed), 2, "one more render per new (rendering, host)");
        // Params that do not depend on the host: one frame whatever the host.
        let fixed = Notification::new("recording_status_update", json!({"status": "STOPPED"}));
        let r = Rendering::Python(Topic::RecordingStatusUpdate);
        assert_eq!(fixed.text(r, Some("a")).as_str(), fixed.text(r, None).as_str());
        assert_eq!(fixed.rendered.lock().len(), 1);
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
