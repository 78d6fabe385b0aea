//! Reading and digesting on every core: a batch of a data-directory side is
//! read back and hashed on the CPU pool, so the walk folds one batch's
//! subtrees while the next batches (of both sides) are being digested. The
//! walk still folds children in name order, so digests do not depend on
//! which core hashed what.

use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Runs `work` on the CPU pool; `None` if it panicked (the pool thread
/// lives on).
pub(crate) fn on_pool<T, F>(work: F) -> impl Future<Output = Option<T>> + Send
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = futures::channel::oneshot::channel();
    rayon::spawn(move || {
        let done = std::panic::catch_unwind(AssertUnwindSafe(work));
        // The walk may have stopped waiting (it failed on the other side).
        let _ = tx.send(done.ok());
    });
    async move { rx.await.ok().flatten() }
}

/// Strings sent to the pool in one buffer.
pub(crate) struct Strings {
    text: String,
    ends: Vec<usize>,
}

impl Strings {
    pub(crate) fn of<'a>(strings: impl Iterator<Item = &'a &'a str> + Clone) -> Strings {
        let len = strings.clone().map(|s| s.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::new();
        for s in strings {
            text.push_str(s);
            ends.push(text.len());
        }
        Strings { text, ends }
    }

    pub(crate) fn slices(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.text[start..end];
                start = end;
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_come_back_as_they_went() {
        let v = ["/a", "", "/a/b", "b"];
        assert_eq!(Strings::of(v.iter()).slices(), v);
    }

    #[tokio::test]
    async fn work_on_the_pool_hands_back_its_result() {
        assert_eq!(on_pool(|| 6 * 7).await, Some(42));
    }

    #[tokio::test]
    async fn a_panic_on_the_pool_is_no_result_and_the_pool_goes_on() {
        let failed = on_pool(|| -> u32 { panic!("a bad record") }).await;
        assert_eq!(failed, None);
        assert_eq!(on_pool(|| 1).await, Some(1));
    }
}
