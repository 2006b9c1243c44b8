//! `send <preset>`: a sample delivery (or handshake) for each provider preset, signed with the
//! preset's own scheme from clawlet-verify, so what `send` produces is exactly what the daemon's
//! verifier checks.

use anyhow::{Context as _, Result, anyhow, bail};
use clawlet_config::HandlerKind;
use clawlet_verify::presets;
use clawlet_verify::scheme::{Request, SigningKey};
use clawlet_verify::{Secret, UnixTime, handshake};
use serde_json::{Value, json};

use super::{Delivery, Expected};
use crate::cli::SendArgs;

/// The signing key `args` gives for `kind`.
fn signing_key(kind: HandlerKind, args: &SendArgs) -> Result<SigningKey> {
    let seed = || -> Result<[u8; 32]> {
        let text = args.private_key.as_deref().ok_or_else(|| {
            anyhow!(
                "--private-key is missing: a {} sender signs with a private key; pass the hex of its 32 bytes (the handler's public_key must be the matching public key)",
                kind.name()
            )
        })?;
        let text = text.trim();
        let mut bytes = [0u8; 32];
        let well_formed = text.len() == 64
            && text.is_ascii()
            && bytes.iter_mut().enumerate().all(|(i, byte)| {
                u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .ok()
                    .filter(|_| {
                        text.as_bytes()[2 * i..2 * i + 2]
                            .iter()
                            .all(u8::is_ascii_hexdigit)
                    })
                    .map(|b| *byte = b)
                    .is_some()
            });
        if !well_formed {
            bail!("--private-key: expected 64 hexadecimal digits (32 bytes)");
        }
        Ok(bytes)
    };
    match kind {
        HandlerKind::Discord => Ok(SigningKey::ed25519_seed(&seed()?)),
        HandlerKind::Sendgrid => SigningKey::p256_scalar(&seed()?)
            .map_err(|err| anyhow!("--private-key: {err} (not a P-256 private key)")),
        _ => Ok(SigningKey::Secret(
            Secret::new(&args.secret).map_err(|err| anyhow!("--secret: {err}"))?,
        )),
    }
}

/// The public key matching `--private-key`, as the handler's `public_key` wants it.
pub(crate) fn public_key(kind: HandlerKind, args: &SendArgs) -> Result<Option<String>> {
    Ok(signing_key(kind, args)?.public_key_text())
}

/// Percent-encodes a query value.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A delivery or handshake for `kind`, signed at `now`.
pub(crate) fn build(
    kind: HandlerKind,
    args: &SendArgs,
    body_file: Option<Vec<u8>>,
    delivery_id: &str,
    now: i64,
) -> Result<Delivery> {
    let preset =
        presets::by_name(kind.name()).ok_or_else(|| anyhow!("{} has no preset", kind.name()))?;
    let challenge = format!("c{}", delivery_id.replace('-', ""));
    if args.handshake
        && let Some(delivery) = unsigned_handshake(kind, args, &challenge)?
    {
        return Ok(delivery);
    }
    let (mut headers, mut body, expect) = if args.handshake {
        signed_handshake(kind, args, &challenge, delivery_id, now)?
    } else {
        let (headers, body) = sample(kind, args, delivery_id, now);
        (headers, body_file.unwrap_or(body), None)
    };
    let key = signing_key(kind, args)?;
    let public_url = args.public_url.as_deref().unwrap_or(&args.url);
    let at = UnixTime::from_secs(now);
    match kind {
        // Graph signs nothing: the clientState is in the body already.
        HandlerKind::Msgraph => {}
        // Mailgun signs in the body: fill the signature in, then send it.
        HandlerKind::Mailgun => {
            let value = {
                let request = Request::new(&headers, &body).url(public_url).method("POST");
                preset.scheme.signature_value(&key, &request, at)
            }
            .map_err(|err| anyhow!("signing the sample: {err}"))?;
            let mut json: Value =
                serde_json::from_slice(&body).context("the Mailgun body is not JSON")?;
            json["signature"]["signature"] = Value::String(value);
            body = serde_json::to_vec(&json).context("encoding the Mailgun body")?;
        }
        _ => {
            let signed = {
                let request = Request::new(&headers, &body).url(public_url).method("POST");
                preset.scheme.sign(&key, &request, at)
            }
            .map_err(|err| anyhow!("signing the sample: {err}"))?;
            headers.extend(signed);
        }
    }
    Ok(Delivery {
        method: reqwest::Method::POST,
        query: None,
        headers,
        body,
        expect,
    })
}

/// The handshakes a sender makes without signing them.
fn unsigned_handshake(
    kind: HandlerKind,
    args: &SendArgs,
    challenge: &str,
) -> Result<Option<Delivery>> {
    let get = |query: String, expect: Expected| Delivery {
        method: reqwest::Method::GET,
        query: Some(query),
        headers: Vec::new(),
        body: Vec::new(),
        expect: Some(expect),
    };
    Ok(Some(match kind {
        HandlerKind::Meta => {
            let token = args.verify_token.as_deref().ok_or_else(|| {
                anyhow!("--verify-token is missing: Meta's subscribe request carries the handler's verify_token")
            })?;
            get(
                format!(
                    "hub.mode=subscribe&hub.verify_token={}&hub.challenge={challenge}",
                    encoded(token)
                ),
                Expected::Text(challenge.to_owned()),
            )
        }
        HandlerKind::Twitter => {
            let secret = Secret::new(&args.secret).map_err(|err| anyhow!("--secret: {err}"))?;
            get(
                format!("crc_token={challenge}"),
                Expected::Json(
                    json!({ "response_token": handshake::twitter_crc_response(&secret, challenge) }),
                ),
            )
        }
        HandlerKind::Dropbox => get(
            format!("challenge={challenge}"),
            Expected::Text(challenge.to_owned()),
        ),
        HandlerKind::Msgraph => Delivery {
            method: reqwest::Method::POST,
            query: Some(format!("validationToken={challenge}")),
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: Vec::new(),
            expect: Some(Expected::Text(challenge.to_owned())),
        },
        HandlerKind::Slack | HandlerKind::Zoom | HandlerKind::Discord => return Ok(None),
        other => bail!(
            "--handshake: a {} sender performs no handshake; slack, zoom, meta, twitter, msgraph, dropbox and discord do",
            other.name()
        ),
    }))
}

type Parts = (Vec<(String, String)>, Vec<u8>, Option<Expected>);

/// The handshakes a sender signs like its deliveries.
fn signed_handshake(
    kind: HandlerKind,
    args: &SendArgs,
    challenge: &str,
    delivery_id: &str,
    now: i64,
) -> Result<Parts> {
    let json_headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let (body, expect) = match kind {
        HandlerKind::Slack => (
            json!({ "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification" }),
            Expected::Json(json!({ "challenge": challenge })),
        ),
        HandlerKind::Zoom => {
            let secret = Secret::new(&args.secret).map_err(|err| anyhow!("--secret: {err}"))?;
            (
                json!({ "payload": { "plainToken": challenge }, "event_ts": now * 1000, "event": "endpoint.url_validation" }),
                Expected::Json(json!({
                    "plainToken": challenge,
                    "encryptedToken": handshake::zoom_encrypted_token(&secret, challenge),
                })),
            )
        }
        HandlerKind::Discord => (
            json!({ "type": 1, "id": delivery_id, "application_id": "1100000000000000000", "version": 1 }),
            Expected::Json(json!({ "type": 1 })),
        ),
        _ => bail!("{} has no signed handshake", kind.name()),
    };
    let body = serde_json::to_vec(&body).context("encoding the handshake")?;
    Ok((json_headers, body, Some(expect)))
}

/// The headers (besides the signature) and body of a sample delivery.
fn sample(
    kind: HandlerKind,
    args: &SendArgs,
    id: &str,
    now: i64,
) -> (Vec<(String, String)>, Vec<u8>) {
    let event = |default: &str| args.event.clone().unwrap_or_else(|| default.to_owned());
    let h = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    };
    let iso = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let compact = id.replace('-', "");
    let (headers, body) = match kind {
        HandlerKind::Slack => (
            vec![],
            json!({ "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "team_id": "T0001",
            "api_app_id": "A0001", "type": "event_callback", "event_id": format!("Ev{compact}"), "event_time": now,
            "event": { "type": event("message"), "channel": "C0001", "user": "U0001", "text": "Deploy finished", "ts": format!("{now}.000100") } }),
        ),
        HandlerKind::Zoom => (
            vec![],
            json!({ "event": event("meeting.started"), "event_ts": now * 1000,
            "payload": { "account_id": "AAAAAABBBB", "object": { "id": "85712345678", "uuid": id, "topic": "Weekly sync" } } }),
        ),
        HandlerKind::Shopify => (
            h(&[
                ("X-Shopify-Topic", event("orders/create")),
                ("X-Shopify-Event-Id", id.to_owned()),
                ("X-Shopify-Webhook-Id", id.to_owned()),
                ("X-Shopify-Shop-Domain", "example.myshopify.com".to_owned()),
            ]),
            json!({ "id": 820_982_911_946_154_508_u64, "name": "#1001", "total_price": "29.99", "currency": "USD" }),
        ),
        HandlerKind::Gitlab => (
            h(&[
                ("X-Gitlab-Event", "Merge Request Hook".to_owned()),
                ("X-Gitlab-Event-UUID", id.to_owned()),
            ]),
            json!({ "object_kind": event("merge_request"), "event_type": "merge_request",
                "project": { "path_with_namespace": "group/project" },
                "object_attributes": { "iid": 42, "title": "Add a health check", "action": "open" } }),
        ),
        HandlerKind::Linear => (
            h(&[
                ("Linear-Event", event("Issue")),
                ("Linear-Delivery", id.to_owned()),
            ]),
            json!({ "action": "create", "type": event("Issue"), "data": { "id": compact, "identifier": "ENG-42", "title": "Add a health check" },
                "url": "https://linear.app/example/issue/ENG-42", "webhookTimestamp": now * 1000, "webhookId": "wh-1" }),
        ),
        HandlerKind::Paddle => (
            vec![],
            json!({ "event_id": format!("evt_{compact}"), "event_type": event("transaction.completed"),
            "occurred_at": iso, "notification_id": format!("ntf_{compact}"), "data": { "id": "txn_01h04vsbhqc62t8hmd4z3b578c" } }),
        ),
        HandlerKind::Twilio => {
            let form = format!(
                "AccountSid=AC0001&MessageSid=SM{compact}&MessageStatus={}&From=%2B15005550006&To=%2B15005550009",
                encoded(&event("delivered"))
            );
            return (
                h(&[
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("I-Twilio-Idempotency-Token", id.to_owned()),
                ]),
                form.into_bytes(),
            );
        }
        HandlerKind::Square => (
            vec![],
            json!({ "merchant_id": "6SSW7HV8K2ST5", "type": event("payment.updated"), "event_id": id,
            "created_at": iso, "data": { "type": "payment", "id": "KkAkhdMsgzn59SM8A89WgKwekxLZY" } }),
        ),
        HandlerKind::Hubspot => (
            vec![],
            json!([{ "eventId": now, "subscriptionId": 1, "portalId": 62515,
            "occurredAt": now * 1000, "subscriptionType": event("contact.creation"), "attemptNumber": 0, "objectId": 123, "changeSource": "CRM" }]),
        ),
        HandlerKind::Pagerduty => (
            vec![],
            json!({ "event": { "id": id, "event_type": event("incident.triggered"),
            "resource_type": "incident", "occurred_at": iso, "data": { "id": "PGR0VU2", "title": "Disk full on db-1" } } }),
        ),
        HandlerKind::Mailgun => (
            vec![],
            json!({ "signature": { "timestamp": now.to_string(), "token": format!("{compact}{compact}"), "signature": "" },
            "event-data": { "event": event("delivered"), "id": compact, "timestamp": now, "recipient": "user@example.com" } }),
        ),
        HandlerKind::Meta => (
            vec![],
            json!({ "object": event("page"), "entry": [{ "id": "1234567890", "time": now,
            "changes": [{ "field": "feed", "value": { "item": "post", "verb": "add", "post_id": compact } }] }] }),
        ),
        HandlerKind::Bitbucket => (
            h(&[
                ("X-Event-Key", event("repo:push")),
                ("X-Request-UUID", id.to_owned()),
                ("X-Hook-UUID", id.to_owned()),
            ]),
            json!({ "repository": { "full_name": "team/repo" }, "actor": { "display_name": "Octo Cat" }, "push": { "changes": [] } }),
        ),
        HandlerKind::Gitea | HandlerKind::Forgejo => {
            let (e, d) = if kind == HandlerKind::Gitea {
                ("X-Gitea-Event", "X-Gitea-Delivery")
            } else {
                ("X-Forgejo-Event", "X-Forgejo-Delivery")
            };
            (
                h(&[(e, event("push")), (d, id.to_owned())]),
                json!({ "ref": "refs/heads/main", "repository": { "full_name": "org/repo" }, "pusher": { "login": "octocat" } }),
            )
        }
        HandlerKind::Typeform => (
            vec![],
            json!({ "event_id": id, "event_type": event("form_response"),
            "form_response": { "form_id": "lT4Z3j", "token": compact, "submitted_at": iso, "definition": { "title": "Feedback" } } }),
        ),
        HandlerKind::Sentry => (
            h(&[
                ("Sentry-Hook-Resource", event("issue")),
                ("Request-ID", id.to_owned()),
                ("Sentry-Hook-Timestamp", now.to_string()),
            ]),
            json!({ "action": "created", "data": { "issue": { "id": "1", "title": "ZeroDivisionError: division by zero" } }, "installation": { "uuid": "7a485448" } }),
        ),
        HandlerKind::Vercel => (
            vec![],
            json!({ "id": id, "type": event("deployment.succeeded"), "createdAt": now * 1000,
            "payload": { "deployment": { "id": "dpl_2euZBFqxYdDMDG1jTrHFnNZ2eUVa", "url": "my-app.vercel.app" }, "name": "my-app" } }),
        ),
        HandlerKind::Calendly => (
            vec![],
            json!({ "event": event("invitee.created"), "created_at": iso, "created_by": "https://api.calendly.com/users/AAAA",
            "payload": { "uri": format!("https://api.calendly.com/scheduled_events/{compact}/invitees/1"), "scheduled_event": { "name": "30 Minute Meeting" } } }),
        ),
        HandlerKind::Intercom => (
            vec![],
            json!({ "type": "notification_event", "id": id, "topic": event("conversation.user.created"),
            "created_at": now, "data": { "item": { "type": "conversation", "id": "123" } } }),
        ),
        HandlerKind::Coinbase => (
            vec![],
            json!({ "id": 1, "scheduled_for": iso, "event": { "id": id, "type": event("charge:confirmed"),
            "data": { "code": "66BEOV2A", "name": "Order 1001" } } }),
        ),
        HandlerKind::Twitter => (
            vec![],
            json!({ "for_user_id": "2244994945", "tweet_create_events": [{ "id_str": compact, "text": "Hello" }] }),
        ),
        HandlerKind::Msgraph => (
            vec![],
            json!({ "value": [{ "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
            "clientState": args.secret, "changeType": event("created"), "resource": format!("Users/1/Messages/{compact}"),
            "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95" }] }),
        ),
        HandlerKind::Dropbox => (
            vec![],
            json!({ "list_folder": { "accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"] },
            "delta": { "users": [12_345_678] } }),
        ),
        HandlerKind::Discord => (
            vec![],
            json!({ "version": 1, "application_id": "1100000000000000000", "type": 1,
            "event": { "type": event("APPLICATION_AUTHORIZED"), "timestamp": iso, "data": { "user": { "id": "1", "username": "octocat" } } } }),
        ),
        // A batch, as SendGrid posts them: the daemon stores each event on its own, deduplicated
        // by its `sg_event_id` (both derived from the delivery id, so that a resend with the
        // same `--delivery-id` is answered `duplicate`).
        HandlerKind::Sendgrid => (
            vec![],
            json!([
                { "email": "user@example.com", "timestamp": now, "event": event("delivered"),
                  "sg_event_id": format!("{id}-1"), "sg_message_id": format!("{compact}.filter0001") },
                { "email": "other@example.com", "timestamp": now, "event": event("delivered"),
                  "sg_event_id": format!("{id}-2"), "sg_message_id": format!("{compact}.filter0002") }
            ]),
        ),
        HandlerKind::Github | HandlerKind::Stripe | HandlerKind::Custom | HandlerKind::Standard => {
            (vec![], json!({}))
        }
    };
    let mut headers = headers;
    headers.insert(
        0,
        ("Content-Type".to_owned(), "application/json".to_owned()),
    );
    (headers, serde_json::to_vec(&body).unwrap_or_default())
}
