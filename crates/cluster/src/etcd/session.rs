//! The session task behind [`EtcdClusterState`](super::EtcdClusterState):
//! one owner for the connection, the lease and every write, so writes to a
//! key are never reordered.
//!
//! A [`Session`] is one lease: established (grant, keep-alive, watch of the
//! lease key, every held key written under it), then served until etcd is
//! lost or the handle shuts it down. [`run`] strings sessions together:
//! lost → offline (writes fail fast, are remembered) → reconnect with
//! backoff → a new session, which revokes the lease of the old one once
//! every key has moved to the new lease.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, EventType, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp, WatchFilterType,
    WatchOptions, WatchResponse, WatchStream,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::Task;
use super::book::Phase;
use super::state::Shared;
use wasmwhisk_core::pool::ports::ClusterError;
use wasmwhisk_core::sync::lock;

/// What the handle asks of the session.
pub(super) enum Command {
    /// Write what is pending, revoke the lease, stop; the result goes back.
    Shutdown(oneshot::Sender<Result<(), ClusterError>>),
}

/// Why serving a session stopped.
enum Ended {
    /// etcd or the lease was lost.
    Lost(String),
    /// The handle asked to shut down.
    Shutdown(oneshot::Sender<Result<(), ClusterError>>),
    /// The handle is gone.
    Dropped,
}

/// One lease, online.
pub(super) struct Session {
    client: Client,
    lease: i64,
    /// Ends with the reason the lease can no longer be trusted.
    keep_alive: Task<String>,
    /// Deletions of the lease key (OpenWhisk re-grants the lease when it
    /// is deleted).
    lease_key_watch: WatchStream,
    /// The revision our last write of the lease key had; older deletions
    /// are of a previous lease's copy.
    synced_revision: i64,
}

impl Session {
    /// Grants a lease, starts keeping it alive, writes every held key under
    /// it and goes online; then revokes `previous`, whose keys have all
    /// moved to the new lease.
    pub(super) async fn establish(
        shared: &Shared,
        previous: Option<i64>,
    ) -> Result<Session, ClusterError> {
        let settings = &shared.settings;
        let mut client = settings.client().await?;
        let lease = settings
            .timed(
                "granting a lease",
                client.lease_grant(settings.ttl_secs(), None),
            )
            .await?
            .id();
        shared.counters.leases.fetch_add(1, Ordering::Relaxed);
        match Session::start(shared, client.clone(), lease).await {
            Ok(session) => {
                if let Some(old) = previous.filter(|&old| old != lease) {
                    // Usually expired already; then there is nothing to do.
                    let revoked = settings
                        .timed("revoking the old lease", client.lease_revoke(old))
                        .await;
                    tracing::debug!(old, ok = revoked.is_ok(), "old etcd lease revoked");
                }
                Ok(session)
            }
            Err(e) => {
                // Best effort: a half-written lease expires on its own.
                let _ = settings
                    .timed("revoking a failed lease", client.lease_revoke(lease))
                    .await;
                Err(e)
            }
        }
    }

    async fn start(
        shared: &Shared,
        mut client: Client,
        lease: i64,
    ) -> Result<Session, ClusterError> {
        let settings = &shared.settings;
        let (keeper, stream) = settings
            .timed("keeping the lease alive", client.lease_keep_alive(lease))
            .await?;
        let keep_alive = Task::spawn(keep_alive(
            keeper,
            stream,
            settings.keep_alive_interval,
            settings.lease_ttl,
        ));
        let options = WatchOptions::new().with_filters([WatchFilterType::NoPut]);
        let lease_key_watch = settings
            .timed(
                "watching the lease key",
                client.watch(shared.lease_key.as_str(), Some(options)),
            )
            .await?;
        lock(&shared.book).begin_resync(&shared.lease_key, lease);
        let mut synced_revision = 0;
        loop {
            synced_revision = synced_revision.max(flush(shared, &mut client, lease).await?);
            let mut book = lock(&shared.book);
            if book.try_go_online(lease) {
                *lock(&shared.client) = Some(client.clone());
                break;
            }
            if book.phase() == Phase::Closed {
                return Err(ClusterError("the etcd session was shut down".into()));
            }
        }
        Ok(Session {
            client,
            lease,
            keep_alive,
            lease_key_watch,
            synced_revision,
        })
    }

    /// Writes as they come, until etcd is lost or the handle says stop.
    async fn serve(&mut self, shared: &Shared, commands: &mut mpsc::Receiver<Command>) -> Ended {
        loop {
            tokio::select! {
                command = commands.recv() => return match command {
                    Some(Command::Shutdown(reply)) => Ended::Shutdown(reply),
                    None => Ended::Dropped,
                },
                reason = &mut self.keep_alive => {
                    return Ended::Lost(
                        reason.unwrap_or_else(|e| format!("the keep-alive task failed: {e}")),
                    );
                }
                message = self.lease_key_watch.message() => match message {
                    Ok(Some(response)) => {
                        if let Some(reason) = self.lease_key_gone(&response) {
                            return Ended::Lost(reason);
                        }
                    }
                    Ok(None) => return Ended::Lost("the watch of the lease key ended".into()),
                    Err(e) => return Ended::Lost(format!("the watch of the lease key failed: {e}")),
                },
                () = shared.wake.notified() => {
                    if let Err(e) = flush(shared, &mut self.client, self.lease).await {
                        return Ended::Lost(e.0);
                    }
                }
            }
        }
    }

    fn lease_key_gone(&self, response: &WatchResponse) -> Option<String> {
        if response.canceled() {
            return Some(format!(
                "the watch of the lease key was canceled: {}",
                response.cancel_reason()
            ));
        }
        response
            .events()
            .iter()
            .filter(|e| e.event_type() == EventType::Delete)
            .filter_map(|e| e.kv())
            .any(|kv| kv.mod_revision() > self.synced_revision)
            .then(|| "the lease key was deleted".to_string())
    }

    /// Refuses later writes, writes what is pending, revokes the lease.
    async fn shutdown(self, shared: &Shared) -> Result<(), ClusterError> {
        let Session {
            mut client,
            lease,
            keep_alive,
            lease_key_watch,
            ..
        } = self;
        lock(&shared.book).close();
        let flushed = flush(shared, &mut client, lease).await;
        // Stop both before the revoke deletes the lease key under them.
        drop((keep_alive, lease_key_watch));
        let revoked = shared
            .settings
            .timed("revoking the lease", client.lease_revoke(lease))
            .await
            .map(|_| ());
        *lock(&shared.client) = None;
        go_offline(shared, "the etcd session is shut down");
        tracing::info!(
            lease,
            ok = flushed.is_ok() && revoked.is_ok(),
            "etcd lease revoked: every key of this process is gone"
        );
        flushed.and(revoked)
    }
}

/// The session loop: serve, and when etcd is lost, go offline and
/// reconnect, until the handle shuts it down or drops it.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut session: Session,
    mut commands: mpsc::Receiver<Command>,
) {
    loop {
        match session.serve(&shared, &mut commands).await {
            Ended::Shutdown(reply) => {
                let result = session.shutdown(&shared).await;
                let _ = reply.send(result);
                return;
            }
            Ended::Dropped => return,
            Ended::Lost(reason) => {
                let lease = session.lease;
                drop(session);
                *lock(&shared.client) = None;
                go_offline(&shared, "etcd is away; the write is made when it is back");
                shared.counters.outages.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    lease,
                    reason,
                    "etcd lost: serving on, writes fail fast until it is back"
                );
                match reconnect(&shared, lease, &mut commands).await {
                    Some(next) => session = next,
                    None => return,
                }
            }
        }
    }
}

/// Goes offline and tells every waiting caller why.
fn go_offline(shared: &Shared, why: &str) {
    let waiters = lock(&shared.book).go_offline();
    for waiter in waiters {
        let _ = waiter.send(Err(ClusterError(why.to_string())));
    }
}

/// Establishes a new session with backoff; `None` if the handle shut down
/// or dropped meanwhile.
async fn reconnect(
    shared: &Shared,
    previous: i64,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Session> {
    let since = Instant::now();
    let mut attempt = 0u32;
    loop {
        let delay = shared.settings.backoff(attempt);
        attempt = attempt.saturating_add(1);
        let attempt_session = async {
            tokio::time::sleep(delay).await;
            Session::establish(shared, Some(previous)).await
        };
        tokio::select! {
            command = commands.recv() => {
                lock(&shared.book).close();
                if let Some(Command::Shutdown(reply)) = command {
                    let _ = reply.send(Err(ClusterError(
                        "etcd is away at shutdown: the keys expire with the lease".into(),
                    )));
                }
                return None;
            }
            result = attempt_session => match result {
                Ok(session) => {
                    tracing::info!(
                        lease = session.lease,
                        previous,
                        attempts = attempt,
                        outage_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                        keys = lock(&shared.book).held().len(),
                        "etcd is back: every key re-written under a new lease"
                    );
                    return Some(session);
                }
                Err(e) if attempt == 1 => {
                    tracing::warn!(error = %e, "reconnecting to etcd failed; retrying with backoff");
                }
                Err(e) => tracing::debug!(error = %e, attempt, "reconnecting to etcd failed"),
            }
        }
    }
}

/// Writes every pending key in transactions of up to 64 operations, puts
/// under `lease`. Returns the revision of the last write; on failure the
/// batch is requeued, its callers told, and the error returned.
async fn flush(shared: &Shared, client: &mut Client, lease: i64) -> Result<i64, ClusterError> {
    let mut revision = 0;
    loop {
        let Some(batch) = lock(&shared.book).take_batch() else {
            return Ok(revision);
        };
        let ops: Vec<TxnOp> = batch
            .ops
            .iter()
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(
                    key.as_str(),
                    value.as_str(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
                None => TxnOp::delete(key.as_str(), None),
            })
            .collect();
        shared.counters.transactions.fetch_add(1, Ordering::Relaxed);
        let written = shared
            .settings
            .timed("writing keys", client.txn(Txn::new().and_then(ops)))
            .await;
        match written {
            Ok(response) => {
                revision = response.header().map_or(revision, |h| h.revision());
                batch.answer(&Ok(()));
            }
            Err(e) => {
                shared
                    .counters
                    .failed_transactions
                    .fetch_add(1, Ordering::Relaxed);
                lock(&shared.book).requeue(batch.keys());
                batch.answer(&Err(e.clone()));
                return Err(e);
            }
        }
    }
}

/// Keeps `keeper`'s lease alive every `interval`; returns why it stopped:
/// the stream ended or failed, etcd said the lease expired, or no answer
/// came for two thirds of the TTL (the lease is as good as gone).
async fn keep_alive(
    mut keeper: LeaseKeeper,
    mut stream: LeaseKeepAliveStream,
    interval: Duration,
    ttl: Duration,
) -> String {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let patience = ttl.saturating_mul(2) / 3;
    let mut answered = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if answered.elapsed() > patience {
                    return format!("no keep-alive answer for {:?}", answered.elapsed());
                }
                if let Err(e) = keeper.keep_alive().await {
                    return format!("sending a keep-alive failed: {e}");
                }
            }
            message = stream.message() => match message {
                Ok(Some(response)) if response.ttl() > 0 => answered = Instant::now(),
                Ok(Some(_)) => return "the lease expired".into(),
                Ok(None) => return "the keep-alive stream ended".into(),
                Err(e) => return format!("the keep-alive stream failed: {e}"),
            },
        }
    }
}
