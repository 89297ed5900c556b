//! The flags parse as docs/cli.md says, wired as `main` wires them.

use super::*;
use clap::Parser;

/// The wiring `main` does, to check the flags parse as documented.
#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    Action {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: ActionCommand,
    },
    Activation {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: ActivationCommand,
    },
    Namespace {
        #[command(subcommand)]
        cmd: NamespaceCommand,
    },
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("wasmwhisk").chain(args.iter().copied()))
}

#[test]
fn global_client_flags_may_follow_the_subcommand() {
    let cli = parse(&[
        "action",
        "--apihost",
        "http://h:1",
        "create",
        "hello",
        "h.wasm",
        "-u",
        "u:k",
        "-p",
        "n",
        "-1",
        "-p",
        "s",
        "x",
        "-m",
        "128",
        "-t",
        "500",
        "-l",
        "1",
        "-a",
        "web",
        "true",
    ])
    .unwrap();
    let Command::Action {
        client,
        cmd: ActionCommand::Create(args),
    } = cli.command
    else {
        panic!("not action create");
    };
    assert_eq!(client.apihost.as_deref(), Some("http://h:1"));
    assert_eq!(client.auth.as_deref(), Some("u:k"));
    assert_eq!(args.options.params.param, ["n", "-1", "s", "x"]);
    assert_eq!(args.options.annotation, ["web", "true"]);
    assert_eq!(
        (args.options.memory, args.options.timeout, args.options.logs),
        (Some(128), Some(500), Some(1))
    );
}

#[test]
fn activation_flags() {
    let cli = parse(&["activation", "logs", "--last", "-r"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Activation {
            cmd: ActivationCommand::Logs(LogsArgs {
                strip: true,
                which: ActivationIdArgs {
                    last: true,
                    id: None
                }
            }),
            ..
        }
    ));
    assert!(parse(&["activation", "get"]).is_err(), "an id or --last");
    assert!(parse(&["activation", "get", "x", "--last"]).is_err());
    let cli = parse(&[
        "activation",
        "list",
        "hello",
        "-l",
        "5",
        "-s",
        "2",
        "--since",
        "10",
        "--upto",
        "20",
    ])
    .unwrap();
    let Command::Activation {
        cmd: ActivationCommand::List(list),
        ..
    } = cli.command
    else {
        panic!("not activation list");
    };
    assert_eq!(
        (
            list.name.as_deref(),
            list.page.limit,
            list.page.skip,
            list.since,
            list.upto
        ),
        (Some("hello"), Some(5), Some(2), Some(10), Some(20))
    );
    assert!(parse(&["activation", "poll", "--exit", "3"]).is_ok());
    assert!(parse(&["namespace", "create", "alice"]).is_ok());
    assert!(parse(&["action", "invoke", "hello", "-r", "-P", "p.json"]).is_ok());
}
