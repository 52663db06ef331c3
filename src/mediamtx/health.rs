//! The `mediamtx-health` thread: probes `GET /v3/config/global/get`, drives the circuit breaker, publishes the
//! `mediamtx` component status, and asks the control thread to reconcile when MediaMTX (re)appears. The first
//! failed check of an outage is also a `mediamtx.error` event (the checks after it, until MediaMTX answers again,
//! are the same outage).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::breaker::{Breaker, BreakerParams, BreakerState, Transition};
use super::control::Command;
use super::{random_unit, Shared, COMPONENT};
use crate::process::status::State;
use crate::process::Shutdown;
use crate::rpc::notify::Hub;

pub(crate) fn run(shared: Arc<Shared>, hub: Hub, shutdown: Shutdown) -> Result<(), String> {
    let mut breaker = Breaker::new(BreakerParams::from_config(&shared.config.mediamtx));
    loop {
        if breaker.should_probe(Instant::now()) {
            probe(&shared, &mut breaker, &hub);
        }
        publish(&shared, &breaker);
        if shutdown.sleep(breaker.next_delay(Instant::now(), random_unit())) {
            return Ok(());
        }
    }
}

fn probe(shared: &Shared, breaker: &mut Breaker, hub: &Hub) {
    let started = Instant::now();
    let result = shared.bg_client.get_global_config();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let threshold = breaker.params.failure_threshold;
    let transition = match &result {
        Ok(_) => breaker.on_success(),
        Err(_) => breaker.on_failure(Instant::now()),
    };
    {
        let mut h = shared.health.write();
        h.checked = true;
        h.response_time_ms = Some(elapsed_ms);
        match &result {
            Ok(_) => h.last_success = Some(SystemTime::now()),
            Err(e) => {
                h.last_failure = Some(SystemTime::now());
                h.last_error = Some(e.to_string());
            }
        }
    }
    match (transition, &result) {
        (Transition::Opened, Err(e)) => log::error!(
            "MediaMTX circuit breaker OPEN after {} consecutive failures (last: {e}); MediaMTX calls fail fast",
            breaker.consecutive_failures
        ),
        (_, Err(e)) if breaker.state == BreakerState::Closed => {
            log::warn!(
                "MediaMTX health DEGRADED ({}/{threshold} consecutive failures): {e}",
                breaker.consecutive_failures
            )
        }
        (_, Err(e)) => log::debug!("MediaMTX recovery probe failed: {e}"),
        (Transition::Recovered, Ok(_)) => {
            log::info!("MediaMTX RECOVERED (recoveries: {}): re-creating paths", breaker.recoveries)
        }
        (Transition::FirstContact, Ok(_)) => log::info!("MediaMTX API reachable at {}", shared.bg_client.base_url()),
        (_, Ok(_)) if breaker.state == BreakerState::HalfOpen => log::info!(
            "MediaMTX IMPROVING ({}/{} recovery confirmations)",
            breaker.half_open_successes,
            breaker.params.confirmations
        ),
        _ => {}
    }
    if let (Err(e), 1) = (&result, breaker.consecutive_failures) {
        hub.publish(super::control::error_event("health_check", None, None, &e.to_string()));
    }
    if matches!(transition, Transition::Recovered | Transition::FirstContact) {
        let _ = shared.control.send(Command::Reconcile);
    }
}

/// Mirror the breaker into the shared health view and the component registry.
fn publish(shared: &Shared, breaker: &Breaker) {
    let health = {
        let mut h = shared.health.write();
        h.breaker = breaker.state;
        h.consecutive_failures = breaker.consecutive_failures;
        h.activations = breaker.activations;
        h.recoveries = breaker.recoveries;
        h.clone()
    };
    if !health.checked {
        return;
    }
    let last = health.last_error.as_deref().unwrap_or("none");
    let (state, details) = match breaker.state {
        BreakerState::Closed if breaker.consecutive_failures == 0 => {
            (State::Running, "MediaMTX controller is healthy".to_string())
        }
        BreakerState::Closed => (
            State::Degraded,
            format!(
                "MediaMTX unreachable: {} consecutive failures of {} before the circuit breaker opens; breaker: closed; \
                 last error: {last}",
                breaker.consecutive_failures, breaker.params.failure_threshold
            ),
        ),
        BreakerState::Open => (
            State::Degraded,
            format!("MediaMTX unavailable: circuit breaker open; breaker: open; last error: {last}"),
        ),
        BreakerState::HalfOpen => (
            State::Degraded,
            format!(
                "MediaMTX recovering: {}/{} confirmations; breaker: half_open; last error: {last}",
                breaker.half_open_successes, breaker.params.confirmations
            ),
        ),
    };
    if shared.components.get(COMPONENT).is_none_or(|c| c.state != state || c.details != details) {
        shared.components.set(COMPONENT, state, details);
    }
}
