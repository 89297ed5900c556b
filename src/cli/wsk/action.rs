//! `action create|update|get|list|delete|invoke`.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Map, Value};

use super::body::{ActionPath, Exec, Limits, action_put, merge_pairs};
use super::client::{Client, Payload, human_size};
use super::format::pretty;
use super::{
    ActionCommand, ActionOptions, EXIT_ACTIVATION_FAILED, EXIT_REQUEST_FAILED, Failed, GetArgs,
    InvokeArgs, PageArgs, ParamArgs,
};

/// Runs one `action` command.
pub(super) fn run(cmd: ActionCommand, api: &Client) -> Result<u8> {
    match cmd {
        ActionCommand::Create(args) => {
            if args.file.is_none() && args.options.docker.is_none() {
                bail!("action create needs the code FILE (only a --docker action may go without)");
            }
            put(api, &args.name, args.file.as_deref(), &args.options, false)
        }
        ActionCommand::Update(args) => {
            put(api, &args.name, args.file.as_deref(), &args.options, true)
        }
        ActionCommand::Get(args) => get(api, &args),
        ActionCommand::List(page) => list(api, &page),
        ActionCommand::Delete(args) => delete(api, &args.name),
        ActionCommand::Invoke(args) => invoke(api, &args),
    }
}

/// `-P FILE` then the `-p` pairs over it.
pub(super) fn read_params(args: &ParamArgs) -> Result<Map<String, Value>> {
    let base = match &args.param_file {
        Some(path) => crate::cli::params::read_file(path)?,
        None => Map::new(),
    };
    Ok(merge_pairs(base, &args.param))
}

/// The URL of an action (`query` appended).
fn action_url(api: &Client, path: &ActionPath, query: &[(&str, String)]) -> reqwest::Url {
    let mut segments = vec!["actions"];
    segments.extend(path.segments.iter().map(String::as_str));
    api.url(&path.namespace, &segments, query)
}

/// `create` (`PUT`, 409 if it exists) and `update` (`PUT ?overwrite=true`).
fn put(
    api: &Client,
    name: &str,
    file: Option<&std::path::Path>,
    options: &ActionOptions,
    overwrite: bool,
) -> Result<u8> {
    let path = ActionPath::parse(name)?;
    let (exec, label) = match file {
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let kind = match (&options.docker, options.native) {
                (Some(_), _) => Some("blackbox"),
                (None, true) => Some("native"),
                (None, false) => options.kind.as_deref(),
            };
            let mut exec = Exec::new(file, &bytes, kind, options.main.clone())?;
            exec.image = options.docker.clone();
            let shown = file
                .file_name()
                .unwrap_or(file.as_os_str())
                .to_string_lossy();
            let label = format!("{shown} ({})", human_size(bytes.len() as u64));
            (Some(exec), label)
        }
        None if options.docker.is_some() => {
            let exec = Exec::image(options.docker.clone(), options.main.clone());
            (Some(exec), String::new())
        }
        None if options.kind.is_some() || options.main.is_some() || options.native => {
            bail!("--kind, --native and --main come with the code: give the FILE too")
        }
        None => (None, String::new()),
    };
    let parameters = read_params(&options.params)?;
    let annotations = merge_pairs(Map::new(), &options.annotation);
    let limits = Limits {
        memory: options.memory,
        timeout: options.timeout,
        logs: options.logs,
    };
    let body = action_put(exec.as_ref(), &parameters, &annotations, limits);
    let payload = if exec.is_some() {
        Payload::Upload {
            json: serde_json::to_vec(&body).context("serializing the action")?,
            label,
        }
    } else {
        Payload::Json(body)
    };
    let query: Vec<(&str, String)> = if overwrite {
        vec![("overwrite", "true".to_string())]
    } else {
        Vec::new()
    };
    let verb = if overwrite { "update" } else { "create" };
    api.call(Method::PUT, action_url(api, &path, &query), payload)
        .map_err(|e| Failed::request(format!("unable to {verb} action {}", path.display()), e))?;
    say!("ok: {verb}d action {}", path.display());
    Ok(0)
}

/// `get`: the document, its code, or the code saved to a file.
fn get(api: &Client, args: &GetArgs) -> Result<u8> {
    let path = ActionPath::parse(&args.name)?;
    let with_code = args.code || args.save.is_some();
    let url = action_url(api, &path, &[("code", with_code.to_string())]);
    let doc = api
        .call(Method::GET, url, Payload::Empty)
        .map_err(|e| Failed::request(format!("unable to get action {}", path.display()), e))?;
    let code = doc.pointer("/exec/code").and_then(Value::as_str);
    let binary = doc
        .pointer("/exec/binary")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if args.code {
        match code {
            Some(code) => say!("{code}"),
            None => bail!("the server sent action {} without its code", path.display()),
        }
    } else if let Some(file) = &args.save {
        let Some(code) = code else {
            bail!("the server sent action {} without its code", path.display())
        };
        let bytes = if binary {
            base64::engine::general_purpose::STANDARD
                .decode(code)
                .context("the action's code is not valid base64")?
        } else {
            code.as_bytes().to_vec()
        };
        std::fs::write(file, bytes).with_context(|| format!("writing {}", file.display()))?;
        say!(
            "ok: saved the code of action {} to {}",
            path.display(),
            file.display()
        );
    } else {
        say!("{}", pretty(&doc));
    }
    Ok(0)
}

/// `list`.
fn list(api: &Client, page: &PageArgs) -> Result<u8> {
    let mut query = Vec::new();
    if let Some(limit) = page.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(skip) = page.skip {
        query.push(("skip", skip.to_string()));
    }
    let doc = api
        .call(
            Method::GET,
            api.url("_", &["actions"], &query),
            Payload::Empty,
        )
        .map_err(|e| Failed::request("unable to list actions", e))?;
    let Some(actions) = doc.as_array() else {
        bail!("the server answered the list of actions with a non-list: {doc}");
    };
    super::write_stdout(&super::format::action_list(actions))?;
    Ok(0)
}

/// `delete`.
fn delete(api: &Client, name: &str) -> Result<u8> {
    let path = ActionPath::parse(name)?;
    api.call(Method::DELETE, action_url(api, &path, &[]), Payload::Empty)
        .map_err(|e| Failed::request(format!("unable to delete action {}", path.display()), e))?;
    say!("ok: deleted action {}", path.display());
    Ok(0)
}

/// `invoke`: non-blocking prints the id; blocking prints the record (or
/// the result with `-r`) and exits 1 if the activation failed.
fn invoke(api: &Client, args: &InvokeArgs) -> Result<u8> {
    let path = ActionPath::parse(&args.name)?;
    let params = read_params(&args.params)?;
    let blocking = args.blocking || args.result;
    let mut query = vec![("blocking", blocking.to_string())];
    if args.result {
        query.push(("result", "true".to_string()));
    }
    let what = || format!("unable to invoke action {}", path.display());
    let answer = api
        .send(
            Method::POST,
            action_url(api, &path, &query),
            Payload::Json(Value::Object(params)),
        )
        .map_err(|e| Failed::request(what(), e))?;
    let id = answer
        .body
        .get("activationId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| answer.activation_id.clone())
        .unwrap_or_default();
    match answer.status {
        202 if blocking => {
            say!(
                "ok: invoked {}, but the request has not yet finished, with id {id}",
                path.display()
            );
            Ok(0)
        }
        202 => {
            say!("ok: invoked {} with id {id}", path.display());
            Ok(0)
        }
        200 => {
            say!("{}", pretty(&answer.body));
            Ok(0)
        }
        // The activation ran and failed; its record (or result) is the body.
        502 => {
            say!("{}", pretty(&answer.body));
            let status = answer
                .body
                .pointer("/response/status")
                .and_then(Value::as_str)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            eprintln!(
                "error: activation {id} of {} failed{status}",
                path.display()
            );
            Ok(EXIT_ACTIVATION_FAILED)
        }
        // A whisk error that carries the activation.
        500 if answer.activation_id.is_some() => {
            say!("{}", pretty(&answer.body));
            eprintln!(
                "error: activation {id} of {} failed: whisk internal error",
                path.display()
            );
            Ok(EXIT_REQUEST_FAILED)
        }
        _ => Err(Failed::request(what(), answer.into_error()).into()),
    }
}
