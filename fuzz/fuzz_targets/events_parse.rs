//! `clawlet_events::parse`: arbitrary headers and bodies, for every source, including GitHub's
//! form-encoded deliveries; then the envelope's JSON round trip.
//!
//! Input: `handler \0 event_type_pointer \0 delivery_id_header \0 delivery_id_pointer \0 headers \0
//! body`. Empty fields take the defaults (`fuzz`, `/event_type`, none, none). `headers` holds
//! `name: value` lines; a name that is a single digit stands for an entry of [`NAMES`], so the
//! fuzzer reaches the headers the parsers read without having to spell them.
//!
//! Properties of every accepted delivery: the payload is one JSON object (the body itself, minus
//! surrounding whitespace, except for GitHub forms); type, delivery id and action are usable as
//! keys (non-empty, at most 256 bytes, no control characters); the summary is one clean line of
//! at most 300 characters; no signature, cookie or authorization header is kept; the envelope's
//! JSON reads back to the same envelope.
#![no_main]

use clawlet_events::{CustomOptions, Envelope, Request, Source, parse};
use clawlet_fuzz::Fields;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 10] = [
    "content-type",
    "x-github-event",
    "x-github-delivery",
    "webhook-id",
    "x-event-type",
    "X-GitHub-Event",
    "svix-id",
    "x-request-id",
    "x-hub-signature-256",
    "webhook-signature",
];

const NEVER_KEPT: [&str; 7] = [
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "webhook-signature",
    "svix-signature",
    "authorization",
    "cookie",
];

const SOURCES: [Source; 4] = [
    Source::Github,
    Source::Stripe,
    Source::Standard,
    Source::Custom,
];

fn text(field: Option<&[u8]>) -> Option<String> {
    field
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
}

fn headers(block: &[u8]) -> Vec<(String, &[u8])> {
    block
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            let name = match name.as_bytes() {
                [d @ b'0'..=b'9'] => NAMES[usize::from(d - b'0')].to_owned(),
                _ => name.to_owned(),
            };
            Some((name, value))
        })
        .collect()
}

/// Characters that would break or disguise a log line.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn check_id(what: &str, id: &str) {
    assert!(!id.is_empty(), "{what} is empty");
    assert!(id.len() <= 256, "{what} is {} bytes long", id.len());
    assert!(
        !id.chars().any(unsafe_char),
        "{what} {id:?} holds a control character"
    );
}

fn json_trim(body: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = body.iter().position(|b| !ws(b)).unwrap_or(body.len());
    let end = body.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &body[start..end]
}

fn check(envelope: &Envelope, req: &Request<'_>, opts: &CustomOptions) {
    assert_eq!(envelope.source, req.source);
    assert_eq!(envelope.handler, req.handler);
    assert_eq!(envelope.received_at, req.received_at);
    assert_eq!(envelope.received_at.offset(), time::UtcOffset::UTC);

    let payload = envelope.payload.get();
    assert!(
        payload.starts_with('{'),
        "payload is not an object: {payload:?}"
    );
    if let Err(e) = serde_json::from_str::<serde_json::Value>(payload) {
        panic!("payload is not valid JSON ({e}): {payload:?}");
    }
    if req.source != Source::Github {
        assert_eq!(
            payload.as_bytes(),
            json_trim(req.body),
            "payload is not the body"
        );
    }

    check_id("event type", &envelope.event_type);
    check_id("delivery id", &envelope.delivery_id);
    if let Some(action) = &envelope.action {
        check_id("action", action);
    }
    let summary = &envelope.summary;
    assert!(
        !summary.chars().any(unsafe_char),
        "summary {summary:?} is not one clean line"
    );
    assert!(
        summary.chars().count() <= 300,
        "summary is {} characters",
        summary.chars().count()
    );
    assert_eq!(
        summary.trim(),
        summary,
        "summary has surrounding whitespace"
    );

    let configured = opts
        .delivery_id_header
        .as_deref()
        .map(str::to_ascii_lowercase);
    for name in envelope.headers.keys() {
        assert_eq!(
            *name,
            name.to_ascii_lowercase(),
            "kept header name is not lower-case"
        );
        if configured.as_deref() != Some(name) {
            assert!(
                !NEVER_KEPT.contains(&name.as_str()),
                "{name} was kept in the envelope"
            );
        }
    }

    let json = envelope
        .to_json()
        .expect("an envelope with a UTC time encodes");
    assert_eq!(
        Some(&json),
        serde_json::to_string(&envelope).ok().as_ref(),
        "the spliced JSON is not what serde writes"
    );
    let back = Envelope::from_json(json.as_bytes()).expect("an encoded envelope decodes");
    assert_eq!(back.id, envelope.id);
    assert_eq!(back.handler, envelope.handler);
    assert_eq!(back.source, envelope.source);
    assert_eq!(back.event_type, envelope.event_type);
    assert_eq!(back.action, envelope.action);
    assert_eq!(back.delivery_id, envelope.delivery_id);
    assert_eq!(back.received_at, envelope.received_at);
    assert_eq!(back.summary, envelope.summary);
    assert_eq!(back.headers, envelope.headers);
    assert_eq!(back.payload.get(), envelope.payload.get());
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let handler = text(fields.next_field()).unwrap_or_else(|| "fuzz".to_owned());
    let opts = CustomOptions {
        event_type_pointer: text(fields.next_field()).unwrap_or_else(|| "/event_type".to_owned()),
        // Header names are HTTP tokens by the time they reach the parser.
        delivery_id_header: text(fields.next_field()).filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        }),
        delivery_id_pointer: text(fields.next_field()),
        ..CustomOptions::default()
    };
    let owned = headers(fields.next_field().unwrap_or_default());
    let body = fields.rest();
    let headers: Vec<(&str, &[u8])> = owned.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let Ok(received_at) = time::OffsetDateTime::from_unix_timestamp(1_700_000_000) else {
        return;
    };
    let received_at = received_at.to_offset(time::UtcOffset::UTC);

    let body = bytes::Bytes::copy_from_slice(body);
    for source in SOURCES {
        let req = Request {
            handler: &handler,
            source,
            headers: &headers,
            body: &body,
            received_at,
            custom: &opts,
        };
        match parse(&req) {
            Ok(envelope) => check(&envelope, &req, &opts),
            Err(e) => {
                // The code is a metric label and the message a log line: both must be one line.
                assert!(!e.code().is_empty());
                let message = e.to_string();
                assert!(!message.contains('\n'), "multi-line error: {message:?}");
            }
        }
    }
});
