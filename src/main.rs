//! The `wasmwhisk` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wasmwhisk::action::{ActionKind, ActionLimits};
use wasmwhisk::cli::{self, params, run};
use wasmwhisk::engine::{Engine, EngineConfig};

/// Apache OpenWhisk's function-pulling invoker with WebAssembly sandboxes.
#[derive(Parser, Debug)]
#[command(name = "wasmwhisk", version, about)]
struct Cli {
    /// Data directory: compile cache (and later the database and keys).
    #[arg(long, global = true, env = "WASMWHISK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one action once, locally, and print its result and logs.
    Run(RunArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
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

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Sandbox costs: compile, cold start, stem cell, specialize, warm run, memory per sandbox.
    Sandbox(wasmwhisk::bench::sandbox::SandboxBenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {}", run::describe(&error));
            ExitCode::from(3)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let explicit_data_dir = cli.data_dir.clone();
    let data_dir = cli::data_dir(cli.data_dir);
    match cli.command {
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
                limits: ActionLimits {
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
        Command::Bench {
            which: BenchCommand::Sandbox(args),
        } => {
            wasmwhisk::bench::sandbox::run(&data_dir, args)?;
            Ok(0)
        }
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
