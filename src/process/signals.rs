//! SIGTERM / SIGINT as messages: a `signals` thread forwards them to a channel the main thread selects on.

use signal_hook::consts::{SIGINT, SIGTERM};

pub type SignalHandle = signal_hook::iterator::Handle;

pub fn watch() -> std::io::Result<(crossbeam_channel::Receiver<i32>, SignalHandle)> {
    let (tx, rx) = crossbeam_channel::bounded::<i32>(4);
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let handle = signals.handle();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            let _ = tx.try_send(sig);
        }
    })?;
    Ok((rx, handle))
}
