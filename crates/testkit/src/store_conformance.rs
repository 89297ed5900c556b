//! One conformance suite for the store behind the REST API and the pool,
//! run against every implementation of it.
//!
//! The REST API talks to its store through [`EntityStore`] and the pool
//! through [`ActionStore`] and [`ActivationStore`]; neither knows whether
//! SQLite (standalone mode, `wasmwhisk-store`) or NATS JetStream (a cluster,
//! `wasmwhisk-cluster`'s `NatsStore`) answers. That only holds if both give
//! the same answers with the same errors, so this module writes the shared
//! contract down once: each `pub async fn` is one named behaviour with its
//! assertions, taking a [`StoreAdapter`] that supplies the store and what
//! its implementations do differently (the namespace administration, which
//! is sync on SQLite and async on NATS, and how to open a second handle on
//! the same data). [`store_conformance_suite!`](crate::store_conformance_suite)
//! expands every behaviour into a `#[tokio::test]` for one store;
//! `tests/store_conformance.rs` runs it for both.
//!
//! What the suite asserts is what the REST API and the pool rely on
//! (docs/api.md, docs/openwhisk.md): keys, puts with and without
//! `overwrite`, revisions and versions, the latest two revisions loaded by
//! revision, lists with `limit`/`skip` in their order, deletes and their
//! answers, records read by id and listed newest first with every query
//! field, isolation between namespaces, and namespace creation, listing and
//! deletion. What one implementation does in its own way stays with its own
//! tests: SQLite's WAL, journal, recovery, retention and writer batching;
//! NATS's key escaping, code objects, bucket configuration, watches,
//! restarts and controllers racing each other.
//!
//! A store that departs from the contract declares it
//! ([`StoreAdapter::DIFFERS`]); the suite then asserts what that store does
//! instead, so the departure stays visible and pinned down. Today one does:
//! NATS, [`Difference::SeenRevisionsStayLoadable`].
//!
//! No behaviour depends on another or on what a store held before: each
//! test gets a fresh, empty store.

mod actions;
mod fixtures;
mod namespaces;
mod records;

use std::future::Future;

use wasmwhisk_core::entities::{Credentials, DbError, EntityStore, NamespaceInfo};
use wasmwhisk_core::pool::ports::{ActionStore, ActivationStore};

pub use actions::*;
pub use fixtures::{action, fqn, path, query, record, starts};
pub use namespaces::*;
pub use records::*;

/// A store under test, with what differs between the implementations.
///
/// The namespace administration is not part of the ports (the CLI and the
/// cluster's bootstrap call it on the store itself; sync on SQLite, async
/// on NATS), so the adapter makes those calls on a given handle.
pub trait StoreAdapter: Send + Sync {
    /// The store: the REST API's port and the pool's two.
    type Store: EntityStore + ActionStore + ActivationStore + Clone + 'static;

    /// Where this store is known to differ from the contract: for each, the
    /// suite asserts what this store does instead. None for a store that
    /// conforms.
    const DIFFERS: &'static [Difference] = &[];

    /// The handle under test, on an empty store. The records of the suite
    /// started in 1970: it must not bound records by their age.
    fn store(&self) -> &Self::Store;

    /// A second handle on the same data with nothing cached: what another
    /// process sees (the CLI beside a standalone server, another
    /// controller).
    fn reopen(&self) -> impl Future<Output = Self::Store> + Send;

    /// Creates namespace `name` with a fresh key through `store`; `Exists`
    /// if it exists, `Invalid` if `name` is not an entity name.
    fn create_namespace(
        store: &Self::Store,
        name: &str,
    ) -> impl Future<Output = Result<Credentials, DbError>> + Send;

    /// Creates namespace `name` through `store` only if absent: `Some`
    /// with the new credentials when this call created it.
    fn ensure_namespace(
        store: &Self::Store,
        name: &str,
    ) -> impl Future<Output = Result<Option<Credentials>, DbError>> + Send;

    /// Every namespace, by name, as `store` reads them.
    fn list_namespaces(
        store: &Self::Store,
    ) -> impl Future<Output = Result<Vec<NamespaceInfo>, DbError>> + Send;

    /// Deletes namespace `name`, its key, its actions and its records
    /// through `store`; false if it did not exist.
    fn delete_namespace(
        store: &Self::Store,
        name: &str,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
}

/// A known departure of one store from the contract. The suite asserts the
/// contract for every store that does not declare it in
/// [`StoreAdapter::DIFFERS`], and what the store does instead for one that
/// does (marked `// differs:` where it is asserted), so that the day the
/// store conforms its test says to drop the declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// A revision a handle stored or loaded keeps loading by revision
    /// ([`ActionStore::get`]) from that handle's memory after it was pruned
    /// (older than the latest two) or its action deleted, where the
    /// contract answers `NotFound` — the creation of a sandbox for it then
    /// fails with `DBFetchError` (docs/standalone.md, docs/openwhisk.md
    /// §3.2). A handle that never saw the revision answers `NotFound`.
    SeenRevisionsStayLoadable,
}

/// Whether store `A` declares difference `d`.
fn differs<A: StoreAdapter>(d: Difference) -> bool {
    A::DIFFERS.contains(&d)
}

/// Expands every behaviour of the suite into a `#[tokio::test]` in module
/// `$store`, each on a fresh adapter made by `$adapter` (an expression,
/// evaluated inside the test's async body, that may `.await`; it sees the
/// caller's items through `use super::*`).
///
/// ```ignore
/// wasmwhisk_testkit::store_conformance_suite!(sqlite, Sqlite::new());
/// wasmwhisk_testkit::store_conformance_suite!(nats, Nats::start().await);
/// ```
#[macro_export]
macro_rules! store_conformance_suite {
    ($store:ident, $adapter:expr) => {
        $crate::store_conformance_suite!(@each $store, $adapter,
            // actions
            put_creates_then_refuses_without_overwrite,
            overwrite_makes_the_next_revision_and_bumps_the_patch,
            an_action_reads_back_as_stored_from_a_fresh_handle,
            only_the_latest_two_revisions_load_by_revision,
            concurrent_overwrites_each_get_the_next_revision,
            actions_list_by_name_then_path_without_code,
            delete_answers_the_latest_and_removes_every_revision,
            // records
            records_are_stored_then_read_by_id,
            a_second_store_of_an_id_replaces_the_record,
            records_list_newest_first_with_limit_and_skip,
            records_filter_by_action_name_and_package,
            records_filter_by_since_and_upto_inclusively,
            records_are_isolated_by_namespace,
            a_large_record_is_stored_got_and_listed,
            // namespaces
            namespace_credentials_are_openwhisk_guest_keys,
            authenticate_accepts_only_the_namespaces_own_key,
            create_refuses_an_existing_or_invalid_namespace,
            ensure_creates_a_namespace_once,
            namespaces_list_by_name,
            deleting_a_namespace_deletes_its_key_actions_and_records,
            a_recreated_namespace_has_a_new_key_and_new_revisions,
            namespace_changes_through_another_handle_reach_this_one,
            names_with_every_allowed_character_round_trip,
        );
    };
    (@each $store:ident, $adapter:expr, $($behaviour:ident),+ $(,)?) => {
        mod $store {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test]
                async fn $behaviour() {
                    let adapter = $adapter;
                    $crate::store_conformance::$behaviour(&adapter).await;
                }
            )+
        }
    };
}
