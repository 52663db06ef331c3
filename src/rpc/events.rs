//! Event subscriptions: `subscribe_events`, `unsubscribe_events`, `get_subscription_stats`.
//!
//! The subscription is part of the connection's session, so it changes only on that connection's own requests and
//! ends with the connection; the worker reads it when it delivers. See docs/api.md ("Event subscriptions") for the
//! topics and what each connection receives.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::notify::Hub;
use super::params::NoParams;
use super::{method, Call, Method};
use crate::auth::Session;
use crate::error::{Error, Result};
use crate::events::{self, Subscription, TopicSet};

pub static METHODS: &[Method<EventMethods>] = &[
    method!(session "subscribe_events", Viewer, Inline, subscribe_events),
    method!(session "unsubscribe_events", Viewer, Inline, unsubscribe_events),
    method!(session "get_subscription_stats", Viewer, Inline, get_subscription_stats),
];

/// Checks a camera id of a `device` filter and gives its form in events (`cameraN` → `/dev/videoN`); a malformed
/// id is -32602.
pub type DeviceId = Arc<dyn Fn(&str) -> Result<String> + Send + Sync>;

/// What the subscription methods need: the hub's counters, and the camera id rules.
pub struct EventMethods {
    pub hub: Hub,
    pub device_id: DeviceId,
}

#[derive(Deserialize)]
struct SubscribeParams {
    topics: Option<Value>,
    filters: Option<Value>,
}

#[derive(Deserialize)]
struct UnsubscribeParams {
    topics: Option<Value>,
}

/// `topics`: a list of topic names; unknown names are -32602 naming every one of them.
fn topic_list(v: &Value) -> Result<TopicSet> {
    let names = v
        .as_array()
        .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
        .ok_or_else(|| Error::invalid_params("topics must be a list of topic names"))?;
    events::parse_topics(names).map_err(|unknown| {
        Error::invalid_params(format!("unknown topics: {} (see docs/api.md for the topic list)", unknown.join(", ")))
    })
}

fn names(set: TopicSet) -> Vec<&'static str> {
    set.iter().map(events::Topic::name).collect()
}

/// Replaces the connection's subscription.
fn subscribe_events(m: &EventMethods, p: SubscribeParams, _: &Call, session: &mut Session) -> Result<Value> {
    let topics = match &p.topics {
        None => return Err(Error::invalid_params("topics is required")),
        Some(v) => topic_list(v)?,
    };
    if topics.is_empty() {
        return Err(Error::invalid_params("topics must not be empty"));
    }
    let mut device = None;
    let filters = match p.filters {
        None => Map::new(),
        Some(Value::Object(f)) => f,
        Some(_) => return Err(Error::invalid_params("filters must be an object")),
    };
    for (key, value) in &filters {
        match (key.as_str(), value) {
            ("device", Value::String(id)) => device = Some((m.device_id)(id)?),
            ("device", Value::Null) => {}
            ("device", _) => return Err(Error::invalid_params("filters.device must be a string")),
            (other, _) => return Err(Error::invalid_params(format!("unknown filter {other:?} (known: device)"))),
        }
    }
    session.events = Some(Arc::new(Subscription { topics, device }));
    Ok(json!({"subscribed": true, "topics": names(topics), "filters": filters}))
}

/// Removes the given topics (all when omitted). A connection that unsubscribed everything receives no
/// notifications; subscribing to `camera_status_update` and `recording_status_update` brings those back.
fn unsubscribe_events(_: &EventMethods, p: UnsubscribeParams, _: &Call, session: &mut Session) -> Result<Value> {
    let current = session.events.as_deref().cloned().unwrap_or_default();
    let remove = match &p.topics {
        None => current.topics,
        Some(v) => topic_list(v)?,
    };
    let removed = current.topics.intersect(remove);
    session.events = Some(Arc::new(Subscription { topics: current.topics.without(remove), ..current }));
    Ok(json!({"unsubscribed": true, "topics": names(removed)}))
}

fn get_subscription_stats(m: &EventMethods, _: NoParams, _: &Call, session: &mut Session) -> Result<Value> {
    let c = m.hub.interest().counts();
    let topic_counts: Map<String, Value> = c.topics.iter().map(|(t, n)| (t.name().to_string(), json!(n))).collect();
    let total: u64 = c.topics.iter().map(|(_, n)| n).sum();
    let client_topics = match session.events.as_deref() {
        Some(s) => names(s.topics),
        None => names(TopicSet::of(&[events::Topic::CameraStatusUpdate, events::Topic::RecordingStatusUpdate])),
    };
    Ok(json!({
        "global_stats": {
            "total_subscriptions": total,
            "active_clients": c.subscribed + c.default,
            "subscribed_clients": c.subscribed,
            "default_clients": c.default,
            "topic_counts": topic_counts,
        },
        "client_topics": client_topics,
        "client_subscribed": session.events.is_some(),
        "client_id": session.session_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Role;
    use crate::rpc::{Caller, Handler};

    fn state() -> EventMethods {
        EventMethods {
            hub: Hub::new(),
            device_id: Arc::new(|id: &str| {
                if id.contains('/') && !id.starts_with("/dev/video") {
                    Err(Error::invalid_params(format!("bad device {id}")))
                } else {
                    Ok(events::canonical_device(id))
                }
            }),
        }
    }

    fn run(m: &EventMethods, s: &mut Session, name: &str, params: Value) -> Result<Value> {
        let method = METHODS.iter().find(|x| x.name == name).unwrap();
        let caller = Caller::default();
        match method.handler {
            Handler::Session(f) => f(m, &params, &Call::new(&caller), s),
            Handler::Call(_) => unreachable!("subscription methods act on the session"),
        }
    }

    #[test]
    fn subscribe_replaces_and_unsubscribe_narrows() {
        let m = state();
        let mut s = Session::default();
        let r = run(
            &m,
            &mut s,
            "subscribe_events",
            json!({"topics": ["recording.stop", "recording.start"],
            "filters": {"device": "camera0"}}),
        )
        .unwrap();
        assert_eq!(
            r,
            json!({"subscribed": true, "topics": ["recording.start", "recording.stop"],
            "filters": {"device": "camera0"}})
        );
        let sub = s.events.clone().unwrap();
        assert_eq!(sub.device.as_deref(), Some("/dev/video0"));
        let r = run(&m, &mut s, "unsubscribe_events", json!({"topics": ["recording.start", "camera.connected"]}));
        assert_eq!(r.unwrap(), json!({"unsubscribed": true, "topics": ["recording.start"]}));
        assert_eq!(names(s.events.as_ref().unwrap().topics), ["recording.stop"]);
        assert_eq!(s.events.as_ref().unwrap().device.as_deref(), Some("/dev/video0"), "filters stay");
        run(&m, &mut s, "subscribe_events", json!({"topics": ["camera_status_update"]})).unwrap();
        assert_eq!(
            *s.events.as_deref().unwrap(),
            Subscription { topics: TopicSet::of(&[events::Topic::CameraStatusUpdate]), device: None }
        );
        let r = run(&m, &mut s, "unsubscribe_events", json!({})).unwrap();
        assert_eq!(r, json!({"unsubscribed": true, "topics": ["camera_status_update"]}));
        assert!(s.events.as_ref().unwrap().topics.is_empty(), "unsubscribed from everything: nothing arrives");
    }

    #[test]
    fn bad_params_are_invalid_params_naming_the_problem() {
        let m = state();
        let mut s = Session::default();
        let err = |p: Value| run(&m, &mut Session::default(), "subscribe_events", p).unwrap_err();
        assert_eq!(
            err(json!({"topics": ["recording.start", "bogus", "camera.exploded"]})),
            Error::InvalidParams("unknown topics: bogus, camera.exploded (see docs/api.md for the topic list)".into())
        );
        assert_eq!(err(json!({})), Error::InvalidParams("topics is required".into()));
        assert_eq!(err(json!({"topics": []})), Error::InvalidParams("topics must not be empty".into()));
        assert_eq!(err(json!({"topics": "recording.start"})).code(), -32602);
        assert_eq!(err(json!({"topics": [1]})).code(), -32602);
        assert_eq!(err(json!({"topics": ["recording.start"], "filters": []})).code(), -32602);
        assert_eq!(err(json!({"topics": ["recording.start"], "filters": {"device": 3}})).code(), -32602);
        assert_eq!(err(json!({"topics": ["recording.start"], "filters": {"colour": "red"}})).code(), -32602);
        assert_eq!(err(json!({"topics": ["recording.start"], "filters": {"device": "x/y"}})).code(), -32602);
        let e = run(&m, &mut s, "unsubscribe_events", json!({"topics": ["nope"]})).unwrap_err();
        assert_eq!(e.code(), -32602);
        assert!(s.events.is_none(), "a refused call changes nothing");
    }

    #[test]
    fn stats_count_subscribers_and_default_clients() {
        let m = state();
        let i = m.hub.interest();
        i.change(Role::None, Role::Default);
        i.change(Role::None, Role::Default);
        let topics = TopicSet::of(&[events::Topic::RecordingStart, events::Topic::RecordingStop]);
        i.change(Role::None, Role::Subscribed(topics));
        let mut s = Session::default();
        s.session_id = Some("abc".into());
        let r = run(&m, &mut s, "get_subscription_stats", Value::Null).unwrap();
        assert_eq!(
            r,
            json!({
                "global_stats": {"total_subscriptions": 2, "active_clients": 3, "subscribed_clients": 1,
                    "default_clients": 2, "topic_counts": {"recording.start": 1, "recording.stop": 1}},
                "client_topics": ["camera_status_update", "recording_status_update"],
                "client_subscribed": false,
                "client_id": "abc",
            })
        );
    }
}
