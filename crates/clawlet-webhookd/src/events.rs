//! `clawlet-webhookd events …`: reads and edits the SQLite journal, also while the daemon runs
//! (WAL lets a second process read and write beside it). Output goes through [`Output`], so that
//! a reader that stops early (`| head -1`) ends the command quietly.

use std::path::PathBuf;

use anyhow::Context;
use clawlet_bus::{DeliveryStatus, Journal, ListFilter, ReplaySelector, StoredEvent};
use clawlet_config::QueueBackend;

use crate::Failure;
use crate::cli::{EventsCommand, JournalArgs, StatusArg};
use crate::output::{Output, ReaderGone};
use crate::wiring;

pub(crate) fn run(command: EventsCommand) -> Result<(), Failure> {
    // On the nats backend the events live in the JetStream stream, not in a journal file.
    if let Some(loaded) = crate::events_nats::configured(&command)? {
        return crate::events_nats::run(command, &loaded);
    }
    let mut out = Output::stdout();
    journal_command(command, &mut out)?;
    out.finish().context("writing to standard output")?;
    Ok(())
}

/// Runs `command` against the SQLite journal, printing to `out`.
fn journal_command(command: EventsCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        EventsCommand::List(args) => {
            let journal = open(&args.journal)?;
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
        EventsCommand::Show { id, journal } => {
            let journal = open(&journal)?;
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
            let journal = open(&args.journal)?;
            let selector = match (args.id, args.dead, args.since) {
                (Some(id), _, _) => ReplaySelector::Id(id),
                (None, true, _) => ReplaySelector::Dead,
                (None, false, Some(since)) => ReplaySelector::Since(since),
                (None, false, None) => {
                    return Err(Failure::Config(
                        "events replay: name an id, --dead or --since".to_owned(),
                    ));
                }
            };
            let count = journal.replay(selector).context("queueing events again")?;
            out.line(format_args!("{count} event(s) queued for delivery"))
                .context("writing to standard output")?;
            Ok(())
        }
        EventsCommand::Purge {
            older_than,
            journal,
        } => {
            let journal = open(&journal)?;
            let count = journal
                .purge_older_than(older_than)
                .context("purging events")?;
            out.line(format_args!("{count} event(s) purged"))
                .context("writing to standard output")?;
            Ok(())
        }
    }
}

/// Opens the journal named by `--journal`, else the configured SQLite journal.
fn open(args: &JournalArgs) -> Result<Journal, Failure> {
    let path: PathBuf = match &args.journal {
        Some(path) => path.clone(),
        None => {
            let loaded = clawlet_config::load(&wiring::load_options(&args.config, None, None))
                .map_err(|errors| Failure::Config(errors.to_string()))?;
            let queue = loaded.config.webhooks.queue;
            match queue.backend {
                QueueBackend::Sqlite => queue.path,
                QueueBackend::Memory => {
                    return Err(Failure::Config(
                        "webhooks.queue.backend is memory: there is no journal to read from another process"
                            .to_owned(),
                    ));
                }
                QueueBackend::Nats => {
                    return Err(Failure::Config(format!(
                        "webhooks.queue.backend is nats: inspect stream {} with the nats CLI (`nats stream view {}`)",
                        queue.nats.stream, queue.nats.stream
                    )));
                }
            }
        }
    };
    if !path.exists() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "no journal at {}: the daemon has not stored any event there yet",
            path.display()
        )));
    }
    Journal::open(&path)
        .with_context(|| format!("opening {}", path.display()))
        .map_err(Failure::from)
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
