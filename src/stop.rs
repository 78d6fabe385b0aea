//! Stopping long-running tasks: a supervisor flips a `watch` channel to
//! `true`, and every task it started races its work against [`stopped`].
//! The agent's pairs and sync's watches stop this way; it lives on its own
//! so that neither reaches into the other for it.

/// Resolves once a stop is requested (or the supervisor is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_requested_before_or_after_waiting_resolves_and_a_dropped_sender_does_too() {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        tx.send(true).unwrap();
        stopped(&mut rx).await;

        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let waiting = tokio::spawn(async move { stopped(&mut rx).await });
        tx.send(true).unwrap();
        waiting.await.unwrap();

        let (tx, mut rx) = tokio::sync::watch::channel(false);
        drop(tx);
        stopped(&mut rx).await;
    }
}
