//! Runs CPU-bound work on rayon from async code, so tokio's worker threads
//! never do the number crunching.

/// Runs `work` on the rayon pool and waits for it without blocking a tokio worker.
pub async fn on_rayon<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // The receiver only goes away if the caller was cancelled; then nobody wants the result.
        let _ = sender.send(work());
    });
    match receiver.await {
        Ok(result) => result,
        // The sender is dropped without sending only if `work` panicked: pass the panic on.
        Err(_) => panic!("a rayon task panicked"),
    }
}
