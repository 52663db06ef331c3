//! Server→client notifications: one broadcast point that components publish to.
//!
//! A notification is rendered to its JSON-RPC frame once per distinct client host (stream URLs depend on the Host
//! header a client used) and handed to every connection worker, which queues it for its
//! authenticated connections only. Publishing never blocks on a slow client: workers own bounded per-connection
//! queues and drop clients that cannot keep up.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

type HostRender = dyn Fn(Option<&str>) -> Value + Send + Sync;

/// A notification on its way to clients.
pub struct Notification {
    pub method: String,
    params: Params,
}

enum Params {
    Fixed(Value),
    PerHost(Box<HostRender>),
}

impl Notification {
    /// Params that do not depend on the client.
    pub fn new(method: impl Into<String>, params: Value) -> Notification {
        Notification { method: method.into(), params: Params::Fixed(params) }
    }

    /// Params that embed URLs built from the client's host (`None` when the client sent no Host header).
    pub fn per_host(
        method: impl Into<String>,
        render: impl Fn(Option<&str>) -> Value + Send + Sync + 'static,
    ) -> Notification {
        Notification { method: method.into(), params: Params::PerHost(Box::new(render)) }
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

    /// The complete text frame: `{"jsonrpc":"2.0","method":...,"params":...}`.
    pub fn frame(&self, host: Option<&str>) -> String {
        json!({"jsonrpc": "2.0", "method": self.method, "params": self.params(host)}).to_string()
    }
}

/// Something that delivers notifications to clients (a connection worker).
pub trait Subscriber: Send + Sync {
    fn deliver(&self, n: &Arc<Notification>);
}

/// The broadcast point. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    subscribers: Arc<RwLock<Vec<Arc<dyn Subscriber>>>>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    pub fn subscribe(&self, s: Arc<dyn Subscriber>) {
        self.subscribers.write().push(s);
    }

    pub fn publish(&self, n: Notification) {
        let n = Arc::new(n);
        log::debug!("notification {}", n.method);
        for s in self.subscribers.read().iter() {
            s.deliver(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    struct Collect(Mutex<Vec<String>>);
    impl Subscriber for Collect {
        fn deliver(&self, n: &Arc<Notification>) {
            self.0.lock().push(n.frame(Some("h")));
        }
    }

    #[test]
    fn publishes_to_every_subscriber() {
        let hub = Hub::new();
        let subs: Vec<Arc<Collect>> = (0..3).map(|_| Arc::new(Collect(Mutex::new(vec![])))).collect();
        for c in &subs {
            hub.subscribe(c.clone());
        }
        hub.publish(Notification::per_host("x", |h| json!({ "host": h })));
        hub.publish(Notification::new("y", json!([1])));
        for c in &subs {
            assert_eq!(
                *c.0.lock(),
                [
                    r#"{"jsonrpc":"2.0","method":"x","params":{"host":"h"}}"#,
                    r#"{"jsonrpc":"2.0","method":"y","params":[1]}"#
                ],
                "every subscriber gets every notification, once, in order"
            );
        }
        // A clone of the hub publishes to the same subscribers.
        hub.clone().publish(Notification::new("z", Value::Null));
        assert!(subs.iter().all(|c| c.0.lock().len() == 3));
    }
}
