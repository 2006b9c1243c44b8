//! `clawlet-webhookd events …` on the nats backend: the same commands and the same output as on
//! SQLite, read from and written to the JetStream stream that the daemons share.

use std::path::Path;

use anyhow::Context;
use clawlet_bus::{ListFilter, NatsAdmin};
use clawlet_config::Loaded;

use crate::Failure;
use crate::cli::EventsCommand;
use crate::events::{line, one_line, replay_selector, status};
use crate::output::Output;
use crate::wiring;

/// Runs `command` against the configured stream. The CLI's commands are synchronous; this one
/// waits for the network on a worker thread of the runtime it is called from, then prints.
pub(crate) fn run(command: EventsCommand, loaded: &Loaded) -> Result<(), Failure> {
    let lines = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(lines(command, loaded))
    })?;
    let mut out = Output::stdout();
    for line in lines {
        out.line(line).context("writing to standard output")?;
        if out.is_closed() {
            break;
        }
    }
    out.finish().context("writing to standard output")?;
    Ok(())
}

/// What the command prints, one entry per line.
async fn lines(command: EventsCommand, loaded: &Loaded) -> Result<Vec<String>, Failure> {
    let admin = connect(loaded).await?;
    match command {
        EventsCommand::List(args) => {
            let filter = ListFilter {
                handler: args.handler,
                event_type: args.event_type,
                status: args.status.map(status),
                since: args.since,
                limit: args.limit,
            };
            let events = admin.list(&filter).await.context("listing events")?;
            let mut lines = Vec::with_capacity(events.len());
            for event in &events {
                lines.push(if args.json {
                    one_line(&serde_json::to_string(event).context("encoding an event")?)
                } else {
                    line(event)
                });
            }
            Ok(lines)
        }
        EventsCommand::Show { id, .. } => {
            match admin.show(&id).await.context("reading the event")? {
                Some(event) => Ok(vec![
                    serde_json::to_string_pretty(&event).context("encoding the event")?,
                ]),
                None => Err(Failure::Runtime(anyhow::anyhow!("no event with id {id}"))),
            }
        }
        EventsCommand::Replay(args) => {
            let selector = replay_selector(args)?;
            let count = admin
                .replay(selector)
                .await
                .context("queueing events again")?;
            Ok(vec![format!("{count} event(s) queued for delivery")])
        }
        EventsCommand::Purge { older_than, .. } => {
            let count = admin
                .purge_older_than(older_than)
                .await
                .context("purging events")?;
            Ok(vec![format!("{count} event(s) purged")])
        }
    }
}

async fn connect(loaded: &Loaded) -> Result<NatsAdmin, Failure> {
    let w = &loaded.config.webhooks;
    let file = loaded
        .source
        .as_deref()
        .map_or_else(|| "the configuration".to_owned(), display);
    let nats = &w.queue.nats;
    clawlet_bus::server_addrs(&nats.url).map_err(|e| {
        let reason = match e {
            clawlet_bus::BusError::Config(reason) => reason,
            other => other.to_string(),
        };
        Failure::Config(format!("{file}: webhooks.queue.nats.url: {reason}"))
    })?;
    NatsAdmin::connect(
        &nats.url,
        &wiring::shown_urls(&nats.url),
        &nats.stream,
        wiring::agents(w, &loaded.credential_vars),
        wiring::routes(w),
    )
    .await
    .map_err(|e| match e {
        clawlet_bus::BusError::Config(reason) => Failure::Config(format!("{file}: {reason}")),
        clawlet_bus::BusError::Storage(reason) => Failure::Runtime(anyhow::anyhow!(
            "{reason} (check webhooks.queue.nats.stream and webhooks.queue.nats.url in {file})"
        )),
        other => Failure::Runtime(anyhow::anyhow!(
            "{other} (check that NATS runs and webhooks.queue.nats.url in {file} names it)"
        )),
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
