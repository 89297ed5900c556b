//! The store conformance suite (`wasmwhisk_testkit::store_conformance`) run
//! against both implementations of the store: every behaviour once on
//! SQLite (`sqlite::…`, a database in a temporary directory) and once on
//! NATS JetStream (`nats::…`, a fresh nats-server per test). A behaviour
//! that fails on one store and passes on the other is a place where the
//! REST API would answer differently in standalone mode and in a cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;
use std::time::Duration;

use wasmwhisk::config::StoreConfig;
use wasmwhisk::store::{Credentials, Database, DbError, NamespaceInfo};
use wasmwhisk_testkit::store_conformance::StoreAdapter;

/// Standalone mode's store: a database file in a temporary directory.
struct Sqlite {
    /// Holds the database file; removed when the test ends.
    dir: tempfile::TempDir,
    /// The server's handle (it holds the file's lock).
    db: Database,
}

/// The default store settings without the age bound on records: the
/// suite's records started in 1970, and retention is not under test.
fn config() -> StoreConfig {
    StoreConfig {
        max_activation_age: Duration::MAX,
        ..StoreConfig::default()
    }
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (db, _) = Database::open(&dir.path().join("wasmwhisk.db"), &config())
            .expect("opening the database");
        Sqlite { dir, db }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("wasmwhisk.db")
    }
}

impl StoreAdapter for Sqlite {
    type Store = Database;

    fn store(&self) -> &Database {
        &self.db
    }

    /// A second handle on the file, as the CLI opens beside a server.
    async fn reopen(&self) -> Database {
        Database::open(&self.path(), &config())
            .expect("opening the database again")
            .0
    }

    // The admin calls are sync: the CLI makes them.
    async fn create_namespace(db: &Database, name: &str) -> Result<Credentials, DbError> {
        db.create_namespace(name)
    }

    async fn ensure_namespace(db: &Database, name: &str) -> Result<Option<Credentials>, DbError> {
        db.ensure_namespace(name)
    }

    async fn list_namespaces(db: &Database) -> Result<Vec<NamespaceInfo>, DbError> {
        db.list_namespaces()
    }

    async fn delete_namespace(db: &Database, name: &str) -> Result<bool, DbError> {
        db.delete_namespace(name)
    }
}

wasmwhisk_testkit::store_conformance_suite!(sqlite, Sqlite::new());

#[cfg(feature = "cluster")]
mod on_nats {
    use super::*;
    use wasmwhisk::cluster::nats::{BusOptions, NatsBus, NatsStore, NatsStoreConfig};
    use wasmwhisk_testkit::nats::NatsServer;
    use wasmwhisk_testkit::store_conformance::Difference;

    /// A cluster's store: a fresh nats-server (JetStream on) of its own.
    pub(super) struct Nats {
        /// Killed when the test ends.
        server: NatsServer,
        /// A controller's handle.
        store: NatsStore,
    }

    impl Nats {
        pub(super) async fn start() -> Nats {
            let server = NatsServer::start();
            let store = open(&server).await;
            Nats { server, store }
        }
    }

    /// A store on `server`, over a connection of its own.
    async fn open(server: &NatsServer) -> NatsStore {
        let bus = NatsBus::connect_with(BusOptions {
            url: server.url(),
            ..BusOptions::default()
        })
        .await
        .expect("connecting to nats-server");
        NatsStore::open(&bus, NatsStoreConfig::default())
            .await
            .expect("opening the store")
    }

    impl StoreAdapter for Nats {
        type Store = NatsStore;

        // differs: a revision seen by a process stays loadable from its
        // memory once pruned or deleted (store.rs, "Caches").
        const DIFFERS: &'static [Difference] = &[Difference::SeenRevisionsStayLoadable];

        fn store(&self) -> &NatsStore {
            &self.store
        }

        /// Another controller: its own connection and caches.
        async fn reopen(&self) -> NatsStore {
            open(&self.server).await
        }

        async fn create_namespace(store: &NatsStore, name: &str) -> Result<Credentials, DbError> {
            store.create_namespace(name).await
        }

        async fn ensure_namespace(
            store: &NatsStore,
            name: &str,
        ) -> Result<Option<Credentials>, DbError> {
            store.ensure_namespace(name).await
        }

        async fn list_namespaces(store: &NatsStore) -> Result<Vec<NamespaceInfo>, DbError> {
            store.list_namespaces().await
        }

        async fn delete_namespace(store: &NatsStore, name: &str) -> Result<bool, DbError> {
            store.delete_namespace(name).await
        }
    }
}

#[cfg(feature = "cluster")]
use on_nats::Nats;

#[cfg(feature = "cluster")]
wasmwhisk_testkit::store_conformance_suite!(nats, Nats::start().await);
