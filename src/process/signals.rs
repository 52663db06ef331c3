//! SIGTERM / SIGINT as messages: a supervised `signals` thread forwards them to a channel the main thread selects on.

use signal_hook::consts::{SIGINT, SIGTERM};

use super::Supervisor;

pub type SignalHandle = signal_hook::iterator::Handle;

/// Install the handlers and start the thread; closing the returned handle ends it.
pub fn watch(supervisor: &Supervisor) -> std::io::Result<(crossbeam_channel::Receiver<i32>, SignalHandle)> {
    let (tx, rx) = crossbeam_channel::bounded::<i32>(4);
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let handle = signals.handle();
    supervisor.spawn("signals", move || {
        for sig in signals.forever() {
            let _ = tx.try_send(sig);
        }
        Ok(())
    })?;
    Ok((rx, handle))
}
