//! The `wasmwhisk` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wasmwhisk::action::{ActionKind, SandboxLimits};
use wasmwhisk::cli::{self, params, run, wsk};
use wasmwhisk::engine::{Engine, EngineConfig};

/// Apache OpenWhisk's function-pulling invoker with WebAssembly sandboxes.
#[derive(Parser, Debug)]
#[command(name = "wasmwhisk", version, about)]
struct Cli {
    /// Data directory: compile cache, database, keys (docs/standalone.md).
    #[arg(long, global = true, env = "WASMWHISK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run controller, scheduler and invoker in one process: the REST API on
    /// 127.0.0.1:3233 (docs/api.md), data in the data directory.
    Standalone(StandaloneArgs),
    /// Run a cluster's controller: the REST API and the scheduler, against
    /// NATS and etcd (docs/cluster.md).
    Controller(ClusterArgs),
    /// Run one invoker of a cluster, against NATS and etcd (docs/cluster.md).
    Invoker(ClusterArgs),
    /// Actions: create, update, get, list, delete, invoke (docs/cli.md).
    Action {
        #[command(flatten)]
        client: wsk::ClientArgs,
        #[command(subcommand)]
        which: wsk::ActionCommand,
    },
    /// Activations: list, get, result, logs, poll (docs/cli.md).
    Activation {
        #[command(flatten)]
        client: wsk::ClientArgs,
        #[command(subcommand)]
        which: wsk::ActivationCommand,
    },
    /// Namespaces and their keys, in the data directory's database (or a
    /// cluster's shared store with `--nats`).
    Namespace {
        /// The configuration file (else `$WASMWHISK_CONFIG`; else none).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A cluster's NATS server: work on the cluster's shared store
        /// instead of the data directory's database.
        #[arg(long, value_name = "URL", global = true)]
        nats: Option<String>,
        #[command(subcommand)]
        which: wsk::NamespaceCommand,
    },
    /// Run one action once, locally, and print its result and logs.
    Run(RunArgs),
    /// Benchmarks: runs `wasmwhisk-bench` (built beside this binary) with
    /// the arguments that follow (docs/BENCHMARKS.md).
    #[command(disable_help_flag = true)]
    Bench {
        /// What `wasmwhisk-bench` takes (`wasmwhisk bench --help` lists it).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The configuration (docs/configuration.md).
    Config {
        #[command(subcommand)]
        which: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration as TOML: defaults, then the file,
    /// then `WASMWHISK_*` variables, then flags.
    Print {
        /// The configuration file (else `$WASMWHISK_CONFIG`; else none).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct StandaloneArgs {
    /// The configuration file (else `$WASMWHISK_CONFIG`; else none).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The port of the REST and admin API (0: any free port).
    #[arg(long, env = "WASMWHISK_PORT")]
    port: Option<u16>,
}

#[derive(clap::Args, Debug)]
struct ClusterArgs {
    /// The configuration file (else `$WASMWHISK_CONFIG`; else none).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The port of the REST API (controller) or of the invoker's admin API
    /// (0: any free port).
    #[arg(long, env = "WASMWHISK_PORT")]
    port: Option<u16>,
    /// The instance number: invoker N (`whisk.invoker{N}`, `invoker{N}` in
    /// etcd) or controller K (`whisk.completed{K}`, `controller{K}`).
    #[arg(long, env = "WASMWHISK_ID")]
    id: Option<u32>,
    /// The NATS server URL.
    #[arg(long, env = "WASMWHISK_NATS")]
    nats: Option<String>,
    /// The etcd endpoints, comma-separated.
    #[arg(long, env = "WASMWHISK_ETCD")]
    etcd: Option<String>,
    /// The address the API listens on.
    #[arg(long, env = "WASMWHISK_BIND", default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The action: a `.wasm` component (kind wasm) or a `.js` file (kind js).
    file: PathBuf,
    /// A parameter: `-p name value` (the value is JSON if it parses, else a string).
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"])]
    param: Vec<String>,
    /// A JSON file with an object of parameters.
    #[arg(short = 'P', long = "param-file")]
    param_file: Option<PathBuf>,
    /// The kind (wasm, js); by default from the file's extension.
    #[arg(long)]
    kind: Option<ActionKind>,
    /// The entry point of a js action.
    #[arg(long, default_value = "main")]
    main: String,
    /// Memory limit, MB.
    #[arg(short = 'm', long, default_value_t = 256)]
    memory: u64,
    /// Time limit, ms.
    #[arg(short = 't', long, default_value_t = 60_000)]
    timeout: u64,
    /// Log limit, MB.
    #[arg(short = 'l', long, default_value_t = 10)]
    logs: u64,
}

fn main() -> ExitCode {
    wasmwhisk_core::startup::init_process();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {}", run::describe(&error));
            ExitCode::from(3)
        }
    }
}

/// Runs `controller` (or `invoker`) with its flags over the configuration.
#[cfg(feature = "cluster")]
fn run_cluster(args: ClusterArgs, data_dir: Option<PathBuf>, controller: bool) -> Result<u8> {
    let flags = wasmwhisk::config::Flags {
        config: args.config,
        data_dir,
        port: args.port,
        nats: args.nats,
        etcd: args.etcd,
        id: args.id,
    };
    let config = wasmwhisk::config::Config::load(&flags)?;
    let data_dir = cli::data_dir(config.invoker.data_dir.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    if controller {
        runtime.block_on(wasmwhisk::process::controller::run(
            config, data_dir, args.bind,
        ))?;
    } else {
        runtime.block_on(wasmwhisk::process::invoker::run(
            config, data_dir, args.bind,
        ))?;
    }
    Ok(0)
}

/// A build without the `cluster` feature has no cluster processes.
#[cfg(not(feature = "cluster"))]
fn run_cluster(_: ClusterArgs, _: Option<PathBuf>, controller: bool) -> Result<u8> {
    anyhow::bail!(
        "this wasmwhisk was built without cluster mode (the `cluster` feature), so `{}` is not available",
        if controller { "controller" } else { "invoker" }
    )
}

fn dispatch(cli: Cli) -> Result<u8> {
    let explicit_data_dir = cli.data_dir.clone();
    let data_dir = cli::data_dir(cli.data_dir);
    match cli.command {
        Command::Action { client, which } => wsk::run_action(which, &client, &data_dir),
        Command::Activation { client, which } => wsk::run_activation(which, &client, &data_dir),
        Command::Namespace {
            config,
            nats,
            which,
        } => {
            let cluster = nats.is_some();
            let flags = wasmwhisk::config::Flags {
                config,
                data_dir: explicit_data_dir,
                nats,
                ..Default::default()
            };
            let config = wasmwhisk::config::Config::load(&flags)?;
            let data_dir = cli::data_dir(config.invoker.data_dir.clone());
            wsk::run_namespace(which, &data_dir, &config.store, cluster.then_some(&config))
        }
        Command::Standalone(args) => {
            let flags = wasmwhisk::config::Flags {
                config: args.config,
                data_dir: explicit_data_dir,
                port: args.port,
                ..Default::default()
            };
            let config = wasmwhisk::config::Config::load(&flags)?;
            let data_dir = cli::data_dir(config.invoker.data_dir.clone());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the Tokio runtime")?;
            runtime.block_on(wasmwhisk::process::standalone::run(config, data_dir))?;
            Ok(0)
        }
        Command::Controller(args) => run_cluster(args, explicit_data_dir, true),
        Command::Invoker(args) => run_cluster(args, explicit_data_dir, false),
        Command::Run(args) => {
            let mut params = match &args.param_file {
                Some(path) => params::read_file(path)?,
                None => serde_json::Map::new(),
            };
            for pair in args.param.chunks(2) {
                if let [key, value] = pair {
                    params.insert(key.clone(), params::value_of(value));
                }
            }
            let options = run::RunOptions {
                file: args.file,
                kind: args.kind,
                main: args.main,
                params,
                limits: SandboxLimits {
                    timeout: Duration::from_millis(args.timeout),
                    memory_mb: args.memory,
                    logs_mb: args.logs,
                    concurrency: 1,
                },
            };
            let engine = Arc::new(
                Engine::new(EngineConfig::small(), &cli::cache_dir(&data_dir))
                    .context("starting the engine")?,
            );
            let report = run::execute(&engine, &options)?;
            Ok(u8::try_from(run::print_report(&report)).unwrap_or(3))
        }
        Command::Bench { args } => bench(explicit_data_dir, args),
        Command::Config {
            which: ConfigCommand::Print { config },
        } => {
            let flags = wasmwhisk::config::Flags {
                config,
                data_dir: explicit_data_dir,
                ..Default::default()
            };
            let mut effective = wasmwhisk::config::Config::load(&flags)?;
            let data_dir = effective.invoker.data_dir.take();
            effective.invoker.data_dir = Some(cli::data_dir(data_dir));
            print!("{}", effective.to_toml_string()?);
            Ok(0)
        }
    }
}

/// `wasmwhisk bench …`: becomes the `wasmwhisk-bench` binary beside this one
/// (the bench, with its heap-counting allocator, is not part of this
/// binary), telling it where `wasmwhisk` is. Returns only when it cannot.
fn bench(data_dir: Option<PathBuf>, args: Vec<std::ffi::OsString>) -> Result<u8> {
    let me = std::env::current_exe().context("finding the wasmwhisk binary")?;
    let bench = me.with_file_name(format!("wasmwhisk-bench{}", std::env::consts::EXE_SUFFIX));
    let mut command = std::process::Command::new(&bench);
    if let Some(dir) = data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.args(args).env("WASMWHISK_BIN", &me);
    // The bench replaces this process: signals (Ctrl-C, SIGTERM) reach it
    // and its clean-up directly, and its exit status is the command's.
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    Err(error).with_context(|| {
        format!(
            "running {} (built by `cargo build -p wasmwhisk-bench`, or `make build`)",
            bench.display()
        )
    })
}
