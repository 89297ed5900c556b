//! `activation list|get|result|logs|poll`.
//!
//! `poll` lists the activations that started since a moving mark every
//! second and prints each new one. A record appears only when its activation
//! ends, which may be after newer ones appeared; so the mark trails the
//! newest start seen by [`Poller::LOOKBACK_MS`] and the ids already printed
//! are remembered until the mark passes them.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::Value;

use super::body::ActionPath;
use super::client::{Client, Payload};
use super::format::{
    ActivationRow, activation_table, log_lines, pretty, status_of, strip_log_line,
};
use super::{ActivationCommand, ActivationIdArgs, ActivationListArgs, Failed, LogsArgs, PollArgs};

/// Runs one `activation` command.
pub(super) fn run(cmd: ActivationCommand, api: &Client) -> Result<u8> {
    match cmd {
        ActivationCommand::List(args) => list(api, &args),
        ActivationCommand::Get(which) => {
            let id = resolve_id(api, &which)?;
            let doc = fetch(api, &id, None)?;
            say!("{}", pretty(&doc));
            Ok(0)
        }
        ActivationCommand::Result(which) => {
            let id = resolve_id(api, &which)?;
            let doc = fetch(api, &id, Some("result"))?;
            // `…/result` answers the response; `wsk` prints its `result`.
            say!("{}", pretty(doc.get("result").unwrap_or(&doc)));
            Ok(0)
        }
        ActivationCommand::Logs(args) => logs(api, &args),
        ActivationCommand::Poll(args) => poll(api, &args),
    }
}

/// The `name` filter of a list: the action's name (or `pkg/name`), and its
/// namespace when given fully qualified.
fn name_filter(name: Option<&str>) -> Result<(String, Option<String>)> {
    match name {
        Some(name) => {
            let path = ActionPath::parse(name)?;
            Ok((path.namespace, Some(path.segments.join("/"))))
        }
        None => Ok(("_".to_string(), None)),
    }
}

/// `GET …/activations?…`: the listing, newest first.
fn listing(api: &Client, namespace: &str, query: &[(&str, String)]) -> Result<Vec<Value>> {
    let doc = api
        .call(
            Method::GET,
            api.url(namespace, &["activations"], query),
            Payload::Empty,
        )
        .map_err(|e| Failed::request("unable to list activations", e))?;
    match doc {
        Value::Array(items) => Ok(items),
        other => bail!("the server answered the list of activations with a non-list: {other}"),
    }
}

/// `GET …/activations/{id}[/{part}]`.
fn fetch(api: &Client, id: &str, part: Option<&str>) -> Result<Value> {
    let mut segments = vec!["activations", id];
    segments.extend(part);
    api.call(Method::GET, api.url("_", &segments, &[]), Payload::Empty)
        .map_err(|e| {
            let what = match part {
                Some(part) => format!("unable to get the {part} of activation {id}"),
                None => format!("unable to get activation {id}"),
            };
            Failed::request(what, e).into()
        })
}

/// The id given, or with `--last` the newest activation's.
fn resolve_id(api: &Client, which: &ActivationIdArgs) -> Result<String> {
    if let Some(id) = &which.id {
        return Ok(id.clone());
    }
    let newest = listing(api, "_", &[("limit", "1".to_string())])?;
    match newest
        .first()
        .and_then(|a| a.get("activationId"))
        .and_then(Value::as_str)
    {
        Some(id) => Ok(id.to_string()),
        None => bail!("there are no activations yet"),
    }
}

/// `list`.
fn list(api: &Client, args: &ActivationListArgs) -> Result<u8> {
    let (namespace, name) = name_filter(args.name.as_deref())?;
    let mut query = Vec::new();
    if let Some(name) = name {
        query.push(("name", name));
    }
    for (key, value) in [
        ("limit", args.page.limit.map(u64::from)),
        ("skip", args.page.skip.map(u64::from)),
        ("since", args.since),
        ("upto", args.upto),
    ] {
        if let Some(value) = value {
            query.push((key, value.to_string()));
        }
    }
    let items = listing(api, &namespace, &query)?;
    super::write_stdout(&activation_table(&items))?;
    Ok(0)
}

/// `logs`.
fn logs(api: &Client, args: &LogsArgs) -> Result<u8> {
    let id = resolve_id(api, &args.which)?;
    let doc = fetch(api, &id, Some("logs"))?;
    for line in log_lines(&doc) {
        say!(
            "{}",
            if args.strip {
                strip_log_line(line)
            } else {
                line
            }
        );
    }
    Ok(0)
}

/// `poll`: until `--exit` seconds have passed, or Ctrl-C.
fn poll(api: &Client, args: &PollArgs) -> Result<u8> {
    let (namespace, name) = name_filter(args.name.as_deref())?;
    let deadline = args.exit.map(|s| Instant::now() + Duration::from_secs(s));
    let mut poller = Poller::new(epoch_ms());
    eprintln!("polling for activations (Ctrl-C to stop)");
    loop {
        let mut query = vec![
            ("since", poller.since().to_string()),
            ("limit", "200".to_string()),
        ];
        if let Some(name) = &name {
            query.push(("name", name.clone()));
        }
        let items = listing(api, &namespace, &query)?;
        for id in poller.fresh(&items) {
            let record = fetch(api, &id, None)?;
            super::write_stdout(&poll_entry(&record))?;
        }
        let pause = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(0);
                }
                left.min(Duration::from_secs(1))
            }
            None => Duration::from_secs(1),
        };
        std::thread::sleep(pause);
    }
}

/// How `poll` prints an activation: a header, its log lines, its result.
pub fn poll_entry(record: &Value) -> String {
    let row = ActivationRow::of(record);
    let mut out = format!(
        "Activation: '{}' ({}) {} {} {}\n",
        record.get("name").and_then(Value::as_str).unwrap_or(""),
        row.id,
        status_of(record),
        row.duration,
        row.start
    );
    for line in log_lines(record) {
        out.push_str(line);
        out.push('\n');
    }
    if let Some(result) = record.pointer("/response/result") {
        out.push_str(&format!("result: {result}\n"));
    }
    out
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Which activations of a listing `poll` has not printed yet.
#[derive(Debug, Clone)]
pub struct Poller {
    /// Listings ask for activations that started at or after this (epoch
    /// ms). Never moves back, never before the poll began.
    since: u64,
    /// Ids printed, with their start; those before `since` are forgotten
    /// since no listing returns them again.
    seen: HashMap<String, u64>,
}

impl Poller {
    /// How long after a newer activation's start an older one may still
    /// appear (its activation was still running): one default time limit.
    pub const LOOKBACK_MS: u64 = 60_000;

    /// A poller of activations that start at or after `now` (epoch ms).
    pub fn new(now: u64) -> Poller {
        Poller {
            since: now,
            seen: HashMap::new(),
        }
    }

    /// The `since` of the next listing.
    pub fn since(&self) -> u64 {
        self.since
    }

    /// The ids in `listing` not returned before, oldest first; moves the
    /// mark.
    pub fn fresh(&mut self, listing: &[Value]) -> Vec<String> {
        let mut fresh: Vec<(u64, String)> = Vec::new();
        for item in listing {
            let Some(id) = item.get("activationId").and_then(Value::as_str) else {
                continue;
            };
            let start = item
                .get("start")
                .and_then(Value::as_u64)
                .unwrap_or(self.since);
            if start < self.since || self.seen.contains_key(id) {
                continue;
            }
            self.seen.insert(id.to_string(), start);
            fresh.push((start, id.to_string()));
        }
        if let Some(newest) = self.seen.values().max() {
            self.since = self.since.max(newest.saturating_sub(Self::LOOKBACK_MS));
        }
        let since = self.since;
        self.seen.retain(|_, start| *start >= since);
        fresh.sort();
        fresh.into_iter().map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, start: u64) -> Value {
        json!({"activationId": id, "start": start})
    }

    #[test]
    fn poller_returns_each_activation_once_oldest_first() {
        let mut p = Poller::new(1_000);
        assert_eq!(
            p.fresh(&[item("b", 1_200), item("a", 1_100), item("old", 900)]),
            ["a", "b"]
        );
        assert_eq!(
            p.fresh(&[item("c", 1_300), item("b", 1_200), item("a", 1_100)]),
            ["c"]
        );
        assert_eq!(p.since(), 1_000, "the mark trails the newest start");
        // A long activation that started before newer ones ends later.
        assert_eq!(p.fresh(&[item("c", 1_300), item("long", 1_050)]), ["long"]);
        assert!(p.fresh(&[]).is_empty());
    }

    #[test]
    fn poller_mark_trails_and_forgets() {
        let mut p = Poller::new(0);
        let late = Poller::LOOKBACK_MS + 5_000;
        assert_eq!(p.fresh(&[item("x", 10), item("y", late)]), ["x", "y"]);
        assert_eq!(p.since(), 5_000);
        assert_eq!(p.seen.len(), 1, "x is before the mark: forgotten");
        assert!(p.fresh(&[item("x", 10), item("y", late)]).is_empty());
    }

    #[test]
    fn poll_entries_show_logs_and_result() {
        let record = json!({
            "name": "hello", "activationId": "abc", "duration": 4,
            "response": {"status": "success", "result": {"greeting": "hi"}},
            "logs": ["2023-11-14T22:13:20Z stdout: hi"], "annotations": []
        });
        assert_eq!(
            poll_entry(&record),
            "Activation: 'hello' (abc) success 4ms warm\n\
             2023-11-14T22:13:20Z stdout: hi\n\
             result: {\"greeting\":\"hi\"}\n"
        );
    }

    #[test]
    fn name_filters() {
        assert_eq!(name_filter(None).unwrap(), ("_".into(), None));
        assert_eq!(
            name_filter(Some("/guest/pkg/a")).unwrap(),
            ("guest".into(), Some("pkg/a".into()))
        );
    }
}
