//! What the NATS backend leaves on the server, by name: streams, subjects, consumers, headers,
//! message ids and the envelope encoding. Everything that reads or writes the streams (the
//! dispatcher here, the `events` commands) goes through these, so that the layout is written down
//! once.
//!
//! - Stream `<stream>` (default `CLAWLET_WEBHOOKS`) holds events on
//!   `<prefix>.<handler>.<event type>`, each name part passed through [`token`]; the prefix is
//!   [`subject_prefix`].
//! - Stream `<stream>_DEAD` ([`dead_stream`]) holds dead letters on
//!   `clawlet.dead.<stream>.<agent>` ([`dead_subject`]), with the agent and the last error in the
//!   [`AGENT_HEADER`] and [`ERROR_HEADER`] headers.
//! - Each agent reads through one durable pull consumer, [`consumer_name`], shared by every
//!   daemon on the stream.
//! - A message's body is the envelope's JSON ([`decode_envelope`]); its `Nats-Msg-Id` is the event
//!   id, which [`event_id`] derives from the handler and delivery id.
//! - The servers are a `queue.nats.url` value read as a list by [`server_addrs`], the same for
//!   the daemon and the `events` commands.

use async_nats::ServerAddr;
use clawlet_events::Envelope;
use sha2::{Digest as _, Sha256};

use crate::BusError;
use crate::dedup::dedup_key;

/// Server URLs from a `queue.nats.url` value: one URL, or several separated by commas (the
/// servers of one cluster, tried in turn).
///
/// # Errors
///
/// [`BusError::Config`] saying which URL of the list (counting from 1) is not a NATS URL; the
/// URL itself is not quoted, since it may hold credentials.
pub fn server_addrs(urls: &str) -> Result<Vec<ServerAddr>, BusError> {
    let addrs = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .enumerate()
        .map(|(i, u)| {
            u.parse::<ServerAddr>().map_err(|e| {
                BusError::Config(format!(
                    "server URL {} of the list is not a NATS URL (nats://host:port): {e}",
                    i + 1
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(BusError::Config("no NATS server URL given".to_owned()));
    }
    Ok(addrs)
}

/// The default stream keeps the documented subjects; others get their own prefix so that streams
/// never overlap (JetStream refuses overlapping subjects).
pub(crate) const DEFAULT_STREAM: &str = "CLAWLET_WEBHOOKS";
/// Every agent's durable consumer is named this plus the agent's [`agent_token`].
pub(crate) const CONSUMER_PREFIX: &str = "clawlet-agent-";
/// JetStream's dedup header: the event id.
pub(crate) const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// On a dead letter: the agent that gave up.
pub(crate) const AGENT_HEADER: &str = "Clawlet-Agent";
/// On a dead letter: the last attempt's error, on one line.
pub(crate) const ERROR_HEADER: &str = "Clawlet-Error";
/// On a dead letter: the attempts made.
pub(crate) const ATTEMPTS_HEADER: &str = "Clawlet-Attempts";
/// On an event: the agents (comma-separated, as configured) its routes named when it was stored.
/// A route changed by a reload applies to events stored after it; an event without the header
/// (stored by an earlier version) goes by the routes at delivery.
pub(crate) const ROUTE_HEADER: &str = "Clawlet-Route";
/// On a copy republished by `events replay`: the agents (comma-separated, as configured) it is
/// meant for; the other agents' consumers ack it without an attempt.
pub(crate) const REPLAY_FOR_HEADER: &str = "Clawlet-Replay-For";

/// Replaces what NATS subjects and consumer names cannot hold.
pub(crate) fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "_".to_owned() } else { t }
}

/// An agent's name as its consumer and dead-letter subject hold it: the name itself when it is a
/// valid token, or else its [`token`] and a digest of the name, so that two names [`token`] maps
/// alike (`in.box`, `in_box`) never share a consumer.
pub(crate) fn agent_token(agent: &str) -> String {
    let t = token(agent);
    if t == agent {
        return t;
    }
    let digest = Sha256::digest(agent.as_bytes());
    let mut out = t;
    out.push('-');
    for b in &digest[..6] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `clawlet.webhooks` for the default stream, `clawlet.webhooks-<stream>` for any other.
pub(crate) fn subject_prefix(stream: &str) -> String {
    if stream == DEFAULT_STREAM {
        "clawlet.webhooks".to_owned()
    } else {
        format!("clawlet.webhooks-{}", token(stream).to_lowercase())
    }
}

/// The subject an event is stored on.
pub(crate) fn subject(prefix: &str, envelope: &Envelope) -> String {
    format!(
        "{prefix}.{}.{}",
        token(&envelope.handler),
        token(&envelope.event_type)
    )
}

/// The stream that keeps dead letters.
pub(crate) fn dead_stream(stream: &str) -> String {
    format!("{stream}_DEAD")
}

/// The subjects of [`dead_stream`]: `clawlet.dead.<stream>.>`.
pub(crate) fn dead_subjects(stream: &str) -> String {
    format!("clawlet.dead.{}.>", token(stream).to_lowercase())
}

/// Where `agent`'s dead letters go.
pub(crate) fn dead_subject(stream: &str, agent: &str) -> String {
    format!(
        "clawlet.dead.{}.{}",
        token(stream).to_lowercase(),
        agent_token(agent)
    )
}

/// The durable consumer `agent` reads through.
pub(crate) fn consumer_name(agent: &str) -> String {
    format!("{CONSUMER_PREFIX}{}", agent_token(agent))
}

/// The event id of a delivery: a UUID (version 8) made of the delivery's dedup key, the same
/// length-prefixed digest of handler and delivery id that the journal uses. Every daemon derives
/// the same id for the same delivery, so a duplicate is answered with the id of the event first
/// stored without reading it back, and `(a, b:c)` and `(a:b, c)` stay two deliveries.
pub(crate) fn event_id(handler: &str, delivery_id: &str) -> String {
    uuid::Builder::from_custom_bytes(dedup_key(handler, delivery_id))
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Reads a stored message's body back: the envelope and its JSON text (which agents receive).
pub(crate) fn decode_envelope(payload: &[u8]) -> (String, Result<Envelope, serde_json::Error>) {
    // Every body the daemons store is UTF-8 JSON; checking that is far cheaper than the lossy
    // conversion's chunk-by-chunk walk, which was a twentieth of the daemon's CPU on NATS.
    let json = match std::str::from_utf8(payload) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(payload).into_owned(),
    };
    let parsed = serde_json::from_str::<Envelope>(&json);
    (json, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_are_split_on_commas() {
        let addrs = server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,").unwrap();
        assert_eq!(addrs.len(), 2);
        let err = server_addrs("nats://a:1,nats://user:hunter2@b:notaport")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server URL 2 of the list"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "credentials must not be echoed: {err}"
        );
        let err = server_addrs(" , ").unwrap_err().to_string();
        assert!(err.contains("no NATS server URL"), "{err}");
    }

    #[test]
    fn subject_tokens_are_sanitised() {
        let check = |input: &str, expected: &str| assert_eq!(token(input), expected, "{input:?}");
        check("github", "github");
        check("invoice.paid", "invoice_paid");
        check("a*b>c", "a_b_c");
        check("user created\t", "user_created_");
        check("tab\there", "tab_here");
        check("", "_");
        check("ünïcode", "ünïcode");
    }

    #[test]
    fn only_the_default_stream_uses_the_documented_subjects() {
        assert_eq!(subject_prefix("CLAWLET_WEBHOOKS"), "clawlet.webhooks");
        assert_eq!(subject_prefix("OTHER.ONE"), "clawlet.webhooks-other_one");
        assert_eq!(
            dead_subject("OTHER.ONE", "inbox"),
            "clawlet.dead.other_one.inbox"
        );
    }

    #[test]
    fn agents_whose_names_differ_never_share_a_consumer() {
        // Valid names keep the consumer an earlier version made for them.
        assert_eq!(consumer_name("inbox"), "clawlet-agent-inbox");
        assert_eq!(consumer_name("in_box"), "clawlet-agent-in_box");
        let alike = ["in_box", "in.box", "in box", "in*box", "in>box", "in\tbox"];
        let names: std::collections::HashSet<String> =
            alike.iter().map(|a| consumer_name(a)).collect();
        assert_eq!(names.len(), alike.len(), "{names:?}");
        let dead: std::collections::HashSet<String> =
            alike.iter().map(|a| dead_subject("S", a)).collect();
        assert_eq!(dead.len(), alike.len(), "{dead:?}");
        assert!(consumer_name("in.box").starts_with("clawlet-agent-in_box-"));
        assert_eq!(consumer_name("in.box"), consumer_name("in.box"));
        assert_ne!(consumer_name(""), consumer_name("_"));
    }

    #[test]
    fn event_ids_are_stable_and_unambiguous() {
        let id = event_id("github", "d-1");
        assert_eq!(id, event_id("github", "d-1"));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 8);
        assert_ne!(event_id("a", "b:c"), event_id("a:b", "c"));
        assert_ne!(event_id("ab", ""), event_id("a", "b"));
        assert_ne!(id, event_id("stripe", "d-1"));
    }
}
