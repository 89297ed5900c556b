//! `namespace create|list|delete`: administration on the database file,
//! like OpenWhisk's `wskadmin` on CouchDB. The server may be running: SQLite
//! in WAL mode lets both use the file, and the server reads keys from it.
//!
//! The database must already exist (the server creates it on first start):
//! a mistyped `--data-dir` would otherwise create a namespace in a fresh
//! database that no server reads.
//!
//! With `--nats URL` the same commands work on a cluster's shared store
//! (NATS KV, [`NatsStore`]) instead, which every controller reads.

use std::path::Path;

use anyhow::{Result, bail};

use super::format::{datetime_utc, table};
use super::{Failed, FailedBecause, NamespaceCommand};
#[cfg(feature = "cluster")]
use crate::cluster::nats::{NatsBus, NatsStore, NatsStoreConfig};
use crate::config::StoreConfig;
use crate::protocol::EntityName;
use crate::store::{Credentials, Database, DbError, NamespaceInfo};

/// The database's file in the data directory.
pub const DATABASE_FILE: &str = crate::cli::files::DATABASE;

/// Where the namespaces are: standalone's database, or a cluster's store.
enum Admin {
    Db(Database),
    #[cfg(feature = "cluster")]
    Nats(NatsStore, tokio::runtime::Runtime),
}

impl Admin {
    fn create(&self, name: &str) -> Result<Credentials, DbError> {
        match self {
            Admin::Db(db) => db.create_namespace(name),
            #[cfg(feature = "cluster")]
            Admin::Nats(store, rt) => rt.block_on(store.create_namespace(name)),
        }
    }

    fn list(&self) -> Result<Vec<NamespaceInfo>, DbError> {
        match self {
            Admin::Db(db) => db.list_namespaces(),
            #[cfg(feature = "cluster")]
            Admin::Nats(store, rt) => rt.block_on(store.list_namespaces()),
        }
    }

    fn delete(&self, name: &str) -> Result<bool, DbError> {
        match self {
            Admin::Db(db) => db.delete_namespace(name),
            #[cfg(feature = "cluster")]
            Admin::Nats(store, rt) => rt.block_on(store.delete_namespace(name)),
        }
    }
}

/// The cluster's store at `nats`.
#[cfg(feature = "cluster")]
fn cluster_store(nats: &crate::config::Config) -> Result<Admin> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(async {
        let bus = NatsBus::connect(&nats.nats).await?;
        NatsStore::open(&bus, NatsStoreConfig::from_config(nats)).await
    })?;
    Ok(Admin::Nats(store, rt))
}

/// A build without cluster mode has no cluster store to reach.
#[cfg(not(feature = "cluster"))]
fn cluster_store(_: &crate::config::Config) -> Result<Admin> {
    anyhow::bail!(
        "this wasmwhisk was built without cluster mode (the `cluster` feature), so --nats is not available"
    )
}

/// Runs one `namespace` command: on the cluster's store when `cluster` is
/// given (`--nats`), else on the data directory's database.
pub(super) fn run(
    cmd: NamespaceCommand,
    data_dir: &Path,
    config: &StoreConfig,
    cluster: Option<&crate::config::Config>,
) -> Result<u8> {
    let refused = |what: String| {
        move |e: DbError| Failed {
            what,
            error: FailedBecause::Refused(e.to_string()),
        }
    };
    let db = match cluster {
        Some(cluster) => cluster_store(cluster)?,
        None => Admin::Db(open_database(data_dir, config)?),
    };
    match cmd {
        NamespaceCommand::Create { name } => {
            let name = EntityName::new(name.as_str())
                .map_err(|e| anyhow::anyhow!("'{name}' is not a namespace name: {e}"))?;
            let credentials = db.create(name.as_str()).map_err(|e| match e {
                DbError::Exists => Failed {
                    what: format!("unable to create namespace {name}"),
                    error: FailedBecause::Refused("it already exists".into()),
                },
                other => refused(format!("unable to create namespace {name}"))(other),
            })?;
            say!("ok: created namespace {name}");
            say!("key: {}", credentials.api_key());
            eprintln!(
                "this key is not shown again: keep it (use it with --auth, WASMWHISK_AUTH or \
                 AUTH= in a props file)"
            );
        }
        NamespaceCommand::List => {
            let namespaces = db
                .list()
                .map_err(refused("unable to list namespaces".into()))?;
            let rows: Vec<[String; 3]> = namespaces
                .into_iter()
                .map(|n| [n.name, n.uuid, datetime_utc(n.created)])
                .collect();
            super::write_stdout(&table(&["Namespace", "Key UUID", "Created"], &rows))?;
        }
        NamespaceCommand::Delete { name } => {
            let deleted = db
                .delete(&name)
                .map_err(refused(format!("unable to delete namespace {name}")))?;
            if !deleted {
                return Err(Failed {
                    what: format!("unable to delete namespace {name}"),
                    error: FailedBecause::Refused("it does not exist".into()),
                }
                .into());
            }
            say!("ok: deleted namespace {name}");
        }
    }
    Ok(0)
}

/// The data directory's database, which must exist.
fn open_database(data_dir: &Path, config: &StoreConfig) -> Result<Database> {
    let file = data_dir.join(DATABASE_FILE);
    if !file.exists() {
        bail!(
            "there is no database at {}: start `wasmwhisk standalone --data-dir {}` once \
             to create it, or give the --data-dir the server uses (or --nats for a cluster)",
            file.display(),
            data_dir.display()
        );
    }
    let (db, _recovery) = Database::open(&file, config).map_err(|e| Failed {
        what: format!("unable to open {}", file.display()),
        error: FailedBecause::Refused(e.to_string()),
    })?;
    Ok(db)
}
