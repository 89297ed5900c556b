//! `wasmwhisk action …`, `activation …` and `namespace …`: a client like
//! OpenWhisk's `wsk`, for a running `wasmwhisk standalone` (or any server
//! speaking OpenWhisk's `/api/v1`).
//!
//! The client is an adapter like the REST API: it knows HTTP and the API's
//! JSON, nothing of the pool or the engine. It reads its API host and key
//! from the data directory that `wasmwhisk standalone` writes them into, so
//! on one machine `wasmwhisk action invoke hello -r` works with no setup;
//! flags, the environment and props files override that ([`props`]).
//! `namespace …` is the exception: it is administration, done on the
//! database file directly (as OpenWhisk's `wskadmin` does on CouchDB), so it
//! works whether or not the server runs.
//!
//! # Exit status
//! - 0: done.
//! - 1 ([`EXIT_ACTIVATION_FAILED`]): the activation ran and failed with an
//!   application or developer error (a blocking invoke answered 502); its
//!   record or result is printed as for a success.
//! - 2 ([`EXIT_REQUEST_FAILED`]): the API refused the request (its `error`
//!   and `code` are printed), answered a whisk internal error, or the server
//!   is not reachable; for `namespace`, the database refused.
//! - 3: a local error before any request (bad flags, unreadable file, no API
//!   host or key), printed by `main` as `error: …`.
//!
//! # Layout
//! - [`props`]: where the API host and key come from.
//! - [`client`]: the HTTP client and its errors.
//! - [`body`]: action paths and `PUT` bodies.
//! - [`format`]: tables and log lines.
//! - `action`, `activation`, `namespace`: the commands.

/// `println!` to stdout that stops the command quietly, with status 0, when
/// the reader of stdout has gone (`wasmwhisk activation list | head`).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::wsk::write_stdout(&format!("{}\n", format_args!($($arg)*)))?
    };
}

mod action;
mod activation;
pub mod body;
pub mod client;
pub mod format;
mod namespace;
pub mod props;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::StoreConfig;

pub use activation::Poller;

/// The activation ran and failed (application or developer error).
pub const EXIT_ACTIVATION_FAILED: u8 = 1;
/// The request failed: the API's error, a whisk error, or no server.
pub const EXIT_REQUEST_FAILED: u8 = 2;

/// Where the client sends its requests, and with which key. Each flag is
/// global: it may follow the subcommand.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// The API host, http://HOST:PORT [else $WASMWHISK_APIHOST, the props
    /// file, {data-dir}/wskprops].
    #[arg(long, global = true, value_name = "URL")]
    pub apihost: Option<String>,
    /// The API key UUID:KEY [else $WASMWHISK_AUTH, the props file,
    /// {data-dir}/wskprops].
    #[arg(short = 'u', long, global = true, value_name = "UUID:KEY")]
    pub auth: Option<String>,
    /// A props file in wsk's format (APIHOST=…, AUTH=… lines) [else
    /// $WASMWHISK_PROPS].
    #[arg(long, global = true, value_name = "FILE")]
    pub props: Option<PathBuf>,
}

/// `-p KEY VALUE` and `-P FILE`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParamArgs {
    /// A parameter: -p KEY VALUE (the value is JSON if it parses, else a
    /// string); repeatable, wins over -P.
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true)]
    pub param: Vec<String>,
    /// A JSON file holding an object of parameters.
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub param_file: Option<PathBuf>,
}

/// What `action create` and `action update` set besides the code.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ActionOptions {
    /// Default parameters.
    #[command(flatten)]
    pub params: ParamArgs,
    /// An annotation: -a KEY VALUE (the value is JSON if it parses, else a
    /// string); repeatable.
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true)]
    pub annotation: Vec<String>,
    /// The kind: wasm, js (or nodejs:*) [default: from the file's extension,
    /// .wasm → wasm, .js → js].
    #[arg(long)]
    pub kind: Option<String>,
    /// The entry point of a js action [server default: main].
    #[arg(long)]
    pub main: Option<String>,
    /// A blackbox action: run this Docker image (kind blackbox); FILE, if
    /// given, is sent as its code (a zip with an `exec`, or an executable).
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["kind", "native"])]
    pub docker: Option<String>,
    /// A native action: FILE is an executable (or a zip with an `exec`) run
    /// by the Docker fallback's action proxy (kind native).
    #[arg(long, conflicts_with = "kind")]
    pub native: bool,
    /// Memory limit, MB [server default: 256].
    #[arg(short = 'm', long, value_name = "MB")]
    pub memory: Option<u64>,
    /// Time limit, ms [server default: 60000].
    #[arg(short = 't', long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Log limit, MB [server default: 10].
    #[arg(short = 'l', long, value_name = "MB")]
    pub logs: Option<u64>,
}

/// `wasmwhisk action …`.
#[derive(clap::Subcommand, Debug)]
pub enum ActionCommand {
    /// Create an action from a .wasm component or a .js file.
    Create(CreateArgs),
    /// Update an action: new code (a new revision), parameters or limits.
    Update(UpdateArgs),
    /// Print an action.
    Get(GetArgs),
    /// List the actions of the namespace.
    List(PageArgs),
    /// Delete an action.
    Delete(NameArgs),
    /// Invoke an action.
    Invoke(InvokeArgs),
}

/// `action create NAME FILE`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The action's name (NAME, PKG/NAME or /NAMESPACE/NAME).
    pub name: String,
    /// The code: a .wasm component, a .js file, or with --native an
    /// executable (optional with --docker).
    pub file: Option<PathBuf>,
    /// Parameters, annotations, kind and limits.
    #[command(flatten)]
    pub options: ActionOptions,
}

/// `action update NAME [FILE]`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The action's name.
    pub name: String,
    /// New code; without it the code is kept.
    pub file: Option<PathBuf>,
    /// Parameters, annotations, kind and limits.
    #[command(flatten)]
    pub options: ActionOptions,
}

/// `action get NAME`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The action's name.
    pub name: String,
    /// Print only the code (a js action's source; a wasm action's base64).
    #[arg(long, conflicts_with = "save")]
    pub code: bool,
    /// Write the code to FILE (a wasm action's component, decoded).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// `--limit` and `--skip`.
#[derive(clap::Args, Debug, Default)]
pub struct PageArgs {
    /// At most this many [server default: 30, at most 200].
    #[arg(short = 'l', long)]
    pub limit: Option<u32>,
    /// Skip this many.
    #[arg(short = 's', long)]
    pub skip: Option<u32>,
}

/// A command on one action.
#[derive(clap::Args, Debug)]
pub struct NameArgs {
    /// The action's name.
    pub name: String,
}

/// `action invoke NAME`.
#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// The action's name.
    pub name: String,
    /// The activation's parameters.
    #[command(flatten)]
    pub params: ParamArgs,
    /// Wait for the activation and print its record.
    #[arg(short = 'b', long)]
    pub blocking: bool,
    /// Wait for the activation and print only its result (implies --blocking).
    #[arg(short = 'r', long)]
    pub result: bool,
}

/// `wasmwhisk activation …`.
#[derive(clap::Subcommand, Debug)]
pub enum ActivationCommand {
    /// List activations, newest first.
    List(ActivationListArgs),
    /// Print an activation's record.
    Get(ActivationIdArgs),
    /// Print an activation's result.
    Result(ActivationIdArgs),
    /// Print an activation's logs.
    Logs(LogsArgs),
    /// Print new activations' logs and results as they arrive.
    Poll(PollArgs),
}

/// `activation list [NAME]`.
#[derive(clap::Args, Debug, Default)]
pub struct ActivationListArgs {
    /// Only activations of this action.
    pub name: Option<String>,
    /// Limit and skip.
    #[command(flatten)]
    pub page: PageArgs,
    /// Only those that started at or after this time, epoch ms.
    #[arg(long, value_name = "EPOCH_MS")]
    pub since: Option<u64>,
    /// Only those that started at or before this time, epoch ms.
    #[arg(long, value_name = "EPOCH_MS")]
    pub upto: Option<u64>,
}

/// An activation id, or `--last`.
#[derive(clap::Args, Debug, Default)]
pub struct ActivationIdArgs {
    /// The activation id.
    #[arg(required_unless_present = "last")]
    pub id: Option<String>,
    /// The most recent activation instead.
    #[arg(short = 'l', long, conflicts_with = "id")]
    pub last: bool,
}

/// `activation logs ID`.
#[derive(clap::Args, Debug, Default)]
pub struct LogsArgs {
    /// Which activation.
    #[command(flatten)]
    pub which: ActivationIdArgs,
    /// Print only each line's text, without its time and stream.
    #[arg(short = 'r', long)]
    pub strip: bool,
}

/// `activation poll [NAME]`.
#[derive(clap::Args, Debug, Default)]
pub struct PollArgs {
    /// Only activations of this action.
    pub name: Option<String>,
    /// Stop after this many seconds [default: at Ctrl-C].
    #[arg(long = "exit", value_name = "SECONDS")]
    pub exit: Option<u64>,
}

/// `wasmwhisk namespace …` (on the database in the data directory).
#[derive(clap::Subcommand, Debug)]
pub enum NamespaceCommand {
    /// Create a namespace and print its key (shown only this once).
    Create {
        /// The namespace.
        name: String,
    },
    /// List the namespaces.
    List,
    /// Delete a namespace, its key and its actions.
    Delete {
        /// The namespace.
        name: String,
    },
}

/// Runs `action …`; returns the exit status.
pub fn run_action(cmd: ActionCommand, client: &ClientArgs, data_dir: &Path) -> Result<u8> {
    let api = connect(client, data_dir)?;
    reported(action::run(cmd, &api))
}

/// Runs `activation …`; returns the exit status.
pub fn run_activation(cmd: ActivationCommand, client: &ClientArgs, data_dir: &Path) -> Result<u8> {
    let api = connect(client, data_dir)?;
    reported(activation::run(cmd, &api))
}

/// Runs `namespace …` on `{data_dir}/wasmwhisk.db`, or on the cluster's
/// store at `cluster.nats` when `cluster` is given; returns the exit status.
pub fn run_namespace(
    cmd: NamespaceCommand,
    data_dir: &Path,
    store_config: &StoreConfig,
    cluster: Option<&crate::config::Config>,
) -> Result<u8> {
    reported(namespace::run(cmd, data_dir, store_config, cluster))
}

/// stdout's reader has gone: nothing more to say.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
struct StdoutClosed;

/// Writes `text` to stdout as it is; a closed pipe ends the command (see
/// [`reported`]) instead of panicking as `print!` does.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// The client of the resolved API host and key.
fn connect(args: &ClientArgs, data_dir: &Path) -> Result<client::Client> {
    let sources = props::Sources::from_process(
        args.apihost.clone(),
        args.auth.clone(),
        args.props.clone(),
        data_dir,
    );
    let target = props::resolve(&sources, props::read_props_file)?;
    client::Client::new(target)
}

/// A request that failed, with what it was for: printed as
/// `error: {what}: {error}` and exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
pub(crate) struct Failed {
    /// What was being done, e.g. `unable to invoke /_/hello`.
    pub what: String,
    /// Why it failed.
    pub error: FailedBecause,
}

/// Why a command failed after it left the machine (or reached the database).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FailedBecause {
    /// The HTTP request.
    #[error(transparent)]
    Request(#[from] client::RequestError),
    /// The database (namespace commands).
    #[error("{0}")]
    Refused(String),
}

impl Failed {
    fn request(what: impl Into<String>, error: client::RequestError) -> Failed {
        Failed {
            what: what.into(),
            error: FailedBecause::Request(error),
        }
    }
}

/// Turns a [`Failed`] into its message on stderr and exit status 2, and a
/// closed stdout into status 0; other errors (local ones) go up to `main`.
fn reported(outcome: Result<u8>) -> Result<u8> {
    match outcome {
        Ok(code) => Ok(code),
        Err(error) if error.is::<StdoutClosed>() => Ok(0),
        Err(error) => match error.downcast::<Failed>() {
            Ok(failed) => {
                eprintln!("error: {failed}");
                if let FailedBecause::Request(request) = &failed.error
                    && let Some(hint) = request.hint()
                {
                    eprintln!("hint: {hint}");
                }
                Ok(EXIT_REQUEST_FAILED)
            }
            Err(other) => Err(other),
        },
    }
}

#[cfg(test)]
mod tests;
