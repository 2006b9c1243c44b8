//! `clawlet-webhookd events …`: reads and edits the SQLite journal, also while the daemon runs
//! (WAL lets a second process read and write beside it). Output goes through [`Output`], so that
//! a reader that stops early (`| head -1`) ends the command quietly.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clawlet_bus::{DeliveryStatus, Journal, ListFilter, ReplaySelector, StoredEvent};
use clawlet_config::{Loaded, QueueBackend};

use crate::Failure;
use crate::cli::{EventsCommand, JournalArgs, ReplayArgs, StatusArg};
use crate::output::{Output, ReaderGone};
use crate::wiring;

pub(crate) fn run(command: EventsCommand) -> Result<(), Failure> {
    match store(&command)? {
        // On the nats backend the events live in the JetStream stream, not in a journal file.
        Store::Nats(loaded) => crate::events_nats::run(command, &loaded),
        Store::Journal(path) => {
            let journal = open(&path)?;
            let mut out = Output::stdout();
            journal_command(command, &journal, &mut out)?;
            out.finish().context("writing to standard output")?;
            Ok(())
        }
    }
}

/// Where the events of a command live.
enum Store {
    /// A SQLite journal: the file named by `--journal`, else the configured one.
    Journal(PathBuf),
    /// The JetStream stream of the loaded configuration.
    Nats(Box<Loaded>),
}

/// The journal named by `--journal`, else the configured backend's store.
fn store(command: &EventsCommand) -> Result<Store, Failure> {
    let args: &JournalArgs = match command {
        EventsCommand::List(args) => &args.journal,
        EventsCommand::Show { journal, .. } | EventsCommand::Purge { journal, .. } => journal,
        EventsCommand::Replay(args) => &args.journal,
    };
    if let Some(path) = &args.journal {
        return Ok(Store::Journal(path.clone()));
    }
    let loaded = clawlet_config::load(&wiring::load_options(&args.config, None, None))
        .map_err(|errors| Failure::Config(errors.to_string()))?;
    match loaded.config.webhooks.queue.backend {
        QueueBackend::Sqlite => Ok(Store::Journal(loaded.config.webhooks.queue.path)),
        QueueBackend::Memory => Err(Failure::Config(
            "webhooks.queue.backend is memory: there is no journal to read from another process"
                .to_owned(),
        )),
        QueueBackend::Nats => Ok(Store::Nats(Box::new(loaded))),
    }
}

/// Runs `command` against the SQLite journal, printing to `out`.
fn journal_command(
    command: EventsCommand,
    journal: &Journal,
    out: &mut Output,
) -> Result<(), Failure> {
    match command {
        EventsCommand::List(args) => {
            let filter = ListFilter {
                handler: args.handler,
                event_type: args.event_type,
                status: args.status.map(status),
                since: args.since,
                limit: args.limit,
            };
            // Each event is printed as it is read: memory stays flat whatever `--limit` says.
            let listed = journal.for_each(&filter, |event| -> anyhow::Result<()> {
                if args.json {
                    let json = serde_json::to_string(&event).context("encoding an event")?;
                    out.line(one_line(&json))?;
                } else {
                    out.line(line(&event))?;
                }
                if out.is_closed() {
                    return Err(ReaderGone.into());
                }
                Ok(())
            });
            match listed {
                Err(e) if e.is::<ReaderGone>() => Ok(()),
                other => Ok(other.context("listing events")?),
            }
        }
        EventsCommand::Show { id, .. } => {
            let event = journal.show(&id).context("reading the event")?;
            match event {
                Some(event) => {
                    out.line(serde_json::to_string_pretty(&event).context("encoding the event")?)
                        .context("writing to standard output")?;
                    Ok(())
                }
                None => Err(Failure::Runtime(anyhow::anyhow!("no event with id {id}"))),
            }
        }
        EventsCommand::Replay(args) => {
            let selector = replay_selector(args)?;
            let count = journal.replay(selector).context("queueing events again")?;
            out.line(format_args!("{count} event(s) queued for delivery"))
                .context("writing to standard output")?;
            Ok(())
        }
        EventsCommand::Purge { older_than, .. } => {
            let count = journal
                .purge_older_than(older_than)
                .context("purging events")?;
            out.line(format_args!("{count} event(s) purged"))
                .context("writing to standard output")?;
            Ok(())
        }
    }
}

/// Opens the journal at `path`, which the daemon creates when it stores its first event.
fn open(path: &Path) -> Result<Journal, Failure> {
    if !path.exists() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "no journal at {}: the daemon has not stored any event there yet",
            path.display()
        )));
    }
    Journal::open(path)
        .with_context(|| format!("opening {}", path.display()))
        .map_err(Failure::from)
}

/// What `events replay` was asked to queue again, on either backend.
pub(crate) fn replay_selector(args: ReplayArgs) -> Result<ReplaySelector, Failure> {
    match (args.id, args.dead, args.since) {
        (Some(id), _, _) => Ok(ReplaySelector::Id(id)),
        (None, true, _) => Ok(ReplaySelector::Dead),
        (None, false, Some(since)) => Ok(ReplaySelector::Since(since)),
        (None, false, None) => Err(Failure::Config(
            "events replay: name an id, --dead or --since".to_owned(),
        )),
    }
}

pub(crate) fn status(arg: StatusArg) -> DeliveryStatus {
    match arg {
        StatusArg::Pending => DeliveryStatus::Pending,
        StatusArg::Delivered => DeliveryStatus::Delivered,
        StatusArg::Dead => DeliveryStatus::Dead,
    }
}

/// One readable line: when, status, handler, type, id and summary.
pub(crate) fn line(event: &StoredEvent) -> String {
    let e = &event.envelope;
    let when = e
        .received_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| e.received_at.to_string());
    format!(
        "{when}  {:<9} {:<10} {:<28} {}  {}",
        event.status.as_str(),
        e.handler,
        e.event_type,
        e.id,
        e.summary
    )
}

/// Drops the whitespace between JSON tokens, so that each event is one line even when its payload
/// (kept byte for byte as the sender wrote it) was pretty-printed. Strings are left untouched.
pub(crate) fn one_line(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_keeps_strings_and_drops_layout() {
        let check =
            |input: &str, expected: &str| assert_eq!(one_line(input), expected, "{input:?}");
        check(
            "{\n  \"a\": [1, 2],\r\n\t\"b\": \"x  y\"\n}",
            r#"{"a":[1,2],"b":"x  y"}"#,
        );
        check(
            r#"{"q":"say \"hi there\" \\","n":null}"#,
            r#"{"q":"say \"hi there\" \\","n":null}"#,
        );
        check(
            r#"{"s":"tab\tand\nnewline escapes"}"#,
            r#"{"s":"tab\tand\nnewline escapes"}"#,
        );
        let pretty = "{\n \"payload\": {\n  \"k\": \"v v\"\n }\n}";
        let parsed: serde_json::Value = serde_json::from_str(&one_line(pretty)).unwrap();
        assert_eq!(parsed["payload"]["k"], "v v");
        assert!(!one_line(pretty).contains('\n'));
    }
}
