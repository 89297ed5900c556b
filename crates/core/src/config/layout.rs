//! The data directory: where it is, and the files in it
//! (docs/standalone.md, docs/architecture.md).

use std::path::PathBuf;

/// The data directory: `--data-dir`, `$WASMWHISK_DATA_DIR`, else
/// `$XDG_DATA_HOME/wasmwhisk`, else `~/.local/share/wasmwhisk`, else `./.wasmwhisk`.
pub fn data_dir(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir;
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("wasmwhisk");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/wasmwhisk");
    }
    PathBuf::from(".wasmwhisk")
}

/// The compile cache inside a data directory.
pub fn cache_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("cache")
}

/// The files in a data directory, named in one place (docs/standalone.md).
pub mod files {
    /// The SQLite database (with its `-wal` and `-shm` companions).
    pub const DATABASE: &str = "wasmwhisk.db";
    /// `APIHOST=` and `AUTH=` for the CLI, in `wsk`'s `.wskprops` format.
    pub const PROPS: &str = "wskprops";
    /// The `guest` namespace's key, written on first start.
    pub const GUEST_KEY: &str = "guest.auth";
    /// The admin API's `user:password`.
    pub const ADMIN: &str = "admin.auth";
}
