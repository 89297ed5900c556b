//! `namespace create|list|delete`: administration on the database file,
//! like OpenWhisk's `wskadmin` on CouchDB. The server may be running: SQLite
//! in WAL mode lets both use the file, and the server reads keys from it.
//!
//! The database must already exist (the server creates it on first start):
//! a mistyped `--data-dir` would otherwise create a namespace in a fresh
//! database that no server reads.

use std::path::Path;

use anyhow::{Result, bail};

use super::format::{datetime_utc, table};
use super::{Failed, FailedBecause, NamespaceCommand};
use crate::config::StoreConfig;
use crate::protocol::EntityName;
use crate::store::{Database, DbError};

/// The database's file in the data directory.
pub const DATABASE_FILE: &str = crate::cli::files::DATABASE;

/// Runs one `namespace` command.
pub(super) fn run(cmd: NamespaceCommand, data_dir: &Path, config: &StoreConfig) -> Result<u8> {
    let file = data_dir.join(DATABASE_FILE);
    if !file.exists() {
        bail!(
            "there is no database at {}: start `wasmwhisk standalone --data-dir {}` once \
             to create it, or give the --data-dir the server uses",
            file.display(),
            data_dir.display()
        );
    }
    let refused = |what: String| {
        move |e: DbError| Failed {
            what,
            error: FailedBecause::Refused(e.to_string()),
        }
    };
    let (db, _recovery) = Database::open(&file, config)
        .map_err(refused(format!("unable to open {}", file.display())))?;
    match cmd {
        NamespaceCommand::Create { name } => {
            let name = EntityName::new(name.as_str())
                .map_err(|e| anyhow::anyhow!("'{name}' is not a namespace name: {e}"))?;
            let credentials = db.create_namespace(name.as_str()).map_err(|e| match e {
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
                .list_namespaces()
                .map_err(refused("unable to list namespaces".into()))?;
            let rows: Vec<[String; 3]> = namespaces
                .into_iter()
                .map(|n| [n.name, n.uuid, datetime_utc(n.created)])
                .collect();
            super::write_stdout(&table(&["Namespace", "Key UUID", "Created"], &rows))?;
        }
        NamespaceCommand::Delete { name } => {
            let deleted = db
                .delete_namespace(&name)
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
