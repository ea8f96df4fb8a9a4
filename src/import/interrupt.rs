//! SIGINT and SIGTERM during an import: the first asks the run loop to stop
//! at the next batch boundary (everything before it committed, the run
//! marked `interrupted`); a second one ends the process at once, leaving the
//! batch in flight uncommitted, which the database rolls back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::StopSignal;

/// Signals received while an import runs.
pub struct Interrupts {
    /// The number of the first signal received, 0 for none.
    first: Arc<AtomicU8>,
    #[cfg(unix)]
    listener: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Starts listening. `second` is printed on stderr before the process
    /// exits on a second signal.
    pub fn listen(second: String) -> std::io::Result<Interrupts> {
        let first = Arc::new(AtomicU8::new(0));
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            let seen = Arc::clone(&first);
            let listener = tokio::spawn(async move {
                loop {
                    let received = tokio::select! {
                        _ = interrupt.recv() => StopSignal::Interrupt,
                        _ = terminate.recv() => StopSignal::Terminate,
                    };
                    if seen.swap(received.number(), Ordering::SeqCst) != 0 {
                        eprintln!("cardbatch: {}: {second}", received.name());
                        std::process::exit(128 + i32::from(received.number()));
                    }
                }
            });
            Ok(Interrupts { first, listener })
        }
        #[cfg(not(unix))]
        {
            let _ = second;
            Ok(Interrupts { first })
        }
    }

    /// The first signal received so far, if any.
    pub fn requested(&self) -> Option<StopSignal> {
        match self.first.load(Ordering::SeqCst) {
            2 => Some(StopSignal::Interrupt),
            15 => Some(StopSignal::Terminate),
            _ => None,
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        #[cfg(unix)]
        self.listener.abort();
    }
}
