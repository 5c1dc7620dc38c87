//! Users are sharded over the engine workers by id, so each user's items are processed in
//! order by one worker while users are independent. [`Workers`] hands work out that way.

use std::hash::{DefaultHasher, Hash, Hasher};

use tokio::sync::{mpsc, oneshot};

use crate::runtime::worker::WorkerMsg;

/// The worker that owns a user.
pub fn shard(user: &str, workers: usize) -> usize {
    let mut h = DefaultHasher::new();
    user.hash(&mut h);
    (h.finish() % workers as u64) as usize
}

/// The workers' queues, in shard order. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Workers(Vec<mpsc::Sender<WorkerMsg>>);

impl Workers {
    pub(crate) fn new(senders: Vec<mpsc::Sender<WorkerMsg>>) -> Workers {
        Workers(senders)
    }

    /// Sends a copy of `msg` to every worker.
    pub(crate) async fn broadcast(&self, msg: impl Fn() -> WorkerMsg) {
        for tx in &self.0 {
            let _ = tx.send(msg()).await;
        }
    }

    /// Splits `items` by the worker owning each one's user (keeping their order), sends each
    /// worker its share in one message made by `msg`, and waits for the answers. A worker that
    /// stopped gives no answer.
    pub(crate) async fn scatter<T, R>(
        &self,
        items: impl IntoIterator<Item = T>,
        user: impl Fn(&T) -> &str,
        msg: impl Fn(Vec<T>, oneshot::Sender<R>) -> WorkerMsg,
    ) -> Vec<R> {
        let n = self.0.len();
        let mut per: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
        for item in items {
            per[shard(user(&item), n)].push(item);
        }
        let mut waits = Vec::new();
        for (tx, share) in self.0.iter().zip(per) {
            if share.is_empty() {
                continue;
            }
            let (done, wait) = oneshot::channel();
            if tx.send(msg(share, done)).await.is_ok() {
                waits.push(wait);
            }
        }
        let mut answers = Vec::with_capacity(waits.len());
        for w in waits {
            if let Ok(a) = w.await {
                answers.push(a);
            }
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Drift;
    use crate::model::TeamsPresence;

    #[tokio::test]
    async fn scatter_gives_each_worker_its_users_in_order_and_waits_for_all() {
        const N: usize = 3;
        let (mut txs, mut fakes) = (Vec::new(), Vec::new());
        for i in 0..N {
            let (tx, mut rx) = mpsc::channel(4);
            txs.push(tx);
            // Answers with (user, -, position in the input) for each read it was given.
            fakes.push(tokio::spawn(async move {
                while let Some(WorkerMsg::Reconcile { reads, done, .. }) = rx.recv().await {
                    assert!(reads.iter().all(|(u, ..)| shard(u, N) == i));
                    let answer = reads.into_iter().map(|(u, t, ..)| {
                        (u, Drift::default(), t.unwrap().activity.parse().unwrap())
                    });
                    let _ = done.send(answer.collect());
                }
            }));
        }
        let workers = Workers::new(txs);
        let reads = (0..30).map(|i: usize| {
            let p = TeamsPresence::new("Busy", i.to_string());
            (format!("u{}", i % 7), Some(p), None, None)
        });
        let answers = workers
            .scatter(
                reads,
                |r| &r.0,
                |reads, done| WorkerMsg::Reconcile {
                    reads,
                    read_at: 0,
                    done,
                },
            )
            .await;
        let busy = (0..N).filter(|w| (0..7).any(|u| shard(&format!("u{u}"), N) == *w));
        assert_eq!(answers.len(), busy.count());
        let all: Vec<(String, usize)> = answers
            .into_iter()
            .flatten()
            .map(|(u, _, i)| (u, i))
            .collect();
        assert_eq!(all.len(), 30);
        for u in 0..7 {
            let user = format!("u{u}");
            let got: Vec<usize> = all
                .iter()
                .filter(|(x, _)| *x == user)
                .map(|p| p.1)
                .collect();
            let want: Vec<usize> = (0..30).filter(|i| i % 7 == u).collect();
            assert_eq!(got, want, "{user}: one worker, input order");
        }
        drop(workers);
        for f in fakes {
            f.await.unwrap();
        }
    }
}
